"""Loading and checking a run's inputs before any long work: ASL (3D or a BIDS 4D series), T1, M0, target grid.

The ASL becomes one 3D image to super-resolve: a perfusion-weighted difference (deltaM, arbitrary
units) or, with ``quantify=True``, CBF in ml/100g/min by the single-PLD consensus model
(:mod:`aslsr.quantify`). Every problem is an :class:`InputError` naming the file.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from . import quantify as quantification
from .acquired_grid import find_acquired_grid, mask_on_acquired_grid, on_acquired_grid
from .aslseries import AslSeries, load_asl_series, read_metadata
from .errors import InputError
from .grids import Grid, resample_average
from .io import Volume, available_memory, load_mask, load_volume

CBF_UNITS = "ml/100g/min"


@dataclass(frozen=True)
class TargetSpec:
    """Where to super-resolve: a reference image's grid, a voxel size (mm) or a zoom factor.

    With none of them: the T1's voxel size over the ASL field of view.
    """

    like: Path | None = None
    voxel_size: tuple[float, ...] | None = None
    zoom: tuple[float, ...] | None = None

    def resolve(self, asl_grid: Grid, t1_grid: Grid) -> Grid:
        chosen = [name for name in ("like", "voxel_size", "zoom") if getattr(self, name) is not None]
        if len(chosen) > 1:
            raise InputError(f"give only one of --like, --voxel-size, --zoom (got {', '.join(chosen)})")
        if self.like is not None:
            reference = load_volume(self.like, allow_constant=True, allow_nonfinite=True).grid
            if asl_grid.overlap_fraction(reference) == 0.0:
                raise InputError("the --like grid does not overlap the ASL field of view", self.like)
            return reference
        if self.voxel_size is not None:
            _refuse_huge_target(asl_grid, _positive_numbers(self.voxel_size, "--voxel-size"))
            return asl_grid.with_voxel_size(self.voxel_size)
        if self.zoom is not None:
            _refuse_huge_target(asl_grid, asl_grid.voxel_size / _positive_numbers(self.zoom, "--zoom"))
            return asl_grid.zoomed(self.zoom)
        return asl_grid.with_voxel_size(t1_grid.voxel_size)


@dataclass(frozen=True)
class Inputs:
    """A run's checked inputs. Volumes are 3D, NIfTI voxel order, affines voxel -> world RAS mm."""

    asl: Volume  # the image to super-resolve: deltaM (ASL units) or CBF (ml/100g/min)
    t1: Volume  # the T1-weighted image, not yet registered
    m0: Volume | None  # --m0, else the mean of the series' m0scan volumes
    fixed: Volume  # registration target: the M0, else the mean control image, else the ASL
    fixed_source: str  # "m0", "control_mean" or "perfusion"
    target: Grid  # the super-resolution grid
    units: str  # CBF_UNITS, or the ASL's own units for deltaM
    description: dict[str, Any]  # what was read and how it was reduced (for report.json)
    stored_asl: Volume | None = None  # the ASL as stored, where ``asl`` is it brought back to its acquired grid

    def load_mask(self, path: str | Path) -> np.ndarray:
        """A brain mask given on the ASL's stored grid, on the grid of ``asl``."""
        if self.stored_asl is None:
            return load_mask(path, self.asl.grid)
        return mask_on_acquired_grid(load_mask(path, self.stored_asl.grid), self.stored_asl.grid, self.asl.grid)


#: The smallest ASL (voxels along each axis) that is super-resolved: the generator halves it twice.
MIN_ASL_VOXELS = 4
#: A generous bound on bytes per output voxel (SR, baselines, T1, tiles, float32 copies).
BYTES_PER_OUTPUT_VOXEL = 64


def load_inputs(
    asl_path: str | Path,
    t1_path: str | Path,
    m0_path: str | Path | None,
    target: TargetSpec,
    *,
    nan_to_zero: bool = False,
    quantify: bool = False,
    realign: bool = True,
    progress: bool = False,
    acquired_grid: bool = True,
) -> Inputs:
    """Load and check ASL, T1 and M0, quantify CBF when asked, and resolve the target grid.

    ``realign``: realign the volumes of a 4D control/label series before subtracting them (with a
    progress bar when ``progress``). ``acquired_grid``: where the ASL was stored on a finer grid than it was
    acquired on (:func:`aslsr.acquired_grid.find_acquired_grid`), bring it, and the M0 and registration target
    on its grid, back to the acquired grid (the target grid stays the one resolved on the stored grid).
    """
    series = load_asl_series(asl_path, allow_nonfinite=nan_to_zero, realign=realign, progress=progress)
    if min(series.perfusion.grid.shape) < MIN_ASL_VOXELS:
        raise InputError(
            f"the ASL has shape {series.perfusion.grid.shape}; super-resolution needs at least "
            f"{MIN_ASL_VOXELS} voxels along every axis",
            asl_path,
        )
    t1 = load_volume(t1_path, allow_nonfinite=nan_to_zero)
    m0 = load_volume(m0_path, allow_nonfinite=nan_to_zero) if m0_path is not None else series.m0
    check_overlap(series.perfusion, t1, t1_path)
    if m0_path is not None:
        check_overlap(series.perfusion, m0, m0_path)
    asl, units = series.perfusion, str(series.metadata.get("Units", "a.u."))
    description: dict[str, Any] = {
        "kind": series.kind,
        "volume_types": _counts(series.volume_types),
        "pairs_averaged": series.n_pairs,
        "realignment": series.motion.to_dict() if series.motion is not None else None,
        "m0_source": "--m0" if m0_path is not None else ("m0scan volumes" if series.m0 is not None else None),
    }
    if series.kind == "cbf":
        units = CBF_UNITS
    elif quantify:
        asl, description["quantification"] = quantify_cbf(series, asl_path, m0, m0_path)
        units = CBF_UNITS
    fixed, fixed_source = _registration_target(m0, series)
    target_grid = target.resolve(asl.grid, t1.grid)
    check_target_size(target_grid)
    found = find_acquired_grid(asl, metadata=series.metadata, sidecar=series.metadata_path) if acquired_grid else None
    if found is None:
        return Inputs(asl, t1, m0, fixed, fixed_source, target_grid, units, description)
    if min(found.acquired_shape) < MIN_ASL_VOXELS:
        source = series.metadata_path if found.source.startswith("sidecar") else asl_path
        raise InputError(
            f"the ASL's acquired grid has shape {found.acquired_shape} ({found.source}); super-resolution needs at "
            f"least {MIN_ASL_VOXELS} voxels along every axis",
            source,
        )
    description["acquired_grid"] = found.to_dict()
    stored = asl.grid
    m0, fixed = on_acquired_grid(m0, found, stored), on_acquired_grid(fixed, found, stored)
    acquired = on_acquired_grid(asl, found, stored)
    return Inputs(acquired, t1, m0, fixed, fixed_source, target_grid, units, description, stored_asl=asl)


def quantify_cbf(
    series: AslSeries, asl_path: str | Path, m0: Volume | None, m0_path: str | Path | None
) -> tuple[Volume, dict[str, Any]]:
    """CBF (ml/100g/min) on the ASL grid from the series' deltaM, its sidecar and the M0 (or M0Estimate)."""
    sidecar = series.metadata_path if series.metadata_path is not None else asl_path
    parameters = quantification.parameters_from_sidecar(series.metadata, sidecar, volume_types=series.volume_types)
    if m0_path is not None:
        m0_metadata, m0_sidecar = read_metadata(m0_path)
        tr, field = quantification.separate_m0_repetition_time(m0_metadata, m0_sidecar)
        parameters = dataclasses.replace(parameters, m0_repetition_time_s=tr, m0_repetition_time_field=field)
    if m0 is not None:
        m0_values: np.ndarray | float = (
            m0.data if m0.grid == series.perfusion.grid else resample_average(m0.data, m0.affine, series.perfusion.grid)
        )
        m0_source = "image"
    else:
        estimate = quantification.m0_estimate(series.metadata, sidecar)
        if estimate is None:
            raise InputError(
                "--quantify needs an M0: m0scan volumes in the series, --m0 M0.nii.gz, or M0Type "
                "Estimate with M0Estimate in the sidecar",
                asl_path,
            )
        m0_values, m0_source = estimate, "M0Estimate"
    cbf = quantification.cbf_from_deltam(series.perfusion.data, m0_values, parameters)
    return Volume(cbf, series.perfusion.grid), {
        **parameters.to_dict(),
        "m0": m0_source,
        "m0_correction": quantification.m0_correction(parameters),
    }


def _registration_target(m0: Volume | None, series: AslSeries) -> tuple[Volume, str]:
    if m0 is not None:
        return m0, "m0"
    if series.control_mean is not None:
        return series.control_mean, "control_mean"
    return series.perfusion, "perfusion"


def _counts(types: tuple[str, ...]) -> dict[str, int]:
    return {name: types.count(name) for name in dict.fromkeys(types)}


def check_overlap(asl: Volume, other: Volume, path: str | Path | None) -> None:
    if asl.grid.overlap_fraction(other.grid) < 0.05:
        raise InputError("its field of view does not overlap the ASL field of view", path)


def check_target_size(grid: Grid) -> None:
    _check_voxel_count(float(math.prod(grid.shape)), str(grid.shape))


def _positive_numbers(values, option: str) -> np.ndarray:
    """``values`` as 1 or 3 finite positive floats, else InputError naming ``option``."""
    try:
        array = np.atleast_1d(np.asarray(values, dtype=np.float64))
    except (TypeError, ValueError):
        array = np.array([np.nan])
    if array.ndim != 1 or array.size not in (1, 3) or not np.all(np.isfinite(array)) or np.any(array <= 0):
        given = " ".join(f"{float(v):g}" for v in np.ravel(array)) if array.dtype.kind == "f" else str(values)
        raise InputError(f"{option} needs 1 or 3 finite positive numbers, got {given}")
    return array


def _refuse_huge_target(asl_grid: Grid, voxel_size: np.ndarray) -> None:
    """Refuse a target voxel size whose grid would not fit in memory, before the grid is built."""
    size = np.asarray(voxel_size, dtype=np.float64)
    with np.errstate(all="ignore"):
        counts = np.maximum(1.0, np.round(np.array(asl_grid.shape) * asl_grid.voxel_size / size))
    shape = "(" + ", ".join(f"{n:.0f}" if n < 1e9 else f"{n:.2g}" for n in counts) + ")"
    _check_voxel_count(math.prod(float(n) for n in counts), shape)


def _check_voxel_count(count: float, shape: str) -> None:
    available = available_memory()
    needed = count * BYTES_PER_OUTPUT_VOXEL
    if needed > available:
        raise InputError(
            f"the target grid {shape} would need about {_gib(needed)} of memory, "
            f"{_gib(available)} are available; choose a larger voxel size"
        )


def _gib(count: float) -> str:
    gib = count / 2**30
    return f"{gib:.1f} GiB" if gib < 1e6 else f"{gib:.2g} GiB"
