"""Scoring image files: predictions against a reference (``aslsr evaluate``), a run against the phantom.

:mod:`aslsr.metrics` computes the numbers on arrays; this module loads and checks the NIfTI files
first, so that a bad file gives one :class:`~aslsr.errors.InputError` naming it: every prediction,
mask and lesion ROI must be on the reference's grid (same shape and affine, voxel axes i, j, k), and
the lesion ROI (voxels > 0.5) and its mirror region (flipped along the first voxel axis, inside the
mask, minus the ROI) must not be empty.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any, Mapping, Sequence

import numpy as np
from nibabel.orientations import aff2axcodes

from . import metrics
from .errors import InputError
from .grids import Grid
from .io import load_mask, load_volume

#: The phantom's references a run is scored against: (role in the phantom's files, label).
REFERENCES = (("ref_hr", "HR (44 min)"), ("ref_clean", "noise-free"), ("asl_nr", "NR (5.5 min)"))
#: The images of a run folder scored by default (``NAME.nii.gz``): the interpolations and the SR.
PREDICTIONS = ("nearest", "linear", "spline", "sr")

Scores = dict[str, dict[str, float]]


def stem(path: str | Path) -> str:
    """File name without ``.nii.gz`` / ``.nii`` (any case)."""
    name = Path(path).name
    for suffix in (".nii.gz", ".nii"):
        if name.lower().endswith(suffix):
            return name[: -len(suffix)]
    return name


def evaluate_files(
    ref_path: str | Path,
    pred_paths: Sequence[str | Path],
    *,
    mask_path: str | Path | None = None,
    lesion_path: str | Path | None = None,
    nan_to_zero: bool = False,
) -> Scores:
    """:func:`aslsr.metrics.evaluate` of NIfTI predictions against a NIfTI reference, keyed by file stem.

    Everything is loaded and checked before any metric is computed; ``nan_to_zero`` accepts
    NaN/infinite voxels in the reference and predictions as 0. Raises :class:`InputError` naming the
    file for two predictions with the same stem, a reference too small for SSIM, a file off the
    reference grid, an empty lesion ROI or mirror region, or an image without a lesion contrast.
    """
    names = [stem(path) for path in pred_paths]
    for index, name in enumerate(names):
        if name in names[:index]:
            raise InputError(
                f"two predictions have the file stem {name!r}; the results are keyed by "
                "stem, so give them different file names",
                pred_paths[index],
            )
    ref = load_volume(ref_path, allow_nonfinite=nan_to_zero)
    if min(ref.grid.shape) < metrics.SSIM_WINDOW:
        raise InputError(
            f"SSIM needs at least {metrics.SSIM_WINDOW} voxels along every axis, got shape {ref.grid.shape}", ref_path
        )
    mask = load_mask(mask_path, ref.grid) if mask_path else None
    lesion = load_lesion(lesion_path, ref.grid, mask) if lesion_path else None
    if lesion is not None:
        _lesion_ratio(ref.data, lesion, mask, ref_path)
    preds = {}
    for name, path in zip(names, pred_paths):
        pred = load_volume(path, allow_constant=True, allow_nonfinite=nan_to_zero)
        if pred.grid != ref.grid:
            raise InputError(
                f"is on grid {describe_grid(pred.grid)}, not on the reference grid "
                f"{describe_grid(ref.grid)}; resample it onto the reference first",
                path,
            )
        if lesion is not None:
            _lesion_ratio(pred.data, lesion, mask, path)
        preds[name] = pred.data
    return metrics.evaluate(ref.data, preds, mask=mask, lesion=lesion)


def results_payload(ref_path: str | Path, mask_path: str | Path | None, results: Scores) -> dict[str, Any]:
    """The JSON of ``aslsr evaluate --json``: non-finite numbers (PSNR of an exact copy) become ``None``."""
    return {
        "reference": str(ref_path),
        "mask": None if mask_path is None else str(mask_path),
        "results": {name: {key: _finite_or_none(value) for key, value in row.items()} for name, row in results.items()},
    }


def load_lesion(path: str | Path, grid: Grid, mask: np.ndarray | None) -> np.ndarray:
    """The lesion ROI (voxels > 0.5) on ``grid`` as a boolean array; neither it nor its mirror may be empty."""
    roi = load_volume(path, allow_constant=True)
    if roi.grid != grid:
        raise InputError(
            f"the lesion ROI is on grid {describe_grid(roi.grid)}, not on the reference grid {describe_grid(grid)}",
            path,
        )
    roi_bool = roi.data > 0.5
    if not roi_bool.any():
        raise InputError("the lesion ROI is empty (no voxel > 0.5)", path)
    if not metrics.mirror_region(roi_bool, mask).any():
        raise InputError(
            "the mirror region of the lesion ROI (flipped along the first voxel axis, "
            "inside the mask, minus the ROI) is empty",
            path,
        )
    return roi_bool


def _lesion_ratio(data: np.ndarray, roi: np.ndarray, mask: np.ndarray | None, path: str | Path) -> float:
    try:
        return metrics.lesion_contrast(data, roi, mask)
    except ValueError as error:
        raise InputError(f"no lesion contrast: {error}", path) from None


def describe_grid(grid: Grid) -> str:
    """Shape, voxel size (mm), axis codes and origin (mm) of a grid, for messages."""
    vs = ", ".join(f"{v:.4g}" for v in grid.voxel_size)
    origin = ", ".join(f"{v:.2f}" for v in grid.affine[:3, 3])
    axes = "".join(aff2axcodes(grid.affine))
    return f"shape {grid.shape}, voxel size ({vs}) mm, {axes}, origin ({origin}) mm"


def _finite_or_none(value: float) -> float | None:
    value = float(value)
    return value if math.isfinite(value) else None


def score_run(
    run_dir: str | Path, files: Mapping[str, str | Path], predictions: Sequence[str] = PREDICTIONS
) -> dict[str, Scores]:
    """A run's outputs against each of the phantom's :data:`REFERENCES`: ``{role: {prediction: metrics}}``.

    ``files``: the phantom's files by role (``simulate(...)["files"][role]["path"]``); scored in its brain
    mask and, when it has one, its lesion ROI, on the NR grid. ``predictions``: ``NAME.nii.gz`` files of
    ``run_dir``.
    """
    run_dir = Path(run_dir)
    mask = load_mask(files["mask"], load_volume(files["asl_nr"]).grid)
    lesion = load_mask(files["lesion"], load_volume(files["asl_nr"]).grid) if "lesion" in files else None
    preds = {name: load_volume(run_dir / f"{name}.nii.gz", allow_constant=True).data for name in predictions}
    scores = {}
    for role, _ in REFERENCES:
        reference = load_volume(files[role]).data
        scores[role] = metrics.evaluate(reference, preds, mask=mask, lesion=lesion)
    return scores


def format_scores(scores: Mapping[str, Scores]) -> str:
    """One :func:`aslsr.metrics.format_table` per reference of :func:`score_run`, each under a heading."""
    labels = dict(REFERENCES)
    return "".join(
        f"\nagainst {labels[role]} ({role}):\n{metrics.format_table(results, role)}\n"
        for role, results in scores.items()
    )
