"""Rigid registration of the T1-weighted image to an ASL-space structural image (SimpleITK).

Convention (used by the rest of the package): a registration is a 4x4 matrix ``T`` in world RAS
millimetres that maps a point of the ASL (fixed) world to the corresponding point of the T1
(moving) world, i.e. ITK's fixed -> moving transform converted from LPS to RAS
(``T_ras = F4 @ T_lps @ F4``, ``F4 = diag(-1, -1, 1, 1)``). The registered T1 is the same voxel
array with affine ``inv(T) @ t1.affine`` (:func:`apply_registration`); put it on any ASL grid with
:func:`aslsr.grids.resample`.

Method: Mattes mutual information (random sampling with a fixed seed, so runs are repeatable),
Euler 3D transform rotating about the fixed image's centre, regular-step gradient descent with
scales from physical shifts, three resolution levels with smoothing in mm. The T1 is first
block-averaged to about 2 mm voxels and blurred to the fixed image's resolution (it is compared
with ASL-resolution images anyway). Two starts
are tried: the scanner (world) alignment as given and a centre-of-mass alignment; the one with the
better final metric wins. Where that metric stays weak (``RESCUE_METRIC``), six starts turned by 25 degrees
about each axis are tried as well.
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import SimpleITK as sitk

from .grids import Grid, rotation_angle_deg
from .io import Volume

FLIP3 = np.diag([-1.0, -1.0, 1.0])
FLIP4 = np.diag([-1.0, -1.0, 1.0, 1.0])

#: Histogram bins of the Mattes mutual information.
BINS = 32
#: Random metric samples aimed at per resolution level (fewer when the image has fewer voxels).
SAMPLES = 30000
#: Resolution levels: target sampling (mm) used to choose the shrink factors, and smoothing sigmas (mm).
LEVEL_RESOLUTION_MM = (8.0, 4.0, 0.0)
LEVEL_SIGMA_MM = (4.0, 2.0, 0.0)
#: The T1 is averaged down to this voxel size (mm) before registration when its voxels are smaller.
MOVING_VOXEL_MM = 2.0
#: Point-spread sd of a voxel as a fraction of its size (a box of width 1 has sd 1/sqrt(12) = 0.29).
PSF_FRACTION = 0.3
#: Threads used by ITK during registration: one thread makes repeated runs bit-identical (with 2+
#: threads the summation order varies, ~1e-9 mm differences) and costs little here.
THREADS = 1
#: Warning thresholds: weakest acceptable final MI (Mattes, negative), tolerated metric increase,
#: smallest acceptable fraction of the fixed field of view covered by the registered T1.
WEAK_METRIC = -0.05
#: A final MI weaker than this tries six more starts, turned by RESCUE_ROTATION_DEG about each axis: aligned
#: M0-like/T1 pairs read -0.8 to -1.3, misaligned ones -0.01 to -0.07, and a T1 turned by ~30 degrees could stop
#: at -0.06 from both usual starts (benchmarks/results/2026-12-07-cpu-amd-t1-head/registration_sweep.txt).
RESCUE_METRIC = -0.2
RESCUE_ROTATION_DEG = 25.0
METRIC_TOLERANCE = 0.005
MIN_OVERLAP = 0.5


@dataclass(frozen=True)
class RegistrationResult:
    """Outcome of a rigid T1 -> ASL registration.

    ``matrix``: 4x4, ASL world (RAS mm) -> T1 world (RAS mm). ``metric_before`` / ``metric_after``:
    Mattes mutual information (more negative = better) at the scanner alignment and at the result,
    computed with identical settings at full resolution (NaN when no metric was run).
    ``rotation_deg``: total rotation angle (degrees). ``translation_mm``: displacement (mm) of the
    fixed image's FOV centre, ``|T(c) - c|``. ``seconds``: wall time. ``warnings``: problems found.
    """

    matrix: np.ndarray
    metric_before: float
    metric_after: float
    rotation_deg: float
    translation_mm: float
    seconds: float
    warnings: tuple[str, ...] = field(default_factory=tuple)

    def to_dict(self) -> dict:
        """A JSON-able summary (plain floats and lists; NaN metrics become ``None``)."""

        def number(value: float) -> float | None:
            return None if not np.isfinite(value) else round(float(value), 6)

        return {
            "matrix_asl_to_t1_ras_mm": [[round(float(v), 6) for v in row] for row in self.matrix],
            "metric": "mattes_mutual_information",
            "metric_before": number(self.metric_before),
            "metric_after": number(self.metric_after),
            "rotation_deg": number(self.rotation_deg),
            "translation_mm": number(self.translation_mm),
            "seconds": number(self.seconds),
            "warnings": list(self.warnings),
        }


def to_sitk(volume: Volume) -> sitk.Image:
    """The volume as a float32 SimpleITK image with the same world geometry (ITK's LPS convention).

    A sheared affine (non-orthogonal axes, which ITK cannot represent) is replaced by the nearest
    orthogonal directions with the same voxel sizes.
    """
    grid = volume.grid
    spacing = grid.voxel_size
    directions = _nearest_orthogonal(grid.directions)
    array = np.ascontiguousarray(np.transpose(np.asarray(volume.data, dtype=np.float32), (2, 1, 0)))
    image = sitk.GetImageFromArray(array)
    image.SetSpacing([float(v) for v in spacing])
    image.SetDirection([float(v) for v in (FLIP3 @ directions).ravel()])
    image.SetOrigin([float(v) for v in FLIP3 @ grid.affine[:3, 3]])
    return image


def matrix_from_sitk(transform: sitk.Transform) -> np.ndarray:
    """4x4 RAS matrix of an ITK (LPS, fixed -> moving) affine-type transform."""
    lps = np.eye(4)
    lps[:3, :3] = np.reshape(transform.GetMatrix(), (3, 3))
    center = np.asarray(transform.GetCenter())
    lps[:3, 3] = np.asarray(transform.GetTranslation()) + center - lps[:3, :3] @ center
    return FLIP4 @ lps @ FLIP4


def sitk_from_matrix(matrix: np.ndarray) -> sitk.AffineTransform:
    """ITK (LPS) affine transform equal to the 4x4 RAS matrix ``matrix``."""
    lps = FLIP4 @ np.asarray(matrix, dtype=np.float64) @ FLIP4
    transform = sitk.AffineTransform(3)
    transform.SetMatrix([float(v) for v in lps[:3, :3].ravel()])
    transform.SetTranslation([float(v) for v in lps[:3, 3]])
    return transform


def register_rigid(
    fixed: Volume,
    moving: Volume,
    *,
    seed: int = 0,
    fixed_mask: np.ndarray | None = None,
    max_rotation_deg: float = 30.0,
) -> RegistrationResult:
    """Rigidly register ``moving`` (the T1) to ``fixed`` (M0, mean control or perfusion image).

    ``fixed_mask`` (bool, on the fixed grid) restricts the metric to those voxels (e.g. the brain);
    without it the whole fixed FOV is used. ``seed`` fixes the random metric sampling. Returns the
    ASL world -> T1 world matrix (RAS mm) with metrics and warnings; see :class:`RegistrationResult`.

    Warnings are raised (returned, not thrown) when the final similarity is weak (MI above
    ``WEAK_METRIC``: the images share little structure, e.g. a noise image), when the metric ended
    worse than at the scanner alignment, when the rotation exceeds ``max_rotation_deg`` (degrees),
    or when the registered T1 covers less than ``MIN_OVERLAP`` of the fixed field of view. An input
    that is already aligned gives no warning (the metric then simply does not improve).
    Runtime: about 2-8 s on one core for a 1 mm T1 against a 64x48x48 or 128x96x48 image, ~10 s more where
    the usual starts end weaker than ``RESCUE_METRIC`` and six rotated starts are tried.
    """
    start = time.perf_counter()
    fixed_image = to_sitk(fixed)
    moving_image = _downsampled(to_sitk(moving), fixed.grid.voxel_size)
    mask_image = None
    if fixed_mask is not None:
        mask = np.asarray(fixed_mask, dtype=bool)
        if mask.shape != fixed.grid.shape:
            raise ValueError(f"fixed_mask shape {mask.shape} does not match the fixed grid {fixed.grid.shape}")
        if mask.any():
            mask_image = to_sitk(Volume(mask.astype(np.uint8), fixed.grid))
            mask_image = sitk.Cast(mask_image, sitk.sitkUInt8)
    centre = FLIP3 @ fixed.grid.center
    images = (fixed_image, moving_image, mask_image)
    with _threads(THREADS):
        starts = _starts(fixed_image, moving_image, centre)
        fit = _best_fit(images, starts, fixed.grid, seed)
        if not fit[0] <= RESCUE_METRIC:  # stuck far from the alignment (or nan): start from rotated poses too
            fit = _best_fit(images, _rotated(starts[-1]), fixed.grid, seed, earlier=[fit])
        metric_after, best = fit
        identity = sitk.Euler3DTransform()
        identity.SetCenter([float(v) for v in centre])
        metric_before = _metric(fixed_image, moving_image, mask_image, identity, fixed.grid, seed)
    matrix = matrix_from_sitk(best)
    result = _summary(matrix, fixed.grid, metric_before, metric_after, time.perf_counter() - start)
    return _with_warnings(result, fixed, moving, max_rotation_deg)


def identity_result() -> RegistrationResult:
    """The result for ``--no-register``: identity matrix (scanner alignment), no metric run."""
    return RegistrationResult(np.eye(4), float("nan"), float("nan"), 0.0, 0.0, 0.0, ())


def apply_registration(moving: Volume, result_or_matrix: RegistrationResult | np.ndarray) -> Volume:
    """The moving image (T1) moved into ASL world: same voxels, affine ``inv(T) @ affine``."""
    matrix = result_or_matrix.matrix if isinstance(result_or_matrix, RegistrationResult) else result_or_matrix
    matrix = np.asarray(matrix, dtype=np.float64)
    return Volume(moving.data, Grid(moving.grid.shape, np.linalg.inv(matrix) @ moving.grid.affine))


def save_itk_transform(result: RegistrationResult | np.ndarray, path: str | os.PathLike) -> Path:
    """Write the transform as an ITK text file (``.tfm``; LPS, fixed (ASL) -> moving (T1) points).

    Read back with ``sitk.ReadTransform``; it resamples the T1 onto an ASL image with
    ``sitk.Resample(t1, asl, transform)``, as ANTs/ITK tools expect.
    """
    matrix = result.matrix if isinstance(result, RegistrationResult) else result
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    sitk.WriteTransform(sitk_from_matrix(matrix), str(path))
    return path


def itk_seed(seed: int) -> int:
    """A non-zero ITK seed (SimpleITK reads seed 0 as "use the wall clock", which is not repeatable)."""
    return int(seed) % (2**32 - 1) + 1


# ----------------------------------------------------------------------------- internals


def _nearest_orthogonal(directions: np.ndarray) -> np.ndarray:
    u, _, vt = np.linalg.svd(directions)
    return u @ vt


def _downsampled(image: sitk.Image, fixed_voxel_mm: np.ndarray) -> sitk.Image:
    """The T1 block-averaged (ITK BinShrink) to about MOVING_VOXEL_MM voxels, then blurred to the
    fixed image's resolution (Gaussian, sigma ``PSF_FRACTION`` x the mean fixed voxel size, minus the
    blur the block average already gave), so that both images are compared at the same resolution."""
    factors = [max(1, int(round(MOVING_VOXEL_MM / s))) for s in image.GetSpacing()]
    if max(factors) > 1:
        image = sitk.BinShrink(image, factors)
    target = PSF_FRACTION * float(np.mean(fixed_voxel_mm))
    done = PSF_FRACTION * float(np.mean(image.GetSpacing()))
    if target > done + 0.1:
        image = sitk.SmoothingRecursiveGaussian(image, float(np.sqrt(target**2 - done**2)))
    return image


class _threads:
    """Temporarily set SimpleITK's global default number of threads."""

    def __init__(self, count: int):
        self.count = count

    def __enter__(self) -> None:
        self.previous = sitk.ProcessObject.GetGlobalDefaultNumberOfThreads()
        sitk.ProcessObject.SetGlobalDefaultNumberOfThreads(self.count)

    def __exit__(self, *exc: object) -> None:
        sitk.ProcessObject.SetGlobalDefaultNumberOfThreads(self.previous)


def _starts(fixed: sitk.Image, moving: sitk.Image, centre: np.ndarray) -> list[sitk.Euler3DTransform]:
    """Starting transforms: scanner alignment, and centre-of-mass alignment if it differs (> 5 mm)."""
    identity = sitk.Euler3DTransform()
    identity.SetCenter([float(v) for v in centre])
    starts = [identity]
    try:
        moments = sitk.CenteredTransformInitializer(
            fixed, moving, sitk.Euler3DTransform(), sitk.CenteredTransformInitializerFilter.MOMENTS
        )
        moments = sitk.Euler3DTransform(moments)
    except RuntimeError:  # e.g. an all-zero image has no centre of mass
        return starts
    shift = np.asarray(moments.TransformPoint([float(v) for v in centre])) - centre
    if np.linalg.norm(shift) > 5.0:
        candidate = sitk.Euler3DTransform()
        candidate.SetCenter([float(v) for v in centre])
        candidate.SetTranslation([float(v) for v in shift])
        starts.append(candidate)
    return starts


def _best_fit(
    images: tuple[sitk.Image, sitk.Image, sitk.Image | None],
    starts: list[sitk.Euler3DTransform],
    grid: Grid,
    seed: int,
    earlier: list[tuple[float, sitk.Transform]] | None = None,
) -> tuple[float, sitk.Transform]:
    """(final metric, transform) of the best fit from ``starts`` and ``earlier`` fits; a nan metric counts last.
    ``images``: the fixed image, the moving image and the fixed mask (or None)."""
    fits = list(earlier or [])
    for start in starts:
        transform = _optimise(*images, start, grid, seed)
        fits.append((_metric(*images, transform, grid, seed), transform))
    return min(fits, key=lambda item: np.nan_to_num(item[0], nan=np.inf))


def _rotated(start: sitk.Euler3DTransform) -> list[sitk.Euler3DTransform]:
    """``start`` turned by +-RESCUE_ROTATION_DEG about each axis in turn (six starts, same centre and shift)."""
    starts = []
    for axis in range(3):
        for sign in (-1.0, 1.0):
            angles = [0.0, 0.0, 0.0]
            angles[axis] = sign * np.deg2rad(RESCUE_ROTATION_DEG)
            turned = sitk.Euler3DTransform()
            turned.SetCenter(start.GetCenter())
            turned.SetTranslation(start.GetTranslation())
            turned.SetRotation(*angles)
            starts.append(turned)
    return starts


def _shrink_factors(grid: Grid) -> list[int]:
    size = float(np.min(grid.voxel_size))
    factors = []
    for resolution in LEVEL_RESOLUTION_MM:
        factor = max(1, int(round(resolution / size)))
        while factor > 1 and min(grid.shape) / factor < 8:  # keep at least 8 voxels per axis
            factor -= 1
        factors.append(factor)
    return factors


def _percentage(n_voxels: float) -> float:
    return float(min(1.0, max(0.01, SAMPLES / max(n_voxels, 1.0))))


def _method(fixed_mask: sitk.Image | None, grid: Grid, seed: int) -> sitk.ImageRegistrationMethod:
    method = sitk.ImageRegistrationMethod()
    method.SetMetricAsMattesMutualInformation(numberOfHistogramBins=BINS)
    method.SetMetricSamplingStrategy(method.RANDOM)
    method.SetMetricSamplingPercentage(_percentage(grid.n_voxels), itk_seed(seed))
    method.SetInterpolator(sitk.sitkLinear)
    method.SetNumberOfThreads(THREADS)
    if fixed_mask is not None:
        method.SetMetricFixedMask(fixed_mask)
    return method


def _optimise(
    fixed: sitk.Image,
    moving: sitk.Image,
    fixed_mask: sitk.Image | None,
    start: sitk.Euler3DTransform,
    grid: Grid,
    seed: int,
) -> sitk.Euler3DTransform:
    transform = sitk.Euler3DTransform(start)
    method = _method(fixed_mask, grid, seed)
    factors = _shrink_factors(grid)
    method.SetMetricSamplingPercentagePerLevel([_percentage(grid.n_voxels / f**3) for f in factors], itk_seed(seed))
    method.SetShrinkFactorsPerLevel(factors)
    method.SetSmoothingSigmasPerLevel(list(LEVEL_SIGMA_MM))
    method.SmoothingSigmasAreSpecifiedInPhysicalUnitsOn()
    method.SetOptimizerAsRegularStepGradientDescent(
        learningRate=2.0, minStep=0.01, numberOfIterations=200, relaxationFactor=0.5, gradientMagnitudeTolerance=1e-8
    )
    method.SetOptimizerScalesFromPhysicalShift()
    method.SetInitialTransform(transform, inPlace=True)
    try:
        method.Execute(fixed, moving)
    except RuntimeError:  # e.g. too few samples inside the moving image: keep the start
        return sitk.Euler3DTransform(start)
    return transform


def _metric(
    fixed: sitk.Image,
    moving: sitk.Image,
    fixed_mask: sitk.Image | None,
    transform: sitk.Transform,
    grid: Grid,
    seed: int,
) -> float:
    method = _method(fixed_mask, grid, seed)
    method.SetInitialTransform(transform, inPlace=False)
    try:
        return float(method.MetricEvaluate(fixed, moving))
    except RuntimeError:  # no valid samples (the images do not overlap)
        return float("nan")


def _summary(matrix: np.ndarray, grid: Grid, before: float, after: float, seconds: float) -> RegistrationResult:
    centre = grid.center
    moved = matrix[:3, :3] @ centre + matrix[:3, 3]
    return RegistrationResult(
        matrix, before, after, rotation_angle_deg(matrix), float(np.linalg.norm(moved - centre)), seconds, ()
    )


def _with_warnings(
    result: RegistrationResult, fixed: Volume, moving: Volume, max_rotation_deg: float
) -> RegistrationResult:
    notes: list[str] = []
    before, after = result.metric_before, result.metric_after
    if not np.isfinite(after):
        notes.append("the metric could not be computed (do the images overlap?)")
    else:
        if after > WEAK_METRIC:
            notes.append(
                f"weak similarity after registration (Mattes MI {after:.3f} > "
                f"{WEAK_METRIC}); the T1 and the ASL image may not share structure"
            )
        if np.isfinite(before) and after > before + METRIC_TOLERANCE:
            notes.append(f"the metric got worse ({before:.3f} -> {after:.3f})")
    if result.rotation_deg > max_rotation_deg:
        notes.append(f"rotation {result.rotation_deg:.1f} deg exceeds {max_rotation_deg:g} deg")
    registered = apply_registration(moving, result.matrix).grid
    overlap = fixed.grid.overlap_fraction(registered)
    if overlap < MIN_OVERLAP:
        notes.append(f"the registered T1 covers only {100 * overlap:.0f}% of the ASL field of view")
    return RegistrationResult(
        result.matrix, before, after, result.rotation_deg, result.translation_mm, result.seconds, tuple(notes)
    )
