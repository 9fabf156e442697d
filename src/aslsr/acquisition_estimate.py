"""``acquisition = "auto"``: read the scanner's k-space filter off the noise outside the head.

Thermal noise is white in k-space. A scanner that reconstructs the ASL from a windowed (apodised)
k-space passes that noise through the same window as the signal, so the power spectrum of the
background noise along each voxel axis is the window squared: flat for a box-average or PSF-blurred
simulation with noise added on the LR grid, falling towards the band edge (k = 1/2 cycle per voxel)
for a filtered k-space readout. :func:`estimate_acquisition` measures that spectrum in LR voxels
more than ``margin_voxels`` outside the brain and, when it falls on all three axes, fits a Tukey
window to it; the run then treats the ASL as a windowed 3D k-space readout
(:func:`aslsr.acquisition.box_equivalent` undoes its sharper-than-box response).

What it cannot see: a k-space readout without a window (its noise is white, like a box average's:
``auto`` keeps ``box``), a 2D readout filtered only in-plane (the slice axis is white: ``box``),
a background that the scanner set to zero (no noise to read: ``box``), and a reconstruction
zero-filled to a finer matrix (its band edge lies below 1/2; it would be read as a wide taper).
``--acquisition`` states the readout instead.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, replace
from typing import Any

import numpy as np

from .acquisition import AcquisitionModel, transfer_function
from .config import Config
from .io import Volume
from .masking import brain_mask_from_image
from .noise import background_is_zeroed, background_region

#: The noise power in the top band (k >= 7/16 cycle per voxel), relative to the band k in [1/16, 1/4],
#: below which an axis counts as k-space filtered. White noise gives 1; a Tukey window with alpha 0.1 gives ~0.2.
FILTERED_BELOW = 0.5
_TUKEY_ALPHAS = np.round(np.arange(0.05, 1.0001, 0.05), 2)


@dataclass(frozen=True)
class AcquisitionEstimate:
    """What :func:`estimate_acquisition` read off the background noise.

    ``kind``: "kspace" (windowed 3D readout) or "box" (no sign of a k-space filter);
    ``tukey_alpha``: the fitted Tukey window's tapered fraction of the band (kspace only);
    ``top_band_power``: per voxel axis, the noise power at k >= 7/16 relative to k in [1/16, 1/4];
    ``background_voxels``: LR voxels the spectrum was measured on; ``reason``: one sentence.
    """

    kind: str
    tukey_alpha: float | None
    top_band_power: tuple[float, ...]
    background_voxels: int
    reason: str

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def noise_spectrum(data: np.ndarray, background: np.ndarray, axis: int) -> tuple[np.ndarray, np.ndarray]:
    """Frequencies k (cycles per voxel, 0..1/2) and the power spectrum along ``axis`` of ``data`` in ``background``.

    Voxels outside ``background`` are set to the background mean before the transform; the spectrum is
    averaged over the other two axes and normalised to its mean over k in [1/16, 1/4].
    """
    values = np.asarray(data, dtype=np.float64)
    centred = np.where(background, values - values[background].mean(), 0.0)
    power = np.abs(np.fft.rfft(centred, axis=axis)) ** 2
    power = power.mean(axis=tuple(a for a in range(3) if a != axis))
    k = np.fft.rfftfreq(values.shape[axis])
    low = power[(k >= 1 / 16) & (k <= 1 / 4)].mean()
    return k, power / max(low, 1e-30)


def estimate_acquisition(
    asl: Volume, mask: np.ndarray, *, margin_voxels: float = 4.0, min_background_voxels: int = 2000
) -> AcquisitionEstimate:
    """Read the k-space filter of ``asl`` (LR grid) off its noise beyond ``margin_voxels`` outside ``mask``.

    Examples
    --------
    >>> from aslsr.grids import Grid
    >>> rng = np.random.default_rng(0)
    >>> grid = Grid((48, 48, 40), np.eye(4))
    >>> brain = np.zeros(grid.shape, bool); brain[16:32, 16:32, 14:26] = True
    >>> estimate_acquisition(Volume(rng.normal(size=grid.shape), grid), brain).kind
    'box'
    """
    data = np.asarray(asl.data, dtype=np.float64)
    background = background_region(data, mask, asl.grid.voxel_size, margin_voxels)
    count = int(background.sum())
    if count < min_background_voxels:
        return AcquisitionEstimate("box", None, (), count, f"only {count} background voxels: too few to read the noise")
    if background_is_zeroed(data[background]):
        return AcquisitionEstimate("box", None, (), count, "the background is zeroed: no noise to read")
    spectra = [noise_spectrum(data, background, axis) for axis in range(3)]
    top = tuple(round(float(power[k >= 7 / 16].mean()), 3) for k, power in spectra)
    if max(top) >= FILTERED_BELOW:
        reason = "the noise is white on at least one axis: no k-space filter seen"
        return AcquisitionEstimate("box", None, top, count, reason)
    alpha = _fit_tukey(spectra, asl)
    return AcquisitionEstimate("kspace", alpha, top, count, "the noise falls towards the band edge on every axis")


def _fit_tukey(spectra: list[tuple[np.ndarray, np.ndarray]], asl: Volume) -> float:
    """The Tukey alpha whose window squared best matches the normalised noise spectra (k >= 1/8)."""
    errors = []
    for alpha in _TUKEY_ALPHAS:
        model = AcquisitionModel("kspace", window="tukey", tukey_alpha=float(alpha))
        error = 0.0
        for axis, (k, power) in enumerate(spectra):
            keep = k >= 1 / 8
            error += float(np.sum((transfer_function(model, asl.grid, axis, k[keep]) ** 2 - power[keep]) ** 2))
        errors.append(error)
    return float(_TUKEY_ALPHAS[int(np.argmin(errors))])


def resolve_acquisition(
    config: Config, asl: Volume, mask: np.ndarray | None = None
) -> tuple[Config, AcquisitionEstimate | None]:
    """``config`` with ``acquisition = "auto"`` replaced by what :func:`estimate_acquisition` finds.

    ``mask``: the brain on ``asl``'s grid (None: the bright object of ``asl`` itself). Any other
    acquisition is returned unchanged with None.
    """
    if config.acquisition != "auto":
        return config, None
    brain = brain_mask_from_image(asl) if mask is None else mask
    estimate = estimate_acquisition(asl, brain)
    if estimate.kind == "box":
        return replace(config, acquisition="box"), estimate
    window = {"acquisition_window": "tukey", "acquisition_tukey_alpha": estimate.tukey_alpha}
    return replace(config, acquisition="kspace", **window), estimate
