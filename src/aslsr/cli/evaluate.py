"""``aslsr evaluate``: PSNR / SSIM (whole and brain) and lesion contrast of predictions vs a reference.

Prints a table; with ``--json OUT.json`` also writes (atomically, and only when everything worked)
``{"reference": path, "mask": path|null, "results": {"<pred file stem>": {...}}}``. Non-finite
numbers (PSNR of an exact copy is infinite) are written as ``null`` so the file stays valid JSON.
"""

from __future__ import annotations

import argparse
import math
from pathlib import Path

import numpy as np
from nibabel.orientations import aff2axcodes

from .. import metrics
from ..errors import InputError
from ..grids import Grid
from ..io import load_mask, load_volume, save_json
from ..outputs import StagedFile, check_output


def add_parser(subparsers: argparse._SubParsersAction) -> argparse.ArgumentParser:
    """Register ``evaluate`` and its arguments; sets ``func``."""
    parser = subparsers.add_parser(
        "evaluate",
        help="compare predictions with a reference image (PSNR, SSIM, lesion contrast)",
        description="Compare one or more predicted images with a reference on the same grid: PSNR (dB) "
        "and 3D SSIM over the whole volume and, with --mask, over the brain; with --lesion, "
        "the lesion-to-mirror contrast ratio and its error relative to the reference.",
    )
    parser.add_argument("--ref", required=True, metavar="REF.nii.gz", help="reference (ground truth) image")
    parser.add_argument("--mask", metavar="MASK.nii.gz", help="brain mask on the reference grid (voxels > 0.5)")
    parser.add_argument(
        "--lesion",
        metavar="ROI.nii.gz",
        help="lesion ROI on the reference grid; its mirror is the ROI flipped along the "
        "first voxel axis, inside the mask, minus the ROI",
    )
    parser.add_argument("--json", metavar="OUT.json", help="also write the results as JSON")
    parser.add_argument("--overwrite", action="store_true", help="replace an existing --json file")
    parser.add_argument(
        "--nan-to-zero",
        action="store_true",
        help="accept NaN/infinite voxels in the reference and predictions as 0 (default: error)",
    )
    parser.add_argument("preds", nargs="+", metavar="PRED.nii.gz", help="predicted images on the reference grid")
    parser.set_defaults(func=run)
    return parser


def stem(path: str | Path) -> str:
    """File name without ``.nii.gz`` / ``.nii`` (any case)."""
    name = Path(path).name
    for suffix in (".nii.gz", ".nii"):
        if name.lower().endswith(suffix):
            return name[: -len(suffix)]
    return name


def run(args: argparse.Namespace) -> int:
    """Load, check, compute, print the table and (with ``--json``) write the results."""
    if args.json:
        check_output(
            args.json, kind="file", overwrite=args.overwrite, inputs=[args.ref, args.mask, args.lesion, *args.preds]
        )
    names = [stem(path) for path in args.preds]
    for index, name in enumerate(names):
        if name in names[:index]:
            raise InputError(
                f"two predictions have the file stem {name!r}; the results are keyed by "
                "stem, so give them different file names",
                args.preds[index],
            )
    ref = load_volume(args.ref, allow_nonfinite=args.nan_to_zero)
    if min(ref.grid.shape) < metrics.SSIM_WINDOW:
        raise InputError(
            f"SSIM needs at least {metrics.SSIM_WINDOW} voxels along every axis, got shape {ref.grid.shape}", args.ref
        )
    mask = load_mask(args.mask, ref.grid) if args.mask else None
    lesion = _load_lesion(args.lesion, ref.grid, mask) if args.lesion else None
    if lesion is not None:
        _lesion_ratio(ref.data, lesion, mask, args.ref)
    preds = {}
    for name, path in zip(names, args.preds):
        pred = load_volume(path, allow_constant=True, allow_nonfinite=args.nan_to_zero)
        if pred.grid != ref.grid:
            raise InputError(
                f"is on grid {_describe(pred.grid)}, not on the reference grid "
                f"{_describe(ref.grid)}; resample it onto the reference first",
                path,
            )
        if lesion is not None:
            _lesion_ratio(pred.data, lesion, mask, path)
        preds[name] = pred.data
    results = metrics.evaluate(ref.data, preds, mask=mask, lesion=lesion)
    print(metrics.format_table(results, str(args.ref)))
    if args.json:
        payload = {
            "reference": str(args.ref),
            "mask": None if args.mask is None else str(args.mask),
            "results": {
                name: {key: _finite_or_none(value) for key, value in row.items()} for name, row in results.items()
            },
        }
        with StagedFile(args.json, suffix=".json") as temporary:
            save_json(temporary, payload)
    return 0


def _load_lesion(path: str, grid: Grid, mask: np.ndarray | None) -> np.ndarray:
    roi = load_volume(path, allow_constant=True)
    if roi.grid != grid:
        raise InputError(
            f"the lesion ROI is on grid {_describe(roi.grid)}, not on the reference grid {_describe(grid)}", path
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


def _lesion_ratio(data: np.ndarray, roi: np.ndarray, mask: np.ndarray | None, path: str) -> float:
    try:
        return metrics.lesion_contrast(data, roi, mask)
    except ValueError as error:
        raise InputError(f"no lesion contrast: {error}", path) from None


def _describe(grid: Grid) -> str:
    vs = ", ".join(f"{v:.4g}" for v in grid.voxel_size)
    origin = ", ".join(f"{v:.2f}" for v in grid.affine[:3, 3])
    axes = "".join(aff2axcodes(grid.affine))
    return f"shape {grid.shape}, voxel size ({vs}) mm, {axes}, origin ({origin}) mm"


def _finite_or_none(value: float) -> float | None:
    value = float(value)
    return value if math.isfinite(value) else None
