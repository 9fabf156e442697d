"""Which dTV the generator refines: the box-model dTV of the LR's box equivalent or the run's dtv.nii.gz.

For each run folder (a finished ``aslsr run`` of a phantom case), re-applies its model.pt to both inputs
(generation only: the trained model, registered T1 and dtv.nii.gz of the run) and scores both SRs, both
dTVs and spline against the noise-free reference (the NR grid) or the 1 mm truth averaged onto the run's
grid, in the brain (PSNR dB / SSIM / worst-lesion contrast error when the case has lesion ROIs).

    python input_trial.py CASE_DIR RUN_DIR [CASE_DIR RUN_DIR ...]
"""

import json
import sys
from pathlib import Path

import numpy as np
import torch

from aslsr import metrics
from aslsr.acquisition import as_box_acquisition
from aslsr.baselines import dtv_baseline
from aslsr.config import replace
from aslsr.generate import super_resolve
from aslsr.grids import resample, resample_average
from aslsr.io import load_volume
from aslsr.model import Model


def reference(case: Path, grid):
    truth = load_volume(case / "ref_clean.nii.gz")
    if truth.grid == grid:
        return truth.data
    truth = load_volume(case / "truth_1mm.nii.gz")
    return resample_average(truth.data, truth.affine, grid)


def on_grid(path: Path, grid):
    if not path.exists():
        return None
    volume = load_volume(path, allow_constant=True)
    return resample(volume.data.astype(np.float32), volume.affine, grid, order=1) > 0.5


def trial(case: Path, run: Path) -> None:
    model = Model.load(run / "model.pt")
    config = json.loads((run / "report.json").read_text())["config"]
    model.config = replace(model.config, **{k: v for k, v in config.items() if k.startswith("acquisition")})
    asl = load_volume(case / "asl_lr.nii.gz")
    t1 = load_volume(run / "t1_registered.nii.gz")
    grid = t1.grid
    cpu = torch.device("cpu")
    box = replace(model.config, acquisition="box")
    dtvs = {
        "dtv_box_equivalent": dtv_baseline(as_box_acquisition(asl, model.config), t1.data, grid, box, device=cpu).image,
        "dtv_acquisition": load_volume(run / "dtv.nii.gz").data,
    }
    images = {
        f"sr_on_{name}": super_resolve(model, asl, t1, grid, device=cpu, t1_on_target=t1.data, dtv_on_target=image)
        for name, image in dtvs.items()
    }
    images.update(dtvs, spline=load_volume(run / "spline.nii.gz").data)
    mask, truth = on_grid(case / "mask.nii.gz", grid), reference(case, grid)
    scores = metrics.evaluate(truth, images, mask=mask)
    lesions = [on_grid(path, grid) for path in sorted(case.glob("lesion*.nii.gz")) if "_lr" not in path.name]
    worst = {name: 0.0 for name in images}
    for lesion in lesions:
        for name, s in metrics.evaluate(truth, images, mask=mask, lesion=lesion).items():
            worst[name] = max(worst[name], s["lesion_contrast_error"])
    print(f"{run} ({model.config.acquisition}, grid {grid.shape}, factor {list(model.factor)})")
    for name, s in scores.items():
        lesion_text = f" / {100 * worst[name]:.1f} %" if lesions else ""
        print(f"  {name:20s} {s['psnr_brain']:.2f} / {s['ssim_brain']:.4f}{lesion_text}")


if __name__ == "__main__":
    torch.set_num_threads(2)
    pairs = sys.argv[1:]
    for case, run in zip(pairs[::2], pairs[1::2]):
        trial(Path(case), Path(run))
