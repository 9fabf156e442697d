"""The realignment of generalisation.py's bids4d-motion series, against the motion that made it.

    python realign_check.py GENERALISATION_OUT

GENERALISATION_OUT: the --out folder of `benchmarks/generalisation.py --variants bids4d bids4d-motion ...`
(it holds the unmoved series under bids4d/ and the moved one under bids4d-motion/, and generalisation.json
with each volume's motion). Prints, per moved volume, the true and the estimated RMS displacement over the
field of view and the error of the estimate (mm); then the RMS difference in the brain between the deltaM of
the unmoved series and that of the moved series: as it is (--no-realign), realigned by aslsr, and put back
with the true motion (cubic B-spline, as aslsr resamples).
"""

from __future__ import annotations

import glob
import json
import sys
from pathlib import Path

import nibabel as nib
import numpy as np
import SimpleITK as sitk

from aslsr.aslseries import load_asl_series
from aslsr.grids import Grid
from aslsr.io import Volume, load_volume
from aslsr.realign import field_of_view_points, resample_volume, rms_displacement_mm
from aslsr.registration import FLIP3, matrix_from_sitk, to_sitk


def true_motion(entry: dict, grid: Grid) -> sitk.Euler3DTransform:
    motion = sitk.Euler3DTransform()
    motion.SetCenter([float(v) for v in FLIP3 @ grid.center])
    motion.SetRotation(*[float(np.deg2rad(a)) for a in entry["rotation_deg"]])
    motion.SetTranslation([float(v) for v in entry["translation_mm"]])
    return motion


def deltam(series: np.ndarray) -> np.ndarray:
    return series[..., 1::2].mean(-1) - series[..., 2::2].mean(-1)  # m0scan first, then control/label pairs


def main(out: Path) -> None:
    results = {r["name"]: r for r in json.loads((out / "generalisation.json").read_text())["results"]}
    still_path = out / "bids4d/bids/sub-01/perf/sub-01_asl.nii.gz"
    moved_path = out / "bids4d-motion/bids/sub-01/perf/sub-01_asl.nii.gz"
    image = nib.load(str(still_path))
    still = image.get_fdata(dtype=np.float32)
    moved = nib.load(str(moved_path)).get_fdata(dtype=np.float32)
    grid = Grid(still.shape[:3], image.affine)
    points = field_of_view_points(grid)
    motions = {entry["volume"]: true_motion(entry, grid) for entry in results["bids4d-motion"]["series_motion"]}
    realigned = load_asl_series(moved_path)
    print("volume | true displacement mm | estimated | error of the estimate")
    for index, matrix in zip(realigned.motion.volume_indices, realigned.motion.matrices):
        truth = matrix_from_sitk(motions[index]) if index in motions else np.eye(4)
        error = rms_displacement_mm(np.linalg.inv(truth) @ matrix, points)
        shifts = (rms_displacement_mm(truth, points), rms_displacement_mm(matrix, points), error)
        print(f"{index} | " + " | ".join(f"{v:.3f}" for v in shifts))
    put_back = moved.copy()
    reference = to_sitk(Volume(still[..., 0], grid))
    for index, motion in motions.items():
        put_back[..., index] = resample_volume(to_sitk(Volume(moved[..., index], grid)), reference, motion)
    masks = glob.glob(str(out / "bids4d/bids/derivatives/phantom/sub-01/perf/*desc-brain_mask.nii.gz"))
    brain = next(m.data > 0 for m in (load_volume(p, allow_constant=True) for p in masks) if m.grid == grid)
    unmoved = deltam(still)
    print(f"deltaM of the unmoved series, RMS in the brain: {np.sqrt(np.mean(unmoved[brain] ** 2)):.3f}")
    for label, value in (
        ("moved, not realigned", deltam(moved)),
        ("realigned by aslsr", realigned.perfusion.data),
        ("put back with the true motion", deltam(put_back)),
    ):
        rms = np.sqrt(np.mean((value - unmoved)[brain] ** 2))
        print(f"{label}: RMS difference to the unmoved deltaM in the brain {rms:.3f}")


if __name__ == "__main__":
    main(Path(sys.argv[1]))
