"""Interpolation baselines (the paper's Table 1 rows): nearest, linear and cubic spline upsampling.

Each interpolates the LR ASL onto the target grid in world coordinates (see :func:`grids.resample`).
"""

from __future__ import annotations

import numpy as np

from .grids import Grid, resample
from .io import Volume

BASELINE_ORDERS: dict[str, int] = {"nearest": 0, "linear": 1, "spline": 3}


def interpolate(volume: Volume, target: Grid, method: str) -> np.ndarray:
    """``volume`` interpolated onto ``target`` with ``method`` in nearest | linear | spline."""
    if method not in BASELINE_ORDERS:
        raise ValueError(f"unknown baseline {method!r}; choose one of {', '.join(BASELINE_ORDERS)}")
    return resample(volume.data, volume.affine, target, order=BASELINE_ORDERS[method])


def all_baselines(volume: Volume, target: Grid) -> dict[str, np.ndarray]:
    """Every baseline on ``target``, keyed by name."""
    return {name: interpolate(volume, target, name) for name in BASELINE_ORDERS}
