"""What keeps one scale's training sound: the learning-rate schedule, held-out validation with
best-weight selection, and the divergence guard (the last resort).

- Schedule: the learning rate of every step, a pure function of the iteration (so resuming is exact), and
  how long to train: past the nominal count, a scale goes on in windows while its held-out loss still falls.
- Held-out validation: a fixed share of the scale's voxels (small blocks, mostly in the brain) is left
  out of the training loss; the generator's loss on those voxels, over the whole volume, is a
  validation signal that needs no reference image. The weights with the best validation loss are
  the ones a scale returns, not the last ones.
- Guard: a non-finite loss term or weight, or a data loss (alpha * MSE + beta * low-pass) many times
  its recent median that the remembered weights did not also give on the same batch (a hard batch is
  not a divergence), sends the generator, the critic and both optimisers back to the remembered state,
  with half the learning rate. Training remembers the state whose live weights had the best held-out
  loss so far (train.py): the last weights with a sound batch loss may already be oscillating.
"""

from __future__ import annotations

import copy
import math
from typing import TYPE_CHECKING, Any, Callable, Mapping, Sequence

import numpy as np
import torch
from torch import nn

from . import losses

if TYPE_CHECKING:
    from .config import Config

#: A step diverged when a watched term exceeds this multiple of the median of its recent values.
SPIKE_FACTOR = 20.0
SPIKE_WINDOW = 50  # recent steps in that median (checked once at least SPIKE_MIN_STEPS are known)
SPIKE_MIN_STEPS = 20
#: The data terms alpha * MSE + beta * low-pass MSE, summed: a jump of a term that is a negligible part of
#: the loss (the low-pass term is ~1 % of it) is patch-to-patch noise, not a divergence. The adversarial
#: terms change sign and scale by design and are only checked for being finite.
WATCHED_TERMS = ("data",)
#: A spike is the step's fault only when the remembered weights gave the same batch a data loss at least this
#: many times smaller; otherwise the batch is hard (a lesion or vessel the input cannot show), not the weights.
SAME_BATCH_FACTOR = 2.0
MAX_RETRIES = 4  # roll-backs per scale, each halving the learning rate, before the scale stops
CLIP_WINDOW = 50  # recent gradient norms whose median a relative clip scales
CLIP_MIN_STEPS = 10  # a relative clip starts once this many norms are known


def learning_rate_at(
    iteration: int, iterations: int, *, base: float, schedule: str, warmup: int = 0, final_fraction: float = 0.05
) -> float:
    """Learning rate of step ``iteration`` (0-based) of ``iterations``.

    Every schedule starts with a linear warm-up over ``warmup`` steps (none when 0), then ``constant``;
    ``step``: SinGAN's x0.1 after 80 % of the steps; ``cosine``: a half cosine from ``base`` down to
    ``final_fraction * base``.
    """
    ramp = min(1.0, (iteration + 1) / warmup) if warmup > 0 else 1.0
    if schedule == "constant":
        return base * ramp
    if schedule == "step":
        return base * ramp * (0.1 if iteration >= int(0.8 * iterations) else 1.0)
    progress = iteration / max(1, iterations - 1)
    return base * ramp * (final_fraction + (1.0 - final_fraction) * 0.5 * (1.0 + math.cos(math.pi * progress)))


def still_improving(rows: Sequence[Mapping[str, Any]], iteration: int, *, window: int, min_fall: float) -> bool:
    """Whether training still learns: the best held-out loss validated up to ``iteration`` (live or averaged
    weights) is at least ``min_fall`` (a fraction) below the best validated up to ``iteration - window``.

    ``rows`` as in losses.csv: ``iteration``, and ``validation`` (and ``validation_ema``) on validated rows.

    Examples
    --------
    >>> rows = [{"iteration": 0, "validation": 1.0}, {"iteration": 200, "validation": 0.95, "validation_ema": 0.9}]
    >>> still_improving(rows, 200, window=200, min_fall=0.05)
    True
    >>> still_improving(rows, 200, window=200, min_fall=0.2)
    False
    """

    def best_until(last: int) -> float:
        scores = (
            min(row["validation"], row.get("validation_ema", math.inf))
            for row in rows
            if "validation" in row and row["iteration"] <= last
        )
        return min(scores, default=math.inf)

    before = best_until(iteration - window)
    return math.isfinite(before) and best_until(iteration) < (1.0 - min_fall) * before


def learning_stalled(rows: Sequence[Mapping[str, Any]], iteration: int, nominal: int, config: Config) -> bool:
    """Whether a run past its ``nominal`` iterations ends at ``iteration``: decided at the first validation of
    each ``config.extend_window`` past them, when the held-out loss fell less than ``config.extend_min_fall``.
    Never true before ``nominal``, so a run without extension (which stops at ``nominal``) is not affected."""
    past, window = iteration - nominal, config.extend_window
    return (
        past >= 0
        and past // window > (past - config.validate_every) // window
        and not still_improving(rows, iteration, window=window, min_fall=config.extend_min_fall)
    )


def holdout_mask(
    shape: tuple[int, int, int], *, fraction: float, block_voxels: int, seed: int, brain: np.ndarray | None = None
) -> np.ndarray:
    """Boolean (i, j, k) mask of held-out voxels: ``fraction`` of the blocks of ``block_voxels`` per side.

    Blocks are drawn among those that touch the brain when a mask is given (else among all).
    """
    held = np.zeros(shape, dtype=bool)
    if fraction <= 0:
        return held
    counts = [math.ceil(n / block_voxels) for n in shape]
    if brain is not None and brain.any():
        padded = np.zeros([c * block_voxels for c in counts], dtype=bool)
        padded[: shape[0], : shape[1], : shape[2]] = brain
        blocks = padded.reshape(counts[0], block_voxels, counts[1], block_voxels, counts[2], block_voxels)
        candidates = np.argwhere(blocks.any(axis=(1, 3, 5)))
    else:
        candidates = np.argwhere(np.ones(counts, dtype=bool))
    rng = np.random.default_rng([seed, 7919])  # its own stream: the training stream is unchanged
    chosen = candidates[rng.permutation(len(candidates))[: max(1, round(fraction * len(candidates)))]]
    for a, b, c in chosen * block_voxels:
        held[a : a + block_voxels, b : b + block_voxels, c : c + block_voxels] = True
    return held


class HeldOutValidator:
    """Validation loss of a generator on held-out voxels of one scale, and the best weights so far.

    ``inputs`` is (1, 2, i, j, k): [image, T1] of the whole scale in network units (the image is
    noise at the coarsest scale); ``target`` (1, 1, i, j, k) is x_n; ``held`` the held-out mask.
    """

    def __init__(
        self,
        inputs: torch.Tensor,
        target: torch.Tensor,
        held: np.ndarray,
        *,
        alpha: float,
        beta: float,
        lowpass: losses.GaussianLowPass | None,
        residual: bool,
    ):
        self.inputs, self.target = inputs, target
        self.weight = torch.from_numpy(held.astype(np.float32))[None, None]
        self.alpha, self.beta, self.lowpass, self.residual = alpha, beta, lowpass, residual
        self.best_score = math.inf
        self.best_iteration = -1
        self.best_label = ""
        self.best_weights: dict[str, torch.Tensor] | None = None

    def score(self, generator: nn.Module) -> float:
        """alpha * MSE + beta * low-pass MSE on the held-out voxels (inf when non-finite)."""
        device = next(generator.parameters()).device
        was_training = generator.training
        generator.eval()
        with torch.no_grad():
            inputs, target, weight = self.inputs.to(device), self.target.to(device), self.weight.to(device)
            fake = generator(inputs[:, 0:1], inputs[:, 1:2], residual=self.residual)
            value = self.alpha * losses.mse_loss(fake, target, weight)
            if self.lowpass is not None and self.beta > 0:
                value = value + self.beta * losses.lowpass_loss(fake, target, self.lowpass, weight)
        generator.train(was_training)
        value = float(value)
        return value if math.isfinite(value) else math.inf

    def update(self, generator: nn.Module, iteration: int, *, label: str = "last") -> float:
        """Score the current weights and keep them when they are the best so far (``label``: which weights)."""
        value = self.score(generator)
        if value < self.best_score:
            self.best_score, self.best_iteration, self.best_label = value, iteration, label
            self.best_weights = {k: v.detach().clone() for k, v in generator.state_dict().items()}
        return value

    def restore_best(self, generator: nn.Module) -> None:
        if self.best_weights is not None:
            generator.load_state_dict(self.best_weights)

    def state_dict(self) -> dict[str, Any]:
        return {
            "best_score": self.best_score,
            "best_iteration": self.best_iteration,
            "best_label": self.best_label,
            "best_weights": self.best_weights,
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.best_score, self.best_iteration = float(state["best_score"]), int(state["best_iteration"])
        self.best_label = str(state.get("best_label", "last"))
        self.best_weights = state["best_weights"]


def weight_average(generator: nn.Module, decay: float) -> torch.optim.swa_utils.AveragedModel | None:
    """An exponential moving average of ``generator``'s weights (``decay`` per step), or None when ``decay`` is 0.

    The average smooths the step-to-step noise of Adam on random patches; the held-out validation decides
    whether it or the live weights are kept.
    """
    if decay <= 0:
        return None
    average = torch.optim.swa_utils.get_ema_multi_avg_fn(decay)
    return torch.optim.swa_utils.AveragedModel(generator, multi_avg_fn=average, use_buffers=True)


class GradientClip:
    """Clips the generator's gradient norm before the optimiser step: to ``absolute``, and to ``relative``
    times the median of the last ``CLIP_WINDOW`` (unclipped) norms; either may be None (off).

    A relative clip is scale-free: it lets the gradient's ordinary size through whatever it is, and keeps a
    later burst (a step whose gradient is many times the usual) out of Adam's second-moment estimate. The
    ``fast`` preset clips at 5x (BENCHMARKS.md 2026-12-06 night). It starts after ``CLIP_MIN_STEPS`` steps,
    so it cannot catch the burst of Adam's first steps.

    Examples
    --------
    >>> clip = GradientClip(relative=2.0)
    >>> weight = torch.nn.Parameter(torch.zeros(1))
    >>> for _ in range(CLIP_MIN_STEPS):
    ...     weight.grad = torch.ones(1)
    ...     _ = clip(weight)
    >>> weight.grad = torch.full((1,), 10.0)
    >>> clip(weight), round(float(weight.grad), 4)
    (10.0, 2.0)
    """

    def __init__(self, *, absolute: float | None = None, relative: float | None = None):
        self.absolute, self.relative = absolute, relative
        self.recent: list[float] = []
        self.clipped = 0  # steps whose gradient was scaled down

    @property
    def active(self) -> bool:
        return bool(self.absolute or self.relative)

    def limit(self) -> float:
        """The norm the next gradient is clipped to (inf when nothing clips yet)."""
        limit = self.absolute or math.inf
        if self.relative and len(self.recent) >= CLIP_MIN_STEPS:
            limit = min(limit, self.relative * float(np.median(self.recent)))
        return limit

    def __call__(self, parameters: Any) -> float:
        """Clip the gradients of ``parameters`` in place; the norm before clipping."""
        limit = self.limit()
        norm = float(torch.nn.utils.clip_grad_norm_(parameters, limit))
        self.clipped += norm > limit
        if math.isfinite(norm):
            self.recent = (self.recent + [norm])[-CLIP_WINDOW:]
        return norm

    def state_dict(self) -> dict[str, Any]:
        return {"recent": list(self.recent), "clipped": self.clipped}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.recent, self.clipped = list(state["recent"]), int(state["clipped"])


class DivergenceGuard:
    """Catches a diverging step and rolls back to the remembered state (``remember``: the caller decides when).

    Watches every loss term (finite), the data loss (``SPIKE_FACTOR`` times its recent median) and
    the weights after each step (finite). A roll-back restores the generator,
    the critic and both optimisers together and halves the learning rate; after ``MAX_RETRIES``
    roll-backs the scale stops there. The recent history survives a roll-back (it describes the
    weights rolled back to), so the guard is never blind after one.
    """

    def __init__(self, modules: dict[str, nn.Module | torch.optim.Optimizer], base_learning_rate: float):
        self.modules = modules
        self.base_learning_rate = base_learning_rate
        self.recent: dict[str, list[float]] = {term: [] for term in WATCHED_TERMS}
        self.retries = 0
        self.hard_batches = 0  # spikes that the remembered weights shared on the same batch (not roll-backs)
        self.snapshot: dict[str, Any] | None = None
        self._probes: dict[str, nn.Module] = {}

    @property
    def learning_rate_factor(self) -> float:
        """Multiplier on the scheduled learning rate after the roll-backs so far."""
        return 0.5**self.retries

    def check(self, terms: dict[str, float], *, remembered_terms: Callable[[], dict[str, float]] | None = None) -> str:
        """'' when the loss terms of the current weights are sound, else what is wrong with them.

        ``remembered_terms``: the same batch's loss terms under the remembered weights, called
        only on a spike; a spike those weights share is a hard batch, not a divergence.
        """
        for name, value in terms.items():
            if not math.isfinite(value):
                return f"the {name} term became non-finite"
        for name in WATCHED_TERMS:
            history = self.recent[name]
            if name in terms and len(history) >= SPIKE_MIN_STEPS:
                median = float(np.median(history))
                if terms[name] > SPIKE_FACTOR * median and not self._hard_batch(name, terms, remembered_terms):
                    return f"the {name} term jumped to {terms[name] / median:.0f}x its recent median"
        for name in WATCHED_TERMS:
            if name in terms:
                self.recent[name] = (self.recent[name] + [terms[name]])[-SPIKE_WINDOW:]
        return ""

    def _hard_batch(
        self, name: str, terms: dict[str, float], remembered_terms: Callable[[], dict[str, float]] | None
    ) -> bool:
        if remembered_terms is None or self.snapshot is None:
            return False
        before = remembered_terms().get(name, 0.0)
        hard = math.isfinite(before) and terms[name] <= SAME_BATCH_FACTOR * before
        if hard:
            self.hard_batches += 1
        return hard

    def remembered(self, name: str) -> nn.Module:
        """A copy of module ``name`` holding the remembered weights, for re-evaluating a batch."""
        if name not in self._probes:
            self._probes[name] = copy.deepcopy(self.modules[name])
        probe = self._probes[name]
        probe.load_state_dict(self.snapshot[name])
        return probe

    def weights_finite(self) -> bool:
        return all(
            torch.isfinite(p).all() for m in self.modules.values() if isinstance(m, nn.Module) for p in m.parameters()
        )

    def remember(self) -> None:
        self.snapshot = {name: copy.deepcopy(module.state_dict()) for name, module in self.modules.items()}

    def roll_back(self) -> bool:
        """Back to the snapshot; True when the retries are used up (the scale should stop)."""
        if self.snapshot is not None:
            for name, module in self.modules.items():
                module.load_state_dict(self.snapshot[name])
        self.retries += 1
        return self.retries > MAX_RETRIES

    def state_dict(self) -> dict[str, Any]:
        return {
            "recent": {k: list(v) for k, v in self.recent.items()},
            "retries": self.retries,
            "hard_batches": self.hard_batches,
            "snapshot": self.snapshot,
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.recent = {k: list(v) for k, v in state["recent"].items()}
        self.retries, self.snapshot = int(state["retries"]), state["snapshot"]
        self.hard_batches = int(state.get("hard_batches", 0))  # absent from checkpoints written before it
