"""Progressive multi-scale training (paper Sec. 2.1): G_0 .. G_N trained coarse to fine.

Scale 0: G_0(z_0, a_0) from white Gaussian noise z_0 and the T1 a_0.
Scale n > 0: G_n(x_{n-1} brought up, a_n), with G_n initialised from G_{n-1}'s weights.
Each scale minimises WGAN-GP + alpha * MSE + beta * low-pass MSE against x_n (Eq. 3), with its own
critic D_n. ``config.input_source`` chooses the image fed to G_n: "dtv" (the default preset's) the dTV
reconstruction of the real x_{n-1} on grid n, "real" the real x_{n-1} brought up (the same kind of input the
finest generator gets at super-resolution time, Eq. 2), "generated" G_{n-1}'s output brought up (Eq. 1). With
``config.input_noise = "matched"`` x_{n-1} first gets the noise that makes it as noisy as x_n
(:func:`noisy_coarse`, noise.py), as the LR is at super-resolution time.
G_n's input is chosen in :func:`generator_input`; one scale's training loop is :mod:`aslsr.scale_training`.
"""

from __future__ import annotations

import dataclasses
import functools
import os
from typing import Any

import numpy as np
import torch

from . import baselines, noise
from .acquisition import as_box_acquisition
from .acquisition_estimate import resolve_acquisition
from .checkpoint import Checkpointer, TrainingState, capture_rngs, restore_rngs
from .config import Config, replace
from .devices import resolve_device, scoped_torch_state, seed_everything
from .grids import Grid
from .io import Volume
from .model import Model, apply_generator
from .networks import Generator
from .pyramid import Normalizer, Scale, bring_up, build_pyramid, count_scales, scale_factors, scale_grids
from .scale_training import ScaleTrainer, train_scale


def plan_scales(asl_grid: Grid, zoom: np.ndarray, config: Config) -> tuple[np.ndarray, list[Grid]]:
    """Factor between scales and the grids x_0..x_N for an SR zoom (per LR voxel axis)."""
    if config.scale_factor:
        factor = np.asarray(config.scale_factor, dtype=np.float64)
    else:
        factor = scale_factors(zoom, cap=config.max_scale_factor)
    if np.all(factor <= 1.0):
        factor = np.full(3, 4.0 / 3.0)  # same-grid denoising: fall back to SinGAN's factor
    n_scales = config.n_scales or count_scales(
        asl_grid.shape, factor, min_size=config.min_size_voxels, max_scales=config.max_scales
    )
    if config.single_scale:
        n_scales = 2
    return factor, scale_grids(asl_grid, factor, n_scales)


def train(
    asl: Volume,
    t1: Volume,
    *,
    config: Config,
    zoom: np.ndarray,
    mask: np.ndarray | None = None,
    progress: bool = True,
    checkpointer: Checkpointer | None = None,
    device: torch.device | None = None,
) -> Model:
    """Train the pyramid of generators on one LR ASL volume and its registered T1.

    ``asl`` is the LR volume (any units), ``t1`` the registered T1 (world-aligned through its affine),
    ``zoom`` the super-resolution zoom per LR voxel axis, ``mask`` an optional brain mask on the
    ASL grid used to centre most training patches in the brain. With a ``checkpointer``, the state
    is saved after every scale and every ``config.checkpoint_every`` iterations, and training
    continues from a saved state when there is one (same result as an uninterrupted run on the CPU).
    ``device``: where to train (None: ``config.device``, resolved here).
    """
    device = device or resolve_device(config.device)
    threads = (config.threads or os.cpu_count() or 1) if device.type == "cpu" else None
    with scoped_torch_state(threads):
        return _train(
            asl, t1, config=config, zoom=zoom, mask=mask, progress=progress, checkpointer=checkpointer, device=device
        )


def _train(
    asl: Volume,
    t1: Volume,
    *,
    config: Config,
    zoom: np.ndarray,
    mask: np.ndarray | None,
    progress: bool,
    checkpointer: Checkpointer | None,
    device: torch.device,
) -> Model:
    rng, noise_generator = seed_everything(config.seed)
    config, _ = resolve_acquisition(config, asl, mask)
    config, _ = noise.resolve_input_noise(config, asl, mask)  # a no-op when a run has resolved it already
    asl = as_box_acquisition(asl, config)
    factor, grids = plan_scales(asl.grid, zoom, config)
    raw_scales = build_pyramid(asl, t1, grids, mask)
    normalizer = Normalizer.fit(raw_scales[-1].asl, raw_scales[-1].t1)
    scales = [normalizer.apply(scale) for scale in raw_scales]
    model = Model(None, normalizer, config, factor, grids)  # type: ignore[arg-type]

    generator = Generator(
        channels=config.generator_channels, use_t1=config.use_t1, residual=config.residual, init=config.generator_init
    )
    first = 1 if config.single_scale else 0
    previous_output = None
    state = checkpointer.load() if checkpointer is not None else None
    if state is not None:
        first = state.level
        generator.load_state_dict(state.generator)
        model.history, model.scale_seconds, model.warnings = state.history, state.scale_seconds, state.warnings
        previous_output = None if state.previous_output is None else state.previous_output.numpy()
        if state.iteration == 0:
            restore_rngs(state, rng, noise_generator)

    def save(level: int, iteration: int, scale_state: dict[str, Any]) -> None:
        output = None if previous_output is None else torch.from_numpy(previous_output)
        checkpointer.save(
            TrainingState(  # type: ignore[union-attr]
                level=level,
                iteration=iteration,
                generator=generator.state_dict(),
                **capture_rngs(rng, noise_generator),
                history=model.history,
                scale_seconds=model.scale_seconds,
                warnings=model.warnings,
                previous_output=output,
                scale=scale_state,
            )
        )

    for level in range(first, len(scales)):
        scale = scales[level]
        resume = state if state is not None and state.level == level and state.iteration > 0 else None
        source = None
        if level > 0:
            source = generator_input(raw_scales, level, normalizer, config, factor, device, previous_output)
        if level == 1 and not config.single_scale and resume is None:
            generator.unet.reset_head()  # G_0 generates from noise; G_n>0 refine: start as the identity
        trainer = ScaleTrainer(
            generator,
            scale,
            source,
            level=level,
            n_scales=len(scales),
            config=config,
            device=device,
            rng=rng,
            noise_generator=noise_generator,
        )
        rows, seconds = train_scale(
            trainer,
            progress=progress,
            warnings=model.warnings,
            resume=resume,
            on_checkpoint=None if checkpointer is None else functools.partial(save, level),
        )
        model.history.extend(rows)
        model.scale_seconds.append(seconds)
        if config.input_source == "generated" and level < len(scales) - 1:
            image = source if source is not None else _noise(scale.asl.shape, noise_generator)
            previous_output = apply_generator(
                generator, image, scale.t1, config=config, device=device, residual=level > 0
            )
        if checkpointer is not None:
            save(level + 1, 0, {})
    model.generator = generator.eval()
    return model


def generator_input(
    raw_scales: list[Scale],
    level: int,
    normalizer: Normalizer,
    config: Config,
    factor: np.ndarray,
    device: torch.device,
    previous_output: np.ndarray | None = None,
) -> np.ndarray:
    """G_level's training input on grid ``level`` (network units), for ``level`` > 0, as ``config.input_source``
    says: "dtv": the dTV reconstruction of x_{level-1} (:func:`dtv_step`), "real": x_{level-1} brought up,
    "generated": G_{level-1}'s output ``previous_output`` brought up (Eq. 1; "real" where there is none, as in
    single-scale training). x_{level-1} first gets the noise of :func:`noisy_coarse`. ``raw_scales``: the pyramid
    in input units."""
    coarse_grid, grid = raw_scales[level - 1].grid, raw_scales[level].grid
    if config.input_source == "generated" and previous_output is not None:
        return bring_up(previous_output, coarse_grid, grid, config.upsample_order)
    coarse = noisy_coarse(raw_scales[level - 1], config, factor, level, len(raw_scales))
    if config.input_source == "dtv":
        return normalizer.asl_to_net(dtv_step(coarse, raw_scales[level], config, device))
    return bring_up(normalizer.asl_to_net(coarse.asl), coarse_grid, grid, config.upsample_order)


def noisy_coarse(coarse: Scale, config: Config, factor: np.ndarray, level: int, n_scales: int) -> Scale:
    """x_{level-1} (input units) as G_level's training input: with ``input_noise = "matched"`` plus white noise
    that makes it as noisy as x_level (noise.py), drawn from its own generator seeded by the run's seed."""
    sd = noise.input_noise_sd(config, factor, level, n_scales)
    if sd == 0.0:
        return coarse
    return dataclasses.replace(coarse, asl=noise.add_noise(coarse.asl, sd, seed=config.seed * 1000 + level))


def dtv_step(coarse: Scale, fine: Scale, config: Config, device: torch.device) -> np.ndarray:
    """dTV reconstruction of x_{n-1} (input units) on grid n with the T1 a_n; the pyramid's own operator
    (box average, as :func:`pyramid.build_pyramid` made x_{n-1}) is the acquisition model of this step."""
    box = replace(config, acquisition="box")
    coarse_volume = Volume(coarse.asl, coarse.grid)
    return baselines.dtv_baseline(coarse_volume, fine.t1, fine.grid, box, device=device, brain=coarse.mask).image


def _noise(shape: tuple[int, ...], generator: torch.Generator) -> np.ndarray:
    return torch.randn(shape, generator=generator).numpy()
