"""Super-resolution generation (paper Sec. 2.2): x_sup = G_N(x brought up, a brought up), Eq. 2.

The LR ASL is interpolated onto the target grid, the registered T1 is averaged onto the same grid,
and the finest generator maps the pair to the SR image. Large grids are processed in overlapping
tiles blended with a smooth window, so memory stays bounded at any output size. The model file
holds only tensors and plain values and is read with ``torch.load(weights_only=True)``.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import torch
from scipy import ndimage

from . import checks
from .baselines import dtv_baseline
from .config import Config, replace, resolve_device
from .errors import InputError
from .grids import Grid, resample_average
from .io import Volume, atomic_path
from .networks import Generator
from .pyramid import Normalizer, bring_up

if TYPE_CHECKING:
    from .train import TrainedModel

MODEL_FORMAT = "aslsr-model"
MODEL_VERSION = 1


def apply_generator(
    generator: Generator,
    image: np.ndarray,
    t1: np.ndarray,
    *,
    config: Config,
    device: torch.device,
    residual: bool = True,
) -> np.ndarray:
    """Run a generator on whole 3D arrays (network units), tiling when larger than ``tile_size``."""
    generator = generator.to(device).eval()
    shape = np.array(image.shape)
    tile = np.minimum(shape, config.tile_size)
    overlap = np.minimum(config.tile_overlap, tile // 4)
    starts = [_tile_starts(n, t, o) for n, t, o in zip(shape, tile, overlap)]
    window = _blend_window(tile, overlap)
    total = np.zeros(image.shape, dtype=np.float32)
    weight = np.zeros(image.shape, dtype=np.float32)
    pair = np.stack([image, t1]).astype(np.float32)
    with torch.inference_mode():
        for a in starts[0]:
            for b in starts[1]:
                for c in starts[2]:
                    region = (slice(a, a + tile[0]), slice(b, b + tile[1]), slice(c, c + tile[2]))
                    block = torch.from_numpy(np.ascontiguousarray(pair[(slice(None),) + region]))[None].to(device)
                    out = generator(block[:, 0:1], block[:, 1:2], residual=residual)[0, 0].float().cpu().numpy()
                    total[region] += out * window
                    weight[region] += window
    return total / weight


def _tile_starts(size: int, tile: int, overlap: int) -> list[int]:
    if tile >= size:
        return [0]
    step = max(1, tile - overlap)
    starts = list(range(0, size - tile, step))
    return starts + [size - tile]


def _blend_window(tile: np.ndarray, overlap: np.ndarray) -> np.ndarray:
    """Separable window: 1 in the middle, linear ramps over ``overlap`` voxels at the tile edges."""
    axes = []
    for n, o in zip(tile, overlap):
        ramp = np.ones(n, dtype=np.float32)
        if o > 0:
            edge = (np.arange(o, dtype=np.float32) + 1) / (o + 1)
            ramp[:o] = edge
            ramp[n - o :] = edge[::-1]
        axes.append(ramp)
    return axes[0][:, None, None] * axes[1][None, :, None] * axes[2][None, None, :]


def super_resolve(
    model: "TrainedModel | LoadedModel",
    asl: Volume,
    t1: Volume,
    target: Grid,
    *,
    device: torch.device | None = None,
    t1_on_target: np.ndarray | None = None,
    dtv_on_target: np.ndarray | None = None,
) -> np.ndarray:
    """The SR image on ``target`` (same units as ``asl``): G_N(asl brought up, t1 on target).

    ``t1_on_target``: the registered T1 already averaged onto ``target``, when the caller has it;
    ``dtv_on_target``: the dTV reconstruction there, the generator's input when it was trained to refine
    it (``input_source = "dtv"``; computed when not given).
    """
    config = model.config
    device = device or resolve_device(config.device)
    normalizer = model.normalizer
    prior = t1_on_target if t1_on_target is not None else resample_average(t1.data, t1.affine, target)
    if config.input_source == "dtv":
        upsampled = dtv_on_target if dtv_on_target is not None else dtv_baseline(asl, prior, target, config).image
    else:
        upsampled = bring_up(asl.data, asl.grid, target, config.upsample_order)
    output = apply_generator(
        model.generator,
        normalizer.asl_to_net(upsampled),
        normalizer.t1_to_net(prior),
        config=config,
        device=device,
        residual=True,
    )
    sr = normalizer.asl_from_net(output)
    if config.consistency != "off":
        sigma = config.consistency_sigma_voxels if config.consistency == "lowpass" else 0.0
        sr = enforce_consistency(sr, target, asl, sigma_lr_voxels=sigma)
    return sr


def enforce_consistency(
    sr: np.ndarray, grid: Grid, lr: Volume, *, iterations: int = 3, sigma_lr_voxels: float = 0.0
) -> np.ndarray:
    """Iterative back-projection: make the SR averaged onto the LR grid agree with the LR.

    With ``sigma_lr_voxels`` > 0 only the low-pass part (Gaussian, sigma in LR voxels) of the
    disagreement is projected back: offsets and halos that the generator might add at a scale it
    was not trained on are removed, while the generator's denoising at the LR voxel scale is kept.
    """
    sr = sr.copy()
    for _ in range(iterations):
        residual = lr.data - resample_average(sr, grid.affine, lr.grid)
        if sigma_lr_voxels > 0:
            residual = ndimage.gaussian_filter(residual, sigma_lr_voxels, mode="nearest")
        sr += bring_up(residual, lr.grid, grid, order=1)
    return sr


@dataclasses.dataclass
class LoadedModel:
    """A generator read back from ``model.pt``: enough for :func:`super_resolve`."""

    generator: Generator
    normalizer: Normalizer
    config: Config
    factor: np.ndarray
    metadata: dict[str, Any]


def save_model(model: "TrainedModel", path: str | Path, metadata: dict[str, Any] | None = None) -> Path:
    """Write G_N's weights and plain settings (no pickled objects) atomically."""
    path = Path(path)
    payload = {
        "format": MODEL_FORMAT,
        "version": MODEL_VERSION,
        "config": _plain(model.config.to_dict()),
        "normalizer": model.normalizer.to_dict(),
        "factor": [float(f) for f in model.factor],
        "grids": [{"shape": list(g.shape), "affine": g.affine.tolist()} for g in model.grids],
        "metadata": _plain(metadata or {}),
        "generator": {k: v.detach().cpu() for k, v in model.generator.state_dict().items()},
    }
    with atomic_path(path, ".pt") as temporary:
        torch.save(payload, temporary)
    return path


def load_model(path: str | Path) -> LoadedModel:
    """Read a model file safely (``weights_only=True``); raises InputError for anything else."""
    path = Path(path)
    if not path.is_file():
        raise InputError("no such model file", path)
    try:
        payload = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as error:
        first_line = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
        raise InputError(f"not a safe aslsr model file ({first_line[:160]})", path) from None
    if not isinstance(payload, dict) or payload.get("format") != MODEL_FORMAT:
        raise InputError("not an aslsr model file", path)
    if payload.get("version") != MODEL_VERSION:
        raise InputError(f"model file version {checks.describe(payload.get('version'))} is not supported", path)
    problems = checks.problems(payload, MODEL_FIELDS) + [
        f"{key} is missing" for key in MODEL_FIELDS if key not in payload and key != "metadata"
    ]
    if not problems:
        problems = checks.problems(payload["normalizer"], NORMALIZER_FIELDS) + [
            f"normalizer.{key} is missing" for key in NORMALIZER_FIELDS if key not in payload["normalizer"]
        ]
    if not problems and not payload["normalizer"]["t1_high"] > payload["normalizer"]["t1_low"]:
        problems.append("normalizer.t1_high must be above normalizer.t1_low")
    if problems:
        raise InputError(f"damaged model file: {'; '.join(problems)}", path)
    try:
        settings = {k: v for k, v in payload["config"].items() if k in {f.name for f in dataclasses.fields(Config)}}
        config = replace(Config(), **settings)
        generator = Generator(channels=tuple(config.generator_channels), use_t1=config.use_t1, residual=config.residual)
        generator.load_state_dict(payload["generator"])
    except (KeyError, TypeError, RuntimeError, ValueError, InputError) as error:
        raise InputError(f"damaged model file ({str(error).splitlines()[0][:160]})", path) from None
    if not all(
        bool(torch.isfinite(tensor).all()) for tensor in generator.state_dict().values() if tensor.is_floating_point()
    ):
        raise InputError("damaged model file: the generator's weights hold NaN or infinite values", path)
    return LoadedModel(
        generator.eval(),
        Normalizer(**payload["normalizer"]),
        config,
        np.array(payload["factor"], dtype=np.float64),
        payload.get("metadata", {}),
    )


#: The fields of ``model.pt`` that :func:`load_model` reads, with their checks.
MODEL_FIELDS: dict[str, checks.Check] = {
    "config": lambda value: None if isinstance(value, dict) else "a table of configuration fields",
    "normalizer": lambda value: None if isinstance(value, dict) else "a table",
    "factor": checks.sequence(checks.number(0.0, 1000.0, above=True), length=3),
    "generator": lambda value: (
        None
        if isinstance(value, dict) and all(isinstance(k, str) and isinstance(v, torch.Tensor) for k, v in value.items())
        else "a table of tensors"
    ),
    "metadata": lambda value: None if isinstance(value, dict) else "a table",
}
#: The intensity normalisation (:class:`Normalizer`): a positive ASL scale, finite T1 percentiles.
NORMALIZER_FIELDS: dict[str, checks.Check] = {
    "asl_scale": checks.number(0.0, 1e30, above=True),
    "t1_low": checks.number(-1e30, 1e30),
    "t1_high": checks.number(-1e30, 1e30),
}


def _plain(value: Any) -> Any:
    """Tuples to lists, numpy scalars to numbers: what weights_only loading accepts."""
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, np.ndarray):
        return value.tolist()
    return value
