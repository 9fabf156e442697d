"""What ``acquisition = "auto"`` reads off each case: the background noise's top-band power per axis and the choice.

A *case* is a folder as for benchmarks/stability.py (``asl_lr``, ``m0_lr``, ``t1`` already on the NR grid).
The brain mask is derived as a run derives it (from the M0), and again from the ASL alone.

    python benchmarks/acquisition_estimates.py CASES_DIR [CASES_DIR ...]
"""

from __future__ import annotations

import sys
from pathlib import Path

from aslsr.acquisition_estimate import estimate_acquisition
from aslsr.io import load_volume
from aslsr.masking import brain_mask_from_image, derive_mask


def row(case: Path) -> str:
    asl = load_volume(case / "asl_lr.nii.gz")
    mask = derive_mask(load_volume(case / "m0_lr.nii.gz"), load_volume(case / "t1.nii.gz"), asl.grid)
    estimates = [estimate_acquisition(asl, brain) for brain in (mask, brain_mask_from_image(asl))]
    power = " / ".join(f"{p:.2f}" for p in estimates[0].top_band_power) or "-"
    picks = [e.kind + (f", Tukey {e.tukey_alpha:g}" if e.tukey_alpha else "") for e in estimates]
    return f"| {case.name} | {power} | {estimates[0].background_voxels} | {picks[0]} | {picks[1]} |"


def main(argv: list[str]) -> int:
    cases = sorted(p for folder in argv for p in Path(folder).iterdir() if (p / "asl_lr.nii.gz").exists())
    print("| case | top-band power (i / j / k) | background voxels | auto picks | from the ASL's own mask |")
    print("|---|---|---|---|---|")
    for case in cases:
        print(row(case))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
