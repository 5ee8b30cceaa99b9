"""Shared test configuration: the gpu marker, a deterministic hypothesis profile
and one torch thread for every test."""

from collections.abc import Iterator

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


@pytest.fixture(autouse=True, scope="session")
def _one_torch_thread() -> Iterator[None]:
    """One intra-op thread for the whole run: the tests' tensors are small, and
    torch's thread pool makes tiny products and FFTs many times slower on a
    loaded 2-core machine (benchmarks set their own count: ``--threads``)."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)
