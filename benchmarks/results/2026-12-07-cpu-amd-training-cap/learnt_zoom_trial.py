"""At a target finer than the generator learnt: the run's SR against the SR at the learnt zoom brought to the target.

    python learnt_zoom_trial.py [--regenerate] SCRATCH CASE_DIR RUN_DIR [CASE_DIR RUN_DIR ...]

For each finished ``aslsr run`` (RUN_DIR, on a target finer than its model's factor, e.g. the T1's 1 mm) of a
phantom case (CASE_DIR: asl_lr, t1w, m0_lr, truth_1mm, mask, lesion ROIs), ``aslsr generate`` makes the SR on the
grid the generator learnt (the ASL grid zoomed by the model's factor; written to SCRATCH), which is then
brought to the run's target by cubic-spline or linear interpolation. Prints PSNR / SSIM / worst-lesion contrast
error in the brain against the 1 mm truth averaged onto the target for the run's SR ("sr"; with ``--regenerate``
its model applied on the run's grid again by ``aslsr generate --like``, for runs made by older code), the two
interpolated ones, the run's dTV and spline, and then the PSNR and lesion error of (1 - w) sr + w (learnt + spline).
"""

import subprocess
import sys
from pathlib import Path

import numpy as np
import torch

from aslsr import metrics
from aslsr.baselines import interpolate
from aslsr.grids import resample, resample_average
from aslsr.io import load_volume

ASLSR = str(Path(sys.executable).with_name("aslsr"))


def on_grid(path: Path, grid) -> np.ndarray:
    volume = load_volume(path, allow_constant=True)
    return resample(volume.data.astype(np.float32), volume.affine, grid, order=1) > 0.5


def generated(scratch: Path, case: Path, run: Path, name: str, target: list[str]) -> Path:
    """``aslsr generate`` of the run's model on the case's inputs onto ``target`` (generate's target options)."""
    out = scratch / f"{run.name}_{name}.nii.gz"
    inputs = [f"--{name}" for name in ("asl", "t1", "m0")]
    files = [case / f"{name}.nii.gz" for name in ("asl_lr", "t1w", "m0_lr")]
    command = [ASLSR, "generate", "--model", str(run / "model.pt"), *target, "--out", str(out)]
    command += [item for pair in zip(inputs, map(str, files)) for item in pair] + ["--quiet", "--overwrite"]
    subprocess.run(command, check=True)
    return out


def worst_lesion_errors(truth, images, mask, lesions) -> dict[str, float]:
    """Each image's largest lesion contrast error (0 without lesions)."""
    per_lesion = [metrics.evaluate(truth, images, mask=mask, lesion=roi) for roi in lesions]
    return {name: max([scores[name]["lesion_contrast_error"] for scores in per_lesion] or [0.0]) for name in images}


def main(scratch: Path, pairs: list[str], regenerate: bool) -> None:
    scratch.mkdir(parents=True, exist_ok=True)
    for case, run in zip(map(Path, pairs[::2]), map(Path, pairs[1::2])):
        factor = torch.load(run / "model.pt", weights_only=True)["factor"]
        learnt = load_volume(generated(scratch, case, run, "learnt", ["--zoom", *map(str, factor)]))
        target = load_volume(run / "sr.nii.gz").grid
        truth = load_volume(case / "truth_1mm.nii.gz")
        truth = resample_average(truth.data, truth.affine, target)
        mask = on_grid(case / "mask.nii.gz", target)
        lesions = [on_grid(p, target) for p in sorted(case.glob("lesion*.nii.gz")) if "_lr" not in p.name]
        images = {name: load_volume(run / f"{name}.nii.gz").data for name in ("sr", "dtv", "spline")}
        if regenerate:
            images["sr"] = load_volume(generated(scratch, case, run, "sr", ["--like", str(run / "sr.nii.gz")])).data
        images["learnt+spline"] = interpolate(learnt, target, "spline")
        images["learnt+linear"] = interpolate(learnt, target, "linear")
        scores = metrics.evaluate(truth, images, mask=mask)
        worst = worst_lesion_errors(truth, images, mask, lesions)
        cells = [  # PSNR / SSIM / worst lesion error
            f"{name} {s['psnr_brain']:.2f} / {s['ssim_brain']:.4f} / {100 * worst[name]:.1f} %"
            for name, s in scores.items()
        ]
        print(f"{run}: learnt grid {learnt.grid.voxel_size} mm -> target {target.voxel_size} mm: " + " | ".join(cells))
        blends = {f"w {w}": (1 - w) * images["sr"] + w * images["learnt+spline"] for w in (0.25, 0.5, 0.75)}
        mixed = metrics.evaluate(truth, blends, mask=mask)
        worst = worst_lesion_errors(truth, blends, mask, lesions)
        cells = [f"{name} {s['psnr_brain']:.2f} / {100 * worst[name]:.1f} %" for name, s in mixed.items()]
        print("    blends (PSNR / worst lesion error): " + " | ".join(cells), flush=True)


if __name__ == "__main__":
    regenerate = "--regenerate" in sys.argv[1:]
    arguments = [a for a in sys.argv[1:] if a != "--regenerate"]
    main(Path(arguments[0]), arguments[1:], regenerate)
