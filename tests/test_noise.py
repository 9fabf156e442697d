import json

import numpy as np
import pytest
from conftest import tiny_run_args
from scipy import ndimage

from aslsr import noise
from aslsr.cli import main
from aslsr.config import preset
from aslsr.grids import Grid
from aslsr.io import Volume, load_volume
from aslsr.pyramid import build_pyramid, zoom_between
from aslsr.train import noisy_coarse, plan_scales

SHAPE = (48, 48, 40)


def _brain() -> np.ndarray:
    brain = np.zeros(SHAPE, bool)
    brain[12:36, 12:36, 10:30] = True
    return brain


def _image(rng: np.random.Generator, sd: float) -> np.ndarray:
    """A smooth 'perfusion' inside a box brain plus white noise of ``sd`` everywhere."""
    smooth = ndimage.gaussian_filter(rng.normal(size=SHAPE), 4.0)
    signal = _brain() * (50.0 + 200.0 * smooth)
    return signal + rng.normal(0.0, sd, SHAPE)


@pytest.mark.parametrize("sd", [0.5, 3.0])
def test_the_noise_is_read_off_the_background(sd):
    image = _image(np.random.default_rng(1), sd)
    estimate = noise.estimate_noise(Volume(image, Grid(SHAPE, np.eye(4))), _brain())
    assert estimate.source == "background" and estimate.voxels > 2000
    assert estimate.sd == pytest.approx(sd, rel=0.05)


def test_a_zeroed_background_is_read_inside_the_brain():
    """A masked image has no background noise; the finest Haar detail inside the brain reads it there."""
    image = _image(np.random.default_rng(2), 3.0) * _brain()
    estimate = noise.estimate_noise(Volume(image, Grid(SHAPE, np.eye(4))), _brain())
    assert estimate.source == "brain"
    assert estimate.sd == pytest.approx(3.0, rel=0.1)


def _centre_weighted(amplitude: float) -> np.ndarray:
    """A noise sd map highest in the middle of the field of view (a g-factor's shape), 1 +- ``amplitude``."""
    axes = np.meshgrid(*(np.linspace(-1.0, 1.0, n) for n in SHAPE), indexing="ij")
    bump = np.exp(-sum(a**2 for a in axes) / 0.5)
    return 1.0 - amplitude + 2.0 * amplitude * (bump - bump.min()) / (bump.max() - bump.min())


def test_noise_quietest_at_the_edges_is_read_inside_the_brain():
    """A background 3x quieter than the brain's middle under-reads the brain's noise: the brain's reading wins."""
    rng = np.random.default_rng(3)
    sd = 3.0 * _centre_weighted(0.5)
    image = _image(rng, 0.0) + rng.normal(0.0, 1.0, SHAPE) * sd
    estimate = noise.estimate_noise(Volume(image, Grid(SHAPE, np.eye(4))), _brain())
    assert estimate.source == "brain (background quieter)"
    in_brain = float(np.sqrt(np.mean(sd[_brain()] ** 2)))
    background = float(np.median(sd[noise.background_region(image, _brain(), np.ones(3))]))
    assert estimate.sd == pytest.approx(in_brain, rel=0.15) and estimate.sd > 1.6 * background


def test_noise_varying_a_little_is_still_read_off_the_background():
    rng = np.random.default_rng(4)
    image = _image(rng, 0.0) + rng.normal(0.0, 1.0, SHAPE) * 3.0 * _centre_weighted(0.1)
    assert noise.estimate_noise(Volume(image, Grid(SHAPE, np.eye(4))), _brain()).source == "background"


def test_the_brain_estimate_ignores_linear_trends():
    """Constant and linear images have no finest Haar detail: a steep gradient does not read as noise."""
    i, j, k = np.meshgrid(*(np.arange(n, dtype=float) for n in SHAPE), indexing="ij")
    image = (100.0 + 5.0 * i - 3.0 * j + 2.0 * k) * _brain()
    estimate = noise.estimate_noise(Volume(image, Grid(SHAPE, np.eye(4))), _brain())
    assert estimate.source == "brain" and estimate.sd == pytest.approx(0.0, abs=1e-9)


def test_the_added_noise_makes_the_coarse_input_as_noisy_as_the_finer_scale():
    factor = np.array([2.0, 2.0, 1.0])
    config = preset("test", input_noise="matched", input_noise_sd=2.0)
    # finest scale (level 1 of 2): x_0 averages 4 voxels, noise 2/2 = 1; 1 + 3 = 4 = 2^2
    assert noise.input_noise_sd(config, factor, level=1, n_scales=2) == pytest.approx(np.sqrt(3.0))
    # one scale coarser the target x_1 is itself an average of 4 voxels: everything halves
    assert noise.input_noise_sd(config, factor, level=1, n_scales=3) == pytest.approx(np.sqrt(3.0) / 2)
    assert noise.input_noise_sd(preset("test", input_noise_sd=2.0), factor, level=1, n_scales=2) == 0.0


def test_the_training_input_gets_seeded_noise_of_the_matched_sd(tiny_case):
    asl, nr, t1 = (load_volume(tiny_case[r]) for r in ("asl_lr", "asl_nr", "t1w"))
    config = preset("test", n_scales=2, input_noise="matched", input_noise_sd=4.0)
    factor, grids = plan_scales(asl.grid, zoom_between(asl.grid, nr.grid), config)
    coarse = build_pyramid(asl, t1, grids)[0]
    first, again = (noisy_coarse(coarse, config, factor, 1, 2) for _ in range(2))
    added = first.asl - coarse.asl
    np.testing.assert_array_equal(first.asl, again.asl)
    assert added.std() == pytest.approx(noise.input_noise_sd(config, factor, 1, 2), rel=0.1)
    other_seed = noisy_coarse(coarse, preset("test", input_noise="matched", input_noise_sd=4.0, seed=1), factor, 1, 2)
    assert not np.array_equal(other_seed.asl, first.asl)
    assert noisy_coarse(coarse, preset("test"), factor, 1, 2) is coarse


def test_resolving_estimates_only_when_needed():
    volume = Volume(_image(np.random.default_rng(3), 2.0), Grid(SHAPE, np.eye(4)))
    off = preset("test")
    assert noise.resolve_input_noise(off, volume, _brain()) == (off, None)
    given = preset("test", input_noise="matched", input_noise_sd=7.0)
    assert noise.resolve_input_noise(given, volume, _brain()) == (given, None)
    resolved, estimate = noise.resolve_input_noise(preset("test", input_noise="matched"), volume, _brain())
    assert resolved.input_noise_sd == estimate.sd == pytest.approx(2.0, rel=0.05)


def test_a_run_reports_the_noise_it_matched(tiny_case, tmp_path):
    out = tmp_path / "out"
    config = tmp_path / "matched.toml"
    config.write_text('input_noise = "matched"\n')
    assert main(tiny_run_args(tiny_case, out, "--config", str(config), full=True)) == 0
    report = json.loads((out / "report.json").read_text())
    estimate = report["asl"]["noise_estimate"]
    assert estimate["source"] == "brain"  # 32 x 24 x 12 LR voxels: too few beyond the margin to read a background
    assert report["config"]["input_noise_sd"] == estimate["sd"] > 0
    assert 0 < estimate["voxels"] <= np.prod(load_volume(tiny_case["asl_lr"]).grid.shape)


def test_the_docstring_examples_run():
    import doctest

    result = doctest.testmod(noise, raise_on_error=False)
    assert result.attempted > 0 and result.failed == 0
