"""benchmarks/noise_estimates.py: the noise read off the background and inside the brain of a case folder."""

import shutil

import numpy as np
import pytest
from conftest import benchmark_script

from aslsr.grids import Grid
from aslsr.io import save_volume


def test_a_white_noise_case_reads_its_noise_from_background_and_brain(tmp_path):
    """A smooth brain with white noise of sd 2 everywhere: both estimates come out near 2."""
    rng = np.random.default_rng(4)
    grid = Grid((48, 48, 40), np.diag([3.0, 3.0, 3.0, 1.0]))
    brain = np.zeros(grid.shape, bool)
    brain[10:38, 10:38, 8:32] = True
    save_volume(tmp_path / "asl_lr.nii.gz", (60.0 * brain + rng.normal(0.0, 2.0, grid.shape)).astype(np.float32), grid)
    save_volume(tmp_path / "mask.nii.gz", brain.astype(np.uint8), grid)
    row = benchmark_script("noise_estimates").estimates(tmp_path)
    assert row["background"] == pytest.approx(2.0, rel=0.05)
    assert 0.85 * 2.0 <= row["brain"] <= 2.0  # the lower quartile of noisy region readings: ~10 % low on pure noise
    assert row["whole_brain_median"] == pytest.approx(2.0, rel=0.1)


def test_a_phantom_folder_is_read_on_its_nr_image(tiny_case, tmp_path):
    for role in ("asl_lr", "asl_nr", "mask"):
        shutil.copyfile(tiny_case[role], tmp_path / f"{role}.nii.gz")
    row = benchmark_script("noise_estimates").estimates(tmp_path)
    assert row["brain"] > 0 and row["whole_brain_median"] > 0
