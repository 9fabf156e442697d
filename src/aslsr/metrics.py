"""Image-quality metrics: PSNR, SSIM (whole volume and brain mask) and lesion contrast.

Plain arrays in, plain floats out, in the style of :mod:`skimage.metrics`. The definitions are the
contract in ``docs/metrics.md``, so that numbers agree with any outside check:

- R = max(ref) - min(ref) over the whole reference volume (intensity units of the reference).
- PSNR = 10 log10(R^2 / MSE) in dB, MSE over the whole volume or (brain variant) over the mask.
- SSIM = ``skimage.metrics.structural_similarity(ref, pred, data_range=R, gaussian_weights=True,
  sigma=1.5, use_sample_covariance=False)`` (dimensionless, sigma in voxels); brain variant: mean
  of the full SSIM map over the mask voxels.
- Lesion contrast = mean(pred in ROI) / mean(pred in the mirror region), dimensionless.
"""

from __future__ import annotations

import math
from typing import Mapping

import numpy as np
from skimage.metrics import structural_similarity

SSIM_SIGMA = 1.5
"""Standard deviation (voxels) of the Gaussian SSIM window."""
SSIM_TRUNCATE = 3.5
SSIM_WINDOW = 2 * int(SSIM_TRUNCATE * SSIM_SIGMA + 0.5) + 1
"""Side (voxels) of the Gaussian SSIM window; every image axis must be at least this long (11)."""


def data_range(ref: np.ndarray) -> float:
    """R = max(ref) - min(ref) over the whole reference volume (intensity units)."""
    ref = np.asarray(ref, dtype=np.float64)
    return float(ref.max() - ref.min())


def _checked(
    ref: np.ndarray, pred: np.ndarray, mask: np.ndarray | None
) -> tuple[np.ndarray, np.ndarray, np.ndarray | None, float]:
    ref = np.asarray(ref, dtype=np.float64)
    pred = np.asarray(pred, dtype=np.float64)
    if ref.shape != pred.shape:
        raise ValueError(f"reference shape {ref.shape} differs from prediction shape {pred.shape}")
    if mask is not None:
        mask = np.asarray(mask, dtype=bool)
        if mask.shape != ref.shape:
            raise ValueError(f"mask shape {mask.shape} differs from image shape {ref.shape}")
        if not mask.any():
            raise ValueError("the mask is empty")
    value_range = data_range(ref)
    if not value_range > 0:
        raise ValueError("the reference is constant (data range 0)")
    return ref, pred, mask, value_range


def psnr(ref: np.ndarray, pred: np.ndarray, mask: np.ndarray | None = None) -> float:
    """Peak signal-to-noise ratio in dB: 10 log10(R^2 / MSE).

    R is always taken from the whole reference; the MSE is over the whole volume, or over the
    mask voxels when ``mask`` is given (the "brain" variant). Identical images give ``inf``.
    """
    ref, pred, mask, value_range = _checked(ref, pred, mask)
    error = (ref - pred) ** 2
    mse = float(error[mask].mean() if mask is not None else error.mean())
    if mse == 0.0:
        return math.inf
    return float(10.0 * np.log10(value_range**2 / mse))


def ssim(ref: np.ndarray, pred: np.ndarray, mask: np.ndarray | None = None) -> float:
    """3D structural similarity (dimensionless, at most 1), computed in float64.

    Exactly skimage's ``structural_similarity`` with a Gaussian window (sigma 1.5 voxels),
    population covariance and data range R of the whole reference. With ``mask``: the mean of the
    full SSIM map over the mask voxels. Every axis must be at least :data:`SSIM_WINDOW` voxels.
    """
    ref, pred, mask, value_range = _checked(ref, pred, mask)
    if min(ref.shape) < SSIM_WINDOW:
        raise ValueError(f"SSIM needs at least {SSIM_WINDOW} voxels along every axis, got shape {ref.shape}")
    options = dict(data_range=value_range, gaussian_weights=True, sigma=SSIM_SIGMA, use_sample_covariance=False)
    if mask is None:
        return float(structural_similarity(ref, pred, **options))
    _, ssim_map = structural_similarity(ref, pred, full=True, **options)
    return float(ssim_map[mask].mean())


def mirror_region(roi: np.ndarray, mask: np.ndarray | None = None) -> np.ndarray:
    """The ROI flipped along the first voxel axis (axis 0), inside ``mask``, minus the ROI itself.

    Without a mask the whole volume counts as inside. Returns a boolean array.
    """
    roi = np.asarray(roi, dtype=bool)
    mirrored = np.flip(roi, axis=0) & ~roi
    if mask is not None:
        mask = np.asarray(mask, dtype=bool)
        if mask.shape != roi.shape:
            raise ValueError(f"mask shape {mask.shape} differs from ROI shape {roi.shape}")
        mirrored &= mask
    return mirrored


def lesion_contrast(pred: np.ndarray, roi: np.ndarray, mask: np.ndarray | None = None) -> float:
    """mean(pred in ROI) / mean(pred in :func:`mirror_region`), dimensionless.

    Raises ValueError if the ROI or its mirror region is empty, or the mirror mean is zero.
    """
    pred = np.asarray(pred, dtype=np.float64)
    roi = np.asarray(roi, dtype=bool)
    if roi.shape != pred.shape:
        raise ValueError(f"ROI shape {roi.shape} differs from image shape {pred.shape}")
    if not roi.any():
        raise ValueError("the lesion ROI is empty")
    mirror = mirror_region(roi, mask)
    if not mirror.any():
        raise ValueError(
            "the mirror region of the lesion ROI (flipped along the first voxel axis, "
            "inside the mask, minus the ROI) is empty"
        )
    mirror_mean = float(pred[mirror].mean())
    if mirror_mean == 0.0:
        raise ValueError("the mean in the mirror region of the lesion ROI is zero")
    return float(pred[roi].mean()) / mirror_mean


def lesion_contrast_error(ref: np.ndarray, pred: np.ndarray, roi: np.ndarray, mask: np.ndarray | None = None) -> float:
    """|lesion_contrast(pred) / lesion_contrast(ref) - 1|, dimensionless (0 = the true contrast)."""
    return abs(lesion_contrast(pred, roi, mask) / lesion_contrast(ref, roi, mask) - 1.0)


def evaluate(
    ref: np.ndarray, preds: Mapping[str, np.ndarray], mask: np.ndarray | None = None, lesion: np.ndarray | None = None
) -> dict[str, dict[str, float]]:
    """Metrics of every prediction against ``ref``: ``{name: {metric: value}}``.

    Keys per prediction: ``psnr`` (dB), ``ssim``; with ``mask`` also ``psnr_brain``,
    ``ssim_brain``; with ``lesion`` (a boolean ROI) also ``lesion_contrast``,
    ``lesion_contrast_ref`` (the same ratio on the reference) and ``lesion_contrast_error``
    (|lesion_contrast / lesion_contrast_ref - 1|).
    """
    ref_contrast = lesion_contrast(ref, lesion, mask) if lesion is not None else None
    results: dict[str, dict[str, float]] = {}
    for name, pred in preds.items():
        row = {"psnr": psnr(ref, pred), "ssim": ssim(ref, pred)}
        if mask is not None:
            row["psnr_brain"] = psnr(ref, pred, mask)
            row["ssim_brain"] = ssim(ref, pred, mask)
        if lesion is not None and ref_contrast is not None:
            contrast = lesion_contrast(pred, lesion, mask)
            row["lesion_contrast"] = contrast
            row["lesion_contrast_ref"] = ref_contrast
            row["lesion_contrast_error"] = abs(contrast / ref_contrast - 1.0)
        results[name] = row
    return results


_COLUMNS = (
    ("psnr", "PSNR dB", "{:.2f}"),
    ("ssim", "SSIM", "{:.4f}"),
    ("psnr_brain", "PSNR brain", "{:.2f}"),
    ("ssim_brain", "SSIM brain", "{:.4f}"),
    ("lesion_contrast", "lesion ratio", "{:.3f}"),
    ("lesion_contrast_ref", "ratio ref", "{:.3f}"),
    ("lesion_contrast_error", "ratio error", "{:.3f}"),
)


def format_table(results: Mapping[str, Mapping[str, float]], reference_name: str) -> str:
    """A fixed-width text table: one row per prediction, a column per metric present in any row."""
    columns = [c for c in _COLUMNS if any(c[0] in row for row in results.values())]
    names = list(results)
    name_width = max([len("prediction")] + [len(n) for n in names])
    widths = [max(len(title), 8) for _, title, _ in columns]
    header = "  ".join(["prediction".ljust(name_width)] + [title.rjust(w) for (_, title, _), w in zip(columns, widths)])
    lines = [f"reference: {reference_name}", header, "-" * len(header)]
    for name in names:
        row = results[name]
        cells = [_cell(row.get(key), fmt).rjust(w) for (key, _, fmt), w in zip(columns, widths)]
        lines.append("  ".join([name.ljust(name_width)] + cells))
    return "\n".join(lines)


def _cell(value: float | None, fmt: str) -> str:
    if value is None:
        return "-"
    if not math.isfinite(value):
        return str(value)
    return fmt.format(value)
