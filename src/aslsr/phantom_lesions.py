"""The phantom's lesions: T1-invisible spheres of changed CBF, where they go and what they do to CBF.

A lesion is a sphere (centre in world mm, radius in mm) whose CBF is multiplied by a factor (< 1
hypo-, > 1 hyper-perfused) with a soft logistic edge; it is drawn on the CBF only, never on the T1.
The default phantom places one (:func:`choose_lesion`: one hemisphere, mostly tissue, inside the NR
field of view); a variant places one per factor (:func:`choose_lesions`), apart from each other
and from each other's mirror regions (:func:`mirror_point`, the lesion contrast metric's reference).
"""

from __future__ import annotations

import numpy as np

from .errors import InputError
from .grids import Grid, shifted_affine
from .phantom_anatomy import Anatomy, sigmoid

LESION_FACTOR = 0.4  # CBF multiplier inside the default phantom's lesion
LESION_RADIUS_MM = (8.0, 10.0)


def _world(grid: Grid) -> list[np.ndarray]:
    """World x, y, z (mm) of every voxel centre, each as a full array over ``grid``."""
    idx = [np.arange(n, dtype=np.float64) for n in grid.shape]
    a = grid.affine
    return [
        a[r, 0] * idx[0][:, None, None] + a[r, 1] * idx[1][None, :, None] + a[r, 2] * idx[2][None, None, :] + a[r, 3]
        for r in range(3)
    ]


def distance_map(grid: Grid, center: np.ndarray) -> np.ndarray:
    """Distance (mm) of every voxel centre of ``grid`` from the world point ``center`` (mm)."""
    x, y, z = _world(grid)
    return np.sqrt((x - center[0]) ** 2 + (y - center[1]) ** 2 + (z - center[2]) ** 2)


def lesion_factor(
    grid: Grid, center: np.ndarray, radius: float, edge_mm: float = 1.0, factor_inside: float = LESION_FACTOR
) -> np.ndarray:
    """CBF multiplier on ``grid``: ``factor_inside`` in the sphere, 1 outside, soft (logistic) edge."""
    factor = np.ones(grid.shape, dtype=np.float32)
    reach = radius + 8.0 * edge_mm
    corners = grid.world_to_index(center + reach * np.array([[-1, -1, -1], [1, 1, 1]]))
    lo = np.clip(np.floor(corners.min(0)).astype(int), 0, grid.shape)
    hi = np.clip(np.ceil(corners.max(0)).astype(int) + 1, 0, grid.shape)
    if np.any(hi <= lo):
        return factor
    box = Grid(tuple(hi - lo), shifted_affine(grid.affine, lo))
    inside = sigmoid((radius - distance_map(box, center)) / edge_mm)
    factor[lo[0] : hi[0], lo[1] : hi[1], lo[2] : hi[2]] = 1.0 - (1.0 - factor_inside) * inside
    return factor


def choose_lesion(rng: np.random.Generator, anatomy: Anatomy, nr: Grid) -> tuple[np.ndarray, float]:
    """Pick a lesion sphere (centre in world mm, radius in mm): one hemisphere, |x| 32-58 mm,
    mostly tissue (>= 90 % GM+WM, >= 40 % GM), at least 5 mm inside the NR field of view."""
    radius = float(rng.uniform(*LESION_RADIUS_MM))
    side = float(rng.choice([-1.0, 1.0]))
    grid = anatomy.grid  # axis-aligned: world axis r varies with index axis r
    corners = nr.fov_corners()
    low, high = corners.min(0) + radius + 5.0, corners.max(0) - radius - 5.0
    allowed = []
    for axis in range(3):
        world = grid.affine[axis, axis] * np.arange(grid.shape[axis]) + grid.affine[axis, 3]
        ok = (world >= low[axis]) & (world <= high[axis])
        if axis == 0:
            ok &= (side * world >= 32.0) & (side * world <= 58.0)
        allowed.append(ok)
    region = allowed[0][:, None, None] & allowed[1][None, :, None] & allowed[2][None, None, :]
    candidates = np.argwhere(region & (anatomy.gm > 0.5))
    if len(candidates) == 0:
        raise InputError("the NR field of view is too small to hold a lesion")
    offsets = _ball_offsets(radius, float(grid.voxel_size[0]))
    best, best_score = candidates[0], -np.inf
    for _ in range(300):
        center = candidates[rng.integers(len(candidates))]
        points = np.clip(center + offsets, 0, np.array(grid.shape) - 1)
        gm = anatomy.gm[tuple(points.T)].mean()
        tissue = gm + anatomy.wm[tuple(points.T)].mean()
        score = min(tissue - 0.9, gm - 0.4)
        if score > best_score:
            best, best_score = center, score
        if score >= 0:
            break
    return grid.index_to_world(best.astype(np.float64)), radius


def mirror_point(nr: Grid, point_mm) -> np.ndarray:
    """The world point whose NR voxel position is ``point_mm``'s flipped along the first voxel axis
    (the mirror of the lesion contrast metric; x -> -x for the phantom's RAS grids)."""
    index = nr.world_to_index(np.asarray(point_mm, dtype=np.float64))
    index[0] = nr.shape[0] - 1 - index[0]
    return nr.index_to_world(index)


def _sphere_mean(volume: np.ndarray, grid: Grid, center: np.ndarray, radius: float) -> float:
    offsets = _ball_offsets(radius, float(grid.voxel_size[0]))
    points = np.clip(np.rint(grid.world_to_index(center)).astype(int) + offsets, 0, np.array(grid.shape) - 1)
    return float(volume[tuple(points.T)].mean())


def choose_lesions(
    rng: np.random.Generator, anatomy: Anatomy, nr: Grid, factors: tuple[float, ...], cbf: np.ndarray, tries: int = 40
) -> list[dict]:
    """One sphere per CBF factor (see :func:`choose_lesion`), inside the NR field of view,
    5 mm apart from each other and from each other's mirror regions (:func:`mirror_point`). Of the
    places tried, the one where the lesion-free ``cbf`` (on the anatomy grid) is most alike in the
    sphere and its mirror is kept, so that the lesion-to-mirror contrast measures the lesion."""
    lesions: list[dict] = []
    for factor in factors:
        best, best_asymmetry = None, np.inf
        for _ in range(tries):
            center, radius = choose_lesion(rng, anatomy, nr)
            index = nr.world_to_index(center)
            reach = radius / nr.voxel_size
            inside = bool(np.all((index >= reach) & (index <= np.array(nr.shape) - 1 - reach)))
            mirror = mirror_point(nr, center)
            apart = all(
                min(
                    np.linalg.norm(center - np.array(other["center_mm"])),
                    np.linalg.norm(mirror - np.array(other["center_mm"])),
                    np.linalg.norm(center - mirror_point(nr, other["center_mm"])),
                )
                > radius + other["radius_mm"] + 5.0
                for other in lesions
            )
            if not (inside and apart):
                continue
            asymmetry = abs(
                np.log(
                    _sphere_mean(cbf, anatomy.grid, center, radius)
                    / max(_sphere_mean(cbf, anatomy.grid, mirror, radius), 1e-6)
                )
            )
            if asymmetry < best_asymmetry:
                best, best_asymmetry = (center, radius), asymmetry
            if asymmetry < 0.1:
                break
        if best is None:
            raise InputError(f"found no place for lesion {len(lesions) + 1} in the NR field of view")
        lesions.append(
            {
                "center_mm": best[0].tolist(),
                "radius_mm": best[1],
                "cbf_factor": factor,
                "kind": "hypo-perfused" if factor < 1 else "hyper-perfused",
                "mirror_log_asymmetry": float(best_asymmetry),
            }
        )
    return lesions


def _ball_offsets(radius: float, voxel: float) -> np.ndarray:
    """Integer voxel offsets (n x 3) within ``radius`` mm of a voxel, for cubic voxels of ``voxel`` mm."""
    r = int(np.ceil(radius / voxel))
    offsets = np.argwhere(np.ones((2 * r + 1,) * 3, dtype=bool)) - r
    return offsets[np.linalg.norm(offsets, axis=1) * voxel <= radius]
