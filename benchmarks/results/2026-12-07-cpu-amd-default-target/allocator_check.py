"""The default target's dTV and generation timed with glibc's default malloc and with
``aslsr.devices.keep_freed_memory`` (each stage in its own fresh process, 2 threads), same inputs.

Prints wall seconds, CPU seconds in user and kernel mode, minor page faults and the largest difference
between the two images (the arithmetic is the same, so it should be 0).

    python allocator_check.py CASE_DIR RUN_DIR
    (RUN_DIR: an ``aslsr run`` of CASE_DIR at the default target, with model.pt and t1_registered.nii.gz)
"""

import resource
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

STAGE = """
import sys, numpy as np, torch
from aslsr.devices import keep_freed_memory
if sys.argv[4] == "keep":
    assert keep_freed_memory()
torch.set_num_threads(2)
from aslsr.baselines import dtv_baseline
from aslsr.generate import super_resolve
from aslsr.io import load_volume
from aslsr.model import Model
case, run, stage = sys.argv[1:4]
model = Model.load(f"{run}/model.pt")
asl, t1 = load_volume(f"{case}/asl_lr.nii.gz"), load_volume(f"{run}/t1_registered.nii.gz")
cpu = torch.device("cpu")
if stage == "dtv":
    image = dtv_baseline(asl, t1.data, t1.grid, model.config, device=cpu).image
else:
    dtv = load_volume(f"{run}/dtv.nii.gz").data
    image = super_resolve(model, asl, t1, t1.grid, device=cpu, t1_on_target=t1.data, dtv_on_target=dtv)
np.save(sys.argv[5], image)
"""


def timed(case: str, run: str, stage: str, allocator: str, out: Path) -> dict:
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    started = time.perf_counter()
    subprocess.run([sys.executable, "-c", STAGE, case, run, stage, allocator, str(out)], check=True)
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    return {
        "wall_s": time.perf_counter() - started,
        "user_s": after.ru_utime - before.ru_utime,
        "kernel_s": after.ru_stime - before.ru_stime,
        "minor_faults": after.ru_minflt - before.ru_minflt,
    }


def main() -> None:
    case, run = sys.argv[1:3]
    out = Path(run)
    for stage in ("dtv", "generation"):
        images = {}
        for allocator in ("default", "keep"):
            path = Path("/tmp") / f"allocator_check_{stage}_{allocator}.npy"
            row = timed(case, run, stage, allocator, path)
            images[allocator] = np.load(path)
            path.unlink()
            cells = ", ".join(f"{k} {v:.1f}" if isinstance(v, float) else f"{k} {v}" for k, v in row.items())
            print(f"{stage:10s} malloc {allocator:7s}: {cells}")
        print(f"{stage:10s} largest difference: {float(np.abs(images['default'] - images['keep']).max())}")
    print(f"(run folder {out})")


if __name__ == "__main__":
    main()
