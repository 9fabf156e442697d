"""World geometry: voxel grids, target grids and resampling in world (scanner, RAS mm) coordinates.

A :class:`Grid` is a 3D voxel lattice: ``shape`` (voxels along the array axes i, j, k) and a 4x4
``affine`` that maps voxel indices (i, j, k, 1) to world millimetres (x, y, z, 1), as in NIfTI.
Voxel index (0, 0, 0) is the *centre* of the first voxel; the field of view (FOV) of a grid is the
box from index -0.5 to shape - 0.5 along each axis. Every function here works in world coordinates,
so it is right for any orientation (RAS, LAS, LPS, oblique) and never shifts by half a voxel.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import numpy as np
from scipy import ndimage

from .errors import InputError

Vector3 = Sequence[float] | float


@dataclass(frozen=True, eq=False)
class Grid:
    """A 3D voxel grid: ``shape`` in voxels and a 4x4 voxel-to-world ``affine`` in mm."""

    shape: tuple[int, int, int]
    affine: np.ndarray

    def __post_init__(self) -> None:
        shape = tuple(int(n) for n in self.shape)
        affine = np.array(self.affine, dtype=np.float64)
        if len(shape) != 3 or min(shape) < 1:
            raise InputError(f"a grid needs 3 positive sizes, got {self.shape}")
        if affine.shape != (4, 4) or not np.all(np.isfinite(affine)):
            raise InputError("a grid needs a finite 4x4 affine")
        if abs(np.linalg.det(affine[:3, :3])) < 1e-9:
            raise InputError("the affine is singular (zero voxel size or collinear axes)")
        affine.setflags(write=False)
        object.__setattr__(self, "shape", shape)
        object.__setattr__(self, "affine", affine)

    def __eq__(self, other: object) -> bool:
        return (
            isinstance(other, Grid) and self.shape == other.shape and np.allclose(self.affine, other.affine, atol=1e-5)
        )

    def __hash__(self) -> int:
        return hash(self.shape)  # __eq__ is approximate, so only the shape can be hashed

    def __repr__(self) -> str:
        vs = ", ".join(f"{v:.4g}" for v in self.voxel_size)
        origin = ", ".join(f"{v:.2f}" for v in self.affine[:3, 3])
        axes = "".join(
            ("LR", "PA", "IS")[a][int(c[a] > 0)] for c in self.directions.T for a in [int(np.argmax(np.abs(c)))]
        )
        return f"Grid(shape={self.shape}, voxel_size=({vs}) mm, {axes}, origin=({origin}) mm)"

    @property
    def voxel_size(self) -> np.ndarray:
        """Voxel edge lengths in mm along i, j, k."""
        return np.linalg.norm(self.affine[:3, :3], axis=0)

    @property
    def directions(self) -> np.ndarray:
        """3x3 matrix whose columns are the unit world directions of the i, j, k axes."""
        return self.affine[:3, :3] / self.voxel_size

    @property
    def center(self) -> np.ndarray:
        """World position (mm) of the centre of the field of view."""
        return self.index_to_world((np.array(self.shape) - 1) / 2.0)

    @property
    def n_voxels(self) -> int:
        return int(np.prod(self.shape))

    def index_to_world(self, ijk: np.ndarray) -> np.ndarray:
        """Map voxel indices (..., 3) to world mm (..., 3)."""
        ijk = np.asarray(ijk, dtype=np.float64)
        return ijk @ self.affine[:3, :3].T + self.affine[:3, 3]

    def world_to_index(self, xyz: np.ndarray) -> np.ndarray:
        """Map world mm (..., 3) to (fractional) voxel indices (..., 3)."""
        inverse = np.linalg.inv(self.affine)
        return np.asarray(xyz, dtype=np.float64) @ inverse[:3, :3].T + inverse[:3, 3]

    def fov_corners(self) -> np.ndarray:
        """The 8 corners (world mm, shape (8, 3)) of the field-of-view box."""
        lo, hi = -0.5, np.array(self.shape) - 0.5
        corners = np.array([[a, b, c] for a in (lo, hi[0]) for b in (lo, hi[1]) for c in (lo, hi[2])])
        return self.index_to_world(corners)

    def with_voxel_size(self, voxel_size: Vector3) -> "Grid":
        """A grid with the given voxel size (mm) over the same field of view and orientation.

        The new shape is the FOV extent divided by the voxel size, rounded; the new grid is centred
        on the old FOV, so when the extent divides exactly the two FOV boxes coincide.
        """
        new_size = _as_vector3(voxel_size, "voxel size")
        if np.any(new_size <= 0):
            raise InputError(f"voxel sizes must be positive, got {tuple(new_size)}")
        extent = np.array(self.shape) * self.voxel_size
        shape = np.maximum(1, np.round(extent / new_size - 1e-6)).astype(int)
        linear = self.directions * new_size
        origin = self.center - linear @ ((shape - 1) / 2.0)
        return Grid(tuple(shape), _compose(linear, origin))

    def zoomed(self, zoom: Vector3) -> "Grid":
        """A grid with ``zoom`` times as many voxels per mm along each axis, same FOV."""
        factors = _as_vector3(zoom, "zoom")
        if np.any(factors <= 0):
            raise InputError(f"zoom factors must be positive, got {tuple(factors)}")
        return self.with_voxel_size(self.voxel_size / factors)

    def overlap_fraction(self, other: "Grid") -> float:
        """Fraction of this grid's voxel centres (sub-sampled) that fall inside ``other``'s FOV."""
        step = np.maximum(1, np.array(self.shape) // 16)
        ijk = np.stack(
            np.meshgrid(*[np.arange(0, n, s) for n, s in zip(self.shape, step)], indexing="ij"), axis=-1
        ).reshape(-1, 3)
        inside = _inside_fov(other.world_to_index(self.index_to_world(ijk)), other.shape)
        return float(inside.mean())


def _as_vector3(value: Vector3, what: str) -> np.ndarray:
    vector = np.atleast_1d(np.asarray(value, dtype=np.float64))
    if vector.size == 1:
        vector = np.repeat(vector, 3)
    if vector.shape != (3,) or not np.all(np.isfinite(vector)):
        raise InputError(f"{what} needs 1 or 3 finite numbers, got {value}")
    return vector


def _compose(linear: np.ndarray, translation: np.ndarray) -> np.ndarray:
    affine = np.eye(4)
    affine[:3, :3] = linear
    affine[:3, 3] = translation
    return affine


def _inside_fov(ijk: np.ndarray, shape: Sequence[int], margin: float = 0.5) -> np.ndarray:
    upper = np.array(shape) - 1 + margin
    return np.all((ijk >= -margin - 1e-6) & (ijk <= upper + 1e-6), axis=-1)


def _target_to_source(source_affine: np.ndarray, target: Grid) -> np.ndarray:
    """4x4 matrix mapping target voxel indices to source voxel indices."""
    return np.linalg.inv(np.asarray(source_affine, dtype=np.float64)) @ target.affine


def _outside_source(matrix: np.ndarray, target_shape: Sequence[int], source_shape: Sequence[int]) -> np.ndarray:
    """Boolean mask over the target grid: True where the voxel centre lies outside the source FOV."""
    axes = [np.arange(n, dtype=np.float64) for n in target_shape]
    outside = np.zeros(tuple(target_shape), dtype=bool)
    for row in range(3):
        coord = (
            matrix[row, 0] * axes[0][:, None, None]
            + matrix[row, 1] * axes[1][None, :, None]
            + matrix[row, 2] * axes[2][None, None, :]
            + matrix[row, 3]
        )
        outside |= (coord < -0.5 - 1e-6) | (coord > source_shape[row] - 0.5 + 1e-6)
    return outside


def resample(
    data: np.ndarray, source_affine: np.ndarray, target: Grid, order: int = 1, outside: float = 0.0
) -> np.ndarray:
    """Resample a 3D image onto ``target`` by point sampling in world coordinates.

    ``order`` 0 (nearest), 1 (trilinear) or 3 (cubic B-spline). Inside the source field of view
    (up to half a voxel beyond the outermost voxel centres) values are interpolated, with the edge
    voxels extended; target voxels outside the source FOV get ``outside``. Returns float32.
    """
    if order not in (0, 1, 3):
        raise ValueError(f"interpolation order must be 0, 1 or 3, got {order}")
    data = np.asarray(data)
    if data.ndim != 3:
        raise ValueError(f"resample takes a 3D array, got shape {data.shape}")
    matrix = _target_to_source(source_affine, target)
    result = ndimage.affine_transform(
        data.astype(np.float32 if order < 3 else np.float64, copy=False),
        matrix[:3, :3],
        offset=matrix[:3, 3],
        output_shape=target.shape,
        order=order,
        mode="nearest",
        prefilter=order > 1,
    ).astype(np.float32)
    result[_outside_source(matrix, target.shape, data.shape)] = outside
    return result


def resample_average(data: np.ndarray, source_affine: np.ndarray, target: Grid) -> np.ndarray:
    """Resample onto a (usually coarser) ``target`` by averaging over each target voxel (box filter).

    Models an acquisition or a downsampling that integrates the signal over the voxel. When the
    voxel axes of both grids are parallel, source voxels are integrated as boxes with their exact
    partial overlaps (separable, fast); otherwise each target voxel is split into sub-voxels no
    larger than a source voxel, sampled trilinearly, and averaged. Parts of a target voxel beyond the
    source field of view count as 0; target voxels centred outside it are 0. Returns float32.
    """
    data = np.asarray(data, dtype=np.float32)
    source = Grid(data.shape, source_affine)
    linear = np.linalg.inv(source.affine[:3, :3]) @ target.affine[:3, :3]
    if np.allclose(linear, np.diag(np.diag(linear)), atol=1e-6):
        return _box_average_parallel(data, source, target, np.diag(linear))
    counts = np.maximum(1, np.ceil(np.linalg.norm(linear, axis=0) - 1e-3)).astype(int)
    if np.all(counts == 1):
        return resample(data, source.affine, target, order=1)
    fine_linear = target.affine[:3, :3] / counts
    fine_origin = target.index_to_world(-0.5 + 0.5 / counts)
    fine = Grid(tuple(np.array(target.shape) * counts), _compose(fine_linear, fine_origin))
    sampled = resample(data, source.affine, fine, order=1)
    (n0, n1, n2), (c0, c1, c2) = target.shape, counts
    averaged = sampled.reshape(n0, c0, n1, c1, n2, c2).mean(axis=(1, 3, 5), dtype=np.float64)
    averaged[_outside_source(_target_to_source(source.affine, target), target.shape, data.shape)] = 0.0
    return averaged.astype(np.float32)


def box_weights(centers: np.ndarray, width: float, size: int) -> np.ndarray:
    """Box-integration weights along one axis, shape (len(centers), size), float64.

    Row i averages a box of ``width`` source voxels centred at the (fractional) source index
    ``centers[i]`` over source voxels 0..size-1 (each spanning index -0.5..+0.5 around its centre),
    with exact partial overlaps; parts beyond the source field of view count as 0, and rows whose
    centre lies outside it are 0.
    """
    centers = np.asarray(centers, dtype=np.float64)
    half = width / 2.0
    edges = np.arange(size) - 0.5
    overlap = np.minimum(centers[:, None] + half, edges[None, :] + 1.0) - np.maximum(
        centers[:, None] - half, edges[None, :]
    )
    weights = np.clip(overlap, 0.0, None) / (2.0 * half)
    weights[(centers < -0.5 - 1e-6) | (centers > size - 0.5 + 1e-6)] = 0.0
    return weights


def _box_average_parallel(data: np.ndarray, source: Grid, target: Grid, steps: np.ndarray) -> np.ndarray:
    """Exact box integration for grids whose axes are parallel (``steps``: target voxel in source voxels)."""
    origin = source.world_to_index(target.affine[:3, 3])
    result = data
    for axis in np.argsort(np.array(target.shape) / np.array(source.shape)):  # shrink most first
        centers = origin[axis] + steps[axis] * np.arange(target.shape[axis])
        weights = box_weights(centers, abs(steps[axis]), source.shape[axis]).astype(np.float32)
        used = np.flatnonzero(weights.any(axis=0))
        lo, hi = (used[0], used[-1] + 1) if used.size else (0, 1)
        part = result[(slice(None),) * axis + (slice(lo, hi),)]
        result = np.moveaxis(np.tensordot(weights[:, lo:hi], part, axes=([1], [axis])), 0, axis)
    return np.ascontiguousarray(result, dtype=np.float32)


def reorient(
    data: np.ndarray, grid: Grid, flips: Sequence[bool] = (False, False, False), permutation: Sequence[int] = (0, 1, 2)
) -> tuple[np.ndarray, Grid]:
    """The same image stored with permuted and/or flipped voxel axes (world content unchanged)."""
    perm = list(permutation)
    out = np.transpose(data, perm)
    linear = grid.affine[:3, :3][:, perm]
    origin = grid.affine[:3, 3].copy()
    shape = np.array(grid.shape)[perm]
    for axis, flip in enumerate(flips):
        if flip:
            out = np.flip(out, axis=axis)
            origin = origin + linear[:, axis] * (shape[axis] - 1)
            linear[:, axis] = -linear[:, axis]
    return np.ascontiguousarray(out), Grid(tuple(shape), _compose(linear, origin))


def shifted_affine(affine: np.ndarray, start: np.ndarray) -> np.ndarray:
    """Affine of a sub-block whose voxel (0, 0, 0) is voxel ``start`` of ``affine``."""
    shifted = np.array(affine, dtype=np.float64)
    shifted[:3, 3] = affine[:3, :3] @ np.asarray(start, dtype=np.float64) + affine[:3, 3]
    return shifted


def rigid_matrix(
    rotation_deg: Sequence[float], translation_mm: Sequence[float], center: Sequence[float] = (0.0, 0.0, 0.0)
) -> np.ndarray:
    """4x4 world transform: rotation (degrees about x, then y, then z) about ``center``, then translation."""
    ax, ay, az = np.deg2rad(np.asarray(rotation_deg, dtype=np.float64))
    rx = np.array([[1, 0, 0], [0, np.cos(ax), -np.sin(ax)], [0, np.sin(ax), np.cos(ax)]])
    ry = np.array([[np.cos(ay), 0, np.sin(ay)], [0, 1, 0], [-np.sin(ay), 0, np.cos(ay)]])
    rz = np.array([[np.cos(az), -np.sin(az), 0], [np.sin(az), np.cos(az), 0], [0, 0, 1]])
    rotation = rz @ ry @ rx
    center = np.asarray(center, dtype=np.float64)
    return _compose(rotation, center - rotation @ center + np.asarray(translation_mm, dtype=np.float64))


def rotation_angle_deg(matrix: np.ndarray) -> float:
    """Total rotation angle (degrees) of the linear part of a rigid 4x4 transform."""
    cos = (np.trace(np.asarray(matrix)[:3, :3]) - 1) / 2
    return float(np.degrees(np.arccos(np.clip(cos, -1.0, 1.0))))
