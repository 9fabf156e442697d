"""aslsr: unsupervised multi-scale GAN super-resolution of ASL MRI with a T1 prior.

The names below are the library's entry points for a script or a notebook; each is imported on
first use, so ``import aslsr`` stays cheap (no torch, no nibabel) and changes nothing in the
process (no logging handlers, no umask). The library reports through :mod:`logging` (loggers under
``aslsr``) and never prints.

Images are 3D arrays with axes i, j, k (the voxel axes of their NIfTI file) on a :class:`Grid`
(shape and 4x4 voxel-to-world affine in mm); ASL intensities keep the units of the input.

Entry points
------------
run, RunOptions
    The whole ``aslsr run`` on files: register, train (or dTV), super-resolve, write the outputs;
    how it treats inputs and outputs (registration, overwrite, resume, ...).
super_resolve
    The SR image of a :class:`Volume` on a target grid with a trained :class:`Model`.
Model
    A trained generator with its normalisation and configuration; ``Model.load("model.pt")``.
evaluate, evaluate_files
    PSNR (dB), SSIM and lesion contrast of predictions against a reference (arrays; NIfTI files).
Config, preset, load_config
    The configuration: a named preset, with fields overridden by keywords or a TOML file.
simulate, PhantomConfig
    The digital phantom: LR/NR ASL, references, M0 and a moved T1 written as NIfTI files.
simulate_phantom
    ``aslsr simulate``: the phantom, a named variant or a BIDS dataset of phantom subjects into a
    checked, locked folder.
dtv_baseline, super_resolve_dtv
    Directional-TV reconstruction guided by the registered T1 (the model-based alternative).
TargetSpec, Volume, Grid, load_volume, save_volume
    Target grids and images in and out.

Examples
--------
>>> import numpy as np
>>> import aslsr
>>> aslsr.preset("test", seed=1).seed
1
>>> ref = np.linspace(0.0, 1.0, 12**3).reshape(12, 12, 12)
>>> scores = aslsr.evaluate(ref, {"copy": ref, "half": ref / 2})
>>> scores["copy"]["psnr"], round(scores["half"]["ssim"], 3) < 1.0
(inf, True)

A run on the built-in phantom (minutes on a CPU)::

    case = aslsr.simulate("phantom", aslsr.PhantomConfig(seed=0))
    files = {role: entry["path"] for role, entry in case["files"].items()}
    result = aslsr.run(files["asl_lr"], files["t1w"], "out", config=aslsr.preset("fast"),
                       target=aslsr.TargetSpec(like=files["asl_nr"]), m0_path=files["m0_lr"])
    model = aslsr.Model.load("out/model.pt")
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from ._version import __version__

#: Public name -> the module that defines it.
_EXPORTS: dict[str, str] = {
    "run": "pipeline",
    "RunResult": "pipeline",
    "RunOptions": "pipeline",
    "super_resolve": "generate",
    "Model": "model",
    "evaluate": "metrics",
    "evaluate_files": "scoring",
    "Config": "config",
    "preset": "config",
    "load_config": "config",
    "simulate": "phantom",
    "PhantomConfig": "phantom",
    "simulate_phantom": "simulation",
    "dtv_baseline": "baselines",
    "super_resolve_dtv": "dtv",
    "TargetSpec": "inputs",
    "Volume": "io",
    "Grid": "grids",
    "load_volume": "io",
    "save_volume": "io",
    "InputError": "errors",
    "TrainingError": "errors",
}

__all__ = [
    "__version__",
    "run",
    "RunResult",
    "RunOptions",
    "super_resolve",
    "Model",
    "evaluate",
    "evaluate_files",
    "Config",
    "preset",
    "load_config",
    "simulate",
    "PhantomConfig",
    "simulate_phantom",
    "dtv_baseline",
    "super_resolve_dtv",
    "TargetSpec",
    "Volume",
    "Grid",
    "load_volume",
    "save_volume",
    "InputError",
    "TrainingError",
]

if TYPE_CHECKING:
    from .baselines import dtv_baseline
    from .config import Config, load_config, preset
    from .dtv import super_resolve_dtv
    from .errors import InputError, TrainingError
    from .generate import super_resolve
    from .grids import Grid
    from .inputs import TargetSpec
    from .io import Volume, load_volume, save_volume
    from .metrics import evaluate
    from .model import Model
    from .phantom import PhantomConfig, simulate
    from .pipeline import RunOptions, RunResult, run
    from .scoring import evaluate_files
    from .simulation import simulate_phantom


def __getattr__(name: str) -> Any:
    """Import a public name's module on first use (PEP 562) and keep the name here."""
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(f".{module}", __name__), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted({*globals(), *_EXPORTS})
