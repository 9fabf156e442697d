"""Property tests of world geometry on random affines: oblique, flipped, permuted, anisotropic."""

from __future__ import annotations

import itertools

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from aslsr.errors import InputError
from aslsr.grids import Grid, reorient, resample, resample_average, rigid_matrix, rotation_angle_deg

PERMUTATIONS = list(itertools.permutations(range(3)))
FAST = settings(max_examples=60, deadline=None)


@st.composite
def affines(draw) -> np.ndarray:
    """Voxel-to-world affines: rotation (axis-aligned or oblique) x flips x axis permutation x voxel size."""
    if draw(st.booleans()):
        angles = [draw(st.sampled_from([0.0, 90.0, 180.0, -90.0])) for _ in range(3)]
    else:
        angles = [draw(st.floats(-180.0, 180.0)) for _ in range(3)]
    rotation = rigid_matrix(angles, (0, 0, 0))[:3, :3]
    flips = np.diag([draw(st.sampled_from([-1.0, 1.0])) for _ in range(3)])  # RAS, LAS, LPS, ...
    permutation = np.eye(3)[:, list(draw(st.sampled_from(PERMUTATIONS)))]
    voxel = np.diag([draw(st.floats(0.5, 5.0)) for _ in range(3)])
    affine = np.eye(4)
    affine[:3, :3] = rotation @ flips @ permutation @ voxel
    affine[:3, 3] = [draw(st.floats(-150.0, 150.0)) for _ in range(3)]
    return affine


def shapes(low: int = 3, high: int = 9):
    return st.tuples(*[st.integers(low, high)] * 3)


@st.composite
def grids(draw, low: int = 3, high: int = 9) -> Grid:
    return Grid(draw(shapes(low, high)), draw(affines()))


def _image(grid: Grid, seed: int) -> np.ndarray:
    return np.random.default_rng(seed).normal(size=grid.shape).astype(np.float32)


def _world_coordinates(grid: Grid) -> np.ndarray:
    ijk = np.stack(np.meshgrid(*[np.arange(n) for n in grid.shape], indexing="ij"), axis=-1)
    return grid.index_to_world(ijk)


@FAST
@given(grids(), st.lists(st.floats(-20.0, 20.0), min_size=3, max_size=3))
def test_index_world_round_trip(grid: Grid, ijk: list[float]) -> None:
    points = np.array([ijk, [0, 0, 0], np.array(grid.shape) - 1.0])
    np.testing.assert_allclose(grid.world_to_index(grid.index_to_world(points)), points, atol=1e-8)
    world = grid.index_to_world(points)
    np.testing.assert_allclose(grid.index_to_world(grid.world_to_index(world)), world, atol=1e-8)
    np.testing.assert_allclose(grid.voxel_size, np.linalg.norm(grid.affine[:3, :3], axis=0))


@FAST
@given(grids(), st.tuples(st.booleans(), st.booleans(), st.booleans()), st.sampled_from(PERMUTATIONS))
def test_reorient_keeps_world_content(grid: Grid, flips, permutation) -> None:
    data = _image(grid, 0)
    moved, moved_grid = reorient(data, grid, flips, permutation)
    assert moved_grid.shape == tuple(np.array(grid.shape)[list(permutation)])
    # the same world positions carry the same values
    np.testing.assert_array_equal(resample(moved, moved_grid.affine, grid, order=0), data)
    np.testing.assert_array_equal(resample(data, grid.affine, moved_grid, order=0), moved)
    # same field of view (as a set of corners) and centre
    corners = lambda g: np.array(sorted(map(tuple, np.round(g.fov_corners(), 6))))  # noqa: E731
    np.testing.assert_allclose(corners(moved_grid), corners(grid), atol=1e-5)
    np.testing.assert_allclose(moved_grid.center, grid.center, atol=1e-8)


@FAST
@given(grids(), st.sampled_from([0, 1, 3]))
def test_resample_onto_same_grid_is_identity(grid: Grid, order: int) -> None:
    data = _image(grid, 1)
    result = resample(data, grid.affine, grid, order=order)
    assert result.dtype == np.float32 and result.shape == grid.shape
    np.testing.assert_allclose(result, data, atol=1e-4 if order == 3 else 1e-6)


@FAST
@given(grids(), st.integers(1, 3))
def test_with_voxel_size_keeps_fov_and_centre(grid: Grid, factor: int) -> None:
    fine = grid.with_voxel_size(grid.voxel_size / factor)  # extent divides exactly
    assert fine.shape == tuple(np.array(grid.shape) * factor)
    np.testing.assert_allclose(fine.voxel_size, grid.voxel_size / factor, rtol=1e-9)
    np.testing.assert_allclose(fine.directions, grid.directions, atol=1e-9)
    np.testing.assert_allclose(fine.fov_corners(), grid.fov_corners(), atol=1e-6)
    np.testing.assert_allclose(fine.center, grid.center, atol=1e-6)
    assert grid.zoomed(factor) == fine


@FAST
@given(grids(), st.floats(0.5, 5.0))
def test_with_any_voxel_size_keeps_centre(grid: Grid, size: float) -> None:
    other = grid.with_voxel_size(size)
    np.testing.assert_allclose(other.center, grid.center, atol=1e-6)
    np.testing.assert_allclose(other.voxel_size, size, rtol=1e-9)
    extent = np.array(grid.shape) * grid.voxel_size
    shape = np.array(other.shape)
    assert np.all((np.abs(shape * size - extent) <= size / 2 + 1e-6) | (shape == 1))


@FAST
@given(grids(low=4, high=8), st.sampled_from([1.5, 2.0, 3.0]), st.lists(st.floats(-1, 1), min_size=3, max_size=3))
def test_upsampling_has_no_half_voxel_shift(grid: Grid, zoom: float, gradient: list[float]) -> None:
    """A linear ramp in world space, interpolated linearly onto a finer grid, stays the same ramp."""
    gradient = np.array(gradient)
    ramp = lambda xyz: (xyz - grid.center) @ gradient  # noqa: E731  (mm -> arbitrary units)
    coarse = ramp(_world_coordinates(grid)).astype(np.float32)
    fine = grid.zoomed(zoom)
    upsampled = resample(coarse, grid.affine, fine, order=1)
    world = _world_coordinates(fine)
    source_index = grid.world_to_index(world)
    interior = np.all((source_index >= -1e-6) & (source_index <= np.array(grid.shape) - 1 + 1e-6), axis=-1)
    assert interior.sum() > 0
    scale = np.abs(coarse).max() + 1.0
    np.testing.assert_allclose(upsampled[interior], ramp(world)[interior], atol=1e-5 * scale)


@FAST
@given(grids(low=4, high=8), st.integers(0, 2**16))
def test_zoom_then_average_recovers_source(grid: Grid, seed: int) -> None:
    """zoomed(2) + trilinear upsampling, then resample_average back: exact for a ramp, close for smooth data."""
    rng = np.random.default_rng(seed)
    index = np.stack(np.meshgrid(*[np.arange(n, dtype=float) for n in grid.shape], indexing="ij"), axis=-1)
    ramp = (index @ rng.normal(size=3)).astype(np.float32)
    fine = grid.zoomed(2)
    back = resample_average(resample(ramp, grid.affine, fine, order=1), fine.affine, grid)
    inner = (slice(1, -1),) * 3
    np.testing.assert_allclose(back[inner], ramp[inner], atol=1e-4 * (np.abs(ramp).max() + 1))
    smooth = np.sin(index @ rng.uniform(-0.4, 0.4, size=3) + rng.uniform(0, 6)).astype(np.float32)
    back = resample_average(resample(smooth, grid.affine, fine, order=1), fine.affine, grid)
    # 0.75 s_i + 0.125 (s_i-1 + s_i+1) per axis: a small second-difference error for smooth data
    assert np.abs(back[inner] - smooth[inner]).max() < 0.07
    assert np.abs(back - smooth).max() < 0.2  # the edges see the edge-extended source


@FAST
@given(affines(), st.tuples(*[st.integers(1, 3)] * 3), st.tuples(*[st.integers(1, 3)] * 3))
def test_resample_average_is_block_mean(affine: np.ndarray, blocks, factors) -> None:
    factors = np.array(factors)
    fine = Grid(tuple(np.array(blocks) * factors), affine)
    coarse = fine.with_voxel_size(fine.voxel_size * factors)
    assert coarse.shape == tuple(blocks)
    data = _image(fine, 2)
    b0, b1, b2 = blocks
    f0, f1, f2 = factors
    expected = data.reshape(b0, f0, b1, f1, b2, f2).mean(axis=(1, 3, 5))
    np.testing.assert_allclose(resample_average(data, fine.affine, coarse), expected, atol=1e-5)


@FAST
@given(grids(low=4, high=8), st.integers(0, 2), st.floats(0.3, 0.7), st.sampled_from([0, 1, 3]))
def test_outside_source_fov_gets_outside_value(grid: Grid, axis: int, shift: float, order: int) -> None:
    target_affine = grid.affine.copy()
    target_affine[:3, 3] += grid.affine[:3, axis] * grid.shape[axis] * shift  # slide the FOV along an axis
    target = Grid(grid.shape, target_affine)
    data = _image(grid, 3) + 5.0  # values far from the outside value
    result = resample(data, grid.affine, target, order=order, outside=-99.0)
    source_index = grid.world_to_index(_world_coordinates(target))
    outside = np.any((source_index < -0.5 - 1e-3) | (source_index > np.array(grid.shape) - 0.5 + 1e-3), axis=-1)
    inside = np.all((source_index > -0.5 + 1e-3) & (source_index < np.array(grid.shape) - 0.5 - 1e-3), axis=-1)
    assert outside.any() and inside.any()
    assert np.all(result[outside] == -99.0)
    assert np.all(result[inside] != -99.0)
    average = resample_average(data, grid.affine, target)
    assert np.all(average[outside] == 0.0)


def test_invalid_voxel_sizes_and_affines_raise() -> None:
    grid = Grid((4, 4, 4), np.diag([2.0, 2.0, 2.0, 1.0]))
    for size in (0.0, -1.0, (1.0, 0.0, 1.0), (1.0, 1.0, -2.0)):
        with pytest.raises(InputError, match="positive"):
            grid.with_voxel_size(size)
    for zoom in (0.0, -2.0):
        with pytest.raises(InputError, match="positive"):
            grid.zoomed(zoom)
    with pytest.raises(InputError):
        grid.with_voxel_size((1.0, 2.0))
    with pytest.raises(InputError, match="singular"):
        Grid((4, 4, 4), np.diag([0.0, 2.0, 2.0, 1.0]))
    collinear = np.eye(4)
    collinear[:3, 1] = [1.0, 0.0, 0.0]
    with pytest.raises(InputError, match="singular"):
        Grid((4, 4, 4), collinear)
    with pytest.raises(InputError):
        Grid((4, 4, 0), np.eye(4))
    with pytest.raises(InputError):
        Grid((4, 4, 4), np.full((4, 4), np.nan))


def test_grid_equality_and_hash() -> None:
    affine = rigid_matrix((10.0, -20.0, 30.0), (1.0, 2.0, 3.0))
    a, b = Grid((4, 5, 6), affine), Grid((4, 5, 6), affine + 1e-8)
    assert a == b and hash(a) == hash(b)
    assert a != Grid((4, 5, 7), affine)
    assert a != Grid((4, 5, 6), affine @ np.diag([1.0, 1.0, 1.01, 1.0]))


def test_rigid_matrix_rotation_angle() -> None:
    assert rotation_angle_deg(rigid_matrix((0.0, 0.0, 30.0), (5.0, 0.0, 0.0))) == pytest.approx(30.0)
    matrix = rigid_matrix((0.0, 90.0, 0.0), (0.0, 0.0, 0.0), center=(10.0, 0.0, 0.0))
    np.testing.assert_allclose(matrix[:3, :3] @ [10.0, 0.0, 0.0] + matrix[:3, 3], [10.0, 0.0, 0.0], atol=1e-12)


def test_equal_grids_hash_equal_at_rounding_boundary() -> None:
    a = Grid((4, 4, 4), np.diag([1.000049999, 1.0, 1.0, 1.0]))
    b = Grid((4, 4, 4), np.diag([1.000050001, 1.0, 1.0, 1.0]))
    assert a == b
    assert hash(a) == hash(b)


def test_resample_average_exact_and_oblique_paths_agree_on_smooth_data():
    """Axis-parallel grids use exact box integration; oblique ones sub-voxel sampling: same result."""
    source = Grid((40, 36, 30), np.diag([1.0, 1.0, 1.0, 1.0]))
    smooth = np.fromfunction(lambda i, j, k: np.sin(i / 5) + np.cos(j / 6) * k / 20, source.shape).astype(np.float32)
    coarse = Grid((16, 12, 10), np.array([[1.5, 0, 0, 8.0], [0, 2.5, 0, 6.0], [0, 0, 2.0, 5.0], [0, 0, 0, 1]]))
    tilted = Grid(coarse.shape, rigid_matrix((0.01, 0, 0), (0, 0, 0), coarse.center) @ coarse.affine)
    exact = resample_average(smooth, source.affine, coarse)
    sampled = resample_average(smooth, source.affine, tilted)
    np.testing.assert_allclose(sampled[2:-2, 2:-2, 2:-2], exact[2:-2, 2:-2, 2:-2], atol=0.02)
