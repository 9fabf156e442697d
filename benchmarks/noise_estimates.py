"""How well `aslsr.noise.estimate_noise` reads the LR's noise: from the background, and from the brain alone.

For every CASE folder (a prepared panel case with ``asl_lr.nii.gz``, or a phantom folder, whose ``asl_nr.nii.gz`` is
read, and ``mask.nii.gz`` on the reference grid) it prints the noise sd read off the background, the sd read inside
the brain with the background masked away (what a skull-stripped map gets), and the median of the finest Haar
detail over the whole brain (the estimator the regions' lower quartile replaced). The images are read as they are
(no box equivalent): for white-noise variants the background value is the truth to compare the brain's with.

    python benchmarks/noise_estimates.py CASE [CASE ...]
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

from aslsr import noise
from aslsr.grids import resample_average
from aslsr.io import Volume, load_volume


def estimates(case: Path) -> dict[str, float]:
    """Background and brain-only noise sd of the case's LR (or a phantom's NR), in its units."""
    asl = load_volume(case / ("asl_nr.nii.gz" if (case / "asl_nr.nii.gz").exists() else "asl_lr.nii.gz"))
    mask = load_volume(case / "mask.nii.gz")
    brain = resample_average(mask.data.astype(np.float32), mask.affine, asl.grid) > 0.5
    data = np.asarray(asl.data, dtype=np.float64)
    masked = Volume(data * brain, asl.grid)
    details = noise._pairwise(data, np.subtract) / np.sqrt(8.0)
    inside = noise._pairwise(brain, np.logical_and)
    return {
        "background": noise.estimate_noise(asl, brain).sd,
        "brain": noise.estimate_noise(masked, brain).sd,
        "whole_brain_median": float(np.median(np.abs(details[inside]))) / 0.6745,
    }


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("cases", nargs="+", type=Path)
    args = parser.parse_args(argv)
    print("| case | background | brain (regions, lower quartile) | brain (whole-brain median) |")
    print("|---|---|---|---|")
    for case in args.cases:
        row = estimates(case)
        print(f"| {case.name} | {row['background']:.3f} | {row['brain']:.3f} | {row['whole_brain_median']:.3f} |")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
