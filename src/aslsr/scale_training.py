"""Training one scale of the pyramid (paper Sec. 2.1, Eq. 3): G_n and a fresh critic D_n against x_n.

Each iteration draws a batch of patches ([G_n's input, T1 a_n] -> x_n, with the held-out blocks left out), takes
the critic's step (WGAN-GP, when the adversarial term is on), computes the generator's loss (adversarial + alpha
MSE + beta low-pass MSE), lets the divergence guard check it, and takes the generator's step. Every
``validate_every`` iterations G_n is scored on the held-out blocks; the scale ends with the best-validated weights
and goes on past its nominal count while that loss still falls (:mod:`aslsr.stability`). :class:`ScaleTrainer`
holds one scale's state; :func:`train_scale` is the loop. The loop over scales is :mod:`aslsr.train`.
"""

from __future__ import annotations

import math
import time
from typing import Any, Callable

import numpy as np
import torch

from . import losses, stability
from .checkpoint import TrainingState, restore_rngs
from .config import Config
from .devices import compute_layout, use_bfloat16
from .networks import Generator, PatchCritic
from .objective import critic_step, data_terms, generator_loss
from .progress import progress_bar
from .pyramid import Scale
from .sampling import PatchSampler

Batch = tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]  # G_n's input, T1, x_n, loss weight


def train_scale(
    trainer: ScaleTrainer,
    *,
    progress: bool,
    warnings: list[str],
    resume: TrainingState | None = None,
    on_checkpoint: Callable[[int, dict[str, Any]], None] | None = None,
) -> tuple[list[dict], float]:
    """Train one scale: G_n (in place; it starts from G_{n-1}'s weights) and a fresh critic D_n, as ``trainer``
    holds them.

    The generator ends with the weights of the best held-out validation loss. Past the scale's nominal iterations
    it trains on, up to ``config.extend_iterations`` more, while that loss still falls. Warnings (roll-backs) are
    appended to ``warnings``. Returns the logged rows and the seconds spent on this scale. ``resume`` continues a
    scale from a mid-scale checkpoint; ``on_checkpoint(next_iteration, scale_state)`` is called when one is due.
    """
    config, level = trainer.config, trainer.level
    start = 0 if resume is None else trainer.resume(resume)
    bar = progress_bar(
        range(start, trainer.total),
        enabled=progress,
        initial=start,
        total=max(trainer.iterations, start),  # grows by a window each time training goes on past the nominal count
        desc=f"scale {level} {trainer.shape}",
        leave=True,
        dynamic_ncols=True,
    )
    steps = trainer.total
    for iteration in bar:
        if iteration >= bar.total:
            bar.total = min(trainer.total, bar.total + config.extend_window)
            bar.refresh()
        rate = trainer.set_learning_rate(iteration)
        loss, terms, batch = trainer.losses(iteration)
        problem = trainer.check(terms, batch)
        if not problem:
            row = trainer.record(iteration, rate, terms)
            if row:
                bar.set_postfix({k: f"{v:.3g}" for k, v in terms.items() if k in ("mse", "lowpass", "adv_g")})
                if trainer.stalled(iteration):
                    steps = bar.total = iteration  # these weights, validated, are the last: no step from here
                    break
            problem = trainer.step(loss, row)
        if problem:
            if trainer.roll_back(iteration, problem, warnings):
                steps = bar.total = iteration
                break
            continue
        if on_checkpoint is not None and _checkpoint_due(config, iteration, trainer.total):
            on_checkpoint(iteration + 1, trainer.checkpoint_state())
    bar.close()
    return trainer.finish(steps), trainer.seconds()


class ScaleTrainer:
    """One scale's training state: G_n (trained in place), a fresh critic D_n, their Adam optimisers, the weight
    average, the patch sampler, the held-out validator, the divergence guard and the gradient clip.

    ``source``: G_n's input on the grid of ``scale`` (network units; None at scale 0, where G_0 starts from
    noise). ``rng`` draws the patches, ``noise_generator`` G_0's noise; both are restored by :meth:`resume`.

    The order of construction is the order in which they draw from the run's random generators, so that a seeded
    run trains the same weights.
    """

    def __init__(
        self,
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
    ) -> None:
        self.generator, self.config, self.device, self.level = generator, config, device, level
        self.rng, self.noise_generator, self.shape = rng, noise_generator, scale.grid.shape
        self.iterations = config.iterations_at(level, n_scales)
        self.total = self.iterations + config.extend_iterations
        compute_layout(generator, device, channels_last=config.channels_last).train()
        self.optimizer_g = _adam(generator, config)
        self.modules: dict[str, Any] = {"generator": generator, "optimizer_g": self.optimizer_g}
        self.critic: PatchCritic | None = None
        self.optimizer_d: torch.optim.Adam | None = None
        if config.use_adversarial:
            critic = PatchCritic(channels=config.critic_channels, layers=config.critic_layers)
            self.critic = compute_layout(critic, device, channels_last=config.channels_last)
            self.optimizer_d = _adam(self.critic, config)
            self.modules.update(critic=self.critic, optimizer_d=self.optimizer_d)
        self.ema = stability.weight_average(generator, config.ema_decay)
        if self.ema is not None:
            self.modules["ema"] = self.ema  # rolled back and checkpointed with the generator
        self.lowpass = losses.GaussianLowPass(config.lowpass_sigma_voxels)
        held = stability.holdout_mask(
            scale.asl.shape,
            fraction=config.validation_fraction,
            block_voxels=config.validation_block_voxels,
            seed=config.seed + level,
            brain=scale.mask,
        )
        self.sampler = PatchSampler(scale, source, config, rng, held_out=held)
        self.residual = level > 0
        self.validator = _validator(scale, source, held, config, self.lowpass, self.residual)
        self.guard = stability.DivergenceGuard(self.modules, config.learning_rate)
        self.clip = stability.GradientClip(absolute=config.grad_clip_norm, relative=config.grad_clip_relative)
        self.bfloat16 = use_bfloat16(device, config.bfloat16)
        self.rows: list[dict] = []
        self.best_live = math.inf  # the best held-out loss of the live weights: where a roll-back returns
        self.started = time.perf_counter()

    def resume(self, state: TrainingState) -> int:
        """Continue from a mid-scale checkpoint: its modules, guard, validator, clip, rows and random generators;
        returns the next iteration."""
        saved = state.scale
        for name, module in self.modules.items():
            module.load_state_dict(saved[name])
        self.guard.load_state_dict(saved["guard"])
        # absent from checkpoints written before the clip existed
        self.clip.load_state_dict(saved.get("clip", {"recent": [], "clipped": 0}))
        self.validator.load_state_dict(saved["validator"])
        self.rows = list(saved["rows"])
        restore_rngs(state, self.rng, self.noise_generator)
        self.best_live = min((row["validation"] for row in self.rows if "validation" in row), default=math.inf)
        self.started = time.perf_counter() - float(saved["seconds"])
        return state.iteration

    def set_learning_rate(self, iteration: int) -> float:
        """Set both optimisers' rate for ``iteration`` (the schedule times the guard's factor); returns it."""
        config = self.config
        rate = self.guard.learning_rate_factor * stability.learning_rate_at(
            iteration, self.iterations, base=config.learning_rate, schedule=config.lr_schedule,
            warmup=config.warmup_iterations,
        )  # fmt: skip
        for optimizer in (self.optimizer_g, self.optimizer_d):
            for group in optimizer.param_groups if optimizer is not None else ():
                group["lr"] = rate
        return rate

    def losses(self, iteration: int) -> tuple[torch.Tensor, dict[str, float], Batch]:
        """One batch: the critic's step where due, then the generator's loss; (loss, its terms, the batch)."""
        config = self.config
        image, t1, real, weight = self.sampler.batch()
        if image is None:
            image = torch.randn(real.shape, generator=self.noise_generator)  # G_0's input z_0
        batch: Batch = (image.to(self.device), t1.to(self.device), real.to(self.device), weight.to(self.device))
        image, t1, real, weight = batch
        terms: dict[str, float] = {}
        with torch.autocast(self.device.type, dtype=torch.bfloat16, enabled=self.bfloat16):
            fake = self.generator(image, t1, residual=self.residual)
        if config.use_adversarial and iteration % config.critic_every == 0:
            penalise = (iteration // config.critic_every) % config.gp_every == 0
            critic_step(self.critic, self.optimizer_d, real, fake.detach(), config, terms, penalise=penalise)
        loss = generator_loss(self.critic, fake, real, self.lowpass, config, terms, weight=weight)
        return loss, terms, batch

    def check(self, terms: dict[str, float], batch: Batch) -> str:
        """The divergence guard's verdict on this batch's loss terms ('' when sound)."""
        return self.guard.check(
            terms,
            remembered_terms=lambda: data_terms(
                self.guard.remembered("generator"), batch, self.lowpass, self.config, self.residual
            ),
        )

    def record(self, iteration: int, rate: float, terms: dict[str, float]) -> dict[str, Any]:
        """This iteration's logged row, with the held-out loss every ``validate_every`` iterations; {} when no row
        is due. A new best held-out loss of the live weights is remembered by the guard."""
        config = self.config
        validate = iteration % config.validate_every == 0
        if not (validate or iteration % config.log_every == 0 or iteration == self.total - 1):
            return {}
        row: dict[str, Any] = {"scale": self.level, "iteration": iteration, "seconds": self.seconds(), "lr": rate}
        row.update(terms)
        if validate:
            row["validation"] = self.validator.update(self.generator, iteration)
            if row["validation"] < self.best_live:
                # A roll-back returns here, to the best-validated live weights (and their optimiser state): going
                # back to the last weights with a sound batch loss, already oscillating and with Adam's second
                # moment full of it, froze two runs (BENCHMARKS.md 2026-12-02 afternoon).
                self.best_live = row["validation"]
                self.guard.remember()
            if self.ema is not None:
                row["validation_ema"] = self.validator.update(self.ema.module, iteration, label="ema")
        self.rows.append(row)
        return row

    def stalled(self, iteration: int) -> bool:
        """Whether training past the nominal count ends here (at a validation: :func:`stability.learning_stalled`)."""
        return iteration % self.config.validate_every == 0 and stability.learning_stalled(
            self.rows, iteration, self.iterations, self.config
        )

    def step(self, loss: torch.Tensor, row: dict[str, Any]) -> str:
        """The generator's step (and the weight average's); the gradient norm goes into ``row`` when the clip
        is on. Returns the problem the step caused ('' when none)."""
        self.optimizer_g.zero_grad(set_to_none=True)
        loss.backward()
        if self.clip.active:
            row["grad_norm"] = self.clip(self.generator.parameters())  # before clipping
        self.optimizer_g.step()
        problem = "" if self.guard.weights_finite() else "the weights became non-finite after a step"
        if self.ema is not None and not problem:
            self.ema.update_parameters(self.generator)
        return problem

    def roll_back(self, iteration: int, problem: str, warnings: list[str]) -> bool:
        """Go back to the best-validated weights with a smaller rate, or stop the scale; warns. True: stop."""
        stop = self.guard.roll_back()
        outcome = (
            "stopped this scale with the best weights so far"
            if stop
            else f"went back to the best-validated weights with {self.guard.learning_rate_factor:.3g}x the rate"
        )
        warnings.append(f"scale {self.level}, iteration {iteration}: {problem}; {outcome}")
        return stop

    def checkpoint_state(self) -> dict[str, Any]:
        """What :meth:`resume` needs to continue this scale."""
        return {
            **{name: module.state_dict() for name, module in self.modules.items()},
            "guard": self.guard.state_dict(),
            "clip": self.clip.state_dict(),
            "validator": self.validator.state_dict(),
            "rows": self.rows,
            "seconds": self.seconds(),
        }

    def finish(self, steps: int) -> list[dict]:
        """Validate the last weights, keep the best-validated ones, summarise the scale in the last row."""
        final = self.validator.update(self.generator, steps)  # the last step is checked like every other
        if self.ema is not None:
            final = min(final, self.validator.update(self.ema.module, steps, label="ema"))
        if self.config.select_best or not math.isfinite(final):
            self.validator.restore_best(self.generator)
        if self.rows:
            self.rows[-1].update(
                best_iteration=self.validator.best_iteration,
                best_weights=self.validator.best_label,
                hard_batches=self.guard.hard_batches,  # spikes the remembered weights shared: not roll-backs
                clipped_steps=self.clip.clipped,
                steps=steps,
            )
        return self.rows

    def seconds(self) -> float:
        """Seconds spent on this scale (across a resume)."""
        return time.perf_counter() - self.started


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
