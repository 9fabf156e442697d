"""The objective of Eq. 3, one training step at a time: the critic's WGAN-GP update and the generator's
loss (adversarial + alpha * MSE + beta * low-pass MSE), each term switched by the configuration.

``terms`` dictionaries collect every term as a float for losses.csv and the divergence guard; "data"
is alpha * MSE + beta * low-pass, the part the guard watches.
"""

from __future__ import annotations

import torch

from . import losses
from .config import Config
from .networks import Generator, PatchCritic


def critic_step(
    critic: PatchCritic,
    optimizer: torch.optim.Optimizer,
    real: torch.Tensor,
    fake: torch.Tensor,
    config: Config,
    terms: dict[str, float],
    *,
    penalise: bool,
) -> None:
    """One WGAN-GP critic update; the lazy penalty is scaled by ``gp_every`` to keep its weight."""
    loss = losses.critic_wasserstein_loss(critic, real, fake)
    terms["loss_d"] = float(loss.detach())
    if penalise and config.gp_weight > 0:
        penalty = losses.gradient_penalty(critic, real, fake)
        terms["gp"] = float(penalty.detach())
        loss = loss + config.gp_weight * config.gp_every * penalty
    optimizer.zero_grad(set_to_none=True)
    loss.backward()
    optimizer.step()


def data_terms(
    generator: Generator,
    batch: tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor],
    lowpass: losses.GaussianLowPass,
    config: Config,
    residual: bool,
) -> dict[str, float]:
    """The data loss terms of ``generator`` on one batch (image, t1, real, weight), without gradients."""
    image, t1, real, weight = batch
    terms: dict[str, float] = {}
    with torch.no_grad():
        generator_loss(None, generator(image, t1, residual=residual), real, lowpass, config, terms, weight=weight)
    return terms


def generator_loss(
    critic: PatchCritic | None,
    fake: torch.Tensor,
    real: torch.Tensor,
    lowpass: losses.GaussianLowPass,
    config: Config,
    terms: dict[str, float],
    *,
    weight: torch.Tensor | None = None,
) -> torch.Tensor:
    """Eq. 3 for the generator, each term switchable for ablations; ``weight`` 0 leaves voxels out."""
    mse = losses.mse_loss(fake, real, weight)
    total = config.alpha * mse
    terms["mse"] = float(mse.detach())
    if config.use_lowpass and config.beta > 0:
        low = losses.lowpass_loss(fake, real, lowpass, weight)
        total = total + config.beta * low
        terms["lowpass"] = float(low.detach())
    terms["data"] = float(total.detach())
    if critic is not None and config.adversarial_weight > 0:
        adversarial = losses.generator_adversarial_loss(critic, fake)
        total = total + config.adversarial_weight * adversarial
        terms["adv_g"] = float(adversarial.detach())
    terms["loss_g"] = float(total.detach())
    return total
