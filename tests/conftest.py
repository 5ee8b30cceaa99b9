"""Shared test configuration: the gpu marker and a deterministic hypothesis profile."""

import pytest
import torch
from hypothesis import settings

settings.register_profile(
    "deterministic", derandomize=True, max_examples=30, deadline=None
)
settings.load_profile("deterministic")


def pytest_collection_modifyitems(
    config: pytest.Config, items: list[pytest.Item]
) -> None:
    if torch.cuda.is_available():
        return
    skip = pytest.mark.skip(reason="needs CUDA")
    for item in items:
        if "gpu" in item.keywords:
            item.add_marker(skip)
