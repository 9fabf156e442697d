"""An ASL stored on a finer grid than it was acquired on: find the acquired grid and go back to it.

Scanners often reconstruct a k-space readout zero-filled to a larger matrix (a 3D spiral pCASL acquired at
~3.6 mm is commonly stored at ~1.9 mm; "interpolation" or a reconstruction matrix above the acquisition
matrix on other systems). The stored voxels are then smaller than the resolution, and the image's spectrum,
its noise included, is empty beyond the acquired band. A chain that takes each stored voxel for an average
over its box (the generator's pyramid, dTV's data term) believes it has detail that was never measured.

:func:`find_acquired_grid` reads the acquired matrix from the BIDS sidecar's ``AcquisitionVoxelSize`` or,
without one, from the background noise: where its power spectrum along an axis is best fitted by a windowed
band that ends below the stored band (:func:`band_edge`). :func:`crop_to_band` keeps the acquired band of the
spectrum, the exact inverse of zero-filling, on the grid the scanner sampled: same field of view, voxel 0 at
the same centre. A run with ``acquisition = "auto"`` does this before anything else and then models the
readout as k-space (BENCHMARKS.md 2026-12-07 late evening).

What it cannot see: a zero-filled image whose background was masked (no noise to read) and that has no
sidecar; a reconstruction that interpolated in image space instead of zero-filling (its noise is not
band-limited).
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

from .acquisition import slice_axis
from .errors import InputError
from .grids import Grid, resample_average
from .io import Volume
from .masking import brain_mask_from_image
from .noise import background_is_zeroed, background_region

#: An axis counts as zero-filled when its acquired matrix is at most this share of the stored one (a clear
#: band edge; a windowed readout without zero-filling fits a band within a few percent of the stored one).
CROP_BELOW = 0.85
#: Noise power (relative to the band k <= 1/8) below which a frequency counts as empty (:func:`band_edge`): far above
#: float32 rounding (~1e-14), far below what any window keeps before its last few percent of the band (a Hann
#: window's power cos^4 reads 1e-3 over its last ~11 %, 1e-5 over its last ~4 %).
EMPTY_BELOW = 1e-5
_MIN_BACKGROUND_VOXELS = 2000
_MIN_LINES = 32  # background lines along an axis below which its band is not read


@dataclass(frozen=True)
class AcquiredGrid:
    """The acquired matrix of an ASL stored on a finer one.

    ``stored_shape``, ``acquired_shape``: voxels per axis (i, j, k); ``stored_voxel_mm``, ``acquired_voxel_mm``:
    voxel sizes in mm; ``source``: "sidecar AcquisitionVoxelSize" or "noise spectrum"; ``band_fraction``: per
    axis, the share of the stored band that holds the acquired one (noise spectrum only).
    """

    stored_shape: tuple[int, ...]
    acquired_shape: tuple[int, ...]
    stored_voxel_mm: tuple[float, ...]
    acquired_voxel_mm: tuple[float, ...]
    source: str
    band_fraction: tuple[float, ...] | None = None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def find_acquired_grid(
    asl: Volume,
    *,
    metadata: Mapping[str, Any] | None = None,
    mask: np.ndarray | None = None,
    sidecar: str | os.PathLike | None = None,
) -> AcquiredGrid | None:
    """The acquired grid of ``asl`` when it is coarser than the stored one along some axis, else None.

    ``metadata``: the ASL's BIDS sidecar; its ``AcquisitionVoxelSize`` (mm, in the NIfTI's voxel axis order)
    decides where present (the slice axis of an ``MRAcquisitionType`` "2D" readout is never cropped: its
    slices are not k-space samples). Without it the background noise beyond 4 voxels outside ``mask`` (the
    brain on ``asl``'s grid; None: the bright object of ``asl``) decides, through :func:`band_edge`.
    Raises :class:`~aslsr.errors.InputError` naming ``sidecar`` where the field is not three positive numbers.

    Examples
    --------
    >>> grid = Grid((128, 96, 40), np.diag([1.875, 1.875, 4.0, 1.0]))
    >>> stored = Volume(np.zeros(grid.shape, np.float32), grid)
    >>> find_acquired_grid(stored, metadata={"AcquisitionVoxelSize": [3.75, 3.75, 4.0]}).acquired_shape
    (64, 48, 40)
    """
    stored = np.asarray(asl.grid.voxel_size, dtype=np.float64)
    shape = np.asarray(asl.grid.shape)
    given = (metadata or {}).get("AcquisitionVoxelSize")
    if given is not None:
        acquired = np.maximum(np.round(shape * stored / _acquisition_voxel(given, sidecar)), 1).astype(int)
        if str((metadata or {}).get("MRAcquisitionType", "3D")).upper() == "2D":
            acquired[slice_axis(asl.grid)] = shape[slice_axis(asl.grid)]
        fraction = None
        source = "sidecar AcquisitionVoxelSize"
    else:
        brain = brain_mask_from_image(asl) if mask is None else np.asarray(mask, bool)
        edges = band_edge(asl, brain)
        if edges is None:
            return None
        acquired = np.round(shape * np.asarray(edges)).astype(int)
        fraction = tuple(round(float(e), 3) for e in edges)
        source = "noise spectrum"
    acquired = np.where(acquired <= CROP_BELOW * shape, acquired, shape)
    if np.all(acquired == shape):
        return None
    voxel = stored * shape / acquired
    return AcquiredGrid(
        tuple(int(n) for n in shape),
        tuple(int(n) for n in acquired),
        tuple(round(float(v), 4) for v in stored),
        tuple(round(float(v), 4) for v in voxel),
        source,
        fraction,
    )


def _acquisition_voxel(value: Any, sidecar: str | os.PathLike | None) -> np.ndarray:
    """The sidecar's AcquisitionVoxelSize as three positive floats (mm)."""
    try:
        voxel = np.asarray(value, dtype=np.float64)
    except (TypeError, ValueError):
        voxel = np.zeros(0)
    if voxel.shape != (3,) or not np.all(np.isfinite(voxel)) or np.any(voxel <= 0):
        raise InputError(f"AcquisitionVoxelSize must be three positive numbers (mm), not {value!r}", sidecar)
    return voxel


def band_edge(asl: Volume, mask: np.ndarray) -> tuple[float, ...] | None:
    """Per voxel axis, the share of the stored band (0, 1] that holds noise, or None without a background.

    The power spectrum of the lines along each axis that lie wholly in the background (beyond 4 voxels outside
    ``mask``; whole lines, so that no mask edge spreads power across the band) is read from the top down: the
    band ends at the highest frequency whose power is at least ``EMPTY_BELOW`` of the mean over k <= 1/8 cycle per
    voxel. Zero-filling leaves the band above the acquired one empty (exactly, before any magnitude or other
    non-linear step); a window without zero-filling (Hann, Tukey) falls that low only in its last few percent of
    the band. 1 where fewer than 32 lines lie in the background.
    """
    data = np.asarray(asl.data, dtype=np.float64)
    background = background_region(data, mask, asl.grid.voxel_size)
    if background.sum() < _MIN_BACKGROUND_VOXELS or background_is_zeroed(data[background]):
        return None
    edges = []
    for axis, n in enumerate(data.shape):
        lines = np.moveaxis(data, axis, -1)[background.all(axis=axis)]
        if len(lines) < _MIN_LINES:
            edges.append(1.0)
            continue
        power = (np.abs(np.fft.rfft(lines - lines.mean(), axis=-1)) ** 2).mean(axis=0)
        k = np.fft.rfftfreq(n)
        low = float(power[(k > 0) & (k <= 1 / 8)].mean())
        holding = np.flatnonzero(power >= EMPTY_BELOW * low)
        edges.append(min(1.0, 2.0 * float(k[holding.max()])) if holding.size and low > 0 else 1.0)
    return tuple(edges)


def crop_to_band(volume: Volume, shape: tuple[int, ...]) -> Volume:
    """``volume`` on the grid of ``shape`` voxels over the same field of view: its spectrum's central band.

    The inverse of zero-filling a k-space of ``shape`` onto ``volume``'s grid (an even band's Nyquist plane is
    the sum of the two halves that zero-filling split it into). Voxel 0 keeps its centre; the voxel size along
    an axis grows by n / m. Intensities keep their units (the transform is scaled by m / n per axis).

    Examples
    --------
    >>> grid = Grid((8, 6, 4), np.diag([2.0, 2.0, 3.0, 1.0]))
    >>> cropped = crop_to_band(Volume(np.ones((8, 6, 4), np.float32), grid), (4, 6, 4))
    >>> cropped.grid.shape, cropped.grid.voxel_size.tolist(), float(cropped.data.mean())
    ((4, 6, 4), [4.0, 2.0, 3.0], 1.0)
    """
    spectrum = np.fft.fftn(np.asarray(volume.data, dtype=np.float64))
    for axis, m in enumerate(shape):
        n = spectrum.shape[axis]
        if m == n:
            continue
        if not 1 <= m < n:
            raise ValueError(f"cannot crop axis {axis} from {n} to {m} voxels")
        moved = np.moveaxis(spectrum, axis, 0)
        half = m // 2
        if m % 2:
            kept = np.concatenate([moved[: half + 1], moved[n - half :]])
        else:
            nyquist = moved[half : half + 1] + moved[n - half : n - half + 1]
            kept = np.concatenate([moved[:half], nyquist, moved[n - half + 1 :]])
        spectrum = np.moveaxis(kept, 0, axis)
    scale = float(np.prod(np.asarray(shape) / np.asarray(volume.data.shape)))
    data = (np.real(np.fft.ifftn(spectrum)) * scale).astype(np.float32)
    stretch = np.asarray(volume.data.shape, dtype=np.float64) / np.asarray(shape)
    affine = volume.grid.affine @ np.diag([*stretch, 1.0])
    return Volume(data, Grid(tuple(int(n) for n in shape), affine))


def zero_fill(volume: Volume, factors: tuple[int, ...]) -> Volume:
    """What a scanner stores: ``volume`` with its spectrum padded with zeros to ``factors`` times the matrix
    (an even axis's Nyquist plane split into two halves), on the grid with voxels ``factors`` times smaller and
    voxel 0 at the same centre, intensities kept; :func:`crop_to_band` undoes it exactly."""
    spectrum = np.fft.fftn(np.asarray(volume.data, dtype=np.float64))
    for axis, factor in enumerate(factors):
        n, half = spectrum.shape[axis], spectrum.shape[axis] // 2
        if factor == 1:
            continue
        moved = np.moveaxis(spectrum, axis, 0)
        padded = np.zeros((n * factor, *moved.shape[1:]), complex)
        padded[: half + (n % 2)] = moved[: half + (n % 2)]
        padded[n * factor - half :] = moved[n - half :]
        if n % 2 == 0:
            padded[half] = padded[n * factor - half] = moved[half] / 2
        spectrum = np.moveaxis(padded, 0, axis)
    data = (np.real(np.fft.ifftn(spectrum)) * np.prod(factors)).astype(np.float32)
    affine = volume.grid.affine @ np.diag([*(1.0 / np.asarray(factors, dtype=np.float64)), 1.0])
    return Volume(data, Grid(tuple(int(n) for n in data.shape), affine))


def on_acquired_grid(volume: Volume | None, acquired: AcquiredGrid, stored: Grid) -> Volume | None:
    """``volume`` cropped to ``acquired``'s band where it lies on the ``stored`` grid (the same reconstruction:
    the M0, the mean control image); any other volume, or None, unchanged."""
    if volume is None or volume.grid != stored:
        return volume
    return crop_to_band(volume, acquired.acquired_shape)


def mask_on_acquired_grid(mask: np.ndarray, stored: Grid, grid: Grid) -> np.ndarray:
    """A boolean mask on the ``stored`` grid brought onto the acquired ``grid``: voxels at least half inside."""
    return resample_average(np.asarray(mask, dtype=np.float32), stored.affine, grid) >= 0.5
