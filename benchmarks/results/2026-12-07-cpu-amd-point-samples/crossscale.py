"""Cross-scale check: G_N applied one scale coarser (dTV(x_{N-2}) on grid N-1 -> x_{N-1}) vs its dTV input."""

import functools
import sys
from pathlib import Path

import numpy as np
import torch

from aslsr.acquisition import as_box_acquisition
from aslsr.generate import flip_ensemble
from aslsr.io import load_volume
from aslsr.model import Model
from aslsr.pyramid import build_pyramid, scale_grids
from aslsr.train import dtv_step

for run in map(Path, sys.argv[1:]):
    case = run.parent / "case"
    model = Model.load(run / "model.pt")
    cfg = model.config
    asl = as_box_acquisition(load_volume(case / "asl_lr.nii.gz"), cfg)
    t1 = load_volume(run / "t1_registered.nii.gz")
    mask = load_volume(run / "mask.nii.gz", allow_constant=True).data > 0.5 if (run / "mask.nii.gz").exists() else None
    factor = np.asarray(model.factor)
    grids = scale_grids(asl.grid, factor, 3)  # x_{N-2}, x_{N-1}, x_N
    scales = build_pyramid(asl, t1, grids, None)
    cpu = torch.device("cpu")
    out = []
    for lo, hi in ((0, 1), (1, 2)):
        dtv = dtv_step(scales[lo], scales[hi], cfg, cpu)
        net_in, t1n = model.normalizer.asl_to_net(dtv), model.normalizer.t1_to_net(scales[hi].t1)
        g = model.normalizer.asl_from_net(flip_ensemble(functools.partial(model.apply, device=cpu), net_in, t1n))
        target = scales[hi].asl
        from aslsr.grids import resample

        m = (
            resample(mask.astype(np.float32), asl.affine, grids[hi], order=1) > 0.5
            if mask is not None and mask.shape == asl.grid.shape
            else np.ones(target.shape, bool)
        )
        e_id = float(np.mean((dtv - target)[m] ** 2))
        e_g = float(np.mean((g - target)[m] ** 2))
        out.append(f"scale {hi}: dTV {e_id:.4g} G {e_g:.4g} ratio {e_g / e_id:.3f}")
    print(run.parent.name, " | ".join(out), flush=True)
