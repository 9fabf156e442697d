"""Generation-only diagnosis of one stress run: where does the SR lose to its dTV input?"""

import sys
from pathlib import Path

import numpy as np
import torch
from scipy import ndimage

from aslsr import metrics
from aslsr.baselines import dtv_baseline
from aslsr.config import replace
from aslsr.generate import super_resolve
from aslsr.io import load_volume
from aslsr.model import Model

case, run = Path(sys.argv[1]), Path(sys.argv[2])
ref = load_volume(case / "ref_clean.nii.gz")
mask = load_volume(case / "mask.nii.gz", allow_constant=True).data > 0.5
model = Model.load(run / "model.pt")
t1 = load_volume(run / "t1_registered.nii.gz")
grid = t1.grid
cpu = torch.device("cpu")
rng = float(ref.data.max() - ref.data.min())


def score(x):
    return metrics.psnr(ref.data, x, mask=mask)


def bands(x):
    e = x - ref.data
    lo = ndimage.gaussian_filter(e, 2.0)
    mid = ndimage.gaussian_filter(e, 0.7) - lo
    hi = e - lo - mid
    return [float(np.mean(b[mask] ** 2)) for b in (lo, mid, hi)]


out = {}
for lr_name in ("asl_lr", "asl_lr_clean"):
    asl = load_volume(case / f"{lr_name}.nii.gz")
    dtv = dtv_baseline(asl, t1.data, grid, replace(model.config, acquisition="box"), device=cpu).image
    lr_mask = load_volume(case / "mask_lr.nii.gz", allow_constant=True).data > 0.5
    off = replace(model.config, consistency="off")
    no_step = Model(model.generator, model.normalizer, off, model.factor, model.grids)
    variants = {"dtv": dtv}
    for name, applied in (("sr", model), ("sr_no_consistency", no_step)):
        variants[name] = super_resolve(
            applied, asl, t1, grid, device=cpu, t1_on_target=t1.data, dtv_on_target=dtv, brain_mask=lr_mask
        )
    for k, v in variants.items():
        out[f"{lr_name}:{k}"] = (score(v), bands(v))
        print(lr_name, k, round(score(v), 2), ["%.3g" % b for b in bands(v)], flush=True)
