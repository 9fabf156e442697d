"""One configuration dataclass for a run, with named presets and TOML overrides.

The resolved configuration is written into every run's ``report.json`` and ``model.pt``; nothing
in the package keeps global mutable options. Units are in the field names or comments.
"""

from __future__ import annotations

import dataclasses
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from .acquisition import model_problem
from .errors import InputError

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib


@dataclass(frozen=True)
class Config:
    """Every setting of training and super-resolution. Build with :func:`preset` and ``replace``."""

    # Pyramid: x_n is the LR ASL downsampled by scale_factor**(N - n).
    scale_factor: tuple[float, float, float] | None = None  # per voxel axis; None = the SR zoom per axis
    n_scales: int | None = None  # None: as many as min_size_voxels allows, at most max_scales
    max_scales: int = 3
    min_size_voxels: int = 12  # smallest size of a downsampled axis at the coarsest scale

    # Networks (see networks.py).
    generator_channels: tuple[int, int, int] = (16, 32, 64)  # U-Net feature maps per level
    residual: bool = True  # generator predicts a correction added to its image input
    use_t1: bool = True  # T1 as second input channel (off: ablation)
    critic_channels: int = 32
    critic_layers: int = 5

    # Loss: adversarial (WGAN-GP) + alpha * MSE + beta * low-pass MSE.
    use_adversarial: bool = True
    adversarial_weight: float = 1.0
    alpha: float = 10.0  # weight of MSE(G, x_n)
    use_lowpass: bool = True
    beta: float = 10.0  # weight of MSE(F(G), F(x_n))
    lowpass_sigma_voxels: float = 5.0  # Gaussian sigma of F, in voxels of the scale being trained
    gp_weight: float = 0.1  # gradient-penalty weight
    gp_every: int = 1  # apply the penalty on every k-th critic step (lazy regularisation, scaled by k)
    critic_every: int = 1  # one critic step every k generator steps

    # Optimisation.
    learning_rate: float = 1e-3
    adam_betas: tuple[float, float] = (0.5, 0.999)
    iterations: tuple[int, ...] = (2000,)  # per scale, coarse to fine; the last entry repeats
    patch_size: int | None = None  # voxels per side of training sub-volumes; None = whole volume
    batch_size: int = 1
    brain_patch_fraction: float = 0.8  # share of patches centred in the brain mask (when known)
    single_scale: bool = False  # ablation: train only the finest generator (from scratch)
    input_source: str = "real"  # "real": x_{n-1} brought up (matches SR time); "generated": paper Eq. 1
    upsample_order: int = 1  # interpolation for x_{n-1} -> grid n and for LR -> target (1 linear, 3 spline)
    log_every: int = 10  # iterations between rows of losses.csv
    checkpoint_every: int = 100  # iterations between mid-scale checkpoints (0: only after each scale)

    # Super-resolution.
    consistency: str = "lowpass"  # off | full | lowpass: make the SR averaged onto the LR grid agree with the LR
    consistency_sigma_voxels: float = 1.0  # "lowpass": Gaussian sigma (LR voxels) of the part made to agree
    tile_size: int = 128  # voxels per side when generating large volumes in tiles
    tile_overlap: int = 16

    # Method, and the anatomically guided model-based reconstruction (dtv.py) that every run also writes.
    method: str = "gan"  # gan: train the generator; dtv: sr.nii.gz is the dTV reconstruction (no training)
    dtv_lambda: float = 0.1  # TV weight in mm, for intensities relative to the ASL's 99th percentile
    dtv_gamma: float = 0.9  # 0: plain TV; towards 1: edges parallel to the T1's cost nothing
    dtv_eta: float = 0.05  # T1 edge threshold, relative to the 99th percentile of |grad T1|
    dtv_iterations: int = 500  # at most; stops earlier at a relative change below 1e-4 per 10 iterations
    acquisition: str = "box"  # box | gaussian | kspace: how the LR ASL was formed (acquisition.py)
    acquisition_fwhm_mm: float | None = None  # gaussian in-plane FWHM (mm); None: the ASL in-plane voxel size
    acquisition_slice_fwhm_mm: float | None = None  # gaussian FWHM along the slice axis; None: slice thickness
    acquisition_window: str = "none"  # kspace: none | hann | tukey
    acquisition_tukey_alpha: float = 0.5  # kspace tukey window: tapered fraction of the band

    # Machine.
    device: str = "auto"  # auto | cpu | cuda
    threads: int | None = None  # torch CPU threads; None = all cores at hand
    seed: int = 0

    def iterations_at(self, scale: int, n_scales: int) -> int:
        """Iterations for ``scale`` (0 = coarsest); the tuple is aligned to the finest scale."""
        counts = list(self.iterations)
        offset = n_scales - len(counts)
        return counts[max(0, scale - offset)] if scale - offset >= 0 else counts[0]

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


PRESETS: dict[str, dict[str, Any]] = {
    # The paper's settings: Adam lr 1e-3, 2000 iterations on every scale, whole volumes, critic
    # step with gradient penalty on every iteration.
    "paper": {"input_source": "generated", "consistency": "off"},
    # Sized for a 2-core CPU, from the measurements in BENCHMARKS.md: all iterations go to the
    # finest generator (trained from an identity start on x_{N-1} brought up -> x_N), on patches,
    # with MSE + low-pass loss; the adversarial term and the coarse scales did not earn their cost.
    "fast": {
        "iterations": (600,),
        "single_scale": True,
        "use_adversarial": False,
        "patch_size": 32,
        "batch_size": 2,
    },
    # Seconds-long runs for tests only.
    "test": {
        "iterations": (3, 4),
        "patch_size": 16,
        "batch_size": 2,
        "generator_channels": (4, 8, 8),
        "critic_channels": 8,
        "critic_layers": 3,
        "log_every": 1,
        "min_size_voxels": 6,
    },
}


def preset(name: str = "fast", **overrides: Any) -> Config:
    """The named preset with ``overrides`` applied."""
    if name not in PRESETS:
        raise InputError(f"unknown preset {name!r}; choose one of {', '.join(PRESETS)}")
    return replace(Config(**PRESETS[name]), **overrides)


def replace(config: Config, **overrides: Any) -> Config:
    """A copy of ``config`` with fields replaced; lists become tuples, unknown names are an error."""
    names = {f.name for f in dataclasses.fields(Config)}
    unknown = sorted(set(overrides) - names)
    if unknown:
        raise InputError(f"unknown configuration field(s): {', '.join(unknown)}")
    cleaned = {key: tuple(value) if isinstance(value, list) else value for key, value in overrides.items()}
    return _validated(dataclasses.replace(config, **cleaned))


def load_config(path: str | Path | None, name: str = "fast", **overrides: Any) -> Config:
    """Preset ``name``, then the TOML file's top-level keys (or its ``[aslsr]`` table), then overrides."""
    config = preset(name)
    if path is not None:
        path = Path(path)
        try:
            table = tomllib.loads(path.read_text())
        except FileNotFoundError:
            raise InputError("no such file", path) from None
        except (tomllib.TOMLDecodeError, UnicodeDecodeError) as error:
            raise InputError(f"not valid TOML ({error})", path) from None
        table = table.get("aslsr", table)
        if "preset" in table:
            config = preset(str(table.pop("preset")))
        try:
            config = replace(config, **table)
        except InputError as error:
            raise InputError(error.problem, path) from None
    return replace(config, **{k: v for k, v in overrides.items() if v is not None})


def _validated(config: Config) -> Config:
    problems = []
    if config.input_source not in ("real", "generated"):
        problems.append("input_source must be 'real' or 'generated'")
    if config.consistency not in ("off", "full", "lowpass"):
        problems.append("consistency must be off, full or lowpass")
    if config.upsample_order not in (0, 1, 3):
        problems.append("upsample_order must be 0, 1 or 3")
    if config.device not in ("auto", "cpu", "cuda") and not config.device.startswith("cuda:"):
        problems.append("device must be auto, cpu or cuda")
    if not config.iterations or min(config.iterations) < 0:
        problems.append("iterations must be non-negative counts")
    if config.patch_size is not None and config.patch_size < 8:
        problems.append("patch_size must be at least 8 voxels")
    if min(config.gp_every, config.critic_every, config.batch_size, config.log_every) < 1:
        problems.append("gp_every, critic_every, batch_size and log_every must be at least 1")
    if config.checkpoint_every < 0:
        problems.append("checkpoint_every must be 0 (scale ends only) or a positive count")
    if config.max_scales < 1 or (config.n_scales is not None and config.n_scales < 1):
        problems.append("there must be at least one scale")
    if config.method not in ("gan", "dtv"):
        problems.append("method must be gan or dtv")
    if not (config.dtv_lambda >= 0 and 0 <= config.dtv_gamma <= 1 and config.dtv_eta > 0
            and config.dtv_iterations >= 1):
        problems.append("dtv_lambda must be >= 0, dtv_gamma in [0, 1], dtv_eta > 0 and dtv_iterations >= 1")
    acquisition_problem = model_problem(config.acquisition, config.acquisition_fwhm_mm,
                                        config.acquisition_slice_fwhm_mm, config.acquisition_window,
                                        config.acquisition_tukey_alpha)
    if acquisition_problem:
        problems.append(acquisition_problem)
    if problems:
        raise InputError("bad configuration: " + "; ".join(problems))
    return config


def resolve_device(name: str) -> torch.device:
    """``auto`` picks CUDA when present, else the CPU."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name.startswith("cuda") and not torch.cuda.is_available():
        raise InputError("--device cuda was asked for, but no CUDA device is available")
    return torch.device(name)
