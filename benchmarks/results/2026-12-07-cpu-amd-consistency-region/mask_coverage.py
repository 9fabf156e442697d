"""How much of the phantom's brain (LR grid) the mask made from the T1 covers, with and without its skull.

    python mask_coverage.py CASE_DIR RUN_DIR

CASE_DIR: an ``aslsr simulate`` folder; RUN_DIR: a run on its NR grid (its ``t1_registered.nii.gz``). The
"stripped" T1 is the registered T1 set to 0 outside the phantom's brain mask.
"""

import sys
from pathlib import Path

import numpy as np

from aslsr.grids import resample
from aslsr.io import Volume, load_volume
from aslsr.masking import derive_mask

case, run = Path(sys.argv[1]), Path(sys.argv[2])
t1 = load_volume(run / "t1_registered.nii.gz")
asl = load_volume(case / "asl_lr.nii.gz")
truth = load_volume(case / "mask_lr.nii.gz", allow_constant=True).data > 0.5
brain = load_volume(case / "mask.nii.gz", allow_constant=True)
inside = resample(brain.data.astype(np.float32), brain.affine, t1.grid, order=0) > 0.5
for name, image in (("T1 with skull", t1), ("T1 stripped", Volume(t1.data * inside, t1.grid))):
    mask = derive_mask(None, image, asl.grid)
    print(
        f"{name}: mask {mask.sum()} LR voxels, {(mask & truth).sum()} of the brain's {truth.sum()} "
        f"({100 * (mask & truth).sum() / truth.sum():.1f} %), {(mask & ~truth).sum()} outside it"
    )
