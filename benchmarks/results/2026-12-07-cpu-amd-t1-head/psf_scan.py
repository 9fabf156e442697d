"""The M0 point-sampling check with more than two models: can held-out M0 voxels tell a Gaussian PSF's width?

`auto`'s check (``acquisition_estimate.point_sampling_check``) compares a box average with a Gaussian of the T1's
voxel size. Here the same held-out prediction error (dTV of the M0 on the check grid, T1-guided, 10 % of the brain
voxels left out) is read for a box and for Gaussians of in-plane FWHM f x the ASL's in-plane voxel (slice FWHM f x the
slice spacing), f in FRACTIONS; each error is printed relative to the box's. The T1 is the phantom's aligned one
(``t1w_aligned``), the M0 and mask are on the LR grid (``m0_lr``, ``mask_lr``).

    python psf_scan.py CASE [CASE ...]
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import torch

from aslsr.acquisition import AcquisitionModel, AcquisitionOperator
from aslsr.acquisition_estimate import _Restricted, check_grid
from aslsr.dtv import DTVSettings, reconstruct
from aslsr.grids import resample, resample_average
from aslsr.io import load_volume

FRACTIONS = (0.27, 0.4, 0.55, 0.7, 0.86, 1.2)


def scan(case: Path) -> str:
    m0, t1 = load_volume(case / "m0_lr.nii.gz"), load_volume(case / "t1w_aligned.nii.gz")
    mask = load_volume(case / "mask_lr.nii.gz").data > 0
    fine = check_grid(m0.grid, t1.grid)
    t1_fine = resample_average(t1.data, t1.affine, fine)
    held = mask & (np.random.default_rng(0).random(m0.grid.shape) < 0.1)
    keep = torch.as_tensor((~held).astype(np.float32))
    initial = resample(m0.data, m0.affine, fine, order=1)
    voxel = np.asarray(m0.grid.voxel_size)
    models = [AcquisitionModel("box")] + [
        AcquisitionModel("gaussian", fwhm_mm=f * float(voxel[:2].mean()), slice_fwhm_mm=f * float(voxel[2]))
        for f in FRACTIONS
    ]
    errors = []
    for model in models:
        operator = AcquisitionOperator(model, fine, m0.grid)
        image = reconstruct(
            m0.data * ~held, _Restricted(operator, keep), t1_fine, settings=DTVSettings(iterations=300), initial=initial
        ).image
        predicted = operator.forward(torch.as_tensor(image, dtype=operator.dtype)).numpy()
        errors.append(float(np.sqrt(np.mean((predicted - m0.data)[held] ** 2))))
    ratios = " | ".join(f"{e / errors[0]:.3f}" for e in errors[1:])
    name = case.parent.name if case.name == "case" else case.name
    return f"| {name} | {errors[0]:.2f} | {ratios} |"


if __name__ == "__main__":
    print("| case | box error | " + " | ".join(f"Gaussian {f} voxel / box" for f in FRACTIONS) + " |")
    print("|---|---|" + "---|" * len(FRACTIONS))
    for path in sys.argv[1:]:
        print(scan(Path(path)), flush=True)
