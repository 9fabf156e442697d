"""The LR's noise level, and the noise-matched training input (``config.input_noise = "matched"``).

At super-resolution time the finest generator refines the dTV reconstruction of the LR itself, whose
noise has the LR's full standard deviation sigma. In training it refines the dTV reconstruction of
x_{N-1}, the box average of x_N over ``prod(factor)`` LR voxels, whose noise is only
sigma / sqrt(prod(factor)) and is the low-pass part of the target's own noise. A network trained on
that input learns to draw, from the noise it can see, the target noise it is scored against, and at
super-resolution time it meets an input about sqrt(prod(factor)) times noisier than any it saw.
White noise of sd sigma * sqrt(1 - 1 / prod(factor)) added to x_{N-1} before the dTV step makes the
training input as noisy as the LR, with most of its noise independent of the target's, so the
network learns to remove noise rather than to reproduce it (BENCHMARKS.md 2026-12-06 evening).

sigma is read off the LR (box equivalent, the image the generator's chain sees) by
:func:`estimate_noise`: outside the head where there is background noise, else inside the brain, and
inside the brain too where that reads far more noise than the background (noise varying in space).
"""

from __future__ import annotations

import itertools
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
from scipy import ndimage

from .acquisition import as_box_acquisition
from .config import Config, replace
from .io import Volume
from .masking import brain_mask_from_image

#: Side (in 2x2x2-voxel Haar blocks) of the brain regions whose noise is read one by one: anatomy only adds to a
#: region's reading, so the lower quartile of the regions is taken: -8..+17 % off the true sd on the demo phantom and
#: the panel's white-noise variants with their background masked away (the median over the whole brain: +3..+32 %;
#: benchmarks/noise_estimates.py). On noise alone the quartile reads ~10 % low (the regions' own scatter).
BRAIN_BLOCK = 4

#: The brain's reading replaces the background's when it is more than this many times larger: the noise then varies
#: in space (a parallel-imaging g-factor is highest in the middle of the field of view, an array coil's near its
#: elements) and the background, at the edges, under-reads the brain's. On white noise of one sd everywhere the brain's
#: reading was 0.39-1.44x the background's (panel and stress phantoms, benchmarks/results/2026-12-07-cpu-amd-t1-head).
QUIETER_BACKGROUND = 1.6

#: Normal-distribution constant: sd = MAD / 0.6745 for Gaussian noise.
_MAD_TO_SD = 1.0 / 0.6745


@dataclass(frozen=True)
class NoiseEstimate:
    """The LR's noise sd (ASL units, per LR voxel) and where it was read.

    ``source``: "background" (median absolute deviation of the voxels beyond the margin outside the
    brain) or "brain" (Donoho's estimator, the finest 3D Haar detail, read in regions of 8 x 8 x 8
    voxels inside the brain; the lower quartile of the regions, as anatomy at the voxel scale only
    adds to a region's reading), or "brain (background quieter)" (the brain's reading, where it is more
    than ``QUIETER_BACKGROUND`` times the background's); ``voxels``: how many voxels it was read from.
    """

    sd: float
    source: str
    voxels: int

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def background_region(
    data: np.ndarray, mask: np.ndarray, voxel_size: np.ndarray, margin_voxels: float = 4.0
) -> np.ndarray:
    """Finite voxels more than ``margin_voxels`` (of the finest axis) outside ``mask``, a boolean array."""
    voxel = np.asarray(voxel_size, dtype=np.float64)
    distance = ndimage.distance_transform_edt(~np.asarray(mask, bool), sampling=voxel / voxel.min())
    return (distance > margin_voxels) & np.isfinite(data)


def background_is_zeroed(values: np.ndarray) -> bool:
    """True when most background values are exactly 0 or they do not vary (a masked image: no noise to read)."""
    return bool(np.mean(values == 0.0) > 0.5 or float(values.std()) == 0.0)


def estimate_noise(asl: Volume, mask: np.ndarray, *, min_background_voxels: int = 2000) -> NoiseEstimate:
    """The noise sd of ``asl`` (its units), from its background when it has one, else from the brain ``mask``.

    Where the brain reads more than ``QUIETER_BACKGROUND`` times the background's noise (noise that varies in
    space and is quietest at the edges of the field of view), the brain's reading is returned.

    Examples
    --------
    >>> from aslsr.grids import Grid
    >>> rng = np.random.default_rng(0)
    >>> brain = np.zeros((48, 48, 40), bool); brain[16:32, 16:32, 14:26] = True
    >>> image = 50.0 * brain + rng.normal(0.0, 2.0, brain.shape)
    >>> estimate = estimate_noise(Volume(image, Grid(brain.shape, np.eye(4))), brain)
    >>> estimate.source, round(estimate.sd, 1)
    ('background', 2.0)
    """
    outside = background_noise(asl, mask, min_voxels=min_background_voxels)
    if outside is None:
        return brain_noise(asl, mask)
    inside = brain_noise(asl, mask) if np.any(mask) else outside
    if inside.sd > QUIETER_BACKGROUND * outside.sd:  # noise that varies in space, quietest at the edges
        return NoiseEstimate(inside.sd, "brain (background quieter)", inside.voxels)
    return outside


def background_noise(asl: Volume, mask: np.ndarray, *, min_voxels: int = 2000) -> NoiseEstimate | None:
    """The noise sd read off the background beyond 4 voxels outside ``mask`` (median absolute deviation), or
    None where there are fewer than ``min_voxels`` such voxels or they are zeroed (a masked image)."""
    data = np.asarray(asl.data, dtype=np.float64)
    values = data[background_region(data, mask, asl.grid.voxel_size)]
    if values.size < min_voxels or background_is_zeroed(values):
        return None
    return NoiseEstimate(_mad(values) * _MAD_TO_SD, "background", int(values.size))


def brain_noise(asl: Volume, mask: np.ndarray) -> NoiseEstimate:
    """The noise sd read inside ``mask``: Donoho's estimator, the finest 3D Haar detail, in regions of 8 x 8 x 8
    voxels; the lower quartile of the regions (anatomy only adds to a region's reading)."""
    data = np.asarray(asl.data, dtype=np.float64)
    details = _pairwise(np.where(np.isfinite(data), data, 0.0), np.subtract) / np.sqrt(8.0)
    inside = _pairwise(np.asarray(mask, bool), np.logical_and)
    local = [
        float(np.median(np.abs(details[block][inside[block]]))) * _MAD_TO_SD
        for block in _blocks(inside.shape, BRAIN_BLOCK)
        if inside[block].mean() >= 0.75 and inside[block].size == BRAIN_BLOCK**3
    ]
    if len(local) < 8:  # too small a brain for local estimates: all of it
        return NoiseEstimate(float(np.median(np.abs(details[inside]))) * _MAD_TO_SD, "brain", int(inside.sum()))
    return NoiseEstimate(float(np.percentile(local, 25)), "brain", len(local) * BRAIN_BLOCK**3)


def relative_noise(asl: Volume, brain_mask: np.ndarray) -> float:
    """The noise sd of ``asl`` (:func:`estimate_noise`) over the 99th percentile of its magnitude (0 without signal).

    Examples
    --------
    >>> from aslsr.grids import Grid
    >>> rng = np.random.default_rng(0)
    >>> brain = np.zeros((48, 48, 40), bool); brain[12:36, 12:36, 10:30] = True
    >>> image = Volume(60.0 * brain + rng.normal(0.0, 3.0, brain.shape), Grid(brain.shape, np.eye(4)))
    >>> round(relative_noise(image, brain), 2)  # 3 / ~60
    0.05
    """
    scale = float(np.percentile(np.abs(asl.data), 99))
    return estimate_noise(asl, brain_mask).sd / scale if scale > 0 else 0.0


def resolve_input_noise(
    config: Config, asl: Volume, mask: np.ndarray | None = None
) -> tuple[Config, NoiseEstimate | None]:
    """``config`` with ``input_noise_sd`` read off the LR ``asl`` when noise matching needs it.

    The noise is read on the LR's box equivalent (``config.acquisition``, resolved), the image the
    generator's chain sees. ``mask``: the brain on ``asl``'s grid (None: the bright object of ``asl``
    itself). Returns the estimate, or None when nothing was estimated (``input_noise`` off, or the sd given).
    """
    if config.input_noise == "off" or config.input_noise_sd is not None:
        return config, None
    box = as_box_acquisition(asl, config)
    estimate = estimate_noise(box, brain_mask_from_image(box) if mask is None else mask)
    return replace(config, input_noise_sd=estimate.sd), estimate


def input_noise_sd(config: Config, factor: np.ndarray, level: int, n_scales: int) -> float:
    """sd (ASL units) of the white noise added to x_{level-1}: it makes it as noisy as x_level, whose noise is the
    LR's (``config.input_noise_sd``) averaged over ``prod(factor)`` voxels once per scale below the finest.

    >>> from aslsr.config import preset
    >>> config = preset("test", input_noise="matched", input_noise_sd=2.0)
    >>> round(input_noise_sd(config, np.array([2.0, 2.0, 1.0]), level=1, n_scales=2), 3)
    1.732
    """
    if config.input_noise == "off" or not config.input_noise_sd:
        return 0.0
    averaged = float(np.prod(np.maximum(np.asarray(factor, dtype=np.float64), 1.0)))
    target_sd = config.input_noise_sd / np.sqrt(averaged) ** (n_scales - 1 - level)
    return float(target_sd * np.sqrt(1.0 - 1.0 / averaged))


def add_noise(image: np.ndarray, sd: float, seed: int) -> np.ndarray:
    """``image`` plus white Gaussian noise of ``sd`` (its units), from its own seeded generator."""
    if sd <= 0.0:
        return image
    noise = np.random.default_rng(seed).normal(0.0, sd, image.shape)
    return (image + noise).astype(image.dtype)


def _blocks(shape: tuple[int, ...], size: int) -> list[tuple[slice, ...]]:
    """Index tuples of the ``size``-cubed blocks tiling ``shape`` (the last ones may be smaller)."""
    starts = [range(0, n, size) for n in shape]
    return [tuple(slice(s, s + size) for s in corner) for corner in itertools.product(*starts)]


def _mad(values: np.ndarray) -> float:
    return float(np.median(np.abs(values - np.median(values))))


def _pairwise(data: np.ndarray, combine: np.ufunc) -> np.ndarray:
    """``combine`` of the even and odd voxels along each axis in turn: one value per 2x2x2 block.

    With ``np.subtract`` it is the finest 3D Haar detail with differences along all three axes (times
    sqrt(8): zero for constant and linear images); with ``np.logical_and``, blocks wholly inside a mask.
    """
    blocks = data[: data.shape[0] // 2 * 2, : data.shape[1] // 2 * 2, : data.shape[2] // 2 * 2]
    for axis in range(3):
        size = blocks.shape[axis]
        blocks = combine(np.take(blocks, range(0, size, 2), axis), np.take(blocks, range(1, size, 2), axis))
    return blocks
