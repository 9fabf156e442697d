"""The fixed dTV baseline of #14 (box acquisition, the default setting) on prepared panel cases at the NR grid.

    python dtv_box_nr.py CASES_DIR CASE [CASE ...]

Each case folder holds ``asl_lr.nii.gz``, ``t1.nii.gz`` (registered onto the NR grid), ``ref_clean.nii.gz`` and
``mask.nii.gz``; prints PSNR / SSIM in the brain against ``ref_clean`` and the solver's iterations.
"""

import sys
from pathlib import Path

import torch
from score_runs import on_grid

from aslsr import metrics
from aslsr.baselines import dtv_baseline
from aslsr.config import preset
from aslsr.io import load_volume

if __name__ == "__main__":
    torch.set_num_threads(2)
    for name in sys.argv[2:]:
        case = Path(sys.argv[1]) / name
        reference = load_volume(case / "ref_clean.nii.gz")
        t1 = load_volume(case / "t1.nii.gz")
        assert t1.grid == reference.grid, "a prepared case has its T1 on the NR grid"
        asl = load_volume(case / "asl_lr.nii.gz")
        result = dtv_baseline(asl, t1.data, reference.grid, preset("fast", acquisition="box"))
        mask = on_grid(case / "mask.nii.gz", reference.grid)
        s = metrics.evaluate(reference.data, {"dtv": result.image}, mask=mask)["dtv"]
        print(f"{name}: dTV (box) {s['psnr_brain']:.2f} / {s['ssim_brain']:.4f}, {result.iterations} iterations")
