"""Tests of aslsr.baselines: interpolation rows and the dTV baseline's weight."""

import numpy as np
import pytest
import torch

from aslsr.baselines import all_baselines, dtv_baseline, dtv_weight, interpolate
from aslsr.config import Config
from aslsr.grids import Grid
from aslsr.io import Volume


def _head(noise_sd: float, scale: float = 1.0, seed: int = 0) -> Volume:
    """A bright box (100) in a noisy background, shape (40, 40, 32), 3 mm voxels, times ``scale``."""
    rng = np.random.default_rng(seed)
    brain = np.zeros((40, 40, 32), bool)
    brain[10:30, 10:30, 8:24] = True
    data = scale * (100.0 * brain + rng.normal(0.0, noise_sd, brain.shape))
    return Volume(data.astype(np.float32), Grid(brain.shape, np.diag([3.0, 3.0, 3.0, 1.0])))


def test_the_noise_scaled_weight_follows_the_noise_and_not_the_units():
    config = Config(dtv_lambda_per_noise=2.0)
    low, high = dtv_weight(_head(2.0), config), dtv_weight(_head(4.0), config)
    assert high / low == pytest.approx(2.0, rel=0.1)
    assert low == pytest.approx(2.0 * 2.0 / 100.0, rel=0.1)
    assert dtv_weight(_head(2.0, scale=1000.0), config) == pytest.approx(low, rel=1e-4)
    assert dtv_weight(_head(4.0), Config(dtv_lambda_per_noise=0.0)) == Config().dtv_lambda  # 0: the fixed weight


def test_an_image_without_noise_or_signal_keeps_the_fixed_weight():
    config = Config(dtv_lambda_per_noise=2.0)
    assert dtv_weight(_head(0.0), config) == config.dtv_lambda
    empty = Volume(np.zeros((8, 8, 8), np.float32), Grid((8, 8, 8), np.eye(4)))
    assert dtv_weight(empty, config) == config.dtv_lambda


def test_the_dtv_baseline_solves_with_the_noise_scaled_weight():
    asl = _head(3.0)
    target = asl.grid.with_voxel_size((1.5, 1.5, 3.0))
    t1 = interpolate(Volume(np.where(_head(0.0).data > 50, 80.0, 20.0), asl.grid), target, "linear")
    config = Config(dtv_lambda_per_noise=2.0, dtv_iterations=20)
    result = dtv_baseline(asl, t1, target, config, device=torch.device("cpu"))
    assert result.lam == pytest.approx(dtv_weight(asl, config))
    assert result.lam != pytest.approx(config.dtv_lambda, rel=0.05)
    fixed = dtv_baseline(
        asl, t1, target, Config(dtv_lambda_per_noise=0.0, dtv_iterations=20), device=torch.device("cpu")
    )
    assert fixed.lam == Config().dtv_lambda
    assert not np.allclose(result.image, fixed.image)


def test_every_interpolation_baseline_lands_on_the_target():
    asl = _head(1.0)
    target = asl.grid.with_voxel_size((1.5, 1.5, 1.5))
    images = all_baselines(asl, target)
    assert set(images) == {"nearest", "linear", "spline"}
    assert all(image.shape == target.shape for image in images.values())
    with pytest.raises(ValueError, match="unknown baseline"):
        interpolate(asl, target, "sinc")
