"""``aslsr evaluate``: PSNR / SSIM (whole and brain) and lesion contrast of predictions vs a reference.

Prints a table; with ``--json OUT.json`` also writes (atomically, and only when everything worked)
``{"reference": path, "mask": path|null, "results": {"<pred file stem>": {...}}}``. Non-finite
numbers (PSNR of an exact copy is infinite) are written as ``null`` so the file stays valid JSON.
"""

from __future__ import annotations

import argparse

from .. import metrics, scoring
from ..io import save_json
from ..outputs import check_output
from ..staging import StagedFile


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


def run(args: argparse.Namespace) -> int:
    """Check the output, score (:func:`aslsr.scoring.evaluate_files`), print the table, write ``--json``."""
    if args.json:
        check_output(
            args.json, kind="file", overwrite=args.overwrite, inputs=[args.ref, args.mask, args.lesion, *args.preds]
        )
    results = scoring.evaluate_files(
        args.ref, args.preds, mask_path=args.mask, lesion_path=args.lesion, nan_to_zero=args.nan_to_zero
    )
    print(metrics.format_table(results, str(args.ref)))
    if args.json:
        with StagedFile(args.json, suffix=".json") as temporary:
            save_json(temporary, scoring.results_payload(args.ref, args.mask, results))
    return 0
