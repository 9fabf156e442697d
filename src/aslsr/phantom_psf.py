"""Acquisition point-spread functions of the phantom: how a scanner turns the fine truth into voxels.

Written for the phantom alone, in numpy/scipy, and deliberately sharing no code with any operator a
reconstruction uses (so that a method assuming one of these models is not scored on data made by
its own code, the "inverse crime"). Three models:

- ``box``: each acquired voxel is the mean of the fine voxels inside it (partial-volume average);
  voxel centres as for a grid of the same field of view (the phantom's historical model).
- ``gaussian``: a 2D multi-slice readout: a Gaussian in-plane PSF (FWHM in acquired voxels) and a
  separate slice profile along the slice axis (a rectangle of the slice thickness with Gaussian
  edges, as an RF pulse excites), sampled at the acquired voxel centres.
- ``kspace``: a 3D Fourier readout: the fine truth's discrete Fourier transform is truncated to the
  acquired matrix, tapered by a separable Tukey window (``window`` = tapered fraction of each
  half-axis; 0 is a plain truncation, 1 a Hann window) and transformed back, which samples the
  band-limited image at every m-th fine voxel centre. Noise is added in k-space before the
  window, so it comes out correlated, as on a scanner.

Geometry: :func:`fine_grid` gives the fine sampling grid of the truth: the NR field of view plus a
margin, so that the object is not cut at the field of view's edges (a cut would ring through the
whole image in k-space); :func:`acquisition_grid` gives the acquired grid (voxel ``factor`` times the
NR voxel). With ``box`` the acquired voxels tile the NR field of view, otherwise the acquired voxel
centres sit on every ``factor``-th NR voxel centre starting at NR voxel 0 (sampling, not averaging).
Arrays are in voxel order (i, j, k) of their grids; sizes in voxels unless a name says mm.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import ndimage

from .errors import InputError
from .grids import Grid

PSF_KINDS = ("box", "gaussian", "kspace")
FWHM_TO_SIGMA = 1.0 / (2.0 * np.sqrt(2.0 * np.log(2.0)))


@dataclass(frozen=True)
class PSF:
    """An acquisition model. Widths are in voxels of the acquired grid."""

    kind: str = "box"
    window: float = 0.3  # kspace: Tukey taper fraction of each half-axis of k-space
    fwhm_voxels: float = 1.2  # gaussian: in-plane FWHM
    slice_thickness_voxels: float = 1.0  # gaussian: width of the rectangular slice profile
    slice_edge_voxels: float = 0.3  # gaussian: FWHM of the Gaussian edges of the slice profile
    slice_axis: int = 2

    def __post_init__(self) -> None:
        if self.kind not in PSF_KINDS:
            raise InputError(f"the PSF must be one of {', '.join(PSF_KINDS)}, got {self.kind!r}")
        if not all(np.isfinite([self.window, self.fwhm_voxels, self.slice_thickness_voxels, self.slice_edge_voxels])):
            raise InputError("the PSF widths and window must be finite numbers")
        if not 0.0 <= self.window <= 1.0:
            raise InputError(f"the k-space window fraction must be within 0-1, got {self.window}")
        if not (self.fwhm_voxels > 0 and self.slice_thickness_voxels > 0 and self.slice_edge_voxels >= 0):
            raise InputError("the Gaussian PSF needs a positive FWHM and slice thickness, edges >= 0")
        if self.slice_axis not in (0, 1, 2):
            raise InputError(f"the slice axis must be 0, 1 or 2, got {self.slice_axis}")


def acquisition_grid(nr: Grid, factor: tuple[int, int, int], psf: PSF) -> Grid:
    """The grid acquired with voxels ``factor`` (integers) times those of ``nr``, same orientation."""
    factor_ = np.asarray(factor, dtype=int)
    if np.any(factor_ < 1) or np.any(np.array(nr.shape) % factor_):
        raise InputError(f"the NR shape {nr.shape} is not a multiple of the LR factor {tuple(factor_)}")
    if psf.kind == "box":
        return nr.with_voxel_size(nr.voxel_size * factor_)
    affine = np.array(nr.affine)
    affine[:3, :3] = affine[:3, :3] * factor_
    return Grid(tuple(np.array(nr.shape) // factor_), affine)


def fine_grid(nr: Grid, subdivision: int, psf: PSF, margin: int = 0) -> Grid:
    """The grid on which the truth is sampled: NR voxels split ``subdivision`` times per axis, over
    the NR field of view grown by ``margin`` NR voxels on every side (a multiple of the LR factor).

    ``box``: the fine voxels tile that field of view. Otherwise fine voxel ``subdivision * i`` is
    centred on (grown) NR voxel ``i`` (so the acquired samples fall on fine voxel centres).
    """
    if int(subdivision) != subdivision or subdivision < 1 or int(margin) != margin or margin < 0:
        raise InputError(
            f"the fine subdivision must be a positive integer and the margin >= 0, got {subdivision} and {margin}"
        )
    grown = np.array(nr.affine)
    grown[:3, 3] = nr.index_to_world(-float(margin) * np.ones(3))
    nr = Grid(tuple(np.array(nr.shape) + 2 * int(margin)), grown)
    if psf.kind == "box":
        return nr.with_voxel_size(nr.voxel_size / subdivision)
    affine = np.array(nr.affine)
    affine[:3, :3] = affine[:3, :3] / subdivision
    return Grid(tuple(np.array(nr.shape) * int(subdivision)), affine)


def _nesting(fine: Grid, target: Grid, psf: PSF) -> tuple[np.ndarray, np.ndarray]:
    """Fine voxels per target voxel (integers) and the index of ``target``'s first voxel in the
    target-spaced grid that covers all of ``fine``; raises ValueError unless the grids nest."""
    ratio = target.voxel_size / fine.voxel_size
    steps = np.round(ratio).astype(int)
    if np.any(np.abs(ratio - steps) > 1e-4) or np.any(np.array(fine.shape) % steps):
        raise ValueError(f"{target} does not nest on {fine}")
    if not np.allclose(fine.directions, target.directions, atol=1e-6):
        raise ValueError("the fine and target grids are not parallel")
    first = fine.world_to_index(target.affine[:3, 3]) - ((steps - 1) / 2.0 if psf.kind == "box" else 0.0)
    start = np.round(first / steps).astype(int)
    if (
        not np.allclose(first, start * steps, atol=1e-4)
        or np.any(start < 0)
        or np.any(start + np.array(target.shape) > np.array(fine.shape) // steps)
    ):
        raise ValueError(f"{target} does not sit on the samples of {fine}")
    return steps, start


def acquire(
    fine_data: np.ndarray,
    fine: Grid,
    target: Grid,
    psf: PSF,
    *,
    noise_sd: float = 0.0,
    rng: np.random.Generator | None = None,
) -> np.ndarray:
    """Acquire ``fine_data`` (on ``fine``) onto ``target`` with ``psf``, plus Gaussian noise.

    ``noise_sd`` is the standard deviation of white noise on the acquired voxels before any k-space
    window (the window then lowers and correlates it). ``target`` must nest on ``fine`` as made by
    :func:`fine_grid` and :func:`acquisition_grid` with the same ``psf``. Returns float32.
    """
    data = np.asarray(fine_data, dtype=np.float64)
    if data.shape != fine.shape:
        raise ValueError(f"data shape {data.shape} differs from the fine grid {fine.shape}")
    steps, start = _nesting(fine, target, psf)
    full = tuple(np.array(fine.shape) // steps)  # every sample over the fine field of view
    noise = None
    if noise_sd > 0:
        if rng is None:
            raise ValueError("noise needs a random generator")
        noise = noise_sd * rng.standard_normal(full)
    if psf.kind == "kspace":
        out = _kspace(data, full, psf.window, noise)
    else:
        if psf.kind == "box":
            (n0, n1, n2), (s0, s1, s2) = full, steps
            out = data.reshape(n0, s0, n1, s1, n2, s2).mean(axis=(1, 3, 5))
        else:
            out = _gaussian(data, steps, psf)[:: steps[0], :: steps[1], :: steps[2]]
        out = out if noise is None else out + noise
    block = tuple(slice(a, a + n) for a, n in zip(start, target.shape))
    return np.ascontiguousarray(out[block], dtype=np.float32)


def slice_profile(steps: int, thickness_voxels: float, edge_voxels: float) -> np.ndarray:
    """The slice profile sampled every 1/``steps`` of a slice spacing, summing to 1 (odd length):
    a rectangle ``thickness_voxels`` wide convolved with a Gaussian of FWHM ``edge_voxels``."""
    width, sigma = thickness_voxels * steps, edge_voxels * steps * FWHM_TO_SIGMA
    half = int(np.ceil(width / 2.0 + 4.0 * sigma + 1.0))
    x = np.arange(-half, half + 1, dtype=np.float64)
    fine_x = x[:, None] + np.linspace(-0.5, 0.5, 33)[None, :]  # integrate over each fine voxel
    rect = (np.abs(fine_x) <= width / 2.0).astype(np.float64).mean(axis=1)
    if sigma > 0:
        rect = ndimage.gaussian_filter1d(rect, sigma, mode="constant")
    return rect / rect.sum()


def _gaussian(data: np.ndarray, steps: np.ndarray, psf: PSF) -> np.ndarray:
    out = data
    for axis in range(3):
        if axis == psf.slice_axis:
            kernel = slice_profile(int(steps[axis]), psf.slice_thickness_voxels, psf.slice_edge_voxels)
            out = ndimage.convolve1d(out, kernel, axis=axis, mode="constant")
        else:
            sigma = psf.fwhm_voxels * steps[axis] * FWHM_TO_SIGMA
            out = ndimage.gaussian_filter1d(out, sigma, axis=axis, mode="constant", truncate=4.0)
    return out


def tukey_window(n: int, fraction: float) -> np.ndarray:
    """Weights of the ``n`` kept k-space samples, in numpy FFT order (frequency 0 first).

    1 for |k| <= (1 - fraction) * n / 2, a cosine taper to 0 at |k| = n / 2 beyond.
    """
    k = np.abs(np.rint(np.fft.fftfreq(n) * n))
    edge = n / 2.0
    flat = (1.0 - fraction) * edge
    weights = np.ones(n)
    if fraction > 0:
        taper = k > flat
        weights[taper] = 0.5 * (1.0 + np.cos(np.pi * (k[taper] - flat) / (fraction * edge)))
    return weights


def _kspace(data: np.ndarray, shape: tuple[int, int, int], window: float, noise: np.ndarray | None) -> np.ndarray:
    """Truncate the spectrum of ``data`` to ``shape``, add ``noise``'s spectrum, window, transform back."""
    spectrum = np.fft.fftn(data)
    for axis, n in enumerate(shape):
        keep = np.rint(np.fft.fftfreq(n) * n)  # kept frequencies (fine-grid index units), FFT order
        index = np.mod(keep.astype(int), data.shape[axis])
        spectrum = np.take(spectrum, index, axis=axis)
    spectrum *= np.prod(shape) / np.prod(data.shape)  # the same amplitude on the coarser matrix
    if noise is not None:
        spectrum = spectrum + np.fft.fftn(noise)
    for axis, n in enumerate(shape):
        weights = tukey_window(n, window)
        spectrum *= weights.reshape([-1 if a == axis else 1 for a in range(3)])
    return np.fft.ifftn(spectrum).real
