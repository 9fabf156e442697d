# ruff: noqa: E402  (a trial script as run: it puts benchmarks/ on sys.path before importing)
"""Generation-only sweep of the consistency step on a trained run (BENCHMARKS.md 2026-12-06 night, part 2-3).

    python consistency_sweep.py RUN OUT.jsonl [--cases DIR] [--sigmas 1 0.7 0.5] [--band]

RUN: a stability.py run folder (model.pt, t1_registered.nii.gz) of the prepared case DIR/<variant> (the folder
two levels up names the variant). The generator's output (consistency off) is made once per LR image, then every
step applied to it: lowpass at each sigma (LR voxels), full, on k-space models the low-pass step through the
acquisition operator on the raw LR, and with --band the band-limited local-Wiener step at kappa 0.5 / 1 / 2 and
window 1 / 2. The LR images: the case's, and the noise-free one in /tmp/s18/clean/<variant> when it exists (this
machine's paths). Writes one JSON row per image with the PSNR in the brain and each lesion's parts (lesion_parts.py).
"""

import argparse
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
from aslsr.noise import estimate_noise
from aslsr.pyramid import bring_up


def acq_consistency(sr, grid, lr_raw, config, sigma, iterations=3):
    """The low-pass step against the raw LR through the acquisition operator that dTV uses."""
    op = AcquisitionOperator(AcquisitionModel.from_config(config), grid, lr_raw.grid)
    sr = sr.copy()
    for _ in range(iterations):
        r = lr_raw.data - op.apply(sr)
        if sigma > 0:
            r = ndimage.gaussian_filter(r, sigma, mode="nearest")
        sr += bring_up(r, lr_raw.grid, grid, order=1)
    return sr


def band_fraction(s0, s1):
    """Share of white noise's power in the band G_s0 - G_s1."""
    d = np.zeros((41,) * 3)
    d[20, 20, 20] = 1
    b = ndimage.gaussian_filter(d, s0) - ndimage.gaussian_filter(d, s1)
    return float((b**2).sum())


def band_consistency(sr, grid, lr, sd, s=1.0, s0=0.5, w=1.5, kappa=1.0, iterations=3):
    """Low-pass (sigma s) part of the residual, plus its s0..s band with a local Wiener gain."""
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


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("run", type=Path)
    parser.add_argument("out", type=Path)
    parser.add_argument("--cases", type=Path, default=Path("/tmp/w/cases"))
    parser.add_argument("--sigmas", type=float, nargs="+", default=[1.0, 0.7, 0.5])
    parser.add_argument("--band", action="store_true")
    args = parser.parse_args()
    run = args.run
    case_name = run.parts[-3]
    case = args.cases / case_name
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
        images = {"spline": np.asarray(bring_up(asl.data, asl.grid, ref.grid, 3)), "off": raw}
        for s in args.sigmas:
            images[f"lp{s}"] = enforce_consistency(raw, ref.grid, box, sigma_lr_voxels=s)
        images["full"] = enforce_consistency(raw, ref.grid, box, sigma_lr_voxels=0.0)
        if cfg.acquisition != "box":
            images["acq_lp1.0"] = acq_consistency(raw, ref.grid, asl, cfg, 1.0)
        if args.band:
            sd = estimate_noise(box, resample_average(mask.astype(np.float32), ref.grid.affine, box.grid) > 0.5).sd
            for kappa in (0.5, 1.0, 2.0):
                for w in (1.0, 2.0):
                    images[f"band_k{kappa}_w{w}"] = band_consistency(raw, ref.grid, box, sd, kappa=kappa, w=w)
        for name, image in images.items():
            psnr = round(metrics.psnr(ref.data, image, mask), 3)
            row = {"run": str(run), "case": case_name, "lr": label, "image": name, "psnr": psnr}
            for key, roi in rois.items():
                row[key] = {a: round(b, 3) for a, b in lesion_parts(ref.data, image, roi, mask).items()}
            rows.append(row)
            print(json.dumps(row), flush=True)
    args.out.write_text("\n".join(json.dumps(r) for r in rows) + "\n")


main()
