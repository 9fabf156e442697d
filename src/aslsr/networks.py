"""The networks: a three-level 3D U-Net generator and a 3D Markovian (PatchGAN) critic.

Tensors are (batch, channel, i, j, k) in voxel order of the grid they live on.

The generator takes two channels, [image, T1], and predicts a *residual*: its output is the input
image plus a correction (as in SinGAN), so an untrained generator (last layer zero-initialised) is
the identity on its image input, and training only has to learn what interpolation misses. At the
coarsest scale the input image is noise, and the residual is switched off.

The critic has no batch normalisation: batch statistics break the per-sample gradient penalty of
WGAN-GP. Both are fully convolutional, so they train on sub-volumes and run on whole volumes.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

INITS = ("pytorch", "he")  # starting weights of the generator's hidden convolutions (UNet3d)


def _conv_block(in_channels: int, out_channels: int, negative_slope: float) -> nn.Sequential:
    return nn.Sequential(
        nn.Conv3d(in_channels, out_channels, kernel_size=3, padding=1, padding_mode="replicate"),
        nn.LeakyReLU(negative_slope, inplace=True),
        nn.Conv3d(out_channels, out_channels, kernel_size=3, padding=1, padding_mode="replicate"),
        nn.LeakyReLU(negative_slope, inplace=True),
    )


class UNet3d(nn.Module):
    """Three-level 3D U-Net: two 2x poolings, trilinear upsampling, skip connections.

    Any input size works: inputs are padded (replicate) to a multiple of 4 voxels and cropped back.
    ``init`` sets the hidden convolutions' starting weights: "pytorch" (PyTorch's default, variance
    1 / (3 fan_in), with random biases) or "he" (He et al. 2015 for this LeakyReLU, zero biases). The
    PyTorch default shrinks the signal's second moment ~6x per convolution, so at the bottleneck the
    features are set by the random biases and carry almost nothing of the input; "he" keeps it at ~1.
    """

    def __init__(
        self,
        *,
        in_channels: int = 2,
        out_channels: int = 1,
        channels: tuple[int, int, int] = (16, 32, 64),
        negative_slope: float = 0.2,
        init: str = "pytorch",
    ):
        super().__init__()
        if init not in INITS:
            raise ValueError(f"unknown init {init!r}; choose one of {', '.join(INITS)}")
        c1, c2, c3 = channels
        self.encoder1 = _conv_block(in_channels, c1, negative_slope)
        self.encoder2 = _conv_block(c1, c2, negative_slope)
        self.bottleneck = _conv_block(c2, c3, negative_slope)
        self.decoder2 = _conv_block(c3 + c2, c2, negative_slope)
        self.decoder1 = _conv_block(c2 + c1, c1, negative_slope)
        self.head = nn.Conv3d(c1, out_channels, kernel_size=1)
        if init == "he":
            for module in self.modules():
                if isinstance(module, nn.Conv3d):
                    nn.init.kaiming_normal_(module.weight, a=negative_slope, nonlinearity="leaky_relu")
                    nn.init.zeros_(module.bias)
        self.reset_head()

    def reset_head(self) -> None:
        """Zero the output layer, so the network outputs 0 whatever its features."""
        nn.init.zeros_(self.head.weight)
        nn.init.zeros_(self.head.bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        size = x.shape[2:]
        first = self.encoder1[0].weight
        if not first.is_contiguous() and first.is_contiguous(memory_format=torch.channels_last_3d):
            x = x.contiguous(memory_format=torch.channels_last_3d)  # the layout of the weights (devices.compute_layout)
        pad = [p for n in reversed(size) for p in (0, (-n) % 4)]
        if any(pad):
            x = F.pad(x, pad, mode="replicate")
        e1 = self.encoder1(x)
        e2 = self.encoder2(F.avg_pool3d(e1, 2))
        b = self.bottleneck(F.avg_pool3d(e2, 2))
        d2 = self.decoder2(torch.cat([_up(b, e2), e2], dim=1))
        d1 = self.decoder1(torch.cat([_up(d2, e1), e1], dim=1))
        out = self.head(d1)
        return out[:, :, : size[0], : size[1], : size[2]]


def _up(x: torch.Tensor, like: torch.Tensor) -> torch.Tensor:
    return F.interpolate(x, size=like.shape[2:], mode="trilinear", align_corners=False)


class Generator(nn.Module):
    """G_n(image, t1) = image + U-Net([image, t1]) (residual) or U-Net([image, t1]).

    ``use_t1=False`` builds the one-channel ablation that sees the image only; ``init`` is :class:`UNet3d`'s.
    """

    def __init__(
        self,
        *,
        channels: tuple[int, int, int] = (16, 32, 64),
        use_t1: bool = True,
        residual: bool = True,
        init: str = "pytorch",
    ):
        super().__init__()
        self.use_t1 = use_t1
        self.residual = residual
        self.unet = UNet3d(in_channels=2 if use_t1 else 1, out_channels=1, channels=channels, init=init)

    def forward(self, image: torch.Tensor, t1: torch.Tensor, *, residual: bool | None = None) -> torch.Tensor:
        inputs = torch.cat([image, t1], dim=1) if self.use_t1 else image
        correction = self.unet(inputs)
        use_residual = self.residual if residual is None else residual
        return image + correction if use_residual else correction


class PatchCritic(nn.Module):
    """3D Markovian critic: a stack of 3x3x3 convolutions scoring every receptive field (no norm).

    With ``layers`` convolutions the receptive field is 2 * layers + 1 voxels per side.
    """

    def __init__(self, *, in_channels: int = 1, channels: int = 32, layers: int = 5, negative_slope: float = 0.2):
        super().__init__()
        blocks: list[nn.Module] = []
        width = in_channels
        for _ in range(layers - 1):
            blocks += [
                nn.Conv3d(width, channels, kernel_size=3, padding=1, padding_mode="replicate"),
                nn.LeakyReLU(negative_slope, inplace=True),
            ]
            width = channels
        blocks.append(nn.Conv3d(width, 1, kernel_size=3, padding=1, padding_mode="replicate"))
        self.body = nn.Sequential(*blocks)

    def forward(self, image: torch.Tensor) -> torch.Tensor:
        return self.body(image)


def count_parameters(module: nn.Module) -> int:
    return sum(p.numel() for p in module.parameters())
