"""Random structure for phantom variants: smooth random fields, a smooth random deformation of the
anatomy, and vessel-like bright tubes and spots.

All functions take a ``numpy.random.Generator`` and a :class:`~aslsr.grids.Grid` (any affine; the
phantom uses the axis-aligned MNI template grid) and return float32 arrays in the grid's voxel
order (i, j, k). Lengths are in mm, displacements in world mm (x, y, z).
"""

from __future__ import annotations

import numpy as np
from scipy import ndimage

from .grids import Grid, resample


def random_field(rng: np.random.Generator, grid: Grid, correlation_mm: float) -> np.ndarray:
    """A smooth Gaussian random field on ``grid``, zero mean and unit standard deviation over the grid.

    White noise on a coarse grid (spacing about a third of ``correlation_mm``) is smoothed by a
    Gaussian of standard deviation ``correlation_mm`` and interpolated (trilinear) onto ``grid``.
    """
    if not correlation_mm > 0:
        raise ValueError(f"the correlation length must be positive, got {correlation_mm}")
    spacing = max(float(grid.voxel_size.min()), correlation_mm / 3.0)
    shape = np.ceil(np.array(grid.shape) * grid.voxel_size / spacing).astype(int) + 2  # covers the FOV
    linear = grid.directions * spacing
    affine = np.eye(4)
    affine[:3, :3], affine[:3, 3] = linear, grid.center - linear @ ((shape - 1) / 2.0)
    coarse = Grid(tuple(shape), affine)
    pad = int(np.ceil(3.0 * correlation_mm / spacing))
    noise = rng.standard_normal(tuple(np.array(coarse.shape) + 2 * pad))
    smooth = ndimage.gaussian_filter(noise, correlation_mm / spacing, mode="wrap")[
        pad : -pad or None, pad : -pad or None, pad : -pad or None
    ]
    field = resample(smooth.astype(np.float32), coarse.affine, grid, order=1)
    field -= field.mean()
    return (field / max(float(field.std()), 1e-12)).astype(np.float32)


def random_displacement(
    rng: np.random.Generator, grid: Grid, amplitude_mm: float, length_mm: float, min_jacobian: float = 0.5
) -> np.ndarray:
    """A smooth random displacement field u (shape (3, *grid.shape), world mm along x, y, z).

    Each component is a :func:`random_field` of correlation ``length_mm``; the field is scaled so
    that max |u| over the grid is ``amplitude_mm``, or less if needed to keep the Jacobian
    determinant of x -> x + u above ``min_jacobian`` everywhere (a smooth, invertible warp).
    """
    u = np.stack([random_field(rng, grid, length_mm) for _ in range(3)])
    u *= amplitude_mm / max(float(np.sqrt((u**2).sum(axis=0)).max()), 1e-12)
    for _ in range(8):
        if float(jacobian_determinant(u, grid, stride=2).min()) >= min_jacobian:
            break
        u *= 0.8
    return u.astype(np.float32)


def jacobian_determinant(displacement_mm: np.ndarray, grid: Grid, stride: int = 1) -> np.ndarray:
    """det(I + du/dx) of the map x -> x + u(x) (central differences in world mm), on every
    ``stride``-th voxel along each axis (float32, shape of the subsampled grid)."""
    u = np.asarray(displacement_mm)[:, ::stride, ::stride, ::stride].astype(np.float32)
    inverse = np.linalg.inv(grid.affine[:3, :3] * stride)  # d(index)/d(world) on the subsampled grid
    grads = [np.gradient(u[c], axis=(0, 1, 2)) for c in range(3)]
    m = [
        [sum(grads[c][a] * np.float32(inverse[a, w]) for a in range(3)) + np.float32(c == w) for w in range(3)]
        for c in range(3)
    ]
    return (
        m[0][0] * (m[1][1] * m[2][2] - m[1][2] * m[2][1])
        - m[0][1] * (m[1][0] * m[2][2] - m[1][2] * m[2][0])
        + m[0][2] * (m[1][0] * m[2][1] - m[1][1] * m[2][0])
    ).astype(np.float32)


def warp(data: np.ndarray, grid: Grid, displacement_mm: np.ndarray, order: int = 1) -> np.ndarray:
    """``data`` pulled back through the warp: out(x) = data(x + u(x)), on the same grid (float32).
    Positions beyond the grid take the nearest edge value."""
    inverse = np.linalg.inv(grid.affine[:3, :3])
    index = np.indices(grid.shape, dtype=np.float32)
    coords = index + np.tensordot(inverse.astype(np.float32), displacement_mm, axes=([1], [0]))
    return ndimage.map_coordinates(np.asarray(data, dtype=np.float32), coords, order=order, mode="nearest").astype(
        np.float32
    )


def vessels(
    rng: np.random.Generator,
    grid: Grid,
    seeds_mm: np.ndarray,
    n_tubes: int,
    n_spots: int,
    cbf_range: tuple[float, float] = (80.0, 160.0),
) -> tuple[np.ndarray, list[dict]]:
    """Bright vessel-like structures (CBF added, ml/100g/min) on ``grid`` and their descriptions.

    Tubes: smooth random curves 20-50 mm long with a Gaussian cross-section (radius 0.8-1.5 mm)
    starting at a random point of ``seeds_mm`` (N x 3 world mm, e.g. sulcal CSF). Spots: Gaussian
    blobs of radius 1.5-3 mm at random seeds. Peak values uniform in ``cbf_range``.
    """
    out = np.zeros(grid.shape, dtype=np.float32)
    records: list[dict] = []
    if len(seeds_mm) == 0:
        return out, records
    for _ in range(n_tubes):
        start = seeds_mm[rng.integers(len(seeds_mm))]
        length, radius, peak = rng.uniform(20.0, 50.0), rng.uniform(0.8, 1.5), rng.uniform(*cbf_range)
        direction = _unit(rng.normal(size=3))
        points = [start]
        for _ in range(int(length / 0.5)):  # 0.5 mm steps, turning slowly
            direction = _unit(direction + 0.08 * rng.normal(size=3))
            points.append(points[-1] + 0.5 * direction)
        for point in points:
            _stamp(out, grid, point, radius, peak)
        records.append(
            {
                "kind": "tube",
                "start_mm": start.tolist(),
                "end_mm": points[-1].tolist(),
                "length_mm": length,
                "radius_mm": radius,
                "cbf": peak,
            }
        )
    for _ in range(n_spots):
        center = seeds_mm[rng.integers(len(seeds_mm))]
        radius, peak = rng.uniform(1.5, 3.0), rng.uniform(*cbf_range)
        _stamp(out, grid, center, radius, peak)
        records.append({"kind": "spot", "center_mm": center.tolist(), "radius_mm": radius, "cbf": peak})
    return out, records


def _unit(vector: np.ndarray) -> np.ndarray:
    return vector / max(float(np.linalg.norm(vector)), 1e-12)


def _stamp(out: np.ndarray, grid: Grid, center_mm: np.ndarray, radius_mm: float, peak: float) -> None:
    """out = max(out, peak * exp(-d^2 / (2 r^2))) in a box of 3 radii around ``center_mm``."""
    center = grid.world_to_index(center_mm)
    reach = 3.0 * radius_mm / grid.voxel_size
    lo = np.clip(np.floor(center - reach).astype(int), 0, grid.shape)
    hi = np.clip(np.ceil(center + reach).astype(int) + 1, 0, grid.shape)
    if np.any(hi <= lo):
        return
    index = np.indices(tuple(hi - lo), dtype=np.float64).reshape(3, -1).T + lo
    d2 = ((grid.index_to_world(index) - center_mm) ** 2).sum(axis=1).reshape(tuple(hi - lo))
    block = out[lo[0] : hi[0], lo[1] : hi[1], lo[2] : hi[2]]
    np.maximum(block, (peak * np.exp(-d2 / (2.0 * radius_mm**2))).astype(np.float32), out=block)
