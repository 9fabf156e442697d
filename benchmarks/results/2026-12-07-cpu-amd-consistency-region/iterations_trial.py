"""Trial, not kept: the consistency step with more back-projection iterations or a smaller sigma (generation only).

    python iterations_trial.py CASE_DIR:RUN_DIR [...]

For each finished run the SR is made again from its model with the step's iterations (the default 3) and low-pass
sigma (LR voxels, the default 1.0) changed, the step in the brain (10dfcda); PSNR dB in the brain and over the
whole volume against ``ref_clean.nii.gz``, and each lesion's contrast error (%).
"""

import dataclasses
import functools
import json
import sys
from pathlib import Path

import nibabel as nib
import numpy as np
import torch

from aslsr import generate
from aslsr.grids import Grid, resample
from aslsr.io import load_volume
from aslsr.masking import derive_mask
from aslsr.metrics import evaluate
from aslsr.model import Model

SETTINGS = [(3, 1.0), (6, 1.0), (10, 1.0), (3, 0.75), (20, 1.0)]  # (iterations, sigma)


def region_on(path: Path, grid: Grid) -> np.ndarray:
    volume = load_volume(path, allow_constant=True)
    return resample(volume.data.astype(np.float32), volume.affine, grid, order=1) > 0.5


def trial(case: Path, run: Path) -> None:
    report = json.loads((run / "report.json").read_text())
    model = Model.load(run / "model.pt")
    asl, t1 = load_volume(report["inputs"]["asl"]), load_volume(run / "t1_registered.nii.gz")
    m0 = load_volume(report["inputs"]["m0"]) if report["inputs"].get("m0") else None
    written = nib.load(run / "sr.nii.gz")
    target = Grid(written.shape, written.affine)
    dtv = nib.load(run / "dtv.nii.gz").get_fdata().astype(np.float32)
    brain_on_asl = derive_mask(m0, t1, asl.grid)
    default_step = generate.enforce_consistency
    predictions = {}
    for iterations, sigma in SETTINGS:
        generate.enforce_consistency = functools.partial(default_step, iterations=iterations)
        model.config = dataclasses.replace(model.config, consistency_sigma_voxels=sigma)
        predictions[f"it{iterations}s{sigma}"] = generate.super_resolve(
            model,
            asl,
            t1,
            target,
            t1_on_target=t1.data,
            dtv_on_target=dtv if generate.refines_acquisition_dtv(model, asl.grid, target) else None,
            brain_mask=brain_on_asl,
        )
    generate.enforce_consistency = default_step
    predictions["spline"] = nib.load(run / "spline.nii.gz").get_fdata()
    reference = load_volume(case / "ref_clean.nii.gz").data
    brain = region_on(case / "mask.nii.gz", target)
    labels = load_volume(case / "lesion.nii.gz").data if (case / "lesion.nii.gz").exists() else None
    for name, scores in evaluate(reference, predictions, mask=brain).items():
        errors = []
        for label in [] if labels is None else np.unique(labels[labels > 0]):
            one = evaluate(reference, {name: predictions[name]}, mask=brain, lesion=labels == label)
            errors.append(100 * one[name]["lesion_contrast_error"])
        print(
            f"{case.parent.parent.name:20s} {name:10s} brain {scores['psnr_brain']:.2f} whole {scores['psnr']:.2f} "
            "lesions " + " ".join(f"{error:.2f}" for error in errors),
            flush=True,
        )


if __name__ == "__main__":
    torch.set_num_threads(2)
    for pair in sys.argv[1:]:
        case_dir, run_dir = pair.split(":")
        trial(Path(case_dir), Path(run_dir))
