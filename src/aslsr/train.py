"""Progressive multi-scale training (paper Sec. 2.1): G_0 .. G_N trained coarse to fine.

Scale 0: G_0(z_0, a_0) from white Gaussian noise z_0 and the T1 a_0.
Scale n > 0: G_n(x_{n-1} brought up, a_n), with G_n initialised from G_{n-1}'s weights.
Each scale minimises WGAN-GP + alpha * MSE + beta * low-pass MSE against x_n (Eq. 3), with its own
critic D_n. ``config.input_source`` chooses the image fed to G_n: "real" brings up the real x_{n-1}
(the same kind of input the finest generator gets at super-resolution time, Eq. 2), "generated"
brings up G_{n-1}'s output (Eq. 1). With ``config.input_noise = "matched"`` x_{n-1} first gets the noise that
makes it as noisy as x_n (:func:`noisy_coarse`, noise.py), as the LR is at super-resolution time.
"""

from __future__ import annotations

import dataclasses
import functools
import math
import os
import time
from typing import Any, Callable

import numpy as np
import torch

from . import baselines, losses, noise, stability
from .acquisition import as_box_acquisition
from .acquisition_estimate import resolve_acquisition
from .checkpoint import Checkpointer, TrainingState, capture_rngs, restore_rngs
from .config import Config, replace
from .devices import compute_layout, resolve_device, scoped_torch_state, seed_everything, use_bfloat16
from .grids import Grid
from .io import Volume
from .model import Model, apply_generator
from .networks import Generator, PatchCritic
from .objective import critic_step, data_terms, generator_loss
from .progress import progress_bar
from .pyramid import Normalizer, Scale, bring_up, build_pyramid, count_scales, scale_factors, scale_grids
from .sampling import PatchSampler


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
        if level == 0:
            source = None
        elif config.input_source == "generated" and previous_output is not None:
            source = bring_up(previous_output, grids[level - 1], scale.grid, config.upsample_order)
        elif config.input_source == "dtv":
            coarse = noisy_coarse(raw_scales[level - 1], config, factor, level, len(scales))
            source = normalizer.asl_to_net(dtv_step(coarse, raw_scales[level], config, device))
        else:
            coarse = normalizer.asl_to_net(noisy_coarse(raw_scales[level - 1], config, factor, level, len(scales)).asl)
            source = bring_up(coarse, grids[level - 1], scale.grid, config.upsample_order)
        if level == 1 and not config.single_scale and resume is None:
            generator.unet.reset_head()  # G_0 generates from noise; G_n>0 refine: start as the identity
        rows, seconds = train_scale(
            generator,
            scale,
            source,
            level=level,
            n_scales=len(scales),
            config=config,
            device=device,
            rng=rng,
            noise_generator=noise_generator,
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
    return baselines.dtv_baseline(Volume(coarse.asl, coarse.grid), fine.t1, fine.grid, box, device=device).image


def _noise(shape: tuple[int, ...], generator: torch.Generator) -> np.ndarray:
    return torch.randn(shape, generator=generator).numpy()


def train_scale(
    generator: Generator,
    scale: Scale,
    source: np.ndarray | None,
    *,
    level: int,
    n_scales: int,
    config: Config,
    device: torch.device,
    rng: np.random.Generator,
    noise_generator: torch.Generator,
    progress: bool,
    warnings: list[str],
    resume: TrainingState | None = None,
    on_checkpoint: Callable[[int, dict[str, Any]], None] | None = None,
) -> tuple[list[dict], float]:
    """Train G_n (in place; it starts from G_{n-1}'s weights) and a fresh critic D_n on one scale.

    The generator ends with the weights of the best held-out validation loss (stability.py). Past the
    scale's nominal iterations it trains on, up to ``config.extend_iterations`` more, while that loss still falls.
    Returns the logged rows and the seconds spent on this scale. ``resume`` continues a scale from a
    mid-scale checkpoint; ``on_checkpoint(next_iteration, scale_state)`` is called when one is due.
    """
    iterations = config.iterations_at(level, n_scales)
    total = iterations + config.extend_iterations
    compute_layout(generator, device, channels_last=config.channels_last).train()
    optimizer_g = _adam(generator, config)
    modules: dict[str, Any] = {"generator": generator, "optimizer_g": optimizer_g}
    critic = optimizer_d = None
    if config.use_adversarial:
        critic = PatchCritic(channels=config.critic_channels, layers=config.critic_layers)
        critic = compute_layout(critic, device, channels_last=config.channels_last)
        optimizer_d = _adam(critic, config)
        modules.update(critic=critic, optimizer_d=optimizer_d)
    ema = stability.weight_average(generator, config.ema_decay)
    if ema is not None:
        modules["ema"] = ema  # rolled back and checkpointed with the generator
    lowpass = losses.GaussianLowPass(config.lowpass_sigma_voxels)
    held = stability.holdout_mask(
        scale.asl.shape,
        fraction=config.validation_fraction,
        block_voxels=config.validation_block_voxels,
        seed=config.seed + level,
        brain=scale.mask,
    )
    sampler = PatchSampler(scale, source, config, rng, held_out=held)
    residual = level > 0
    validator = _validator(scale, source, held, config, lowpass, residual)
    guard = stability.DivergenceGuard(modules, config.learning_rate)
    clip = stability.GradientClip(absolute=config.grad_clip_norm, relative=config.grad_clip_relative)
    bfloat16 = use_bfloat16(device, config.bfloat16)
    rows: list[dict] = []
    start, seconds_before = 0, 0.0
    if resume is not None:
        start, rows, seconds_before = _restore_scale(resume, modules, guard, validator, clip)
        restore_rngs(resume, rng, noise_generator)
    best_live = min((row["validation"] for row in rows if "validation" in row), default=math.inf)
    started = time.perf_counter() - seconds_before
    bar = progress_bar(
        range(start, total),
        enabled=progress,
        initial=start,
        total=max(iterations, start),  # grows by a window each time training goes on past the nominal count
        desc=f"scale {level} {scale.grid.shape}",
        leave=True,
        dynamic_ncols=True,
    )
    steps = total
    for iteration in bar:
        if iteration >= bar.total:
            bar.total = min(total, bar.total + config.extend_window)
            bar.refresh()
        rate = guard.learning_rate_factor * stability.learning_rate_at(
            iteration,
            iterations,
            base=config.learning_rate,
            schedule=config.lr_schedule,
            warmup=config.warmup_iterations,
        )
        for optimizer in (optimizer_g, optimizer_d):
            for group in optimizer.param_groups if optimizer is not None else ():
                group["lr"] = rate
        image, t1, real, weight = sampler.batch()
        if image is None:
            image = torch.randn(real.shape, generator=noise_generator)
        image, t1, real, weight = image.to(device), t1.to(device), real.to(device), weight.to(device)
        terms: dict[str, float] = {}
        with torch.autocast(device.type, dtype=torch.bfloat16, enabled=bfloat16):
            fake = generator(image, t1, residual=residual)
        if config.use_adversarial and iteration % config.critic_every == 0:
            critic_step(
                critic,
                optimizer_d,
                real,
                fake.detach(),
                config,
                terms,
                penalise=(iteration // config.critic_every) % config.gp_every == 0,
            )
        loss = generator_loss(critic, fake, real, lowpass, config, terms, weight=weight)
        problem = guard.check(
            terms,
            remembered_terms=lambda: data_terms(
                guard.remembered("generator"), (image, t1, real, weight), lowpass, config, residual
            ),
        )
        row: dict[str, Any] = {}
        if not problem:
            validate = iteration % config.validate_every == 0
            if validate or iteration % config.log_every == 0 or iteration == total - 1:
                row = {
                    "scale": level,
                    "iteration": iteration,
                    "seconds": time.perf_counter() - started,
                    "lr": rate,
                    **terms,
                }
                if validate:
                    row["validation"] = validator.update(generator, iteration)
                    if row["validation"] < best_live:
                        # A roll-back returns here, to the best-validated live weights (and their optimiser state):
                        # going back to the last weights with a sound batch loss, already oscillating and with
                        # Adam's second moment full of it, froze two runs (BENCHMARKS.md 2026-12-02 afternoon).
                        best_live = row["validation"]
                        guard.remember()
                    if ema is not None:
                        row["validation_ema"] = validator.update(ema.module, iteration, label="ema")
                rows.append(row)
                bar.set_postfix({k: f"{v:.3g}" for k, v in terms.items() if k in ("mse", "lowpass", "adv_g")})
                if validate and stability.learning_stalled(rows, iteration, iterations, config):
                    steps = bar.total = iteration  # these weights, validated, are the last: no step from here
                    break
            optimizer_g.zero_grad(set_to_none=True)
            loss.backward()
            if clip.active:
                row["grad_norm"] = clip(generator.parameters())  # before clipping; recorded on logged rows
            optimizer_g.step()
            problem = "" if guard.weights_finite() else "the weights became non-finite after a step"
            if ema is not None and not problem:
                ema.update_parameters(generator)
        if problem:
            stop = guard.roll_back()
            warnings.append(
                f"scale {level}, iteration {iteration}: {problem}; "
                + (
                    "stopped this scale with the best weights so far"
                    if stop
                    else f"went back to the best-validated weights with {guard.learning_rate_factor:.3g}x the rate"
                )
            )
            if stop:
                steps = bar.total = iteration
                break
            continue
        if on_checkpoint is not None and _checkpoint_due(config, iteration, total):
            on_checkpoint(
                iteration + 1,
                {
                    **{name: module.state_dict() for name, module in modules.items()},
                    "guard": guard.state_dict(),
                    "clip": clip.state_dict(),
                    "validator": validator.state_dict(),
                    "rows": rows,
                    "seconds": time.perf_counter() - started,
                },
            )
    bar.close()
    final = validator.update(generator, steps)  # the last step is checked like every other
    if ema is not None:
        final = min(final, validator.update(ema.module, steps, label="ema"))
    if config.select_best or not math.isfinite(final):
        validator.restore_best(generator)
    if rows:
        rows[-1]["best_iteration"] = validator.best_iteration
        rows[-1]["best_weights"] = validator.best_label
        rows[-1]["hard_batches"] = guard.hard_batches  # spikes the remembered weights shared: not roll-backs
        rows[-1]["clipped_steps"] = clip.clipped
        rows[-1]["steps"] = steps
    return rows, time.perf_counter() - started


def _adam(module: torch.nn.Module, config: Config) -> torch.optim.Adam:
    return torch.optim.Adam(module.parameters(), lr=config.learning_rate, betas=config.adam_betas)


def _validator(
    scale: Scale,
    source: np.ndarray | None,
    held: np.ndarray,
    config: Config,
    lowpass: losses.GaussianLowPass,
    residual: bool,
) -> stability.HeldOutValidator:
    """The held-out validator of one scale: whole-volume [image, T1] -> x_n, scored on ``held`` voxels.

    Without held-out voxels (``validation_fraction`` 0) it scores the whole volume.
    """
    target = torch.from_numpy(scale.asl.astype(np.float32))[None, None]
    image = (
        torch.from_numpy(source.astype(np.float32))[None, None]
        if source is not None
        else torch.randn(target.shape, generator=torch.Generator().manual_seed(config.seed + 1))
    )
    inputs = torch.cat([image, torch.from_numpy(scale.t1.astype(np.float32))[None, None]], dim=1)
    where = held if held.any() else np.ones_like(held)
    return stability.HeldOutValidator(
        inputs,
        target,
        where,
        alpha=config.alpha,
        beta=config.beta if config.use_lowpass else 0.0,
        lowpass=lowpass,
        residual=residual,
    )


def _checkpoint_due(config: Config, iteration: int, iterations: int) -> bool:
    done = iteration + 1
    return config.checkpoint_every > 0 and done % config.checkpoint_every == 0 and done < iterations


def _restore_scale(
    state: TrainingState,
    modules: dict[str, Any],
    guard: stability.DivergenceGuard,
    validator: stability.HeldOutValidator,
    clip: stability.GradientClip,
) -> tuple[int, list[dict], float]:
    """Load a mid-scale checkpoint's modules, guard, validator and clip; (next iteration, rows, seconds)."""
    saved = state.scale
    for name, module in modules.items():
        module.load_state_dict(saved[name])
    guard.load_state_dict(saved["guard"])
    clip.load_state_dict(saved.get("clip", {"recent": [], "clipped": 0}))  # absent from checkpoints written before it
    validator.load_state_dict(saved["validator"])
    return state.iteration, list(saved["rows"]), float(saved["seconds"])
