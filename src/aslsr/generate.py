"""Super-resolution generation (paper Sec. 2.2): x_sup = G_N(x brought up, a brought up), Eq. 2.

The LR ASL is brought onto the target grid (by default as its dTV reconstruction there; ``input_source``),
the registered T1 is averaged onto the same grid, and the finest generator maps the pair to the SR image
(:meth:`aslsr.model.Model.apply`, which tiles large grids so that memory stays bounded at any output size). On a
target finer than the zoom G_N learnt, with a box acquisition model, the SR is the mean of that and G_N applied on
the grid it learnt, brought up by spline (:func:`learnt_zoom_share`). Each G_N output is held by the consistency
step to the LR's low spatial frequencies in the brain (:func:`enforce_consistency`, :func:`consistency_weights`).
The model and its file are in :mod:`aslsr.model`.
"""

from __future__ import annotations

import functools
import itertools
from typing import Callable

import numpy as np
import torch
from scipy import ndimage

from .acquisition import as_box_acquisition
from .baselines import dtv_baseline, interpolate
from .config import replace
from .devices import resolve_device
from .grids import Grid, resample_average
from .io import Volume
from .masking import derive_mask
from .model import Model
from .noise import relative_noise
from .pyramid import ZOOM_TOLERANCE, bring_up, zoom_between


def super_resolve(
    model: Model,
    asl: Volume,
    t1: Volume,
    target: Grid,
    *,
    device: torch.device | None = None,
    t1_on_target: np.ndarray | None = None,
    dtv_on_target: np.ndarray | None = None,
    brain_mask: np.ndarray | None = None,
) -> np.ndarray:
    """The SR image on ``target`` (same units as ``asl``): G_N(asl brought up, t1 on target).

    ``t1_on_target``: the registered T1 already averaged onto ``target``, when the caller has it;
    ``dtv_on_target``: the dTV reconstruction there that the generator refines when it was trained to
    (``input_source = "dtv"``; computed when not given): the one :func:`refines_acquisition_dtv` picks.
    ``brain_mask``: boolean, on ``asl``'s grid, where the consistency step applies (``consistency_region =
    "brain"``; None: derived from ``t1`` as a run without M0 or mask does, :func:`aslsr.masking.derive_mask`).
    The rest of the generator's chain sees the LR as a box-average acquisition (:func:`as_box_acquisition`).
    """
    config = model.config
    device = device or resolve_device(config.device)
    if brain_mask is not None and np.shape(brain_mask) != asl.grid.shape:
        raise ValueError(f"brain_mask has shape {np.shape(brain_mask)}, not the ASL grid's {asl.grid.shape}")
    brain_mask = derive_mask(None, t1, asl.grid) if brain_mask is None else np.asarray(brain_mask, bool)
    weights = None
    if config.consistency != "off" and config.consistency_region == "brain":
        weights = consistency_weights(brain_mask)
    share = learnt_zoom_share(model, asl.grid, target)
    sr = 0.0
    if share < 1:
        prior = t1_on_target if t1_on_target is not None else resample_average(t1.data, t1.affine, target)
        sr = _on_target(model, asl, prior, target, device, dtv_on_target, brain_mask, weights)
    if share > 0:
        learnt = asl.grid.zoomed(np.asarray(model.factor, dtype=np.float64))
        prior = resample_average(t1.data, t1.affine, learnt)
        at_learnt = _on_target(model, asl, prior, learnt, device, None, brain_mask, weights)
        sr = (1.0 - share) * sr + share * interpolate(Volume(at_learnt, learnt), target, "spline")
    return sr.astype(np.float32)


def _on_target(
    model: Model,
    asl: Volume,
    prior: np.ndarray,
    target: Grid,
    device: torch.device,
    dtv_on_target: np.ndarray | None,
    brain_mask: np.ndarray,
    weights: np.ndarray | None,
) -> np.ndarray:
    """G_N applied on ``target`` (input units): the body of :func:`super_resolve`."""
    config, normalizer = model.config, model.normalizer
    acquired, asl = asl, as_box_acquisition(asl, config)
    if config.input_source == "dtv":
        if dtv_on_target is None:
            if refines_acquisition_dtv(model, acquired, target, brain_mask):
                dtv_on_target = dtv_baseline(acquired, prior, target, config, device=device, brain=brain_mask).image
            else:
                box = replace(config, acquisition="box")
                dtv_on_target = dtv_baseline(asl, prior, target, box, device=device, brain=brain_mask).image
        upsampled = dtv_on_target
    else:
        upsampled = bring_up(asl.data, asl.grid, target, config.upsample_order)
    apply = functools.partial(model.apply, device=device)
    image, prior_net = normalizer.asl_to_net(upsampled), normalizer.t1_to_net(prior)
    output = flip_ensemble(apply, image, prior_net) if config.flip_ensemble else apply(image, prior_net)
    sr = normalizer.asl_from_net(output)
    if config.consistency != "off":
        sigma = config.consistency_sigma_voxels if config.consistency == "lowpass" else 0.0
        sr = enforce_consistency(sr, target, asl, sigma_lr_voxels=sigma, weights=weights)
    return sr


def learnt_zoom_share(model: Model, asl_grid: Grid, target: Grid) -> float:
    """The share of the SR made on the grid G_N learnt (``asl_grid`` zoomed by its factor) and brought to
    ``target`` by cubic spline: the model's ``learnt_zoom_share`` where ``target`` is finer than that grid along
    some axis and the acquisition model is a box, else 0.

    Beyond its learnt zoom G_N refines an input finer than any it was trained on; on box data, G_N where it
    learnt, brought up by spline, was as good or 0.9-1.0 dB better at the T1's 1 mm, and the mean of the two
    as good as the better one or better (BENCHMARKS.md 2026-12-07 late morning). With another acquisition model
    G_N refines the dTV through that model on the target (:func:`refines_acquisition_dtv`), kept whole.
    """
    if model.config.learnt_zoom_share <= 0 or model.config.acquisition != "box":
        return 0.0
    return float(model.config.learnt_zoom_share) if beyond_learnt_zoom(model, asl_grid, target) else 0.0


def beyond_learnt_zoom(model: Model, asl_grid: Grid, target: Grid) -> bool:
    """Whether ``target`` is finer than the grid G_N learnt (``asl_grid`` zoomed by its factor) along some axis."""
    zoom = zoom_between(asl_grid, target)
    return bool(np.any(zoom > np.asarray(model.factor, dtype=np.float64) * ZOOM_TOLERANCE))


def refines_acquisition_dtv(model: Model, asl: Volume, target: Grid, brain_mask: np.ndarray) -> bool:
    """Whether G_N refines the dTV made through the run's acquisition model (the run's ``dtv.nii.gz``)
    rather than the box-model dTV of the LR's box equivalent, the kind of input it was trained on.

    The same for a box model; always for a Gaussian PSF (stated, or point samples found by ``auto``). For a k-space
    model: where ``target`` is finer than the generator learnt (the zoom from ``asl``'s grid above its factor along
    some axis, as at the T1's 1 mm with the factor capped at 2), and at the learnt zoom where the LR is clean enough
    (:func:`~aslsr.noise.relative_noise` below the model's ``acquisition_dtv_below_noise``). Beyond the learnt zoom
    no input is what G_N was trained on, and the finer the grid the more the shape of the PSF matters: on k-space
    phantoms at the T1's 1-1.2 mm the acquisition-model dTV was 0.5-1.8 dB above the box equivalent's and the SR
    on it 0.2-1.7 dB higher. At the learnt zoom the SR on it was 0.5 dB higher at relative noise 0.022 and 0.4 dB
    lower at 0.065, where the box equivalent's filter smooths the noise too (BENCHMARKS.md, 2026-12-07 and
    afternoon). On point samples, whose box equivalent discards the top of the band, it was 1.0 dB higher at
    relative noise 0.042 (2026-12-07 evening). ``brain_mask``: boolean, on ``asl``'s grid (where the noise is not
    read).
    """
    config = model.config
    if config.acquisition != "kspace" or beyond_learnt_zoom(model, asl.grid, target):
        return True
    return relative_noise(asl, brain_mask) < config.acquisition_dtv_below_noise


#: The 8 flips of three voxel axes (each a tuple of the axes it reverses; () is the identity).
FLIPS: tuple[tuple[int, ...], ...] = tuple(c for n in range(4) for c in itertools.combinations(range(3), n))


def flip_ensemble(
    apply: Callable[[np.ndarray, np.ndarray], np.ndarray], image: np.ndarray, t1: np.ndarray
) -> np.ndarray:
    """Mean of ``apply(image, t1)`` over the 8 flips of the voxel axes, each output flipped back.

    A self-ensemble: flipping the ASL and the T1 together is a symmetry of the data (the acquisition
    operators are symmetric too), but not of a trained network, whose errors differ between flips and
    partly average out. Costs 8 applications. Arrays are 3D, axes i, j, k.

    Examples
    --------
    >>> image, t1 = np.arange(24.0).reshape(2, 3, 4), np.zeros((2, 3, 4))
    >>> bool(np.allclose(flip_ensemble(lambda a, b: 2 * a, image, t1), 2 * image))
    True
    >>> shifted = flip_ensemble(lambda a, b: np.roll(a, 1, axis=2), image, t1)  # not flip-symmetric
    >>> bool(np.allclose(shifted, (np.roll(image, 1, axis=2) + np.roll(image, -1, axis=2)) / 2))
    True
    """
    total = np.zeros(image.shape, dtype=np.float64)
    for axes in FLIPS:
        total += np.flip(
            apply(np.ascontiguousarray(np.flip(image, axes)), np.ascontiguousarray(np.flip(t1, axes))), axes
        )
    return (total / len(FLIPS)).astype(np.float32)


def enforce_consistency(
    sr: np.ndarray,
    grid: Grid,
    lr: Volume,
    *,
    iterations: int = 3,
    sigma_lr_voxels: float = 0.0,
    weights: np.ndarray | None = None,
) -> np.ndarray:
    """Iterative back-projection: make the SR averaged onto the LR grid agree with the LR.

    With ``sigma_lr_voxels`` > 0 only the low-pass part (Gaussian, sigma in LR voxels) of the
    disagreement is projected back: offsets and halos that the generator might add at a scale it
    was not trained on are removed, while the generator's denoising at the LR voxel scale is kept.
    ``weights`` (0..1, on the LR grid; None: 1 everywhere) scale the disagreement projected back:
    :func:`consistency_weights`.
    """
    sr = sr.copy()
    for _ in range(iterations):
        residual = lr.data - resample_average(sr, grid.affine, lr.grid)
        if sigma_lr_voxels > 0:
            residual = ndimage.gaussian_filter(residual, sigma_lr_voxels, mode="nearest")
        if weights is not None:
            residual = residual * weights
        sr += bring_up(residual, lr.grid, grid, order=1)
    return sr


def consistency_weights(brain_mask: np.ndarray) -> np.ndarray:
    """Where the consistency step applies (``consistency_region = "brain"``), 0..1 on the LR grid: the brain mask
    grown by one LR voxel, softened outside the brain by a Gaussian of one LR voxel (1 in the brain).

    Outside the brain the LR holds noise and no perfusion; made to agree with it there, the SR kept the LR's noise at
    the LR voxel scale in the background, where G_N and dTV leave it flat (whole-volume SSIM 0.87 against dTV's 0.98
    on the demo phantom). In the brain the step is unchanged (BENCHMARKS.md 2026-12-07 midday).

    Examples
    --------
    >>> mask = np.zeros((11, 1, 1), bool); mask[4:7] = True  # a brain 3 LR voxels wide along the first axis
    >>> np.round(consistency_weights(mask)[:, 0, 0], 2).tolist()
    [0.0, 0.06, 0.3, 0.7, 1.0, 1.0, 1.0, 0.7, 0.3, 0.06, 0.0]
    """
    brain = np.asarray(brain_mask, bool)
    softened = ndimage.gaussian_filter(ndimage.binary_dilation(brain).astype(np.float64), 1.0, mode="nearest")
    return np.maximum(np.clip(softened, 0.0, 1.0), brain)
