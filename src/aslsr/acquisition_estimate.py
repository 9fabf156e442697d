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
a background that the scanner set to zero (no noise to read: ``box``). A reconstruction zero-filled to a
finer matrix (its band edge below 1/2) is brought back to its acquired grid before this is asked
(:mod:`aslsr.acquired_grid`), and is a k-space readout whatever its noise shows.
``--acquisition`` states the readout instead.

Where the noise shows no filter and an M0 was acquired on the ASL grid (the same readout, at a high SNR),
:func:`point_sampling_check` asks the M0 one more question: are its voxels averages over their boxes, or samples
of the object at their centres (no averaging: what a simulator that interpolates its truth onto the acquired grid
makes)? Each model's dTV reconstruction of the M0, guided by the T1, predicts M0 voxels it was not given; point
samples are taken where they predict them clearly better (``acquisition_point_below``), and the run then models
the readout as a Gaussian PSF of the T1's voxel size.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, replace
from typing import Any

import numpy as np
import torch

from .acquisition import AcquisitionModel, AcquisitionOperator, transfer_function
from .config import Config
from .dtv import DTVSettings, edge_region, reconstruct
from .grids import Grid, resample, resample_average
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

    ``kind``: "kspace" (windowed 3D readout), "point" (point samples, :func:`point_sampling_check`) or "box"
    (neither seen); ``tukey_alpha``: the fitted Tukey window's tapered fraction of the band (kspace only);
    ``top_band_power``: per voxel axis, the noise power at k >= 7/16 relative to k in [1/16, 1/4];
    ``background_voxels``: LR voxels the spectrum was measured on; ``reason``: one sentence;
    ``point_check``: the M0's held-out errors (:class:`PointSamplingCheck` as a dict) where it was asked.
    """

    kind: str
    tukey_alpha: float | None
    top_band_power: tuple[float, ...]
    background_voxels: int
    reason: str
    point_check: dict[str, Any] | None = None

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
    config: Config,
    asl: Volume,
    mask: np.ndarray | None = None,
    *,
    m0: Volume | None = None,
    t1: Volume | None = None,
    device: torch.device | str = "cpu",
    zero_filled: bool = False,
) -> tuple[Config, AcquisitionEstimate | None]:
    """``config`` with ``acquisition = "auto"`` replaced by what :func:`estimate_acquisition` finds, and, where
    that is no k-space filter, by point samples where :func:`point_sampling_check` finds them.

    ``mask``: the brain on ``asl``'s grid (None: the bright object of ``asl`` itself). ``m0`` (on ``asl``'s grid)
    and ``t1`` (registered to it): the point-sampling check's inputs; without them, or with an M0 on another
    grid, it is not made. ``zero_filled``: ``asl`` was brought back from a zero-filled reconstruction to its
    acquired grid (:mod:`aslsr.acquired_grid`), so it is a k-space readout even where its noise shows no window.
    Any other acquisition is returned unchanged with None.
    """
    if config.acquisition != "auto":
        return config, None
    brain = brain_mask_from_image(asl) if mask is None else mask
    estimate = estimate_acquisition(asl, brain)
    if estimate.kind == "kspace":
        window = {"acquisition_window": "tukey", "acquisition_tukey_alpha": estimate.tukey_alpha}
        return replace(config, acquisition="kspace", **window), estimate
    if zero_filled:
        reason = f"{estimate.reason}; stored zero-filled, so a k-space readout without a window"
        estimate = replace(estimate, kind="kspace", reason=reason)
        return replace(config, acquisition="kspace", acquisition_window="none"), estimate
    if config.acquisition_point_below <= 0 or m0 is None or t1 is None or m0.grid != asl.grid:
        return replace(config, acquisition="box"), estimate
    if check_grid(m0.grid, t1.grid) == m0.grid:  # voxels under 3 T1 voxels: the two models cannot be told apart
        return replace(config, acquisition="box"), estimate
    check = point_sampling_check(m0, t1, brain, device=device)
    estimate = replace(estimate, point_check=check.to_dict())
    if check.ratio >= config.acquisition_point_below:
        return replace(config, acquisition="box"), estimate
    reason = (
        f"{estimate.reason}; the M0's held-out voxels are predicted {check.ratio:.2f}x as well (error) by point "
        f"samples as by box averages"
    )
    estimate = replace(estimate, kind="point", reason=reason)
    psf = {"acquisition_fwhm_mm": check.fwhm_mm, "acquisition_slice_fwhm_mm": check.fwhm_mm}
    return replace(config, acquisition="gaussian", **psf), estimate


@dataclass(frozen=True)
class PointSamplingCheck:
    """The M0's held-out voxels predicted through dTV under a box average and under point samples.

    ``box_error``, ``point_error``: RMS over the held-out brain voxels, in M0 units; ``ratio``: point / box;
    ``fwhm_mm``: the point model's Gaussian PSF (the T1's mean voxel size); ``held_out_voxels``: how many.
    """

    box_error: float
    point_error: float
    ratio: float
    fwhm_mm: float
    held_out_voxels: int

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def point_sampling_check(
    m0: Volume,
    t1: Volume,
    mask: np.ndarray,
    *,
    held_out: float = 0.1,
    iterations: int = 300,
    seed: int = 0,
    device: torch.device | str = "cpu",
) -> PointSamplingCheck:
    """Are ``m0``'s voxels box averages of the object or samples at their centres?

    A share ``held_out`` of the brain voxels (``mask``, on ``m0``'s grid; drawn with ``seed``) is left out of the
    data term of two dTV reconstructions of ``m0``, guided by ``t1`` (registered, any grid) on a grid up to three
    times as fine (:func:`check_grid`), one through a box average and one through point samples (a Gaussian PSF of
    the T1's voxel size); each predicts the left-out voxels through its own model. On 17 box-average, Gaussian-PSF
    and k-space phantoms (with and without a window) the point model's error was 1.12-1.69 times the box model's,
    on four point-sampled ones 0.875-0.93 times (BENCHMARKS.md 2026-12-07 evening); a Gaussian PSF of 0.55 voxels,
    between the two, read 1.016 (2026-12-07 night: the check does not measure a PSF's width). The M0 serves because it
    shares the ASL's readout at a far higher SNR, so the answer does not depend on the ASL's noise.
    """
    fine = check_grid(m0.grid, t1.grid)  # voxel centres on fine voxel centres
    t1_fine = resample_average(t1.data, t1.affine, fine)
    fwhm = float(np.mean(t1.grid.voxel_size))
    rng = np.random.default_rng(seed)
    held = np.asarray(mask, bool) & (rng.random(m0.grid.shape) < held_out)
    keep = torch.as_tensor((~held).astype(np.float32), device=torch.device(device))
    initial = resample(m0.data, m0.affine, fine, order=1)
    region = edge_region(mask, m0.grid, fine)
    settings = DTVSettings(iterations=iterations)
    errors = []
    for model in (AcquisitionModel("box"), AcquisitionModel("gaussian", fwhm_mm=fwhm, slice_fwhm_mm=fwhm)):
        operator = AcquisitionOperator(model, fine, m0.grid, device=device)
        given = _Restricted(operator, keep)
        image = reconstruct(
            m0.data * ~held, given, t1_fine, settings=settings, initial=initial, edge_region=region
        ).image
        predicted = operator.forward(torch.as_tensor(image, dtype=operator.dtype, device=operator.device))
        residual = predicted.cpu().numpy() - m0.data
        errors.append(float(np.sqrt(np.mean(residual[held] ** 2))) if held.any() else 0.0)
    box, point = errors
    return PointSamplingCheck(box, point, point / box if box > 0 else 1.0, fwhm, int(held.sum()))


def check_grid(grid: Grid, t1_grid: Grid) -> Grid:
    """``grid`` with each voxel split in three along the axes where it is at least three times the T1's mean voxel
    size: an odd split puts a fine voxel on each voxel centre, where point samples and box averages differ (split
    in two, a box average of the two halves is the sample at their shared face)."""
    t1_voxel = float(np.mean(t1_grid.voxel_size))
    return grid.zoomed(np.where(np.asarray(grid.voxel_size) >= 3.0 * t1_voxel, 3.0, 1.0))


class _Restricted:
    """An acquisition operator that sees only the ``keep`` (1) voxels of its LR grid: A restricted, and its adjoint."""

    def __init__(self, operator: AcquisitionOperator, keep: torch.Tensor):
        self.operator, self.keep = operator, keep
        self.fine, self.lr, self.device, self.dtype = operator.fine, operator.lr, operator.device, operator.dtype

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.operator.forward(x) * self.keep

    def adjoint(self, p: torch.Tensor) -> torch.Tensor:
        return self.operator.adjoint(p * self.keep)
