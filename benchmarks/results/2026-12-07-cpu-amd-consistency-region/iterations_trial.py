"""Trial, not kept: the consistency step with more back-projection iterations or a smaller sigma (generation only).

    python iterations_trial.py CASE_DIR:RUN_DIR [...]   (from this folder: it imports region_trial)

For each finished run the SR is made again from its model with the step's iterations (the default 3) and low-pass
sigma (LR voxels, the default 1.0) changed, the step in the brain (10dfcda); PSNR dB in the brain and over the
whole volume against ``ref_clean.nii.gz``, and each lesion's contrast error (%).
"""

import dataclasses
import functools
import sys
from pathlib import Path

import nibabel as nib
import numpy as np
import torch
from region_trial import FinishedRun, region_on

from aslsr import generate
from aslsr.io import load_volume
from aslsr.metrics import evaluate

SETTINGS = [(3, 1.0), (6, 1.0), (10, 1.0), (3, 0.75), (20, 1.0)]  # (iterations, sigma)


def trial(case: Path, run: Path) -> None:
    finished = FinishedRun.read(run)
    model, target = finished.model, finished.target
    default_step = generate.enforce_consistency
    predictions = {}
    for iterations, sigma in SETTINGS:
        generate.enforce_consistency = functools.partial(default_step, iterations=iterations)
        model.config = dataclasses.replace(model.config, consistency_sigma_voxels=sigma)
        predictions[f"it{iterations}s{sigma}"] = finished.sr()
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
