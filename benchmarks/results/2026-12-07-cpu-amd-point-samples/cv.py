"""Feasibility: held-out LR voxels predicted through dTV under each candidate acquisition model, on the case's NR grid.

    python cv.py [--m0] CASE ...      (the ASL, or with --m0 the M0; the truth-aligned T1)

Not a fair test where the NR grid tiles the LR voxels (box variants): split in two, a box average of the halves is
the sample at their shared face, so box and point are the same operator there (see outputs.txt).
"""

import sys
from pathlib import Path

import numpy as np
import torch

from aslsr.acquisition import AcquisitionModel, AcquisitionOperator
from aslsr.dtv import DTVSettings, reconstruct
from aslsr.grids import resample, resample_average
from aslsr.io import load_volume


class Masked:
    def __init__(self, op, keep):
        self.op, self.keep = op, keep
        self.fine, self.lr, self.device, self.dtype = op.fine, op.lr, op.device, op.dtype

    def forward(self, x):
        return self.op.forward(x) * self.keep

    def adjoint(self, p):
        return self.op.adjoint(p * self.keep)


def models(lr_grid):
    vs = lr_grid.voxel_size
    inplane, slc = float(min(vs)), float(max(vs))
    return {
        "box": AcquisitionModel("box"),
        "point": AcquisitionModel("gaussian", fwhm_mm=0.25 * inplane, slice_fwhm_mm=0.4 * slc),
        "gauss1.2": AcquisitionModel("gaussian", fwhm_mm=1.2 * inplane, slice_fwhm_mm=1.2 * slc),
    }


for case in map(Path, [a for a in sys.argv[1:] if a != "--m0"]):
    lr = load_volume(case / ("m0_lr.nii.gz" if "--m0" in sys.argv else "asl_lr.nii.gz"))
    nr = load_volume(case / "asl_nr.nii.gz").grid
    t1 = load_volume(case / "t1w_aligned.nii.gz")
    t1_nr = resample_average(t1.data, t1.affine, nr)
    brain = load_volume(case / "mask_lr.nii.gz", allow_constant=True).data > 0.5
    rng = np.random.default_rng(0)
    held = brain & (rng.random(brain.shape) < 0.1)
    keep = torch.as_tensor((~held).astype(np.float32))
    out = {}
    for name, model in models(lr.grid).items():
        try:
            op = AcquisitionOperator(model, nr, lr.grid, device="cpu")
        except Exception as e:
            out[name] = str(e)[:40]
            continue
        initial = resample(lr.data, lr.affine, nr, order=1)
        y = lr.data * (~held)
        res = reconstruct(y, Masked(op, keep), t1_nr, settings=DTVSettings(iterations=300), initial=initial)
        pred = op.forward(torch.as_tensor(res.image)).numpy()
        out[name] = float(np.sqrt(np.mean((pred - lr.data)[held] ** 2)))
    print(
        case.name if case.name != "case" else case.parent.name,
        {k: (round(v, 3) if isinstance(v, float) else v) for k, v in out.items()},
        flush=True,
    )
