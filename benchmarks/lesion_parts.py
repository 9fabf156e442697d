"""Where a lesion-contrast error comes from: the lesion's own mean, or the mirror region it is divided by.

The lesion contrast (docs/metrics.md) is mean(image in the lesion ROI) / mean(image in its mirror region),
so its error splits exactly into two relative errors against the noise-free reference::

    ratio / ratio_ref - 1 = (1 + lesion error) / (1 + mirror error) - 1

A method that keeps the lesion's value right can still show a contrast error when the healthy tissue it is
compared with comes out brighter or darker (noise in the LR that every method reproduces), and one whose
lesion and mirror are wrong in the same direction can look right. For every lesion ROI of CASE
(``lesion*.nii.gz`` on its reference grid, with ``ref_clean`` and ``mask``) and every image found in each RUN
folder (``linear``, ``spline``, ``dtv``, ``sr`` .nii.gz, on the same grid) it prints the two relative errors
and the signed contrast error, in percent.

    python benchmarks/lesion_parts.py CASE RUN [RUN ...]
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np
from stability import lesion_roi_paths

from aslsr import metrics
from aslsr.io import load_mask, load_volume

IMAGES = ("linear", "spline", "dtv", "sr")


def lesion_parts(reference: np.ndarray, image: np.ndarray, roi: np.ndarray, mask: np.ndarray) -> dict[str, float]:
    """Relative errors (%) of ``image`` against ``reference``: the lesion ROI's mean (``lesion``), the mirror
    region's mean (``mirror``) and the lesion contrast (``contrast``, signed: negative = lower ratio)."""
    reference, image = np.asarray(reference, dtype=np.float64), np.asarray(image, dtype=np.float64)
    mirror = metrics.mirror_region(roi, mask)

    def relative(region: np.ndarray) -> float:
        return 100 * (float(image[region].mean()) / float(reference[region].mean()) - 1)

    contrast = metrics.lesion_contrast(image, roi, mask) / metrics.lesion_contrast(reference, roi, mask) - 1
    return {"lesion": relative(roi), "mirror": relative(mirror), "contrast": 100 * contrast}


def table(case: Path, runs: list[Path]) -> list[str]:
    """Markdown rows: one per run folder, image and lesion ROI of ``case``."""
    reference = load_volume(case / "ref_clean.nii.gz")
    brain = load_mask(case / "mask.nii.gz", reference.grid)
    rois = {path.name.removesuffix(".nii.gz"): load_mask(path, reference.grid) for path in lesion_roi_paths(case)}
    if not rois:
        raise SystemExit(f"{case}: no lesion ROI (lesion*.nii.gz)")
    lines = [
        "| run | image | lesion ROI | lesion mean | mirror mean | contrast |",
        "|---|---|---|---|---|---|",
    ]
    for run in runs:
        for name in IMAGES:
            path = run / f"{name}.nii.gz"
            if not path.is_file():
                continue
            image = load_volume(path)
            if image.grid.shape != reference.grid.shape:
                raise SystemExit(f"{path}: shape {image.grid.shape}, not the reference's {reference.grid.shape}")
            for roi_name, roi in rois.items():
                parts = lesion_parts(reference.data, image.data, roi, brain)
                lines.append(
                    f"| {run} | {name} | {roi_name} | {parts['lesion']:+.2f} % | {parts['mirror']:+.2f} % "
                    f"| {parts['contrast']:+.2f} % |"
                )
    return lines


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("case", type=Path, help="folder with ref_clean, mask and lesion*.nii.gz")
    parser.add_argument("runs", type=Path, nargs="+", help="run folders with linear/spline/dtv/sr .nii.gz")
    args = parser.parse_args(argv)
    print("\n".join(table(args.case, args.runs)))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
