"""Tried, not adopted: cut the run's M0 brain mask by the T1's brain mask (grown by a margin, within the T1's field
of view), to keep a scalp that the M0 mask took out of it. Masks only, no runs: per case, the mask a run makes now
(``masking.derive_mask``) and how many of its voxels the cut would drop at margins of 4 and 6 mm; last column: the
T1 mask's voxels. Registration as a run makes it (seed 0).

    python mask_intersection_check.py CASE [CASE ...]   (cases of ``aslsr simulate``: asl_lr, m0_lr, t1w, asl_nr)
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np

from aslsr import masking, registration
from aslsr.grids import Grid, resample_average
from aslsr.inputs import TargetSpec, load_inputs
from aslsr.io import Volume
from aslsr.masking import brain_mask_from_image, brain_mask_from_t1, dilate
from aslsr.pipeline import register_t1


def cut_by_t1(m0: Volume, t1: Volume, grid: Grid, margin_mm: float) -> tuple[np.ndarray, int]:
    from_m0 = brain_mask_from_image(Volume(resample_average(m0.data, m0.affine, grid), grid))
    from_t1 = brain_mask_from_t1(resample_average(t1.data, t1.affine, grid), grid.voxel_size)
    seen = resample_average(np.ones(t1.data.shape, np.float32), t1.affine, grid) > 0.5
    if not from_t1.any():
        return from_m0, 0
    return from_m0 & (dilate(from_t1, margin_mm, grid.voxel_size) | ~seen), int(from_t1.sum())


def main(cases: list[Path]) -> None:
    for case in cases:
        files = [case / name for name in ("asl_lr.nii.gz", "t1w.nii.gz", "m0_lr.nii.gz")]
        inputs = load_inputs(*files, TargetSpec(like=case / "asl_nr.nii.gz"))
        t1 = registration.apply_registration(inputs.t1, register_t1(inputs.fixed, inputs.t1, register=True, seed=0))
        now = masking.derive_mask(inputs.m0, t1, inputs.asl.grid)
        row: list = [str(case), int(now.sum())]
        for margin in (4.0, 6.0):
            cut, t1_voxels = cut_by_t1(inputs.m0, t1, inputs.asl.grid, margin)
            row += [margin, int((now & ~cut).sum())]
        print(*row, t1_voxels, flush=True)


if __name__ == "__main__":
    main([Path(p) for p in sys.argv[1:]])
