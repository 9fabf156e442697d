"""Brain masks from an M0-like image and from a T1 with a synthetic scalp (MNI152 2009 templates)."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import ndimage

from aslsr.grids import Grid, resample, resample_average
from aslsr.io import Volume
from aslsr.masking import brain_mask_from_image, brain_mask_from_t1
from aslsr.phantom import load_anatomy


@pytest.fixture(scope="module")
def mni() -> dict:
    anatomy = load_anatomy()
    t1, affine, gm, wm = anatomy.t1 / 255.0, anatomy.grid.affine, anatomy.gm, anatomy.wm
    brain, csf = anatomy.brain, anatomy.csf
    # The bundled template T1 is skull-stripped: add CSF (dark), skull (darker) and a bright scalp.
    distance = ndimage.distance_transform_edt(~brain)
    shell = (distance > 0) & (distance <= 14)
    layers = np.where(distance <= 3, 0.15, np.where(distance <= 7, 0.05, 0.75)).astype(np.float32)
    t1_head = t1.copy()
    t1_head[shell] = np.maximum(t1[shell], layers[shell])
    return {"affine": affine, "m0": (0.87 * gm + 0.73 * wm + csf) * 1000.0, "tissue": gm + wm, "t1_head": t1_head}


def _grid(shape, voxel) -> Grid:
    affine = np.eye(4)
    affine[:3, :3] = np.diag(voxel)
    affine[:3, 3] = np.array([0.0, -18.0, 15.0]) - np.array(voxel) * (np.array(shape) - 1) / 2.0
    return Grid(shape, affine)


def _dice(a: np.ndarray, b: np.ndarray) -> float:
    return float(2 * (a & b).sum() / (a.sum() + b.sum()))


@pytest.mark.parametrize("shape,voxel", [((64, 48, 48), (3.75, 3.75, 2.5)), ((128, 96, 48), (1.875, 1.875, 2.5))])
def test_m0_mask_matches_brain(mni: dict, shape, voxel) -> None:
    grid = _grid(shape, voxel)
    truth = resample_average(mni["tissue"], mni["affine"], grid) > 0.3
    m0 = resample_average(mni["m0"], mni["affine"], grid)
    m0 = np.abs(m0 + np.random.default_rng(0).normal(0, 20, m0.shape)).astype(np.float32)
    mask = brain_mask_from_image(Volume(m0, grid))
    assert mask.dtype == bool and mask.shape == grid.shape
    assert _dice(mask, truth) > 0.85


def test_t1_mask_strips_scalp(mni: dict) -> None:
    grid = _grid((128, 96, 48), (1.875, 1.875, 2.5))
    truth = resample_average(mni["tissue"], mni["affine"], grid) > 0.3
    t1 = resample(mni["t1_head"], mni["affine"], grid)
    mask = brain_mask_from_t1(t1, grid.voxel_size)
    assert _dice(mask, truth) > 0.9
    head = brain_mask_from_image(Volume(t1, grid)) | (t1 > 0.5)
    scalp = head & (ndimage.distance_transform_edt(~truth, sampling=grid.voxel_size) > 9)
    assert scalp.sum() > 1000 and (mask & scalp).sum() < 0.02 * scalp.sum()


def test_constant_image_gives_empty_mask() -> None:
    grid = _grid((8, 8, 8), (2.0, 2.0, 2.0))
    assert not brain_mask_from_image(Volume(np.ones(grid.shape, np.float32), grid)).any()
    assert not brain_mask_from_t1(np.zeros(grid.shape, np.float32), 2.0).any()
