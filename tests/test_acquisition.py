"""Acquisition operators A (fine target grid -> LR ASL grid): exact adjoints, geometry, each model."""

import numpy as np
import pytest
import torch
from scipy import ndimage

from aslsr.acquisition import (
    AcquisitionModel,
    AcquisitionOperator,
    box_equivalent,
    kspace_weights,
    slice_axis,
    transfer_function,
)
from aslsr.config import preset
from aslsr.errors import InputError
from aslsr.grids import Grid, reorient, resample_average, rigid_matrix

FINE = Grid(
    (12, 10, 8), np.diag([1.5, 1.5, 2.0, 1.0]) + np.array([[0, 0, 0, -9], [0, 0, 0, 4], [0, 0, 0, 2], [0, 0, 0, 0]])
)
LR = FINE.with_voxel_size((3.0, 3.0, 4.0))
OBLIQUE = Grid(LR.shape, rigid_matrix((12, -7, 5), (1.2, -0.7, 0.4), FINE.center) @ LR.affine)
MODELS = {
    "box": AcquisitionModel(),
    "gaussian": AcquisitionModel(kind="gaussian", fwhm_mm=3.5, slice_fwhm_mm=5.0),
    "kspace": AcquisitionModel(kind="kspace", window="hann"),
    "kspace_tukey": AcquisitionModel(kind="kspace", window="tukey", tukey_alpha=0.3),
}


def _image(grid: Grid, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).random(grid.shape)


def _adjoint_gap(operator: AcquisitionOperator) -> float:
    rng = np.random.default_rng(1)
    x = torch.as_tensor(rng.standard_normal(operator.fine.shape))
    y = torch.as_tensor(rng.standard_normal(operator.lr.shape))
    left, right = float((operator(x) * y).sum()), float((x * operator.adjoint(y)).sum())
    return abs(left - right) / max(abs(left), 1e-12)


@pytest.mark.parametrize("name", sorted(MODELS))
def test_adjoint_is_exact_on_parallel_grids(name):
    operator = AcquisitionOperator(MODELS[name], FINE, LR, dtype=torch.float64)
    assert _adjoint_gap(operator) < 1e-12
    assert torch.linalg.vector_norm(operator(torch.ones(FINE.shape, dtype=torch.float64))) > 0


@pytest.mark.parametrize("name", ["box", "gaussian"])
def test_adjoint_is_exact_on_oblique_grids(name):
    operator = AcquisitionOperator(MODELS[name], FINE, OBLIQUE, dtype=torch.float64)
    assert _adjoint_gap(operator) < 1e-12


def test_box_is_resample_average_for_parallel_and_oblique_grids():
    image = _image(FINE).astype(np.float32)
    for lr in (LR, OBLIQUE, FINE.with_voxel_size((2.2, 3.1, 5.0))):
        found = AcquisitionOperator(AcquisitionModel(), FINE, lr).apply(image)
        np.testing.assert_allclose(found, resample_average(image, FINE.affine, lr), atol=1e-5)


@pytest.mark.parametrize("name", sorted(MODELS))
def test_the_fine_grid_s_voxel_order_does_not_matter(name):
    """World geometry: the same image stored permuted and flipped gives the same LR image."""
    image = _image(FINE).astype(np.float32)
    stored, grid = reorient(image, FINE, flips=(True, False, True), permutation=(2, 0, 1))
    expected = AcquisitionOperator(MODELS[name], FINE, LR).apply(image)
    np.testing.assert_allclose(AcquisitionOperator(MODELS[name], grid, LR).apply(stored), expected, atol=1e-5)


def test_constant_images_stay_constant_inside():
    ones = np.ones(FINE.shape)
    np.testing.assert_allclose(AcquisitionOperator(MODELS["box"], FINE, LR).apply(ones), 1.0, atol=1e-6)
    np.testing.assert_allclose(AcquisitionOperator(MODELS["kspace"], FINE, LR).apply(ones), 1.0, atol=1e-5)
    gaussian = AcquisitionOperator(MODELS["gaussian"], FINE, LR).apply(ones)
    assert gaussian[2:-2, 2:-2, 1:-1].min() > 0.97 and gaussian[0, 0, 0] < 0.9  # beyond the FOV counts as 0


def test_gaussian_width_follows_the_fwhm_in_mm():
    """An impulse seen through the PSF: its LR profile widens with the FWHM, slice axis separately."""
    impulse = np.zeros(FINE.shape)
    impulse[6, 5, 4] = 1.0
    narrow = AcquisitionOperator(AcquisitionModel(kind="gaussian", fwhm_mm=1.0, slice_fwhm_mm=1.0), FINE, LR)
    wide = AcquisitionOperator(AcquisitionModel(kind="gaussian", fwhm_mm=6.0, slice_fwhm_mm=1.0), FINE, LR)
    a, b = narrow.apply(impulse), wide.apply(impulse)
    assert np.count_nonzero(a > 1e-3) < np.count_nonzero(b > 1e-3)
    assert slice_axis(LR) == 2
    assert np.count_nonzero(a.sum(axis=(0, 1)) > 1e-3) == np.count_nonzero(b.sum(axis=(0, 1)) > 1e-3)


def test_kspace_truncation_keeps_the_lr_band_and_removes_the_rest():
    """A cosine inside the LR band passes unchanged at the LR centres; one above it vanishes."""
    n, step = 16, 2
    centres = step * np.arange(n // step) + (step - 1) / 2.0
    weights = kspace_weights(centres, step, n)
    j = np.arange(n)
    low, high = np.cos(2 * np.pi * 2 * j / n), np.cos(2 * np.pi * 6 * j / n)
    np.testing.assert_allclose(weights @ low, np.cos(2 * np.pi * 2 * centres / n), atol=1e-12)
    np.testing.assert_allclose(weights @ high, 0.0, atol=1e-12)
    np.testing.assert_allclose(kspace_weights(j.astype(float), 1, n), np.eye(n), atol=1e-12)
    hann = kspace_weights(centres, step, n, "hann")
    assert 0.0 < np.abs(hann @ low).max() < 0.99 * np.abs(weights @ low).max()


def test_kspace_refuses_non_integer_or_oblique_grids():
    with pytest.raises(InputError, match="whole number"):
        AcquisitionOperator(MODELS["kspace"], FINE, FINE.with_voxel_size((2.2, 3.0, 4.0)))
    with pytest.raises(InputError, match="parallel"):
        AcquisitionOperator(MODELS["kspace"], FINE, OBLIQUE)


def test_bad_models_are_one_line_input_errors():
    with pytest.raises(InputError, match="acquisition must be one of"):
        AcquisitionModel(kind="sinc")
    with pytest.raises(InputError, match="fwhm_mm"):
        AcquisitionModel(kind="gaussian", fwhm_mm=-1.0)
    with pytest.raises(InputError, match="window"):
        AcquisitionModel(kind="kspace", window="kaiser")
    with pytest.raises(InputError, match="acquisition"):
        preset("test", acquisition="psf")
    with pytest.raises(InputError, match="dtv_gamma"):
        preset("test", dtv_gamma=1.5)
    assert preset("test", acquisition="kspace", acquisition_window="tukey").acquisition_window == "tukey"


def _sampling_grids() -> tuple[Grid, Grid, np.ndarray]:
    """A fine grid, an LR grid of twice its voxel whose centres sit on every other fine centre (as a
    k-space readout samples), and a smooth random object on the fine grid."""
    fine = Grid((32, 32, 24), np.diag([1.0, 1.0, 1.5, 1.0]))
    lr_affine = np.diag([2.0, 2.0, 3.0, 1.0])
    lr = Grid((16, 16, 12), lr_affine)
    rng = np.random.default_rng(3)
    return fine, lr, ndimage.gaussian_filter(rng.standard_normal(fine.shape), 1.2, mode="wrap")


def test_box_equivalent_turns_a_kspace_readout_into_box_averages():
    """k-space samples of an object, filtered by box_equivalent, come close to its box averages."""
    fine, lr, image = _sampling_grids()
    box = AcquisitionOperator(AcquisitionModel(), fine, lr).apply(image)
    for model in (AcquisitionModel(kind="kspace"), AcquisitionModel(kind="kspace", window="tukey", tukey_alpha=0.3)):
        acquired = AcquisitionOperator(model, fine, lr).apply(image)
        inner = (slice(3, -3),) * 3
        before = np.abs(acquired - box)[inner].mean()
        after = np.abs(box_equivalent(acquired, lr, model) - box)[inner].mean()
        assert after < 0.5 * before, (model.window, before, after)


def test_box_equivalent_leaves_box_data_alone_and_never_raises_a_frequency():
    fine, lr, image = _sampling_grids()
    acquired = AcquisitionOperator(AcquisitionModel(), fine, lr).apply(image)
    np.testing.assert_array_equal(box_equivalent(acquired, lr, AcquisitionModel()), acquired)
    k = np.linspace(0.0, 0.5, 11)
    wide = AcquisitionModel(kind="gaussian", fwhm_mm=6.0, slice_fwhm_mm=9.0)  # blurrier than a voxel
    assert np.all(transfer_function(wide, lr, 0, k) <= np.sinc(k) + 1e-12)
    blurred = AcquisitionOperator(wide, fine, lr).apply(image)
    np.testing.assert_allclose(box_equivalent(blurred, lr, wide), blurred, atol=1e-5)
    sharp = box_equivalent(acquired, lr, AcquisitionModel(kind="kspace"))
    assert sharp.std() < acquired.std()  # a pure attenuation: less variance, never more
