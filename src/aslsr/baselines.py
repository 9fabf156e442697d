"""Baselines on the target grid: interpolation (the paper's Table 1 rows: nearest, linear, cubic
spline) and the anatomically guided model-based reconstruction (directional TV, :mod:`aslsr.dtv`).

Interpolation works on the LR ASL alone, in world coordinates (see :func:`grids.resample`); dTV
also needs the registered T1 on the target grid and the run's configuration (acquisition model,
lambda, gamma, eta). Every ``aslsr run`` writes each of :data:`BASELINES` as ``<name>.nii.gz``.
"""

from __future__ import annotations

import numpy as np
import torch

from .acquisition_estimate import resolve_acquisition
from .config import Config
from .devices import resolve_device
from .dtv import DTVResult, settings_from_config, super_resolve_dtv
from .grids import Grid, resample
from .io import Volume

BASELINE_ORDERS: dict[str, int] = {"nearest": 0, "linear": 1, "spline": 3}
#: Every baseline written by a run, in table order.
BASELINES: tuple[str, ...] = (*BASELINE_ORDERS, "dtv")


def interpolate(volume: Volume, target: Grid, method: str) -> np.ndarray:
    """``volume`` interpolated onto ``target`` with ``method`` in nearest | linear | spline."""
    if method not in BASELINE_ORDERS:
        raise ValueError(f"unknown baseline {method!r}; choose one of {', '.join(BASELINE_ORDERS)}")
    return resample(volume.data, volume.affine, target, order=BASELINE_ORDERS[method])


def all_baselines(volume: Volume, target: Grid) -> dict[str, np.ndarray]:
    """Every interpolation baseline on ``target``, keyed by name."""
    return {name: interpolate(volume, target, name) for name in BASELINE_ORDERS}


def dtv_baseline(
    volume: Volume, t1_on_target: np.ndarray, target: Grid, config: Config, *, device: torch.device | None = None
) -> DTVResult:
    """The dTV reconstruction of ``volume`` on ``target`` with the run's settings, on ``device`` (None: the
    configuration's device, resolved here). ``acquisition = "auto"`` is resolved on ``volume`` alone
    (:func:`~aslsr.acquisition_estimate.resolve_acquisition`; a run resolves it first, with its brain mask)."""
    config, _ = resolve_acquisition(config, volume)
    settings, acquisition = settings_from_config(config)
    return super_resolve_dtv(
        volume,
        t1_on_target,
        target,
        settings=settings,
        acquisition=acquisition,
        device=device or resolve_device(config.device),
    )
