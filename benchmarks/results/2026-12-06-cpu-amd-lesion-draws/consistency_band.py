# ruff: noqa: E402  (a trial script as run: it puts benchmarks/ on sys.path, or patches modules, before importing)
"""Prototype: consistency = lowpass(sigma 1) part of the residual + a local-Wiener share of the rest."""

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
from aslsr.acquisition import as_box_acquisition
from aslsr.baselines import dtv_baseline
from aslsr.config import replace
from aslsr.generate import enforce_consistency, super_resolve
from aslsr.grids import resample_average
from aslsr.io import load_mask, load_volume
from aslsr.model import Model
from aslsr.noise import estimate_noise
from aslsr.pyramid import bring_up


def band_noise_fraction(s):
    d = np.zeros((41,) * 3)
    d[20, 20, 20] = 1
    hi = d - ndimage.gaussian_filter(d, s)
    return float((hi**2).sum())


def band_fraction(s0, s1):
    d = np.zeros((41,) * 3)
    d[20, 20, 20] = 1
    b = ndimage.gaussian_filter(d, s0) - ndimage.gaussian_filter(d, s1)
    return float((b**2).sum())


def wiener_consistency(sr, grid, lr, sd, s=1.0, s0=0.5, w=1.5, kappa=1.0, iterations=3):
    sr = sr.copy()
    frac = band_fraction(s0, s)
    for _ in range(iterations):
        r = lr.data - resample_average(sr, grid.affine, lr.grid)
        low = ndimage.gaussian_filter(r, s, mode="nearest")
        band = ndimage.gaussian_filter(r, s0, mode="nearest") - low
        energy = ndimage.gaussian_filter(band**2, w, mode="nearest")
        gain = np.clip(1 - kappa * frac * sd**2 / np.maximum(energy, 1e-12), 0, 1)
        sr += bring_up(low + gain * band, lr.grid, grid, order=1)
    return sr


run = Path(sys.argv[1])
out = Path(sys.argv[2])
case_name = run.parts[-3]
case = Path("/tmp/w/cases") / case_name
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
    sd = estimate_noise(box, resample_average(mask.astype(np.float32), ref.grid.affine, box.grid) > 0.5).sd
    m_off = dataclasses.replace(model, config=dataclasses.replace(cfg, consistency="off"))
    dtv = dtv_baseline(box, prior, ref.grid, replace(cfg, acquisition="box")).image
    raw = super_resolve(m_off, asl, t1, ref.grid, t1_on_target=prior, dtv_on_target=dtv)
    images = {"lp1.0": enforce_consistency(raw, ref.grid, box, sigma_lr_voxels=1.0)}
    images["lp0.5"] = enforce_consistency(raw, ref.grid, box, sigma_lr_voxels=0.5)
    for kappa in (0.5, 1.0, 2.0):
        for w in (1.0, 2.0):
            images[f"band_k{kappa}_w{w}"] = wiener_consistency(raw, ref.grid, box, sd, kappa=kappa, w=w)
    for name, im in images.items():
        row = {
            "run": str(run),
            "case": case_name,
            "lr": label,
            "image": name,
            "sd": round(sd, 3),
            "psnr": round(metrics.psnr(ref.data, im, mask), 3),
        }
        for k, r in rois.items():
            row[k] = {a: round(b, 3) for a, b in lesion_parts(ref.data, im, r, mask).items()}
        rows.append(row)
        print(json.dumps(row), flush=True)
out.write_text("\n".join(json.dumps(r) for r in rows) + "\n")
