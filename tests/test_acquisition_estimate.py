"""``acquisition = "auto"``: the k-space filter read off the background noise of data made by the phantom's
own (independent) acquisition code."""

import doctest
import json

import numpy as np
import pytest
from conftest import tiny_run_args

from aslsr.acquisition_estimate import estimate_acquisition, noise_spectrum, point_sampling_check, resolve_acquisition
from aslsr.cli import main
from aslsr.config import preset
from aslsr.grids import Grid, resample_average
from aslsr.io import Volume
from aslsr.phantom_psf import PSF, acquire, acquisition_grid, fine_grid

NR = Grid((48, 48, 40), np.diag([2.0, 2.0, 2.5, 1.0]))


def _acquired(psf: PSF, noise_sd: float = 3.0, seed: int = 0) -> tuple[Volume, np.ndarray]:
    """An ellipsoidal 'brain' (50 inside, 0 outside) acquired with ``psf`` at twice the NR voxel, and its mask."""
    fine = fine_grid(NR, 2, psf)
    centre = (np.array(fine.shape) - 1) / 2.0
    index = np.indices(fine.shape).reshape(3, -1).T
    inside = (((index - centre) / (np.array(fine.shape) * 0.22)) ** 2).sum(axis=1) <= 1.0
    truth = 50.0 * inside.reshape(fine.shape)
    lr = acquisition_grid(NR, (2, 2, 2), psf)
    data = acquire(truth, fine, lr, psf, noise_sd=noise_sd, rng=np.random.default_rng(seed))
    lr_centres = lr.index_to_world(np.indices(lr.shape).reshape(3, -1).T)
    brain = (((fine.world_to_index(lr_centres) - centre) / (np.array(fine.shape) * 0.22)) ** 2).sum(axis=1) <= 1.0
    return Volume(data, lr), brain.reshape(lr.shape)


@pytest.mark.parametrize("psf", [PSF("box"), PSF("gaussian", fwhm_voxels=1.3), PSF("kspace", window=0.0)])
def test_white_background_noise_means_box(psf):
    """Box averages, a Gaussian PSF (noise added on the LR grid) and an unwindowed k-space readout: white noise."""
    asl, brain = _acquired(psf)
    estimate = estimate_acquisition(asl, brain, min_background_voxels=500)
    assert estimate.kind == "box" and estimate.tukey_alpha is None, estimate
    assert all(0.7 < power < 1.3 for power in estimate.top_band_power), estimate


@pytest.mark.parametrize("alpha", [0.2, 0.5, 0.8])
def test_a_windowed_kspace_readout_is_seen_and_its_window_fitted(alpha):
    asl, brain = _acquired(PSF("kspace", window=alpha))
    estimate = estimate_acquisition(asl, brain, min_background_voxels=500)
    assert estimate.kind == "kspace", estimate
    assert abs(estimate.tukey_alpha - alpha) < 0.1 + 1e-6, estimate
    assert all(power < 0.5 for power in estimate.top_band_power)


def test_noise_spectrum_is_flat_for_white_noise_and_normalised_to_its_low_band():
    rng = np.random.default_rng(1)
    data = rng.standard_normal((32, 32, 32))
    everywhere = np.ones(data.shape, bool)
    k, power = noise_spectrum(data, everywhere, axis=1)
    assert k[0] == 0.0 and k[-1] == 0.5
    np.testing.assert_allclose(power[(k >= 1 / 16) & (k <= 1 / 4)].mean(), 1.0)
    assert np.all(np.abs(power[1:] - 1.0) < 0.35)


def test_too_little_or_zeroed_background_keeps_box():
    asl, brain = _acquired(PSF("kspace", window=0.5))
    assert estimate_acquisition(asl, brain, min_background_voxels=10**6).kind == "box"
    zeroed = Volume(np.where(brain, asl.data, 0.0), asl.grid)
    estimate = estimate_acquisition(zeroed, brain, min_background_voxels=500)
    assert estimate.kind == "box" and "zeroed" in estimate.reason


def test_resolve_acquisition_replaces_only_auto():
    asl, brain = _acquired(PSF("kspace", window=0.5))
    stated = preset("fast", acquisition="box")
    assert resolve_acquisition(stated, asl, brain) == (stated, None)
    resolved, estimate = resolve_acquisition(preset("fast"), asl, brain)
    assert preset("fast").acquisition == "auto"
    assert (resolved.acquisition, resolved.acquisition_window) == ("kspace", "tukey")
    assert resolved.acquisition_tukey_alpha == estimate.tukey_alpha
    white, _ = _acquired(PSF("box"))
    assert resolve_acquisition(preset("fast"), white, brain)[0].acquisition == "box"


def test_docstring_example():
    from aslsr import acquisition_estimate

    result = doctest.testmod(acquisition_estimate, raise_on_error=False)
    assert result.failed == 0 and result.attempted >= 1


def test_a_run_resolves_auto_and_reports_the_estimate(tiny_case, tmp_path):
    """``--acquisition auto`` reaches report.json as a concrete model plus the evidence it was read from."""
    out = tmp_path / "out"
    assert main(tiny_run_args(tiny_case, out, "--method", "dtv", "--acquisition", "auto", full=True)) == 0
    report = json.loads((out / "report.json").read_text())
    estimate = report["asl"]["acquisition_estimate"]
    assert estimate["kind"] == report["config"]["acquisition"] == "box"  # the tiny phantom: box averages
    assert estimate["reason"]


def _structured(psf: PSF, seed: int = 0) -> tuple[Volume, Volume, np.ndarray]:
    """An M0 acquired with ``psf`` from a fine object with sharp, irregular 'tissue' edges inside an ellipsoid, the
    T1 of the same object on the fine grid (1 mm, another contrast), and the brain mask on the M0's grid."""
    from scipy import ndimage

    nr = Grid((32, 32, 24), NR.affine)
    fine = fine_grid(nr, 2, psf)
    rng = np.random.default_rng(seed)
    tissue = ndimage.gaussian_filter(rng.standard_normal(fine.shape), 1.5) > 0  # blobs a few mm across
    centre = (np.array(fine.shape) - 1) / 2.0
    inside = (((np.indices(fine.shape).T - centre) / (np.array(fine.shape) * 0.3)) ** 2).sum(axis=-1).T <= 1.0
    proton_density = inside * (60.0 + 40.0 * tissue)
    lr = acquisition_grid(nr, (2, 2, 2), psf)
    m0 = Volume(acquire(proton_density, fine, lr, psf, noise_sd=1.0, rng=rng), lr)
    t1 = Volume((inside * (80.0 - 30.0 * tissue)).astype(np.float32), fine)
    brain = resample_average(inside.astype(np.float32), fine.affine, lr) > 0.5
    return m0, t1, brain


@pytest.mark.parametrize(
    "psf, point",
    [
        (PSF("gaussian", fwhm_voxels=0.25, slice_thickness_voxels=0.4), True),  # samples at the voxel centres
        (PSF("box"), False),
        (PSF("gaussian", fwhm_voxels=1.3), False),
        (PSF("kspace", window=0.0), False),
    ],
)
def test_the_m0_tells_point_samples_from_voxel_averages(psf, point):
    """Through the point model, averaged voxels are predicted far worse (>= 1.4x the box model's error in this
    small object); point samples about as well or better (0.92-1.01 over four objects)."""
    m0, t1, brain = _structured(psf)
    check = point_sampling_check(m0, t1, brain, iterations=150)
    assert check.ratio < 1.1 if point else check.ratio > 1.3, check
    assert check.held_out_voxels > 10 and check.fwhm_mm == pytest.approx(np.mean(t1.grid.voxel_size))


def test_auto_models_point_samples_as_a_psf_of_the_t1_voxel_only_with_an_m0_on_the_asl_grid():
    m0, t1, brain = _structured(PSF("gaussian", fwhm_voxels=0.25, slice_thickness_voxels=0.4))
    asl = Volume(m0.data * 0.01, m0.grid)  # white noise only where the M0 has it: no k-space filter to read
    lenient = preset("fast", acquisition_point_below=1.1)  # this small object's point samples: ratio 0.94
    config, estimate = resolve_acquisition(lenient, asl, brain, m0=m0, t1=t1)
    assert estimate.kind == "point" and estimate.point_check["ratio"] < 1.1, estimate
    fwhm = float(np.mean(t1.grid.voxel_size))
    psf = (config.acquisition, config.acquisition_fwhm_mm, config.acquisition_slice_fwhm_mm)
    assert psf == ("gaussian", fwhm, fwhm)
    assert resolve_acquisition(lenient, asl, brain)[0].acquisition == "box"  # no M0: not asked
    off = preset("fast", acquisition_point_below=0.0)
    assert resolve_acquisition(off, asl, brain, m0=m0, t1=t1)[0].acquisition == "box"
    elsewhere = Volume(m0.data, m0.grid.with_voxel_size(np.array(m0.grid.voxel_size) * 1.01))
    config, estimate = resolve_acquisition(lenient, asl, brain, m0=elsewhere, t1=t1)
    assert config.acquisition == "box" and estimate.point_check is None
    box_m0, _, _ = _structured(PSF("box"))
    config, estimate = resolve_acquisition(lenient, Volume(box_m0.data * 0.01, box_m0.grid), brain, m0=box_m0, t1=t1)
    assert config.acquisition == "box" and estimate.kind == "box" and estimate.point_check["ratio"] > 1.3
