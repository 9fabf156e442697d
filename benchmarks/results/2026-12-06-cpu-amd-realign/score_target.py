"""Score run folders against a phantom's 1 mm truth brought onto each run's target grid (brain, lesion)."""

import sys

import numpy as np

from aslsr import metrics
from aslsr.grids import resample, resample_average
from aslsr.io import load_volume

case, runs = sys.argv[1], sys.argv[2:]
truth = load_volume(f"{case}/truth_1mm.nii.gz")
m = load_volume(f"{case}/mask.nii.gz", allow_constant=True)
les = load_volume(f"{case}/lesion.nii.gz", allow_constant=True)
for run in runs:
    preds = {k: load_volume(f"{run}/{k}.nii.gz") for k in ("sr", "linear", "spline", "dtv")}
    grid = preds["sr"].grid
    ref = truth.data if truth.grid == grid else resample_average(truth.data, truth.affine, grid)
    mask = resample(m.data.astype(np.float32), m.affine, grid, order=1) > 0.5
    lesion = resample(les.data.astype(np.float32), les.affine, grid, order=1) > 0.5
    r = metrics.evaluate(ref, {k: v.data for k, v in preds.items()}, mask=mask, lesion=lesion)
    cells = [
        f"{k} {v['psnr_brain']:.2f}/{v['ssim_brain']:.4f}/{100 * v['lesion_contrast_error']:.1f}%" for k, v in r.items()
    ]
    print(run, grid.shape, " ".join(cells))
