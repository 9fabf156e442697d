"""Motion correction of a 4D ASL series: each volume rigidly realigned to the series' mean (SimpleITK).

A subject moves between the volumes of a control/label series; subtracting and averaging moved
volumes blurs the perfusion image and leaves bright and dark rims where the head moved. Each volume
is registered to the mean of the control and label volumes (normalised correlation, Euler 3D about
the grid's centre, two resolution levels) and resampled onto the series' grid with a cubic B-spline
before the subtraction; ``m0scan`` volumes, whose contrast differs from the background-suppressed
control and label, are registered with Mattes mutual information instead. A volume that the estimated
motion moves by less than :data:`MIN_RESAMPLE_FRACTION` of a voxel (root mean square over the field
of view's voxel centres) is kept as it is: resampling it would only blur it.

Transforms follow :mod:`aslsr.registration`'s convention: a 4x4 matrix in world RAS mm mapping a point
of the reference (the series' grid) to the same anatomy in the moved volume.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import SimpleITK as sitk
from tqdm.auto import tqdm

from .grids import Grid
from .io import Volume
from .registration import FLIP3, itk_seed, matrix_from_sitk, to_sitk

#: A volume is resampled when its RMS displacement over the field of view exceeds this fraction of
#: the smallest voxel size (the registration's own jitter on a still series stays well below it).
MIN_RESAMPLE_FRACTION = 0.1
#: Voxel centres on which the displacement is averaged: every STRIDE-th along each axis.
STRIDE = 2
#: Share of the voxels (random, seeded) on which the metric is evaluated: 2.7x faster than all of
#: them in a trial on the phantom's series, with transforms within 0.02 mm of theirs.
SAMPLING_FRACTION = 0.25
#: The optimiser's step floor: 1e-3 left 0.27-0.28 mm of error on a known motion, 1e-4 0.015 mm (BENCHMARKS.md).
MIN_STEP = 1e-4
#: Shrink factors and smoothing (in voxels) of the two resolution levels.
SHRINK_FACTORS = (2, 1)
SMOOTHING_VOXELS = (1.0, 0.0)


@dataclass
class SeriesMotion:
    """What the realignment found and did, per volume in file order of the volumes it saw."""

    volume_indices: list[int] = field(default_factory=list)  # positions in the 4D series (0-based)
    matrices: list[np.ndarray] = field(default_factory=list)  # reference world -> volume world, RAS mm
    displacement_mm: list[float] = field(default_factory=list)  # RMS over the field of view's voxel centres
    resampled: list[int] = field(default_factory=list)  # positions of the volumes that were resampled

    def to_dict(self) -> dict:
        """A JSON-ready summary (mm) for ``report.json`` (no timing: a repeated run describes its inputs alike)."""
        shifts = np.asarray(self.displacement_mm, dtype=np.float64)
        return {
            "volumes_registered": len(self.volume_indices),
            "volumes_resampled": len(self.resampled),
            "max_displacement_mm": round(float(shifts.max()), 3) if shifts.size else 0.0,
            "mean_displacement_mm": round(float(shifts.mean()), 3) if shifts.size else 0.0,
            "displacement_mm": [round(float(v), 3) for v in shifts],
        }


class SeriesAligner:
    """Realigns volumes of one series to ``reference`` (the mean control/label image on the series' grid).

    Call it with ``(index, volume)`` for each volume (float array, NIfTI voxel order on the reference's
    grid); it returns the volume realigned (or unchanged) and records the motion in :attr:`motion`.
    ``mutual_information`` names the volume positions (e.g. ``m0scan``) registered with Mattes MI;
    ``progress``, a progress bar that each volume advances by one.
    """

    def __init__(
        self,
        reference: Volume,
        *,
        mutual_information: frozenset[int] = frozenset(),
        seed: int = 0,
        progress: tqdm | None = None,
    ):
        self.grid = reference.grid
        self.progress = progress
        self.reference = to_sitk(Volume(reference.data.astype(np.float32), reference.grid))
        self.mutual_information = mutual_information
        self.seed = seed
        self.centre = FLIP3 @ self.grid.center
        self.points = field_of_view_points(self.grid)
        self.motion = SeriesMotion()

    def __call__(self, index: int, volume: np.ndarray) -> np.ndarray:
        if self.progress is not None:
            self.progress.update()
        if not np.isfinite(volume).all():  # left as it is, for the NaN check (or --nan-to-zero) downstream
            return volume
        moving = to_sitk(Volume(np.asarray(volume, dtype=np.float32), self.grid))
        transform = register_volume(
            self.reference, moving, self.centre, mutual_information=index in self.mutual_information, seed=self.seed
        )
        matrix = matrix_from_sitk(transform)
        shift = rms_displacement_mm(matrix, self.points)
        self.motion.volume_indices.append(index)
        self.motion.matrices.append(matrix)
        self.motion.displacement_mm.append(shift)
        if shift > MIN_RESAMPLE_FRACTION * float(np.min(self.grid.voxel_size)):
            volume = resample_volume(moving, self.reference, transform)
            self.motion.resampled.append(index)
        return volume


def register_volume(
    fixed: sitk.Image,
    moving: sitk.Image,
    centre: np.ndarray,
    *,
    mutual_information: bool = False,
    seed: int = 0,
    sampling: float | None = SAMPLING_FRACTION,
    min_step: float = MIN_STEP,
) -> sitk.Euler3DTransform:
    """The rigid transform (ITK, LPS, fixed -> moving points) that best aligns ``moving`` with ``fixed``.

    ``centre``: the rotation centre in LPS mm. ``sampling``: the fraction of voxels the metric samples
    (seeded; None: all); ``min_step``: the optimiser's step floor. Starts from the identity; if the
    optimiser fails (e.g. no overlap), the identity is returned (the volume is then taken as not moved).
    """
    transform = sitk.Euler3DTransform()
    transform.SetCenter([float(v) for v in centre])
    method = sitk.ImageRegistrationMethod()
    if mutual_information:
        method.SetMetricAsMattesMutualInformation(numberOfHistogramBins=32)
    else:
        method.SetMetricAsCorrelation()
    if sampling is not None:
        method.SetMetricSamplingStrategy(method.RANDOM)
        method.SetMetricSamplingPercentage(sampling, itk_seed(seed))
    method.SetInterpolator(sitk.sitkLinear)
    method.SetNumberOfThreads(1)
    method.SetShrinkFactorsPerLevel(list(SHRINK_FACTORS))
    method.SetSmoothingSigmasPerLevel(list(SMOOTHING_VOXELS))
    method.SmoothingSigmasAreSpecifiedInPhysicalUnitsOff()
    method.SetOptimizerAsRegularStepGradientDescent(
        learningRate=1.0,
        minStep=min_step,
        numberOfIterations=200,
        relaxationFactor=0.5,
        gradientMagnitudeTolerance=1e-8,
    )
    method.SetOptimizerScalesFromPhysicalShift()
    method.SetInitialTransform(transform, inPlace=True)
    try:
        method.Execute(fixed, moving)
    except RuntimeError:
        identity = sitk.Euler3DTransform()
        identity.SetCenter([float(v) for v in centre])
        return identity
    return transform


def resample_volume(moving: sitk.Image, reference: sitk.Image, transform: sitk.Transform) -> np.ndarray:
    """``moving`` on ``reference``'s grid through ``transform`` (cubic B-spline; beyond the field of view
    the nearest voxel, so that no volume gets zeros its pair partner lacks). NIfTI voxel order, float32."""
    moved = sitk.Resample(
        moving, reference, transform, sitk.sitkBSpline, 0.0, sitk.sitkFloat32, useNearestNeighborExtrapolator=True
    )
    return np.ascontiguousarray(sitk.GetArrayFromImage(moved).transpose(2, 1, 0))


def rms_displacement_mm(matrix: np.ndarray, points: np.ndarray) -> float:
    """Root mean square distance (mm) that ``matrix`` (4x4, RAS) moves ``points`` (n x 3, RAS mm)."""
    moved = points @ np.asarray(matrix)[:3, :3].T + np.asarray(matrix)[:3, 3]
    return float(np.sqrt(np.mean(np.sum((moved - points) ** 2, axis=1))))


def field_of_view_points(grid: Grid) -> np.ndarray:
    """World RAS positions (mm, n x 3) of every STRIDE-th voxel centre of ``grid`` along each axis."""
    axes = [np.arange(0, n, STRIDE, dtype=np.float64) for n in grid.shape]
    voxels = np.stack(np.meshgrid(*axes, indexing="ij"), axis=-1).reshape(-1, 3)
    return voxels @ grid.affine[:3, :3].T + grid.affine[:3, 3]
