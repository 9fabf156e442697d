"""Training samples of one scale: random sub-volumes of [input image, T1] and the target x_n.

Arrays are (batch, channel, i, j, k) in the voxel order of the scale's grid, in network units.
"""

from __future__ import annotations

import numpy as np
import torch

from .config import Config
from .pyramid import Scale


class PatchSampler:
    """Random training sub-volumes (or the whole volume) of input image, T1 and target x_n.

    Patch sides are at most ``config.patch_size`` voxels (whole axis when shorter). A share
    ``brain_patch_fraction`` of the patches is centred on a random brain voxel when a mask is known.
    Each batch carries a loss weight: 0 on the ``held_out`` voxels (kept for validation), else 1.
    With ``config.flip_augment`` each sample is flipped along each voxel axis with probability 1/2 (all
    channels together), the training-time counterpart of ``config.flip_ensemble``.
    """

    def __init__(
        self,
        scale: Scale,
        source: np.ndarray | None,
        config: Config,
        rng: np.random.Generator,
        *,
        held_out: np.ndarray | None = None,
    ):
        self.rng = rng
        # Whole-volume batches repeat the volume: batches of 2+ take PyTorch's fast (oneDNN) CPU path.
        self.batch_size = config.batch_size
        shape = np.array(scale.asl.shape)
        self.size = np.minimum(shape, config.patch_size) if config.patch_size else shape
        self.whole = bool(np.all(self.size == shape))
        kept = np.ones(scale.asl.shape, np.float32) if held_out is None else (~held_out).astype(np.float32)
        stack = [scale.asl, scale.t1, kept] + ([source] if source is not None else [])
        self.volumes = torch.from_numpy(np.stack(stack).astype(np.float32))
        self.has_source = source is not None
        self.brain = np.argwhere(scale.mask) if scale.mask is not None else None
        self.brain_fraction = config.brain_patch_fraction
        self.flip = config.flip_augment

    def _corner(self) -> np.ndarray:
        shape = np.array(self.volumes.shape[1:])
        if self.brain is not None and len(self.brain) and self.rng.random() < self.brain_fraction:
            centre = self.brain[self.rng.integers(len(self.brain))]
            corner = centre - self.size // 2
        else:
            corner = self.rng.integers(0, shape - self.size + 1)
        return np.clip(corner, 0, shape - self.size)

    def batch(self) -> tuple[torch.Tensor | None, torch.Tensor, torch.Tensor, torch.Tensor]:
        """(input image or None, T1, target, loss weight), each (batch, 1, i, j, k)."""
        if self.whole:
            samples = [self.volumes] * self.batch_size
        else:
            samples = [self._crop(self._corner()) for _ in range(self.batch_size)]
        if self.flip:
            samples = [self._flipped(sample) for sample in samples]
        crops = torch.stack(samples)
        target, t1, weight = crops[:, 0:1], crops[:, 1:2], crops[:, 2:3]
        image = crops[:, 3:4] if self.has_source else None
        return image, t1, target, weight

    def _flipped(self, sample: torch.Tensor) -> torch.Tensor:
        axes = [1 + axis for axis in range(3) if self.rng.random() < 0.5]
        return torch.flip(sample, axes) if axes else sample

    def _crop(self, corner: np.ndarray) -> torch.Tensor:
        (a, b, c), (p, q, r) = corner, self.size
        return self.volumes[:, a : a + p, b : b + q, c : c + r]
