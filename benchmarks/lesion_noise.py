"""How much of a lesion-contrast comparison is the noise? Interpolation of the noisy and of the noise-free LR.

For every simulated phantom case of a ``benchmarks/panel.py`` output folder that has lesion ROIs, it prints
the worst-lesion contrast error |ratio / ratio_ref - 1| (docs/metrics.md) of linear and spline interpolation
applied to the case's LR ASL (``asl_lr``) and to the same LR without noise (``asl_lr_clean``), against the
noise-free reference on the NR grid. The difference between the two is what one noise realisation does
to the metric; a gap between methods of that size is not a difference between methods.

    python benchmarks/lesion_noise.py PANEL_OUT
"""

from __future__ import annotations

import sys
from pathlib import Path

from stability import lesion_roi_paths

from aslsr import metrics
from aslsr.baselines import interpolate
from aslsr.io import load_mask, load_volume


def main(argv: list[str]) -> int:
    print("| case | linear, noisy LR | linear, noise-free LR | spline, noisy LR | spline, noise-free LR |")
    print("|---|---|---|---|---|")
    for case in sorted(Path(argv[0]).glob("*/seed*/phantom")):
        rois_paths = lesion_roi_paths(case)
        if not rois_paths or not (case / "asl_lr_clean.nii.gz").exists():
            continue
        reference = load_volume(case / "ref_clean.nii.gz")
        brain = load_mask(case / "mask.nii.gz", reference.grid)
        rois = [load_mask(p, reference.grid) for p in rois_paths]
        cells = []
        for method in ("linear", "spline"):
            for name in ("asl_lr", "asl_lr_clean"):
                image = interpolate(load_volume(case / f"{name}.nii.gz"), reference.grid, method)
                error = max(metrics.lesion_contrast_error(reference.data, image, roi, brain) for roi in rois)
                cells.append(f"{100 * error:.2f} %")
        print(f"| {case.parent.parent.name} (seed {case.parent.name[4:]}) | " + " | ".join(cells) + " |")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
