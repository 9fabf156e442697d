import doctest

import numpy as np
import pytest

from aslsr import pyramid
from aslsr.grids import Grid
from aslsr.io import Volume
from aslsr.pyramid import Normalizer, build_pyramid, count_scales, scale_factors, scale_grids, zoom_between


def _grid(shape, voxel):
    return Grid(shape, np.diag([*voxel, 1.0]))


def test_zoom_and_factor_for_the_papers_experiment_1():
    lr, nr = _grid((64, 48, 48), (3.75, 3.75, 2.5)), _grid((128, 96, 48), (1.875, 1.875, 2.5))
    zoom = zoom_between(lr, nr)
    np.testing.assert_allclose(zoom, [2, 2, 1])
    np.testing.assert_allclose(scale_factors(zoom), [2, 2, 1])


def test_the_default_target_from_the_lr_is_learnt_as_at_most_a_doubling_when_capped():
    lr, t1_grid = _grid((64, 48, 48), (3.75, 3.75, 2.5)), _grid((240, 180, 120), (1.0, 1.0, 1.0))
    zoom = zoom_between(lr, t1_grid)
    np.testing.assert_allclose(scale_factors(zoom), [3.75, 3.75, 2.5])
    np.testing.assert_allclose(scale_factors(zoom, cap=2.0), [2, 2, 2])


def test_docstring_examples():
    result = doctest.testmod(pyramid, raise_on_error=False)
    assert result.failed == 0 and result.attempted >= 2


@pytest.mark.parametrize("shape", [(33, 25, 17), (64, 48, 48), (21, 9, 40)])
def test_pyramid_shapes_for_odd_sizes(shape):
    grid = _grid(shape, (3.0, 3.0, 2.5))
    factor = np.array([2.0, 2.0, 1.0])
    n = count_scales(shape, factor, min_size=4, max_scales=5)
    grids = scale_grids(grid, factor, n)
    assert grids[-1] == grid
    for coarse, fine in zip(grids, grids[1:]):
        np.testing.assert_allclose(coarse.voxel_size, fine.voxel_size * factor)
        np.testing.assert_allclose(coarse.center, fine.center, atol=1e-9)
        assert coarse.shape[2] == fine.shape[2]
    assert min(grids[0].shape[:2]) >= 4
    rng = np.random.default_rng(0)
    asl = Volume(rng.normal(size=shape).astype(np.float32), grid)
    t1 = Volume(rng.random((50, 50, 50)).astype(np.float32), Grid((50, 50, 50), np.diag([2.0, 2, 2, 1])))
    scales = build_pyramid(asl, t1, grids)
    assert [s.asl.shape for s in scales] == [g.shape for g in grids]
    assert [s.t1.shape for s in scales] == [g.shape for g in grids]


def test_count_scales_respects_minimum_and_maximum():
    assert count_scales((64, 48, 48), np.array([2.0, 2.0, 1.0]), min_size=12, max_scales=5) == 3
    assert count_scales((64, 48, 48), np.array([2.0, 2.0, 1.0]), min_size=12, max_scales=2) == 2
    assert count_scales((64, 48, 48), np.ones(3), min_size=12, max_scales=5) == 1


def test_normalizer_round_trip_keeps_sign_and_zero():
    rng = np.random.default_rng(1)
    asl = rng.normal(20, 30, size=(10, 10, 10)).astype(np.float32)
    norm = Normalizer.fit(asl, rng.random((10, 10, 10)))
    np.testing.assert_allclose(norm.asl_from_net(norm.asl_to_net(asl)), asl, rtol=1e-6, atol=1e-4)
    assert norm.asl_to_net(np.zeros(1))[0] == 0.0
    assert (norm.asl_to_net(asl) < 0).sum() == (asl < 0).sum()
