"""The trained model: the finest generator G_N, its intensity normalisation, and how it was trained.

One type for a model fresh from :func:`aslsr.train.train` and one read back from ``model.pt``
(:meth:`Model.load`). The model file holds only tensors and plain values and is read with
``torch.load(weights_only=True)``; every field is checked before it is used. Of the configuration
it keeps what applying the model needs (:data:`aslsr.config.MODEL_SETTINGS`); a model read back
has the other fields at their defaults, and its training configuration only as provenance
(``metadata["trained_with"]``).

:meth:`Model.apply` runs G_N on whole 3D arrays in network units (axes i, j, k of the target grid),
in overlapping tiles blended with a smooth window so that memory stays bounded at any output size;
:func:`aslsr.generate.super_resolve` builds its inputs from images in their own units.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

import numpy as np
import torch

from . import checks
from .config import MODEL_SETTINGS, Config, model_settings, replace
from .devices import compute_layout, resolve_device
from .errors import InputError
from .grids import Grid
from .io import atomic_path
from .networks import Generator
from .pyramid import Normalizer

MODEL_FORMAT = "aslsr-model"
MODEL_VERSION = 2  # 1 stored the whole training configuration under "config"; still read


@dataclasses.dataclass
class Model:
    """G_N with what super-resolution needs (normalisation, configuration) and how it was trained.

    ``factor``: the zoom between consecutive scales, per voxel axis. ``grids``: the grids of x_0 .. x_N
    (empty when the model file's are unreadable). ``history``: one row per logged training iteration;
    ``scale_seconds``: training seconds per scale; ``warnings``: training problems met (these three
    are empty for a model read from a file). ``metadata``: plain values stored with the model file.
    """

    generator: Generator
    normalizer: Normalizer
    config: Config
    factor: np.ndarray  # per voxel axis, between consecutive scales
    grids: list[Grid] = dataclasses.field(default_factory=list)  # x_0 .. x_N
    history: list[dict] = dataclasses.field(default_factory=list)  # one row per logged iteration
    scale_seconds: list[float] = dataclasses.field(default_factory=list)
    warnings: list[str] = dataclasses.field(default_factory=list)
    metadata: dict[str, Any] = dataclasses.field(default_factory=dict)

    def apply(self, image: np.ndarray, t1: np.ndarray, *, device: torch.device | None = None) -> np.ndarray:
        """G_N(image, t1) on whole 3D arrays in network units (same shape, axes i, j, k), tiled.

        ``image``: the LR ASL brought up to the target grid, ``t1``: the T1 there, both normalised
        with :attr:`normalizer`. ``device`` defaults to the configuration's.
        """
        return apply_generator(
            self.generator,
            image,
            t1,
            config=self.config,
            device=device or resolve_device(self.config.device),
            residual=True,
        )

    @property
    def trained_seed(self) -> int:
        """The seed training ran with (0 when a model file does not tell); a run registers the T1 with it."""
        trained_with = self.metadata.get("trained_with")
        seed = trained_with.get("seed") if isinstance(trained_with, dict) else self.config.seed
        return seed if isinstance(seed, int) and not isinstance(seed, bool) else 0

    @property
    def finds_acquired_grid(self) -> bool:
        """Whether the training run brought an ASL stored zero-filled back to the grid it was acquired on
        (:mod:`aslsr.acquired_grid`; runs with ``acquisition = "auto"``); true where a model file does not tell."""
        finds = self.metadata.get("finds_acquired_grid")
        return finds if isinstance(finds, bool) else True

    def save(self, path: str | Path, metadata: dict[str, Any] | None = None) -> Path:
        """Write G_N's weights and plain settings (no pickled objects) atomically.

        ``metadata`` (plain values) is stored with the model; default: :attr:`metadata`.
        """
        path = Path(path)
        payload = {
            "format": MODEL_FORMAT,
            "version": MODEL_VERSION,
            "settings": _plain(model_settings(self.config)),
            "normalizer": self.normalizer.to_dict(),
            "factor": [float(f) for f in self.factor],
            "grids": [{"shape": list(g.shape), "affine": g.affine.tolist()} for g in self.grids],
            "metadata": _plain(
                {**(self.metadata if metadata is None else metadata), "trained_with": self.config.to_dict()}
            ),
            "generator": {k: v.detach().cpu() for k, v in self.generator.state_dict().items()},
        }
        with atomic_path(path, ".pt") as temporary:
            torch.save(payload, temporary)
        return path

    @classmethod
    def load(cls, path: str | Path) -> Model:
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
        if payload.get("version") not in (1, MODEL_VERSION):
            raise InputError(f"model file version {checks.describe(payload.get('version'))} is not supported", path)
        if payload["version"] == 1 and "config" in payload:
            payload = {**payload, "settings": payload["config"]}
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
            config = replace(Config(), **{k: v for k, v in payload["settings"].items() if k in MODEL_SETTINGS})
            generator = Generator(
                channels=tuple(config.generator_channels), use_t1=config.use_t1, residual=config.residual
            )
            generator.load_state_dict(payload["generator"])
        except (KeyError, TypeError, RuntimeError, ValueError, InputError) as error:
            raise InputError(f"damaged model file ({str(error).splitlines()[0][:160]})", path) from None
        if not all(
            bool(torch.isfinite(tensor).all())
            for tensor in generator.state_dict().values()
            if tensor.is_floating_point()
        ):
            raise InputError("damaged model file: the generator's weights hold NaN or infinite values", path)
        return cls(
            generator.eval(),
            Normalizer(**payload["normalizer"]),
            config,
            np.array(payload["factor"], dtype=np.float64),
            grids=_grids(payload.get("grids")),
            metadata=payload.get("metadata", {}),
        )


#: The fields of ``model.pt`` that :meth:`Model.load` checks before using them.
MODEL_FIELDS: dict[str, checks.Check] = {
    "settings": lambda value: None if isinstance(value, dict) else "a table of configuration fields",
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


def _grids(value: Any) -> list[Grid]:
    """The scale grids stored in a model file (informative only); empty when absent or unreadable."""
    try:
        return [Grid(tuple(entry["shape"]), np.array(entry["affine"], dtype=np.float64)) for entry in value]
    except (KeyError, TypeError, ValueError, IndexError, InputError, np.linalg.LinAlgError):
        return []


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
    generator = compute_layout(generator, device, channels_last=config.channels_last).eval()
    plans = [_tile_plan(n, config.tile_size, config.tile_overlap) for n in image.shape]
    tile = np.array([t for t, _, _ in plans])
    starts = [s for _, s, _ in plans]
    window = _blend_window(tile, np.array([o for _, _, o in plans]))
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


def _tile_plan(size: int, tile_size: int, overlap: int) -> tuple[int, list[int], int]:
    """Tiles along one axis of ``size`` voxels: (tile length, starts, overlap used), all in voxels.

    As few tiles as ``tile_size`` allows with at least ``overlap`` shared voxels (at most a quarter of a tile),
    then the shortest length that covers the axis with that many (a multiple of 4, the U-Net's pooling), spread
    evenly: 180 voxels in tiles of at most 128 are two tiles of 100, not two of 128.
    """
    if size <= tile_size:
        return size, [0], 0
    overlap = min(overlap, tile_size // 4)
    count = -(-(size - overlap) // (tile_size - overlap))
    covering = -(-(size + (count - 1) * overlap) // count)
    length = min(tile_size, size, -(-covering // 4) * 4)
    starts = np.round(np.linspace(0, size - length, count)).astype(int)
    return length, [int(a) for a in starts], overlap


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
