"""The realignment's optimiser step floor, on tests/test_realign.py's synthetic head (one known motion).

    python realign_step.py   (from the repository root's tests/ on sys.path, as below)

aslsr.realign.register_volume (2 levels, correlation, linear interpolation) with minStep 1e-3 and 1e-4, with 25 %
of the voxels sampled (seeded, as aslsr does) and with all of them; prints the RMS error over the field of view (mm)
of the estimated transform against the true one.
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[3] / "tests"))
from test_realign import GRID, _head, _motion, _moved  # noqa: E402

from aslsr.io import Volume  # noqa: E402
from aslsr.realign import field_of_view_points, register_volume, rms_displacement_mm  # noqa: E402
from aslsr.registration import FLIP3, matrix_from_sitk, to_sitk  # noqa: E402


def main() -> None:
    truth = _motion((2.0, -1.5, 3.0), (2.0, -1.0, 1.5))
    head = _head()
    fixed, moving = to_sitk(Volume(head, GRID)), to_sitk(Volume(_moved(head, truth), GRID))
    points = field_of_view_points(GRID)
    for min_step in (1e-3, 1e-4):
        for fraction in (0.25, None):
            transform = register_volume(fixed, moving, FLIP3 @ GRID.center, sampling=fraction, min_step=min_step)
            found = matrix_from_sitk(transform)
            error = rms_displacement_mm(np.linalg.inv(matrix_from_sitk(truth)) @ found, points)
            print(f"minStep {min_step:g}, sampled {fraction or 1.0:.0%}: error {error:.3f} mm")


if __name__ == "__main__":
    main()
