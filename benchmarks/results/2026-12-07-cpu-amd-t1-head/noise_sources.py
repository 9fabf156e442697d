"""The LR's noise read off the background and inside the brain, on panel variants, stress cases and edited cases.

For each case folder (a simulated phantom with ``asl_lr.nii.gz``, ``asl_lr_clean.nii.gz`` and ``mask.nii.gz``)
prints: the sd of the noise actually added in the brain (asl_lr - asl_lr_clean, RMS over the brain; for k-space
cases that of the raw LR, not of its box equivalent), the background and the brain readings of ``aslsr.noise``
(``background_noise``, ``brain_noise``), both on the LR's box equivalent under the acquisition the case was
simulated with (what a run sees when `auto` reads it right), their ratio brain / background, and which of the two
``estimate_noise`` returns.

    python noise_sources.py CASE [CASE ...]
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np

from aslsr import noise
from aslsr.acquisition import as_box_acquisition
from aslsr.config import preset, replace
from aslsr.grids import resample_average
from aslsr.io import load_volume


def acquisition_of(case: Path) -> dict:
    """The config fields of the case's simulated acquisition (box when the phantom says nothing else)."""
    if not (case / "phantom.json").is_file():  # the built-in phantom: box averages
        return {"acquisition": "box"}
    psf = json.loads((case / "phantom.json").read_text())["spec"]["psf"]
    if psf["kind"] == "kspace":
        return {"acquisition": "kspace", "acquisition_window": "tukey", "acquisition_tukey_alpha": float(psf["window"])}
    return {"acquisition": "box"}


def row(case: Path) -> str:
    asl, mask = load_volume(case / "asl_lr.nii.gz"), load_volume(case / "mask.nii.gz")
    brain = resample_average(mask.data.astype(np.float32), mask.affine, asl.grid) > 0.5
    true_sd = float("nan")
    if (case / "asl_lr_clean.nii.gz").is_file():  # the built-in phantom has none
        clean = load_volume(case / "asl_lr_clean.nii.gz")
        true_sd = float(np.sqrt(np.mean((asl.data - clean.data)[brain] ** 2)))
    config = replace(preset("fast"), **acquisition_of(case))
    box = as_box_acquisition(asl, config)
    background, inside = noise.background_noise(box, brain), noise.brain_noise(box, brain)
    chosen = noise.estimate_noise(box, brain)
    return (
        f"| {case.parent.name}/{case.name} | {config.acquisition} | {true_sd:.2f} | {background.sd:.2f} "
        f"| {inside.sd:.2f} | {inside.sd / background.sd:.2f} | {chosen.source} |"
    )


if __name__ == "__main__":
    print(
        "| case | acquisition read as | noise added to the LR (brain RMS) | background reading | brain reading "
        "| brain / background | estimate_noise takes |"
    )
    print("|---|---|---|---|---|---|---|")
    for path in sys.argv[1:]:
        print(row(Path(path)), flush=True)
