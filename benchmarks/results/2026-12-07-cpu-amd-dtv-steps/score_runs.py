"""Score finished runs' sr / dtv / spline / linear against the case's noise-free reference, in the brain.

    python score_runs.py CASE_DIR RUN_DIR [RUN_DIR ...]   (from this folder: it imports ratio_trial)

PSNR dB / SSIM / the worst lesion's contrast error (docs/metrics.md) against ``ref_clean.nii.gz`` on the NR grid or
``truth_1mm.nii.gz`` averaged onto the run's grid.
"""

import sys
from pathlib import Path

import numpy as np
from ratio_trial import reference

from aslsr import metrics
from aslsr.grids import resample
from aslsr.io import load_volume


def on_grid(path: Path, grid) -> np.ndarray:
    volume = load_volume(path, allow_constant=True)
    return resample(volume.data.astype(np.float32), volume.affine, grid, order=1) > 0.5


def score(case: Path, run: Path) -> str:
    images = {name: load_volume(run / f"{name}.nii.gz").data for name in ("sr", "dtv", "spline", "linear")}
    grid = load_volume(run / "sr.nii.gz").grid
    truth, mask = reference(case, grid), on_grid(case / "mask.nii.gz", grid)
    lesions = [on_grid(path, grid) for path in sorted(case.glob("lesion*.nii.gz")) if "_lr" not in path.name]
    scores = metrics.evaluate(truth, images, mask=mask)
    worst = dict.fromkeys(images, 0.0)
    for lesion in lesions:
        for name, s in metrics.evaluate(truth, images, mask=mask, lesion=lesion).items():
            worst[name] = max(worst[name], s["lesion_contrast_error"])
    parts = [f"{n} {s['psnr_brain']:.2f} / {s['ssim_brain']:.4f} / {100 * worst[n]:.1f} %" for n, s in scores.items()]
    return f"{run}: " + " | ".join(parts)


if __name__ == "__main__":
    for run_dir in sys.argv[2:]:
        print(score(Path(sys.argv[1]), Path(run_dir)))
