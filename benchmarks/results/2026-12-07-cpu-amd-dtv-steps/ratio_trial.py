"""The dTV solver's step ratio: iterations to the stop, objective reached and PSNR against the noise-free reference.

    python ratio_trial.py RUN_DIR CASE_DIR SPEC [SPEC ...]

RUN_DIR: a finished ``aslsr run`` (its ``t1_registered.nii.gz``, the grid of its ``dtv.nii.gz`` and the acquisition
model in its ``report.json``); CASE_DIR: the phantom case (``asl_lr.nii.gz``, ``mask.nii.gz`` and ``ref_clean.nii.gz``
on the NR grid or ``truth_1mm.nii.gz``). SPEC: ``RATIO`` (the default stop), ``RATIO@TOLERANCE`` or ``RATIO:N`` (N
iterations, no stop). The reconstruction is made as ``dtv.super_resolve_dtv`` makes it (on the k-space model's whole
subdivision of the ASL grid when the target does not divide it); the objective is ``dtv.objective`` there (lower is
closer to the minimum), PSNR / SSIM in the brain after averaging onto the run's grid.
"""

import json
import sys
from dataclasses import replace
from pathlib import Path

import numpy as np
import torch

from aslsr import devices, dtv, metrics
from aslsr.acquisition import AcquisitionOperator
from aslsr.config import preset
from aslsr.config import replace as replace_config
from aslsr.grids import resample, resample_average
from aslsr.io import load_volume


def reference(case: Path, grid) -> np.ndarray:
    truth = load_volume(case / "ref_clean.nii.gz")
    if truth.grid != grid:
        truth = load_volume(case / "truth_1mm.nii.gz")
        return resample_average(truth.data, truth.affine, grid)
    return truth.data


def settings_for(spec: str, settings: dtv.DTVSettings) -> dtv.DTVSettings:
    head, _, tolerance = spec.partition("@")
    ratio, _, iterations = head.partition(":")
    settings = replace(settings, step_ratio=float(ratio))
    if iterations:
        settings = replace(settings, iterations=int(iterations), tolerance=0.0)
    if tolerance:
        settings = replace(settings, tolerance=float(tolerance))
    return settings


def main(run: Path, case: Path, specs: list[str]) -> None:
    report = json.loads((run / "report.json").read_text())
    asl = load_volume(case / "asl_lr.nii.gz")
    t1 = load_volume(run / "t1_registered.nii.gz")
    target = load_volume(run / "dtv.nii.gz").grid
    t1_target = t1.data if t1.grid == target else resample_average(t1.data, t1.affine, target)
    acquisition_fields = {k: v for k, v in report["config"].items() if k.startswith("acquisition")}
    settings, acquisition = dtv.settings_from_config(replace_config(preset("fast"), **acquisition_fields))
    grid = dtv.reconstruction_grid(asl.grid, target, acquisition)
    anatomy = t1_target if grid == target else resample(t1_target, target.affine, grid, order=1)
    operator = AcquisitionOperator(acquisition, grid, asl.grid)
    initial = resample(asl.data, asl.affine, grid, order=1)
    truth = reference(case, target)
    brain = load_volume(case / "mask.nii.gz", allow_constant=True)
    mask = resample(brain.data.astype(np.float32), brain.affine, target, order=1) > 0.5
    print(run, acquisition.kind, "reconstruction grid", grid.shape, "run grid", target.shape, flush=True)
    for spec in specs:
        chosen = settings_for(spec, settings)
        result = dtv.reconstruct(asl.data, operator, anatomy, settings=chosen, initial=initial)
        value = dtv.objective(result.image, asl.data, operator, anatomy, settings=chosen)
        image = result.image if grid == target else resample_average(result.image, grid.affine, target)
        s = metrics.evaluate(truth, {"dtv": image}, mask=mask)["dtv"]
        print(
            f"ratio {spec:9s} its {result.iterations:4d} stopped {result.converged!s:5s} {result.seconds:6.1f} s"
            f"  objective {value:.3f}  psnr {s['psnr_brain']:.3f} ssim {s['ssim_brain']:.4f}",
            flush=True,
        )


if __name__ == "__main__":
    devices.keep_freed_memory()
    torch.set_num_threads(2)
    main(Path(sys.argv[1]), Path(sys.argv[2]), sys.argv[3:])
