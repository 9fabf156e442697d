"""The image pyramid: scales x_0..x_N of the LR ASL and the registered T1 on exactly their grids.

x_N is the LR ASL itself; x_n is x averaged (box filter, as an acquisition integrates over its
voxels) onto a grid whose voxels are ``factor**(N - n)`` times larger along each voxel axis, over
the same field of view. a_n is the registered T1 averaged onto the grid of x_n.

The factor between scales is derived from the super-resolution zoom, so that the finest generator
learns exactly the step it has to take at super-resolution time (x_{N-1} brought up to x_N versus
the LR brought up to the target grid): e.g. 2 in-plane and 1 through-plane for 3.75x3.75x2.5 mm
to 1.875x1.875x2.5 mm.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from .grids import Grid, resample, resample_average
from .io import Volume


@dataclass(frozen=True)
class Normalizer:
    """Maps intensities to network units and back exactly.

    ASL: divided by a robust scale (99.5th percentile of |x|), no offset, so that zero stays zero
    and negative difference values survive. T1: (a - low) / (high - low) from its 0.5th and 99.5th
    percentiles on the ASL grid.
    """

    asl_scale: float
    t1_low: float
    t1_high: float

    @classmethod
    def fit(cls, asl: np.ndarray, t1: np.ndarray) -> "Normalizer":
        scale = float(np.percentile(np.abs(asl), 99.5)) or float(np.abs(asl).max()) or 1.0
        low, high = (float(v) for v in np.percentile(t1, [0.5, 99.5]))
        if high <= low:
            high = low + 1.0
        return cls(asl_scale=scale, t1_low=low, t1_high=high)

    def asl_to_net(self, x: np.ndarray) -> np.ndarray:
        return (np.asarray(x, dtype=np.float32) / self.asl_scale).astype(np.float32)

    def asl_from_net(self, x: np.ndarray) -> np.ndarray:
        return (np.asarray(x, dtype=np.float32) * self.asl_scale).astype(np.float32)

    def t1_to_net(self, a: np.ndarray) -> np.ndarray:
        return ((np.asarray(a, dtype=np.float32) - self.t1_low) / (self.t1_high - self.t1_low)).astype(np.float32)

    def to_dict(self) -> dict[str, float]:
        return {"asl_scale": self.asl_scale, "t1_low": self.t1_low, "t1_high": self.t1_high}

    def apply(self, scale: "Scale") -> "Scale":
        """The scale with its ASL and T1 in network units."""
        return Scale(scale.grid, self.asl_to_net(scale.asl), self.t1_to_net(scale.t1), scale.mask)


@dataclass(frozen=True)
class Scale:
    """One pyramid level: grid, ASL image x_n and T1 a_n (both in network units), optional mask."""

    grid: Grid
    asl: np.ndarray
    t1: np.ndarray
    mask: np.ndarray | None = None


def zoom_between(source: Grid, target: Grid) -> np.ndarray:
    """Zoom per *source* voxel axis: source voxel length measured in target voxels (>1 = finer target)."""
    source_in_target = np.linalg.inv(target.affine[:3, :3]) @ source.affine[:3, :3]
    return np.linalg.norm(source_in_target, axis=0)


#: A zoom within this ratio of 1 (or of the learnt factor) counts as none: grids that differ by rounding.
ZOOM_TOLERANCE = 1.05


def scale_factors(zoom: np.ndarray, tolerance: float = ZOOM_TOLERANCE, cap: float | None = None) -> np.ndarray:
    """Per-axis factor r between pyramid scales: the zoom where it enlarges (at most ``cap``), else 1.

    Examples
    --------
    >>> scale_factors(np.array([2.0, 2.0, 1.0])).tolist()
    [2.0, 2.0, 1.0]
    >>> scale_factors(np.array([3.75, 3.75, 2.5]), cap=2.0).tolist()
    [2.0, 2.0, 2.0]
    """
    zoom = np.asarray(zoom, dtype=np.float64)
    factor = np.where(zoom > tolerance, zoom, 1.0)
    return factor if cap is None else np.minimum(factor, cap)


def count_scales(shape: tuple[int, int, int], factor: np.ndarray, *, min_size: int, max_scales: int) -> int:
    """Number of scales N + 1 such that every downsampled axis keeps at least ``min_size`` voxels."""
    scaled = [(n, r) for n, r in zip(shape, factor) if r > 1.0]
    if not scaled:
        return 1
    levels = min(math.floor(math.log(max(n / min_size, 1.0)) / math.log(r)) for n, r in scaled)
    return int(max(1, min(max_scales, levels + 1)))


def scale_grids(grid: Grid, factor: np.ndarray, n_scales: int) -> list[Grid]:
    """Grids of x_0 (coarsest) .. x_N (= ``grid``)."""
    grids = []
    for level in range(n_scales):
        steps = n_scales - 1 - level
        grids.append(grid if steps == 0 else grid.with_voxel_size(grid.voxel_size * factor**steps))
    return grids


def build_pyramid(asl: Volume, t1: Volume, grids: list[Grid], mask: np.ndarray | None = None) -> list[Scale]:
    """x_n and a_n on each grid (input units). ``mask`` (bool, on the finest grid) is carried along."""
    scales = []
    for grid in grids:
        finest = grid == asl.grid
        image = asl.data if finest else resample_average(asl.data, asl.affine, grid)
        prior = resample_average(t1.data, t1.affine, grid)
        scale_mask = (
            mask if finest or mask is None else resample(mask.astype(np.float32), asl.affine, grid, order=1) > 0.5
        )
        scales.append(Scale(grid, image, prior, scale_mask))
    return scales


def bring_up(image: np.ndarray, source: Grid, target: Grid, order: int = 1) -> np.ndarray:
    """Interpolate ``image`` from a coarser grid onto ``target`` (x_{n-1} -> grid n, LR -> SR grid)."""
    return resample(image, source.affine, target, order=order)
