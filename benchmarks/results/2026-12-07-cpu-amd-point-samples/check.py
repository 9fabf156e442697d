import sys
import time
from pathlib import Path

from aslsr.acquisition_estimate import point_sampling_check
from aslsr.io import load_volume

for case in map(Path, sys.argv[1:]):
    m0 = load_volume(case / "m0_lr.nii.gz")
    t1 = load_volume(case / "t1w_aligned.nii.gz")
    mask = load_volume(case / "mask_lr.nii.gz", allow_constant=True).data > 0.5
    t = time.perf_counter()
    c = point_sampling_check(m0, t1, mask)
    print(
        case.name if case.name != "case" else case.parent.name,
        round(c.box_error, 3),
        round(c.point_error, 3),
        round(c.ratio, 3),
        c.fwhm_mm,
        f"{time.perf_counter() - t:.1f}s",
        flush=True,
    )
