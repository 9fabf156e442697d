"""Registration error against known rigid motions larger than the unit tests' (<= 8 deg, 10 mm).

The fixed image and the moved T1 are tests/test_registration.py's (an M0-like image box-averaged onto a
64 x 48 x 48 grid of 3.75 x 3.75 x 2.5 mm with noise; the MNI T1 with its affine moved), metric restricted to the
fixed image's brain mask as a run does. Rotation vectors of norm 10, 15, 20 and 30 degrees and shifts of 15, 20,
25 and 30 mm, three random directions each (``SEED`` picks them); error = largest displacement over a brain-sized
box and the rotation left over.

    python registration_sweep.py SEED [SLICES THICKNESS_MM]   (a slab of SLICES slices instead of 48 x 2.5 mm)
"""

import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[3] / "tests"))
from test_registration import CENTRE, COARSE, asl_grid, errors, m0_on, moved_t1

from aslsr.grids import rigid_matrix
from aslsr.masking import brain_mask_from_image
from aslsr.phantom import load_anatomy
from aslsr.registration import register_rigid

anatomy = load_anatomy()
m0 = (0.87 * anatomy.gm + 0.73 * anatomy.wm + 1.0 * anatomy.csf) * 1000.0
mni = {"t1": anatomy.t1 / 255.0, "affine": anatomy.grid.affine, "m0": m0}
rng = np.random.default_rng(int(sys.argv[1]) if len(sys.argv) > 1 else 0)
(shape, voxel) = ((64, 48, int(sys.argv[2])), (3.75, 3.75, float(sys.argv[3]))) if len(sys.argv) > 3 else COARSE
for max_rot, max_shift in [(10, 15), (15, 20), (20, 25), (30, 30)]:
    for k in range(3):
        direction = rng.normal(size=3)
        direction /= np.linalg.norm(direction)
        rot = direction * max_rot
        sdir = rng.normal(size=3)
        sdir /= np.linalg.norm(sdir)
        shift = sdir * max_shift
        fixed = m0_on(mni, asl_grid(shape, voxel))
        motion = rigid_matrix(tuple(rot), tuple(shift), CENTRE)
        t0 = time.time()
        result = register_rigid(fixed, moved_t1(mni, motion), seed=0, fixed_mask=brain_mask_from_image(fixed))
        mm, deg = errors(result.matrix, motion, fixed.grid)
        print(
            f"rot {np.round(rot, 1)} shift {np.round(shift, 1)}: error {mm:.2f} mm {deg:.2f} deg "
            f"{time.time() - t0:.1f}s warnings={len(result.warnings)} "
            f"metric {result.metric_before:.3f} -> {result.metric_after:.3f}",
            flush=True,
        )
