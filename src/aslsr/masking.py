"""Rough brain masks from a single image, for metrics, registration and quality control.

Both functions work on one 3D array and return a boolean mask on the same voxel grid. They are
deliberately simple (Otsu threshold, connected components, morphology) and need no atlas:

* :func:`brain_mask_from_image` suits images in which the brain is the bright object and the
  background is dark: an M0 / mean control image, a perfusion image with good SNR, or a T1 that has
  already been skull-stripped. With an unstripped T1 it returns the whole head (scalp included).
* :func:`brain_mask_from_t1` suits a T1 with skull and scalp (resampled onto any grid, e.g. the
  ASL grid): it erodes away the thin bridges between brain and scalp before keeping the largest
  component, so the scalp is mostly excluded. It is an approximation (a few mm of meninges or
  scalp may remain, the cerebellum's lower edge may be cut), good enough for brain-restricted
  metrics and QC, not for volumetry.

Sizes of the morphological operations are given in mm and converted with the voxel size, so the
masks behave the same on a 1 mm T1 grid and on a 3.75 x 3.75 x 5 mm ASL grid.
"""

from __future__ import annotations

from typing import Sequence

import numpy as np
from scipy import ndimage
from skimage.filters import threshold_otsu

from .grids import Grid, resample_average
from .io import Volume


def brain_mask_from_image(volume: Volume, *, smooth_mm: float = 2.0, closing_mm: float = 4.0) -> np.ndarray:
    """Boolean mask of the bright object (the head or brain) in ``volume``, on its grid.

    Steps: Gaussian smoothing (``smooth_mm`` FWHM-ish sigma in mm, at least half a voxel), Otsu
    threshold over the finite voxels, largest 6-connected component, morphological closing with a
    ball of radius ``closing_mm`` (mm), hole filling in 3D.
    Reasonable for an M0 or mean control image, or a T1 resampled onto the ASL grid after skull
    stripping; returns an all-False mask for a constant image.
    """
    voxel = volume.grid.voxel_size
    data = np.nan_to_num(np.asarray(volume.data, dtype=np.float32))
    if float(data.max()) <= float(data.min()):
        return np.zeros(data.shape, dtype=bool)
    smoothed = ndimage.gaussian_filter(data, sigma=np.maximum(smooth_mm / voxel, 0.5))
    threshold = threshold_otsu(smoothed)
    mask = _largest_component(smoothed > threshold)
    if not mask.any():
        return mask
    mask = _closing(mask, closing_mm, voxel)
    return _fill(mask)


def brain_mask_from_t1(
    t1_on_grid: np.ndarray,
    voxel_size: Sequence[float] | float = 1.0,
    *,
    erosion_mm: float = 6.0,
    dilation_mm: float | None = None,
) -> np.ndarray:
    """Approximate brain mask (scalp and skull removed) from a T1 with skull, on the array's grid.

    ``voxel_size`` (mm, 1 or 3 numbers) is the voxel size of ``t1_on_grid``. Steps: light
    smoothing; a threshold between the Otsu levels that keeps grey and white matter but drops CSF
    and skull (T1-dark); erosion by ``erosion_mm`` (mm) to cut the bridges to the scalp; largest
    component; dilation back by ``dilation_mm`` (default: the erosion radius plus 1 mm, so that the
    cortex and a thin CSF rim are included); closing and hole filling (ventricles, sulci).
    """
    voxel = np.broadcast_to(np.asarray(voxel_size, dtype=np.float64), (3,)).copy()
    data = np.nan_to_num(np.asarray(t1_on_grid, dtype=np.float32))
    if float(data.max()) <= float(data.min()):
        return np.zeros(data.shape, dtype=bool)
    smoothed = ndimage.gaussian_filter(data, sigma=np.maximum(1.0 / voxel, 0.5))
    head_threshold = threshold_otsu(smoothed)
    head = _fill(_largest_component(smoothed > head_threshold))
    if not head.any():
        return head
    # Inside the head, a second Otsu split separates tissue (GM/WM) from CSF and bone.
    inside = smoothed[head]
    tissue_threshold = threshold_otsu(inside) if np.ptp(inside) > 0 else head_threshold
    tissue = head & (smoothed > 0.5 * (head_threshold + tissue_threshold))
    core = _largest_component(_erode(tissue, erosion_mm, voxel))
    if not core.any():  # grid too coarse for the erosion: fall back to the tissue mask
        core = _largest_component(tissue)
    grow = erosion_mm + 1.0 if dilation_mm is None else dilation_mm
    mask = dilate(core, grow, voxel) & head
    mask = _closing(mask, 4.0, voxel)
    return _fill(mask)


def derive_mask(m0: Volume | None, t1_registered: Volume, grid: Grid) -> np.ndarray:
    """Brain mask on ``grid``, as a run without ``--mask`` makes it: from the M0 when given
    (:func:`brain_mask_from_image`), else from the registered T1 averaged onto ``grid`` (:func:`brain_mask_from_t1`)."""
    if m0 is not None:
        return brain_mask_from_image(Volume(resample_average(m0.data, m0.affine, grid), grid))
    t1_on_grid = resample_average(t1_registered.data, t1_registered.affine, grid)
    return brain_mask_from_t1(t1_on_grid, grid.voxel_size)


def _erode(mask: np.ndarray, radius_mm: float, voxel: np.ndarray) -> np.ndarray:
    """Erosion by a ball of ``radius_mm`` (mm), via the Euclidean distance transform (fast)."""
    if not mask.any() or radius_mm <= 0:
        return mask.copy()
    return ndimage.distance_transform_edt(mask, sampling=voxel) > radius_mm


def dilate(mask: np.ndarray, radius_mm: float, voxel: np.ndarray) -> np.ndarray:
    """Dilation of a boolean ``mask`` by a ball of ``radius_mm`` (mm; ``voxel``: the voxel size in mm), via the
    Euclidean distance transform (fast)."""
    if not mask.any() or radius_mm <= 0:
        return mask.copy()
    return ndimage.distance_transform_edt(~mask, sampling=voxel) <= radius_mm


def _largest_component(mask: np.ndarray) -> np.ndarray:
    labels, count = ndimage.label(mask)
    if count <= 1:
        return mask.astype(bool)
    sizes = np.bincount(labels.ravel())
    sizes[0] = 0
    return labels == int(np.argmax(sizes))


def _closing(mask: np.ndarray, radius_mm: float, voxel: np.ndarray) -> np.ndarray:
    """Closing with a ball (mm); pads first so that objects touching the FOV edge are not eroded."""
    pad = [int(np.ceil(radius_mm / v)) + 1 for v in voxel]
    padded = np.pad(mask, [(p, p) for p in pad])
    closed = _erode(dilate(padded, radius_mm, voxel), radius_mm, voxel)
    return closed[tuple(slice(p, p + n) for p, n in zip(pad, mask.shape))] | mask


def _fill(mask: np.ndarray) -> np.ndarray:
    """Fill holes (ventricles, enclosed sulci) in 3D."""
    return ndimage.binary_fill_holes(mask)
