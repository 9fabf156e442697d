# ruff: noqa: E402  (a trial script as run: it puts benchmarks/ on sys.path, or patches modules, before importing)
"""Generation-only sweep on saved models: consistency variants, noisy and noise-free LR."""

import dataclasses
import json
import sys
from pathlib import Path

import numpy as np
import torch
from scipy import ndimage

sys.path.insert(0, "/work/main/benchmarks")
torch.set_num_threads(1)
from lesion_parts import lesion_parts
from stability import lesion_roi_paths

from aslsr import metrics
from aslsr.acquisition import AcquisitionModel, AcquisitionOperator, as_box_acquisition
from aslsr.baselines import dtv_baseline
from aslsr.config import replace
from aslsr.generate import enforce_consistency, super_resolve
from aslsr.grids import resample_average
from aslsr.io import load_mask, load_volume
from aslsr.model import Model
from aslsr.pyramid import bring_up


def acq_consistency(sr, grid, lr_raw, config, sigma, iterations=3):
    op = AcquisitionOperator(AcquisitionModel.from_config(config), grid, lr_raw.grid)
    sr = sr.copy()
    for _ in range(iterations):
        r = lr_raw.data - op.apply(sr)
        if sigma > 0:
            r = ndimage.gaussian_filter(r, sigma, mode="nearest")
        sr += bring_up(r, lr_raw.grid, grid, order=1)
    return sr


run = Path(sys.argv[1])
out = Path(sys.argv[2])
case_name = run.parts[-3]
import os

case = Path(os.environ.get("CASES", "/tmp/w/cases")) / case_name
model = Model.load(run / "model.pt")
cfg = model.config
t1 = load_volume(run / "t1_registered.nii.gz")
ref = load_volume(case / "ref_clean.nii.gz")
mask = load_mask(case / "mask.nii.gz", ref.grid)
rois = {p.name: load_mask(p, ref.grid) for p in lesion_roi_paths(case)}
prior = resample_average(t1.data, t1.affine, ref.grid)
sources = {"noisy": case / "asl_lr.nii.gz"}
clean = Path("/tmp/s18/clean") / case_name / "asl_lr.nii.gz"
if clean.exists() and rois:
    sources["clean"] = clean
rows = []
for label, path in sources.items():
    asl = load_volume(path)
    box = as_box_acquisition(asl, cfg)
    m_off = dataclasses.replace(model, config=dataclasses.replace(cfg, consistency="off"))
    dtv = dtv_baseline(box, prior, ref.grid, replace(cfg, acquisition="box")).image
    raw = super_resolve(m_off, asl, t1, ref.grid, t1_on_target=prior, dtv_on_target=dtv)
    spline = np.asarray(bring_up(asl.data, asl.grid, ref.grid, 3))
    images = {"spline": spline, "off": raw}
    for s in (2.0, 1.4, 1.0, 0.7, 0.5):
        images[f"lp{s}"] = enforce_consistency(raw, ref.grid, box, sigma_lr_voxels=s)
    images["full"] = enforce_consistency(raw, ref.grid, box, sigma_lr_voxels=0.0)
    if cfg.acquisition != "box":
        images["acq_lp1.0"] = acq_consistency(raw, ref.grid, asl, cfg, 1.0)
    for name, im in images.items():
        row = {
            "run": str(run),
            "case": case_name,
            "lr": label,
            "image": name,
            "psnr": round(metrics.psnr(ref.data, im, mask), 3),
        }
        for k, r in rois.items():
            row[k] = {a: round(b, 3) for a, b in lesion_parts(ref.data, im, r, mask).items()}
        rows.append(row)
        print(json.dumps(row), flush=True)
out.write_text("\n".join(json.dumps(r) for r in rows) + "\n")
