"""Loss terms of Eq. 3: WGAN-GP adversarial loss, alpha * MSE and beta * low-pass MSE.

The low-pass filter F is a separable Gaussian with sigma in *voxels of the scale being trained*
(the paper: sigma 5), padded by replicating the edge so that the brain edge is not darkened.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn


def gaussian_kernel1d(sigma: float, truncate: float = 4.0) -> torch.Tensor:
    """Normalised 1D Gaussian taps, radius ``truncate * sigma`` voxels (as scipy.ndimage)."""
    radius = max(1, int(truncate * sigma + 0.5))
    x = torch.arange(-radius, radius + 1, dtype=torch.float64)
    taps = torch.exp(-0.5 * (x / sigma) ** 2)
    return (taps / taps.sum()).float()


class GaussianLowPass(nn.Module):
    """F: separable 3D Gaussian blur with replicate padding, sigma in voxels (scalar or per axis)."""

    def __init__(self, sigma_voxels: float | tuple[float, float, float] = 5.0, truncate: float = 4.0):
        super().__init__()
        sigmas = (sigma_voxels,) * 3 if isinstance(sigma_voxels, (int, float)) else tuple(sigma_voxels)
        self.kernels = [gaussian_kernel1d(s, truncate) if s > 0 else None for s in sigmas]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        for axis, taps in enumerate(self.kernels):
            if taps is None:
                continue
            radius = (taps.numel() - 1) // 2
            x = _blur_axis(x, taps.to(x), axis, radius)
        return x


def _blur_axis(x: torch.Tensor, taps: torch.Tensor, axis: int, radius: int) -> torch.Tensor:
    padded = F.pad(x, _axis_pad(axis, radius), mode="replicate")
    shape = [1, 1, 1]
    shape[axis] = taps.numel()
    weight = taps.reshape(1, 1, *shape).repeat(x.shape[1], 1, 1, 1, 1)
    return F.conv3d(padded, weight, groups=x.shape[1])


def _axis_pad(axis: int, amount: int) -> list[int]:
    pad = [0, 0, 0, 0, 0, 0]  # F.pad order: last axis first
    pad[2 * (2 - axis)] = amount
    pad[2 * (2 - axis) + 1] = amount
    return pad


def mse_loss(generated: torch.Tensor, target: torch.Tensor, weight: torch.Tensor | None = None) -> torch.Tensor:
    """L_mse of Eq. 4: mean over voxels, or the ``weight``-weighted mean (weight broadcasts to the images)."""
    if weight is None:
        return F.mse_loss(generated, target)
    weight = weight.expand_as(generated)
    return (weight * (generated - target) ** 2).sum() / weight.sum().clamp_min(1.0)


def lowpass_loss(
    generated: torch.Tensor, target: torch.Tensor, lowpass: GaussianLowPass, weight: torch.Tensor | None = None
) -> torch.Tensor:
    """L_lp of Eq. 5: MSE between the low-pass filtered generated and real images (weighted as ``mse_loss``)."""
    return mse_loss(lowpass(generated), lowpass(target), weight)


def critic_wasserstein_loss(critic: nn.Module, real: torch.Tensor, fake: torch.Tensor) -> torch.Tensor:
    """Critic side of WGAN: E[D(fake)] - E[D(real)] (the critic minimises it)."""
    return critic(fake).mean() - critic(real).mean()


def generator_adversarial_loss(critic: nn.Module, fake: torch.Tensor) -> torch.Tensor:
    """Generator side of WGAN: -E[D(G(.))]."""
    return -critic(fake).mean()


def gradient_penalty(
    critic: nn.Module, real: torch.Tensor, fake: torch.Tensor, generator: torch.Generator | None = None
) -> torch.Tensor:
    """WGAN-GP penalty: E[(||grad_x D(x_hat)||_2 - 1)^2] on random interpolates x_hat.

    The norm is taken per sample over all its voxels and channels (Gulrajani et al. 2017).
    """
    weight = torch.rand(real.shape[0], 1, 1, 1, 1, device=real.device, dtype=real.dtype, generator=generator)
    interpolate = (weight * real + (1 - weight) * fake).detach().requires_grad_(True)
    scores = critic(interpolate)
    (gradient,) = torch.autograd.grad(scores.sum(), interpolate, create_graph=True)
    norms = gradient.flatten(start_dim=1).norm(2, dim=1)
    return ((norms - 1.0) ** 2).mean()


def lowpass_reach_voxels(sigma: float, truncate: float = 4.0) -> int:
    """Radius in voxels over which F mixes values."""
    return int(math.floor(truncate * sigma + 0.5))
