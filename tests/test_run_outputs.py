"""The run's QC number: the SR averaged back onto the ASL grid against the ASL, and when it flags."""

from __future__ import annotations

import numpy as np
import pytest

from aslsr.baselines import all_baselines
from aslsr.grids import Grid, resample_average
from aslsr.io import Volume
from aslsr.run_outputs import AGREEMENT_NOISE_RATIO, lr_agreement

NOISE_SD = 1.0


@pytest.fixture(scope="module")
def case():
    """A smooth truth on a 2x finer grid, its box average onto 4 mm voxels plus white noise, and spline."""
    lr_grid = Grid((16, 16, 8), np.diag([4.0, 4.0, 4.0, 1.0]))
    fine = lr_grid.zoomed((2.0, 2.0, 1.0))
    i, j, k = np.meshgrid(*[np.arange(n, dtype=np.float32) for n in fine.shape], indexing="ij")
    truth = 40 + 10 * np.sin(i / 3.0) * np.cos(j / 4.0) + 2 * k
    noise = np.random.default_rng(0).normal(0, NOISE_SD, lr_grid.shape)
    asl = Volume((resample_average(truth, fine.affine, lr_grid) + noise).astype(np.float32), lr_grid)
    mask = np.zeros(lr_grid.shape, bool)
    mask[2:-2, 2:-2, 1:-1] = True
    return asl, mask, fine, truth, all_baselines(asl, fine)["spline"]


def test_a_denoised_sr_departs_by_the_noise_and_is_not_flagged(case):
    asl, mask, fine, truth, spline = case
    plain = lr_agreement(asl, mask, fine, truth, spline)
    assert plain["ratio_to_spline"] > 2 and plain["departs"]  # spline keeps the noise, the noise-free image does not
    known = lr_agreement(asl, mask, fine, truth, spline, noise_sd=NOISE_SD)
    assert known["ratio_to_noise"] == pytest.approx(1.0, abs=0.15) and not known["departs"]


def test_structure_the_data_do_not_hold_is_flagged(case):
    asl, mask, fine, truth, spline = case
    i = np.arange(fine.shape[0])[:, None, None]
    painted = truth + 3 * NOISE_SD * np.where((i // 2) % 2 == 0, 1.0, -1.0)  # bands of two fine voxels: one LR voxel
    result = lr_agreement(asl, mask, fine, painted, spline, noise_sd=NOISE_SD)
    assert result["ratio_to_noise"] > AGREEMENT_NOISE_RATIO and result["departs"]
    assert lr_agreement(asl, mask, fine, spline, spline, noise_sd=NOISE_SD)["ratio_to_spline"] == pytest.approx(1.0)
