"""Generation only: a finished run's model applied with the flip ensemble on and off at the run's own target
(the generator's input: the run's dtv.nii.gz, as the default does beyond the learnt zoom or with a box model),
scored in the brain against the noise-free reference or the 1 mm truth averaged onto the run's grid.

    python flip_check.py CASE RUN [CASE RUN ...]
"""

import json
import sys
import time
from pathlib import Path

import torch
from input_trial import on_grid, reference

from aslsr import metrics
from aslsr.config import replace
from aslsr.generate import super_resolve
from aslsr.io import load_volume
from aslsr.model import Model


def check(case: Path, run: Path) -> None:
    model = Model.load(run / "model.pt")
    config = json.loads((run / "report.json").read_text())["config"]
    model.config = replace(model.config, **{k: v for k, v in config.items() if k.startswith("acquisition")})
    asl, t1 = load_volume(case / "asl_lr.nii.gz"), load_volume(run / "t1_registered.nii.gz")
    dtv = load_volume(run / "dtv.nii.gz").data
    images = {}
    for flips in (True, False):
        model.config = replace(model.config, flip_ensemble=flips)
        started = time.perf_counter()
        images[f"flip_ensemble={flips}"] = super_resolve(
            model, asl, t1, t1.grid, device=torch.device("cpu"), t1_on_target=t1.data, dtv_on_target=dtv
        )
        print(f"{run} flip_ensemble={flips}: generation {time.perf_counter() - started:.1f} s")
    scores = metrics.evaluate(reference(case, t1.grid), images, mask=on_grid(case / "mask.nii.gz", t1.grid))
    for name, s in scores.items():
        print(f"  {name:20s} {s['psnr_brain']:.2f} / {s['ssim_brain']:.4f}")


if __name__ == "__main__":
    torch.set_num_threads(2)
    pairs = sys.argv[1:]
    for case, run in zip(pairs[::2], pairs[1::2]):
        check(Path(case), Path(run))
