"""Image metrics against scikit-image's."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from skimage.metrics import peak_signal_noise_ratio, structural_similarity

from itersolve.imaging import psnr, relative_error, ssim
from itersolve.problems import shepp_logan


@pytest.fixture(scope="module")
def pair():
    ref = shepp_logan(40).image
    noisy = ref + 0.05 * np.random.default_rng(0).standard_normal(ref.shape)
    return noisy, ref


def test_ssim_matches_skimage(pair):
    x, ref = pair
    for win in (7, 11):
        expected = structural_similarity(x, ref, data_range=1.0, win_size=win)
        assert ssim(x, ref, data_range=1.0, win_size=win) == pytest.approx(
            expected, rel=1e-10
        )
    # default data range: the reference's max - min
    expected = structural_similarity(x, ref, data_range=float(np.ptp(ref)))
    assert ssim(torch.from_numpy(x), ref) == pytest.approx(expected, rel=1e-10)


def test_psnr_and_relative_error_match_their_formulas(pair):
    x, ref = pair
    assert psnr(x, ref, data_range=2.0) == pytest.approx(
        peak_signal_noise_ratio(ref, x, data_range=2.0), rel=1e-12
    )
    assert relative_error(x, ref) == pytest.approx(
        np.linalg.norm(x - ref) / np.linalg.norm(ref), rel=1e-12
    )
    assert psnr(ref, ref) == float("inf")


def test_metrics_bad_input(pair):
    x, ref = pair
    with pytest.raises(ValueError, match="same 2-d shape"):
        ssim(x[:-1], ref)
    with pytest.raises(ValueError, match="win_size must be an odd int"):
        ssim(x, ref, win_size=4)
    with pytest.raises(ValueError, match="data_range must be"):
        psnr(x, np.zeros_like(ref))
