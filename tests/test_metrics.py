"""Metrics agree with scikit-image and with the definitions in docs/metrics.md."""

from __future__ import annotations

import math

import numpy as np
import pytest
from skimage.metrics import peak_signal_noise_ratio, structural_similarity

from aslsr import metrics

SSIM_OPTIONS = dict(gaussian_weights=True, sigma=1.5, use_sample_covariance=False)


def _pair(seed: int, shape=(14, 13, 12)) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    ref = rng.gamma(2.0, 30.0, shape) - 10.0
    pred = ref + rng.normal(0.0, 8.0, shape)
    return ref, pred


def _brain(shape=(14, 13, 12)) -> np.ndarray:
    grid = np.stack(np.meshgrid(*[np.linspace(-1, 1, n) for n in shape], indexing="ij"))
    return (grid**2).sum(axis=0) < 0.7


def test_data_range_is_whole_reference() -> None:
    ref = np.zeros((3, 3, 3))
    ref[0, 0, 0], ref[2, 2, 2] = -4.0, 6.0
    assert metrics.data_range(ref) == 10.0


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_psnr_matches_skimage(seed: int) -> None:
    ref, pred = _pair(seed)
    expected = peak_signal_noise_ratio(ref, pred, data_range=ref.max() - ref.min())
    assert metrics.psnr(ref, pred) == pytest.approx(expected, rel=1e-6)


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_ssim_matches_skimage(seed: int) -> None:
    ref, pred = _pair(seed)
    expected = structural_similarity(ref, pred, data_range=ref.max() - ref.min(), **SSIM_OPTIONS)
    assert metrics.ssim(ref, pred) == pytest.approx(expected, rel=1e-6)


def test_float32_inputs_are_computed_in_float64() -> None:
    ref, pred = _pair(3)
    ref32, pred32 = ref.astype(np.float32), pred.astype(np.float32)
    r64, p64 = ref32.astype(np.float64), pred32.astype(np.float64)
    expected = structural_similarity(r64, p64, data_range=r64.max() - r64.min(), **SSIM_OPTIONS)
    assert metrics.ssim(ref32, pred32) == pytest.approx(expected, rel=1e-9)


def test_psnr_brain_is_mse_over_mask_with_whole_range() -> None:
    ref, pred = _pair(4)
    mask = _brain()
    value_range = ref.max() - ref.min()  # from the whole volume, not the mask
    mse = np.mean((ref[mask] - pred[mask]) ** 2)
    assert metrics.psnr(ref, pred, mask) == pytest.approx(10 * math.log10(value_range**2 / mse), rel=1e-9)
    assert metrics.psnr(ref, pred, mask) != pytest.approx(metrics.psnr(ref, pred), rel=1e-6)


def test_ssim_brain_is_mean_of_full_map_over_mask() -> None:
    ref, pred = _pair(5)
    mask = _brain()
    _, full = structural_similarity(ref, pred, data_range=ref.max() - ref.min(), full=True, **SSIM_OPTIONS)
    assert metrics.ssim(ref, pred, mask) == pytest.approx(full[mask].mean(), rel=1e-9)
    everywhere = np.ones(ref.shape, dtype=bool)
    assert metrics.ssim(ref, pred, everywhere) == pytest.approx(full.mean(), rel=1e-9)


def test_identical_images() -> None:
    ref, _ = _pair(6)
    assert metrics.psnr(ref, ref) == math.inf
    assert metrics.ssim(ref, ref) == pytest.approx(1.0)


def test_bad_inputs_raise() -> None:
    ref, pred = _pair(7)
    with pytest.raises(ValueError, match="shape"):
        metrics.psnr(ref, pred[:-1])
    with pytest.raises(ValueError, match="constant"):
        metrics.psnr(np.ones_like(ref), pred)
    with pytest.raises(ValueError, match="empty"):
        metrics.psnr(ref, pred, np.zeros(ref.shape, dtype=bool))
    with pytest.raises(ValueError, match="11 voxels"):
        metrics.ssim(ref[:10], pred[:10])


def test_mirror_region_definition() -> None:
    roi = np.zeros((6, 3, 3), dtype=bool)
    roi[0, 1, 1] = roi[1, 1, 1] = True  # two voxels on the low side of axis 0
    roi[3, 0, 0] = True  # a voxel whose mirror (2, 0, 0) is outside the mask
    roi[2, 2, 2] = True  # its mirror (3, 2, 2) is a plain mirror voxel
    mask = np.ones(roi.shape, dtype=bool)
    mask[2, 0, 0] = False
    expected = np.zeros(roi.shape, dtype=bool)
    expected[5, 1, 1] = expected[4, 1, 1] = expected[3, 2, 2] = True
    np.testing.assert_array_equal(metrics.mirror_region(roi, mask), expected)
    # the ROI itself is removed from the mirror, even where the flip lands on it
    symmetric = np.zeros((4, 2, 2), dtype=bool)
    symmetric[1:3] = True
    assert not metrics.mirror_region(symmetric, None).any()
    # without a mask the whole volume is inside
    expected[2, 0, 0] = True
    np.testing.assert_array_equal(metrics.mirror_region(roi), expected)


def test_lesion_contrast_known_ratio() -> None:
    pred = np.full((10, 6, 6), 50.0)
    roi = np.zeros(pred.shape, dtype=bool)
    roi[1:3, 2:4, 2:4] = True
    pred[roi] = 20.0  # hypo-perfused lesion
    pred[7:9, 2:4, 2:4] = 40.0  # mirror of the ROI along axis 0
    mask = np.ones(pred.shape, dtype=bool)
    assert metrics.lesion_contrast(pred, roi, mask) == pytest.approx(0.5)
    mask[8] = False  # half the mirror leaves the brain: still 40 on the rest
    pred[7, 2:4, 2:4] = 30.0
    assert metrics.lesion_contrast(pred, roi, mask) == pytest.approx(20.0 / 30.0)


def test_lesion_contrast_empty_mirror_raises() -> None:
    pred = np.ones((6, 4, 4))
    roi = np.zeros(pred.shape, dtype=bool)
    roi[0, 1, 1] = True
    mask = np.ones(pred.shape, dtype=bool)
    mask[5] = False
    with pytest.raises(ValueError, match="mirror region"):
        metrics.lesion_contrast(pred, roi, mask)
    with pytest.raises(ValueError, match="ROI is empty"):
        metrics.lesion_contrast(pred, np.zeros_like(roi), mask)


def test_evaluate_keys_and_values() -> None:
    ref, pred = _pair(8)
    _, other = _pair(9)
    mask = _brain()
    roi = np.zeros(ref.shape, dtype=bool)
    roi[2:4, 5:8, 5:8] = True
    ref = ref + 100.0
    preds = {"a": pred + 100.0, "b": other + 100.0}
    results = metrics.evaluate(ref, preds, mask=mask, lesion=roi)
    assert list(results) == ["a", "b"]
    for name, pred_data in preds.items():
        row = results[name]
        assert row["psnr"] == metrics.psnr(ref, pred_data)
        assert row["ssim"] == metrics.ssim(ref, pred_data)
        assert row["psnr_brain"] == metrics.psnr(ref, pred_data, mask)
        assert row["ssim_brain"] == metrics.ssim(ref, pred_data, mask)
        contrast, reference = metrics.lesion_contrast(pred_data, roi, mask), metrics.lesion_contrast(ref, roi, mask)
        assert row["lesion_contrast"] == contrast
        assert row["lesion_contrast_ref"] == reference
        assert row["lesion_contrast_error"] == pytest.approx(abs(contrast / reference - 1))
    plain = metrics.evaluate(ref, preds)
    assert set(plain["a"]) == {"psnr", "ssim"}
    assert set(metrics.evaluate(ref, preds, mask=mask)["a"]) == {"psnr", "ssim", "psnr_brain", "ssim_brain"}


def test_format_table() -> None:
    ref, pred = _pair(10)
    results = metrics.evaluate(ref, {"sr": pred, "a_much_longer_name": ref})
    text = metrics.format_table(results, "ref.nii.gz")
    lines = text.splitlines()
    assert "ref.nii.gz" in lines[0]
    assert "PSNR" in lines[1] and "SSIM" in lines[1] and "brain" not in lines[1] and "lesion" not in lines[1]
    rows = [line for line in lines if line.startswith(("sr", "a_much"))]
    assert len(rows) == 2 and len({len(row) for row in rows}) == 1  # fixed width
    assert f"{results['sr']['psnr']:.2f}" in rows[0]
    assert "inf" in rows[1]


def test_lesion_contrast_error_is_the_error_evaluate_reports():
    rng = np.random.default_rng(3)
    ref = rng.random((14, 12, 12)) + 1.0
    roi = np.zeros(ref.shape, bool)
    roi[1:4, 2:5, 2:5] = True
    pred = ref * np.where(roi, 0.8, 1.0)
    error = metrics.lesion_contrast_error(ref, pred, roi)
    assert error == pytest.approx(metrics.evaluate(ref, {"p": pred}, lesion=roi)["p"]["lesion_contrast_error"])
    assert error == pytest.approx(0.2) and metrics.lesion_contrast_error(ref, ref, roi) == 0.0
