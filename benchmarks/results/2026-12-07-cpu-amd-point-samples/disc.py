"""Feasibility: which acquisition operator makes T1-derived features explain the LR ASL best?"""

import sys
from pathlib import Path

import numpy as np
from scipy import ndimage

from aslsr.grids import resample, resample_average
from aslsr.io import load_volume


def features(t1, mask1, k=8):
    lo, hi = np.percentile(t1[mask1], [1, 99])
    centres = np.linspace(lo, hi, k)
    w = (hi - lo) / (k - 1)
    return [np.clip(1 - np.abs(t1 - c) / w, 0, 1).astype(np.float32) for c in centres]


def acquire(f, t1v, lr, how):
    if how == "box":
        return resample_average(f, t1v.affine, lr.grid)
    if how == "point":
        return resample(f, t1v.affine, lr.grid, order=1)
    if how.startswith("gauss"):
        fwhm = float(how[5:])  # in LR voxels
        vox_t1 = np.abs(np.diag(t1v.affine[:3, :3]))
        sig = fwhm * np.array(lr.grid.voxel_size) / vox_t1 / 2.3548
        return resample(ndimage.gaussian_filter(f, sig), t1v.affine, lr.grid, order=1)


for case in map(Path, sys.argv[1:]):
    lr = load_volume(case / "asl_lr.nii.gz")
    t1v = load_volume(case / "t1w_aligned.nii.gz")
    mlr = load_volume(case / "mask_lr.nii.gz", allow_constant=True).data > 0.5
    m1 = resample(mlr.astype(np.float32), lr.affine, t1v.grid, order=1) > 0.5
    feats = features(t1v.data, m1)
    res = {}
    for how in ("box", "point", "gauss1.5"):
        X = np.stack([acquire(f, t1v, lr, how)[mlr] for f in feats] + [np.ones(mlr.sum())], 1)
        y = lr.data[mlr]
        coef, *_ = np.linalg.lstsq(X, y, rcond=None)
        res[how] = float(np.sqrt(np.mean((y - X @ coef) ** 2)))
    print(case.name, {k: round(v, 3) for k, v in res.items()}, "best", min(res, key=res.get), flush=True)
