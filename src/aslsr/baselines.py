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
from .config import Config, replace
from .devices import resolve_device
from .dtv import DTVResult, settings_from_config, super_resolve_dtv
from .grids import Grid, resample
from .io import Volume
from .masking import brain_mask_from_image
from .noise import relative_noise

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
    volume: Volume,
    t1_on_target: np.ndarray,
    target: Grid,
    config: Config,
    *,
    device: torch.device | None = None,
    brain: np.ndarray | None = None,
) -> DTVResult:
    """The dTV reconstruction of ``volume`` on ``target`` with the run's settings, on ``device`` (None: the
    configuration's device, resolved here). ``acquisition = "auto"`` is resolved on ``volume`` alone
    (:func:`~aslsr.acquisition_estimate.resolve_acquisition`; a run resolves it first, with its brain mask);
    the weight lambda is :func:`dtv_weight`'s; ``brain`` (bool, on ``volume``'s grid): where the T1's edges set
    the edge threshold (:func:`aslsr.dtv.edge_region`)."""
    config, _ = resolve_acquisition(config, volume)
    settings, acquisition = settings_from_config(replace(config, dtv_lambda=dtv_weight(volume, config)))
    return super_resolve_dtv(
        volume,
        t1_on_target,
        target,
        settings=settings,
        acquisition=acquisition,
        device=device or resolve_device(config.device),
        brain=brain,
    )


def dtv_weight(volume: Volume, config: Config) -> float:
    """The dTV weight lambda for ``volume`` (mm, intensities relative to the 99th percentile s of |volume|).

    ``config.dtv_lambda`` when ``dtv_lambda_per_noise`` is 0; else ``dtv_lambda_per_noise`` x sd / s,
    with sd the noise read off ``volume`` (:func:`aslsr.noise.relative_noise`: its background, else its
    bright object): lambda in proportion to the noise relative to the signal, as the weight of a
    regulariser against Gaussian noise scales. An image without noise or signal keeps ``dtv_lambda``.

    Examples
    --------
    >>> from aslsr.grids import Grid
    >>> rng = np.random.default_rng(0)
    >>> brain = np.zeros((48, 48, 40), bool); brain[12:36, 12:36, 10:30] = True
    >>> image = Volume(100.0 * brain + rng.normal(0.0, 4.0, brain.shape), Grid(brain.shape, np.eye(4)))
    >>> round(dtv_weight(image, Config(dtv_lambda_per_noise=2.0)), 2)  # 2 x 4 / ~100
    0.08
    >>> dtv_weight(image, Config(dtv_lambda_per_noise=0.0))
    0.1
    """
    if not config.dtv_lambda_per_noise:
        return config.dtv_lambda
    noise = relative_noise(volume, brain_mask_from_image(volume))
    return config.dtv_lambda_per_noise * noise if noise > 0 and np.isfinite(noise) else config.dtv_lambda
