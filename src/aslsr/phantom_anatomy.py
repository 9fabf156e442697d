"""Anatomy of the digital phantom: the MNI152 2009 (symmetric) templates bundled with nilearn.

The T1, grey-matter and white-matter templates are read through nilearn's public loaders
(``nilearn.datasets.load_mni152_template`` / ``_gm_template`` / ``_wm_template``, at 1 mm or, with
``resolution_mm``, resampled by nilearn), never from nilearn's data folder; nothing is downloaded.
From them come the brain mask, the CSF fraction and a synthetic scalp band for the M0. Arrays are
in NIfTI voxel order (i, j, k) on the template grid (axis-aligned RAS, world mm).
"""

from __future__ import annotations

import functools
import warnings
from dataclasses import dataclass

import nibabel as nib
import numpy as np
from scipy import ndimage

from .errors import InputError
from .grids import Grid, resample_average

TEMPLATE_LOADERS = {"t1": "load_mni152_template", "gm": "load_mni152_gm_template", "wm": "load_mni152_wm_template"}
T1_TEMPLATE_SCALE = 255.0  # nilearn rescales the templates to [0, 1]; the T1 keeps 0-255 units
M0_SCALP = 450.0  # scalp M0 signal (arbitrary units, as the proton density x 1000)


@dataclass(frozen=True)
class Anatomy:
    """Seed-independent anatomy on the MNI grid (1 mm unless asked; arrays read-only, axes i=R, j=A, k=S)."""

    grid: Grid
    t1: np.ndarray  # template T1 intensity (0-255)
    gm: np.ndarray  # grey-matter probability
    wm: np.ndarray  # white-matter probability
    csf: np.ndarray  # CSF fraction inside the brain
    brain: np.ndarray  # bool brain mask (closed, holes filled)
    scalp_grid: Grid  # 2 mm grid for the synthetic scalp
    scalp: np.ndarray  # scalp M0 signal on scalp_grid
    center: np.ndarray  # centre (world mm) of the brain mask's bounding box


def load_templates(resolution_mm: int = 1) -> dict[str, nib.Nifti1Image]:
    """The MNI152 T1, GM and WM templates from nilearn's public loaders (values in [0, 1]),
    resampled by nilearn to ``resolution_mm`` (integer mm) when it is not 1."""
    try:
        from nilearn import datasets
    except ImportError:
        raise InputError("the phantom needs nilearn (pip install nilearn) for its bundled MNI152 templates") from None
    if int(resolution_mm) != resolution_mm or resolution_mm < 1:
        raise InputError(f"the template resolution must be a positive integer (mm), got {resolution_mm}")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # nilearn's resampling FutureWarnings
        return {
            name: getattr(datasets, loader)(resolution=int(resolution_mm)) for name, loader in TEMPLATE_LOADERS.items()
        }


@functools.lru_cache(maxsize=2)
def load_anatomy(resolution_mm: int = 1) -> Anatomy:
    """Load the templates at ``resolution_mm`` and derive the brain mask, CSF and scalp maps (cached)."""
    images = load_templates(resolution_mm)
    grid = Grid(images["t1"].shape, images["t1"].affine)
    if not np.allclose(np.abs(grid.affine[:3, :3]), resolution_mm * np.eye(3)):
        raise InputError(f"expected the MNI templates on a {resolution_mm} mm axis-aligned grid")
    t1, gm, wm = (np.asarray(images[n].get_fdata(dtype=np.float32)) for n in ("t1", "gm", "wm"))
    return derive_anatomy(grid, T1_TEMPLATE_SCALE * t1, np.clip(gm, 0.0, 1.0), np.clip(wm, 0.0, 1.0))


def derive_anatomy(grid: Grid, t1: np.ndarray, gm: np.ndarray, wm: np.ndarray) -> Anatomy:
    """An :class:`Anatomy` from a T1 and GM/WM probability maps on ``grid`` (axis-aligned, RAS):
    brain mask (closed, holes filled), CSF fraction, synthetic scalp and centre. Arrays read-only."""
    gm, wm = gm.astype(np.float32, copy=False), wm.astype(np.float32, copy=False)
    tissue = (gm + wm) > 0.5
    pad = 4
    iterations = max(1, int(round(3.0 / float(grid.voxel_size[0]))))  # ~3 mm closing at any resolution
    closed = ndimage.binary_closing(np.pad(tissue, pad), iterations=iterations)[pad:-pad, pad:-pad, pad:-pad]
    brain = ndimage.binary_fill_holes(closed)
    csf = np.clip(brain - gm - wm, 0.0, 1.0).astype(np.float32)
    # the T1 template is skull-stripped, so the scalp seen on M0 is a synthetic band 5-11 mm out
    scalp_grid = grid.with_voxel_size(2.0)
    brain2 = resample_average(brain.astype(np.float32), grid.affine, scalp_grid) > 0.5
    distance = ndimage.distance_transform_edt(~brain2, sampling=2.0)
    scalp = (M0_SCALP * (sigmoid(distance - 5.0) - sigmoid(distance - 11.0))).astype(np.float32)
    idx = np.argwhere(brain)
    center = grid.index_to_world((idx.min(0) + idx.max(0)) / 2.0)
    t1 = np.asarray(t1, dtype=np.float32)
    for array in (t1, gm, wm, csf, brain, scalp, center):
        array.setflags(write=False)
    return Anatomy(grid, t1, gm, wm, csf, brain, scalp_grid, scalp, center)


def sigmoid(x: np.ndarray) -> np.ndarray:
    """The logistic function 1 / (1 + exp(-x)), float64."""
    return 1.0 / (1.0 + np.exp(-np.asarray(x, dtype=np.float64)))
