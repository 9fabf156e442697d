"""The ``report.json`` of a run: resolved configuration, versions, machine, grids, timings, warnings.

Grids are recorded as shape, voxel size (mm) and the 4x4 voxel-to-world affine (mm).
"""

from __future__ import annotations

import platform
import sys
from typing import Any, Sequence

import numpy as np
import torch

from . import baselines, registration
from ._version import __version__
from .config import Config
from .grids import Grid
from .io import Volume
from .machine import cpu_name, peak_memory_mb
from .model import Model


def build_report(
    *,
    config: Config,
    model: Model | None,
    inputs: dict,
    asl: Volume,
    target: Grid,
    registration_result: registration.RegistrationResult,
    registered: bool,
    mask_source: str,
    timings: dict[str, float],
    device: torch.device,
    warnings: Sequence[str] = (),
    command: str | None = None,
) -> dict[str, Any]:
    """The ``report.json`` payload: resolved config, versions, seed, device, grids, timings, warnings.

    ``model`` is None for ``--method dtv``: no scales, no ``model.pt``. ``command``: the command line
    recorded as provenance (None when the run was a library call).
    """
    grids = model.grids if model is not None else []
    iterations = {}
    for row in model.history if model is not None else []:  # a scale's last row says how many steps it took
        iterations[row["scale"]] = row.get("steps", max(iterations.get(row["scale"], 0), row["iteration"] + 1))
    return {
        "aslsr_version": __version__,
        "versions": {
            "python": sys.version.split()[0],
            "torch": torch.__version__,
            "numpy": np.__version__,
            "platform": platform.platform(),
        },
        "command": command,
        "inputs": inputs,
        "config": config.to_dict(),
        "seed": config.seed,
        "device": str(device),
        "device_name": torch.cuda.get_device_name(device) if device.type == "cuda" else cpu_name(),
        "threads": torch.get_num_threads(),
        "method": config.method,
        "model": "model.pt" if model is not None else None,
        "grids": {"asl": _grid_dict(asl.grid), "target": _grid_dict(target), "scales": [_grid_dict(g) for g in grids]},
        "scale_factor": [float(f) for f in model.factor] if model is not None else [],
        "scales": [
            {
                "scale": i,
                "seconds": s,
                "iterations": iterations.get(i, 0),
                "seconds_per_iteration": s / max(1, iterations.get(i, 0)),
            }
            for i, s in zip(range(len(grids) - len(model.scale_seconds), len(grids)), model.scale_seconds)
        ]
        if model is not None
        else [],
        "registration": {"performed": registered, **registration_result.to_dict()},
        "mask_source": mask_source,
        "timings": timings,
        "warnings": list(warnings) + list(registration_result.warnings),
        "outputs": ["sr.nii.gz"]
        + [f"{name}.nii.gz" for name in baselines.BASELINES]
        + ["t1_registered.nii.gz", "mask.nii.gz"]
        + (["model.pt"] if model is not None else [])
        + ["report.json", "report.html", "losses.csv", "qc.png"]
        + (["t1_to_asl.tfm"] if registered else []),
    }


def peak_memory(device: str) -> dict[str, float]:
    """Peak resident memory of this process (MB) and, on a CUDA ``device``, peak GPU memory allocated (MB)."""
    result = {"peak_memory_mb": peak_memory_mb()}
    if torch.cuda.is_available() and device.startswith("cuda"):
        result["peak_gpu_memory_mb"] = round(torch.cuda.max_memory_allocated() / 2**20, 1)
    return result


def _grid_dict(grid: Grid) -> dict[str, Any]:
    return {
        "shape": list(grid.shape),
        "voxel_size_mm": [round(float(v), 5) for v in grid.voxel_size],
        "affine": np.round(grid.affine, 6).tolist(),
    }
