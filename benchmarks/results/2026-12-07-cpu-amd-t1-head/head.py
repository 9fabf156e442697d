"""Edits of a simulated case that no `aslsr simulate` option makes: a head on the T1, noise that varies in space.

- ``head``: the phantom's T1 comes from a skull-stripped template (zero outside the brain); a
  subject's T1 has a dark skull and a bright scalp (fat brighter than white matter) around it. This
  adds both in the T1's own voxels (distance from the brain in mm): CSF-dark 0-2 mm, skull 2-7 mm,
  scalp 7-13 mm at 1.2x the white matter, soft edges and 2 % noise.
- ``noise-map``: the LR ASL's noise made anew with an sd that varies smoothly in space as a parallel
  imaging g-factor does (highest in the middle of the field of view, 0.4x to 1.6x, mean over the brain
  equal to the case's noise sd): ``asl_lr_clean`` + noise x map. ``noise-map-mild``: 0.6x to 1.4x.
  ``noise-gradient``: 0.5x to 1.5x along the second voxel axis, as a one-sided array coil gives.

Everything else is copied. The default and the fixed box dTV run on the plain case and each edit
(stress.py's runs, run seed 0) and every image is scored in the brain against the noise-free reference.

    python head.py OUT EDIT[,EDIT...] [SIMULATE OPTIONS ...]   (OUT/plain/case, OUT/EDIT/case; OUT/head.json)
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import nibabel as nib
import numpy as np
from scipy import ndimage

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent / "2026-12-07-cpu-amd-stress"))
from stress import REPO, run, score  # noqa: E402

BANDS_MM = ((0.0, 2.0, 0.12), (2.0, 7.0, 0.05), (7.0, 13.0, 1.2))  # (from, to, intensity x white matter)


def add_head(t1: np.ndarray, voxel_mm: np.ndarray, seed: int = 0) -> np.ndarray:
    """``t1`` with CSF, skull and scalp shells outside its brain (the voxels above 10 % of the maximum)."""
    brain = ndimage.binary_fill_holes(ndimage.binary_closing(t1 > 0.1 * t1.max(), iterations=3))
    distance = ndimage.distance_transform_edt(~brain, sampling=voxel_mm)
    white = float(np.percentile(t1[brain], 90))
    head = np.zeros_like(t1)
    for start, stop, level in BANDS_MM:
        weight = 1.0 / (1.0 + np.exp(-(distance - start) / 0.7)) - 1.0 / (1.0 + np.exp(-(distance - stop) / 0.7))
        head += level * white * weight
    rng = np.random.default_rng(seed)
    out = np.where(brain, t1, np.maximum(t1, head))
    return (out + rng.normal(0.0, 0.02 * white, t1.shape)).astype(np.float32)


def edit_head(plain: Path, out: Path) -> None:
    image = nib.load(plain / "t1w.nii.gz")
    data = add_head(np.asarray(image.get_fdata(dtype=np.float32)), np.asarray(image.header.get_zooms()[:3]))
    nib.save(nib.Nifti1Image(data, image.affine, image.header), out / "t1w.nii.gz")


def centre_map(shape: tuple[int, ...], low: float) -> np.ndarray:
    """A g-factor-like map: ``low`` at the field of view's corners to ``2 - low`` in its middle."""
    axes = np.meshgrid(*(np.linspace(-1.0, 1.0, n) for n in shape), indexing="ij")
    bump = np.exp(-sum(a**2 for a in axes) / 0.5)
    return low + 2.0 * (1.0 - low) * (bump - bump.min()) / (bump.max() - bump.min())


def gradient_map(shape: tuple[int, ...]) -> np.ndarray:
    """A one-sided array coil's: 0.5 at the first voxel along the second axis to 1.5 at the last."""
    return np.broadcast_to(np.linspace(0.5, 1.5, shape[1])[None, :, None], shape)


def with_noise_map(plain: Path, out: Path, sd_map: np.ndarray, seed: int = 11) -> None:
    """``asl_lr_clean`` + white noise x ``sd_map`` (scaled to mean 1 over the brain) x the case's own noise sd."""
    clean = nib.load(plain / "asl_lr_clean.nii.gz")
    brain = np.asarray(nib.load(plain / "mask_lr.nii.gz").dataobj) > 0
    sd = float(np.std(np.asarray(nib.load(plain / "asl_lr.nii.gz").dataobj) - clean.get_fdata()))  # the case's noise
    noise = np.random.default_rng(seed).normal(0.0, sd, clean.shape) * sd_map / sd_map[brain].mean()
    data = np.asarray(clean.get_fdata(dtype=np.float32)) + noise.astype(np.float32)
    nib.save(nib.Nifti1Image(data, clean.affine, clean.header), out / "asl_lr.nii.gz")


EDITS = {
    "head": edit_head,
    "noise-map": lambda plain, out: with_noise_map(
        plain, out, centre_map(nib.load(plain / "asl_lr.nii.gz").shape, 0.4)
    ),
    "noise-map-mild": lambda plain, out: with_noise_map(
        plain, out, centre_map(nib.load(plain / "asl_lr.nii.gz").shape, 0.6), seed=12
    ),
    "noise-gradient": lambda plain, out: with_noise_map(
        plain, out, gradient_map(nib.load(plain / "asl_lr.nii.gz").shape), seed=13
    ),
}


def main(root: Path, edits: list[str], options: list[str]) -> None:
    plain = root / "plain" / "case"
    if not (plain / "phantom.json").is_file():
        command = [sys.executable, "-m", "aslsr", "simulate", str(plain), "--seed", "7", "--overwrite", *options]
        subprocess.run(command, check=True, cwd=REPO)
    for edit in edits:
        if not (root / edit / "case" / "phantom.json").is_file():
            shutil.copytree(plain, root / edit / "case", dirs_exist_ok=True)
            EDITS[edit](plain, root / edit / "case")
    path = root / "head.json"
    results = json.loads(path.read_text()) if path.is_file() else {}
    for name in ("plain", *edits):
        if name in results:
            continue
        case, row = root / name / "case", {}
        row["default_s"] = run(case, root / name / "default", [])
        run(case, root / name / "dtv_box", ["--method", "dtv", "--acquisition", "box"])
        row["scores"] = {k: score(case, root / name / "default" / f"{k}.nii.gz") for k in ("linear", "spline", "dtv")}
        row["scores"]["sr"] = score(case, root / name / "default" / "sr.nii.gz")
        row["scores"]["dtv-box"] = score(case, root / name / "dtv_box" / "sr.nii.gz")
        report = json.loads((root / name / "default" / "report.json").read_text())
        row["registration"] = report.get("registration")
        row["warnings"] = report.get("warnings", [])
        row["noise_estimate"] = report["asl"].get("noise_estimate")
        results[name] = row
        path.write_text(json.dumps(results, indent=1))
        print(name, {k: round(v["psnr_brain"], 2) for k, v in row["scores"].items()}, flush=True)


if __name__ == "__main__":
    main(Path(sys.argv[1]), sys.argv[2].split(","), sys.argv[3:] or "--tissue-field 0.2 --lesions 0.5 --warp 5".split())
