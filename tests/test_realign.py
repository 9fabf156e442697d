"""Motion correction of a 4D ASL series: known rigid motions between volumes, recovered and undone."""

from __future__ import annotations

import json
from pathlib import Path

import nibabel as nib
import numpy as np
import pytest
import SimpleITK as sitk
from scipy import ndimage

from aslsr.aslseries import load_asl_series
from aslsr.errors import InputError
from aslsr.grids import Grid
from aslsr.inputs import TargetSpec, load_inputs
from aslsr.io import Volume
from aslsr.realign import (
    SeriesAligner,
    SeriesMotion,
    field_of_view_points,
    register_volume,
    resample_volume,
    rms_displacement_mm,
)
from aslsr.registration import FLIP3, matrix_from_sitk, to_sitk

SHAPE = (36, 32, 20)
#: 3 x 3 x 4 mm voxels stored LAS, a little oblique
AFFINE = np.array([[-3.0, 0.0, 0.3, 50.0], [0.0, 3.0, 0.0, -40.0], [0.0, 0.0, 4.0, -30.0], [0.0, 0.0, 0.0, 1.0]])
GRID = Grid(SHAPE, AFFINE)


def _head(seed: int = 0) -> np.ndarray:
    """A smooth head-like image: an ellipsoid with bright and dark blobs inside (float32)."""
    rng = np.random.default_rng(seed)
    i, j, k = np.meshgrid(*[np.linspace(-1, 1, n) for n in SHAPE], indexing="ij")
    head = ((i / 0.8) ** 2 + (j / 0.85) ** 2 + (k / 0.75) ** 2 < 1).astype(np.float64)
    blobs = ndimage.gaussian_filter(rng.standard_normal(SHAPE), 2.0)
    return (ndimage.gaussian_filter(head, 1.0) * (100 + 30 * blobs / blobs.std())).astype(np.float32)


def _motion(angles_deg, shift_mm) -> sitk.Euler3DTransform:
    transform = sitk.Euler3DTransform()
    transform.SetCenter([float(v) for v in FLIP3 @ GRID.center])
    transform.SetRotation(*[float(np.deg2rad(a)) for a in angles_deg])
    transform.SetTranslation([float(v) for v in shift_mm])
    return transform


def _moved(volume: np.ndarray, transform: sitk.Transform) -> np.ndarray:
    """``volume`` with its content moved by ``transform`` (reference point p -> p' in the moved volume)."""
    image = to_sitk(Volume(volume, GRID))
    return resample_volume(image, image, transform.GetInverse())


def _series(folder: Path, motions: list[sitk.Transform | None]) -> tuple[Path, np.ndarray]:
    """m0scan, then control/label pairs (one per motion pair); returns the path and the true deltaM."""
    m0 = _head()
    deltam = 0.01 * m0 * (1 + np.clip(ndimage.gaussian_filter(np.random.default_rng(1).random(SHAPE), 3), 0, 1))
    control = 0.2 * m0 + 2.0
    volumes = [m0] + [control, control - deltam] * (len(motions) // 2)
    types = ["m0scan"] + ["control", "label"] * (len(motions) // 2)
    moved = [volumes[0]] + [v if m is None else _moved(v, m) for v, m in zip(volumes[1:], motions)]
    path = folder / "sub-01_asl.nii.gz"
    folder.mkdir(parents=True, exist_ok=True)
    nib.save(nib.Nifti1Image(np.stack(moved, axis=-1).astype(np.float32), AFFINE), str(path))
    (folder / "sub-01_aslcontext.tsv").write_text("volume_type\n" + "".join(f"{t}\n" for t in types))
    (folder / "sub-01_asl.json").write_text(json.dumps({"M0Type": "Included"}))
    return path, deltam.astype(np.float32)


def test_register_volume_recovers_a_known_rigid_motion():
    truth = _motion((2.0, -1.5, 3.0), (2.0, -1.0, 1.5))
    head = _head()
    estimate = register_volume(
        to_sitk(Volume(head, GRID)), to_sitk(Volume(_moved(head, truth), GRID)), FLIP3 @ GRID.center
    )
    error = rms_displacement_mm(np.linalg.inv(matrix_from_sitk(truth)) @ matrix_from_sitk(estimate), _points())
    moved = rms_displacement_mm(matrix_from_sitk(truth), _points())
    assert moved > 3.0 and error < 0.1


def test_a_still_series_is_left_exactly_as_it_is(tmp_path):
    path, _ = _series(tmp_path, [None] * 6)
    realigned, plain = load_asl_series(path), load_asl_series(path, realign=False)
    np.testing.assert_array_equal(realigned.perfusion.data, plain.perfusion.data)
    summary = realigned.motion.to_dict()
    assert summary["volumes_registered"] == 7 and summary["volumes_resampled"] == 0
    assert summary["max_displacement_mm"] < 0.1 * 3.0
    assert plain.motion is None


def test_realignment_undoes_motion_between_volumes(tmp_path):
    # motion about the first pair's position, so that the series' mean (the reference) lies there
    steps = (-2, -1, 1, 2, 0, 0)
    motions = [_motion((0.5 * n, -0.3 * n, 0.4 * n), (0.6 * n, -0.4 * n, 0.5 * n)) if n else None for n in steps]
    path, deltam = _series(tmp_path, motions)
    brain = ndimage.binary_erosion(_head() > 50, iterations=3)
    errors = {}
    for realign in (True, False):
        series = load_asl_series(path, realign=realign)
        errors[realign] = float(np.sqrt(np.mean((series.perfusion.data - deltam)[brain] ** 2)))
    summary = load_asl_series(path).motion.to_dict()
    true_shifts = [rms_displacement_mm(matrix_from_sitk(m), _points()) if m else 0.0 for m in motions]
    assert errors[True] < 0.05 * errors[False]
    assert summary["volumes_resampled"] == 4  # the still pair and the M0 are kept as they are
    np.testing.assert_allclose(summary["displacement_mm"], [0.0, *true_shifts], atol=0.1)


def test_the_aligner_records_each_volume_and_keeps_a_volume_with_nan_for_the_nan_check(tmp_path):
    head = _head()
    aligner = SeriesAligner(Volume(head, GRID))
    with_nan = head.copy()
    with_nan[0, 0, 0] = np.nan
    assert aligner(3, with_nan) is with_nan
    assert aligner(4, head) is head
    assert isinstance(aligner.motion, SeriesMotion) and aligner.motion.volume_indices == [4]

    path, _ = _series(tmp_path, [None, _motion((2, 0, 0), (2, 0, 0))])
    image = nib.load(path)
    data = image.get_fdata(dtype=np.float32)
    data[5, 5, 5, 2] = np.nan
    nib.save(nib.Nifti1Image(data, AFFINE), str(path))
    with pytest.raises(InputError, match="NaN"):
        load_asl_series(path)


def test_the_run_inputs_describe_the_realignment(tmp_path):
    steps = (0, 0, 1, 1)
    path, _ = _series(tmp_path, [_motion((n, 0, 0), (0, 2.0 * n, 0)) if n else None for n in steps])
    t1 = tmp_path / "t1.nii.gz"
    nib.save(nib.Nifti1Image(_head(seed=2), AFFINE), str(t1))
    realigned = load_inputs(path, t1, None, TargetSpec(zoom=(2.0, 2.0, 2.0)))
    assert realigned.description["realignment"]["volumes_resampled"] >= 2  # the moved pair (and the mean moved)
    assert load_inputs(path, t1, None, TargetSpec(), realign=False).description["realignment"] is None


def _points() -> np.ndarray:
    return field_of_view_points(GRID)
