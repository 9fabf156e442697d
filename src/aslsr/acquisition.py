"""Acquisition operators A: an image on the fine target grid -> the low-resolution (LR) ASL grid.

Model-based reconstruction (see :mod:`aslsr.dtv`) needs A and its exact adjoint A^T as torch
functions. Three models, chosen with :class:`AcquisitionModel`:

- ``box``: each LR voxel is the average of the fine image over the LR voxel's box (the model of
  :func:`aslsr.grids.resample_average`, with the same exact partial-voxel weights);
- ``gaussian``: a Gaussian point-spread function in mm (``fwhm_mm`` in-plane, ``slice_fwhm_mm``
  along the slice axis), integrated over each fine voxel and sampled at the LR voxel centres;
- ``kspace``: the fine image's discrete Fourier spectrum truncated to the LR band (a 3D Cartesian
  acquisition of the central LR k-space), optionally windowed (``hann``, ``tukey``), evaluated at
  the LR voxel centres. It needs LR voxels that are an integer number of fine voxels along
  axes parallel to the fine ones; the object is taken as periodic over the fine field of view.

:func:`box_equivalent` turns an LR image acquired under any of these models into the box-average
acquisition of the same object, as far as that needs no frequency raised (see its docstring): the
generator's chain (pyramid, training, the dTV it refines, the consistency step) assumes box averages.

Geometry comes from the two :class:`~aslsr.grids.Grid` affines (world mm), so any orientation works.
When every LR axis is parallel to a fine axis (any permutation and flips) A is separable: one small
dense matrix per axis. Otherwise (oblique grids) the fine image is first sampled trilinearly on an
LR-aligned sub-grid (sub-voxels no larger than a fine voxel, as ``resample_average`` does) and the
separable kernel is applied there; that sampling's adjoint comes from torch autograd.
The "slice axis" is the LR voxel axis with the largest voxel size (the last one on ties).
Arrays are indexed (i, j, k) like their grids; intensities keep their units.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from math import log, sqrt
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from scipy.special import erf

from .config import Config
from .errors import InputError
from .grids import Grid, box_weights
from .io import Volume

KINDS = ("box", "gaussian", "kspace")
WINDOWS = ("none", "hann", "tukey")
_FWHM_PER_SIGMA = 2.0 * sqrt(2.0 * log(2.0))


@dataclass(frozen=True)
class AcquisitionModel:
    """How the LR ASL was formed from the object.

    ``fwhm_mm``: in-plane Gaussian FWHM in mm (``gaussian`` only; None = the LR in-plane voxel size).
    ``slice_fwhm_mm``: FWHM in mm along the slice axis (``gaussian`` only; None = the LR slice thickness).
    ``window``: k-space filter over the kept band (``kspace`` only): none, hann or tukey
    (``tukey_alpha``: the tapered fraction of the band, 0 < alpha <= 1).
    """

    kind: str = "box"
    fwhm_mm: float | None = None
    slice_fwhm_mm: float | None = None
    window: str = "none"
    tukey_alpha: float = 0.5

    def __post_init__(self) -> None:
        problem = model_problem(self.kind, self.fwhm_mm, self.slice_fwhm_mm, self.window, self.tukey_alpha)
        if problem:
            raise InputError(f"bad acquisition model: {problem}")

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_config(cls, config: Config) -> AcquisitionModel:
        """The model named by a :class:`~aslsr.config.Config`'s ``acquisition*`` fields."""
        return cls(
            kind=config.acquisition,
            fwhm_mm=config.acquisition_fwhm_mm,
            slice_fwhm_mm=config.acquisition_slice_fwhm_mm,
            window=config.acquisition_window,
            tukey_alpha=config.acquisition_tukey_alpha,
        )


def model_problem(
    kind: str, fwhm_mm: float | None, slice_fwhm_mm: float | None, window: str, tukey_alpha: float
) -> str | None:
    """What is wrong with these acquisition settings (one phrase), or None."""
    if kind not in KINDS:
        return f"acquisition must be one of {', '.join(KINDS)}, got {kind!r}"
    for name, value in (("fwhm_mm", fwhm_mm), ("slice_fwhm_mm", slice_fwhm_mm)):
        if value is not None and not (np.isfinite(value) and value >= 0):
            return f"acquisition {name} must be a non-negative number of mm"
    if window not in WINDOWS:
        return f"acquisition window must be one of {', '.join(WINDOWS)}, got {window!r}"
    if not 0 < tukey_alpha <= 1:
        return "acquisition tukey_alpha must be in (0, 1]"
    return None


def slice_axis(grid: Grid) -> int:
    """The voxel axis with the largest voxel size (the last one on ties)."""
    sizes = grid.voxel_size
    return int(2 - np.argmax(sizes[::-1] >= sizes.max() - 1e-6))


class AcquisitionOperator:
    """The linear map A from ``fine`` to ``lr`` (torch tensors of the grids' shapes) and its adjoint.

    ``forward(x)`` takes a tensor shaped like ``fine`` and returns one shaped like ``lr``;
    ``adjoint(y)`` is the exact transpose. Both run on ``device`` in ``dtype``.
    """

    def __init__(
        self,
        model: AcquisitionModel,
        fine: Grid,
        lr: Grid,
        *,
        device: torch.device | str = "cpu",
        dtype: torch.dtype = torch.float32,
    ):
        self.model, self.fine, self.lr = model, fine, lr
        self.device, self.dtype = torch.device(device), dtype
        to_fine = np.linalg.inv(fine.affine) @ lr.affine  # LR voxel index -> fine voxel index
        permutation = _parallel_axes(to_fine[:3, :3])
        self._sampler: _TrilinearSampler | None = None
        if permutation is not None:
            steps = np.array([to_fine[permutation[a], a] for a in range(3)])
            sizes = [fine.shape[p] for p in permutation]
            centres = [to_fine[permutation[a], 3] + steps[a] * np.arange(lr.shape[a]) for a in range(3)]
            spacing = np.abs(steps)  # LR voxel in source voxels
            self._permutation = tuple(permutation)
        else:
            if model.kind == "kspace":
                raise InputError(
                    "the kspace acquisition needs ASL voxel axes parallel to the target grid's; "
                    "use box or gaussian for oblique grids"
                )
            counts = np.maximum(1, np.ceil(np.linalg.norm(to_fine[:3, :3], axis=0) - 1e-3)).astype(int)
            self._sampler = _TrilinearSampler(fine, lr, counts, self.device, dtype)
            lr_in_fine = (
                np.stack(np.meshgrid(*[np.arange(n, dtype=np.float64) for n in lr.shape], indexing="ij"), axis=-1)
                @ to_fine[:3, :3].T
                + to_fine[:3, 3]
            )
            inside = np.all((lr_in_fine >= -0.5 - 1e-6) & (lr_in_fine <= np.array(fine.shape) - 0.5 + 1e-6), axis=-1)
            self._lr_inside = torch.as_tensor(inside, dtype=dtype, device=self.device)
            sizes = list(np.array(lr.shape) * counts)
            centres = [c * np.arange(n) + (c - 1) / 2.0 for c, n in zip(counts, lr.shape)]
            spacing = counts.astype(np.float64)
            self._permutation = (0, 1, 2)
        source_mm = lr.voxel_size / spacing  # size (mm) of one source voxel along each LR axis
        matrices = [self._axis_matrix(a, centres[a], spacing[a], sizes[a], source_mm[a]) for a in range(3)]
        self._matrices = [torch.as_tensor(m, dtype=dtype, device=self.device) for m in matrices]
        self._order = list(np.argsort(np.array(lr.shape) / np.array(sizes)))  # shrink most first
        self._inverse = tuple(int(i) for i in np.argsort(self._permutation))

    def _axis_matrix(self, axis: int, centres: np.ndarray, spacing: float, size: int, source_mm: float) -> np.ndarray:
        kind = self.model.kind
        if kind == "box":
            return box_weights(centres, spacing, size)
        if kind == "gaussian":
            fwhm = self.model.slice_fwhm_mm if axis == slice_axis(self.lr) else self.model.fwhm_mm
            fwhm = self.lr.voxel_size[axis] if fwhm is None else fwhm
            return gaussian_weights(centres, fwhm / _FWHM_PER_SIGMA / source_mm, size)
        if abs(spacing - round(spacing)) > 1e-3 or round(spacing) < 1:
            raise InputError(
                f"the kspace acquisition needs ASL voxels that are a whole number of target voxels; "
                f"along ASL axis {axis} one ASL voxel is {spacing:.4g} target voxels"
            )
        return kspace_weights(centres, int(round(spacing)), size, self.model.window, self.model.tukey_alpha)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """A x: fine-grid tensor -> LR-grid tensor."""
        z = self._sampler.forward(x) if self._sampler is not None else x.permute(self._permutation)
        for axis in self._order:
            z = _contract(self._matrices[axis], z, axis)
        return (z * self._lr_inside if self._sampler is not None else z).contiguous()

    def adjoint(self, y: torch.Tensor) -> torch.Tensor:
        """A^T y: LR-grid tensor -> fine-grid tensor (the exact transpose of :meth:`forward`)."""
        z = y * self._lr_inside if self._sampler is not None else y
        for axis in reversed(self._order):
            z = _contract(self._matrices[axis].T, z, axis)
        if self._sampler is not None:
            return self._sampler.adjoint(z)
        return z.permute(self._inverse).contiguous()

    __call__ = forward

    def apply(self, data: np.ndarray) -> np.ndarray:
        """A on a numpy array (fine grid) -> numpy float32 array on the LR grid."""
        with torch.no_grad():
            x = torch.as_tensor(np.asarray(data), dtype=self.dtype, device=self.device)
            return self.forward(x).cpu().numpy().astype(np.float32)


def transfer_function(model: AcquisitionModel, grid: Grid, axis: int, k: np.ndarray) -> np.ndarray:
    """The model's response along LR voxel ``axis`` of ``grid`` at frequencies ``k`` (cycles per LR voxel).

    box: sinc(k), the voxel's average; gaussian: the PSF's Fourier transform; kspace: the window over
    the acquired band |k| <= 1/2 (1 without a window).
    """
    k = np.abs(np.asarray(k, dtype=np.float64))
    if model.kind == "box":
        return np.sinc(k)
    if model.kind == "gaussian":
        fwhm = model.slice_fwhm_mm if axis == slice_axis(grid) else model.fwhm_mm
        sigma = (grid.voxel_size[axis] if fwhm is None else fwhm) / _FWHM_PER_SIGMA / grid.voxel_size[axis]
        return np.exp(-2.0 * (np.pi * sigma * k) ** 2)
    r = np.clip(k / 0.5, 0.0, 1.0)
    if model.window == "hann":
        return 0.5 * (1.0 + np.cos(np.pi * r))
    if model.window == "tukey":
        taper = np.clip((r - (1.0 - model.tukey_alpha)) / model.tukey_alpha, 0.0, 1.0)
        return 0.5 * (1.0 + np.cos(np.pi * taper))
    return np.ones_like(k)


def box_equivalent(data: np.ndarray, grid: Grid, model: AcquisitionModel, *, pad_voxels: int = 8) -> np.ndarray:
    """``data`` (on the LR ``grid``, acquired under ``model``) as a box-average acquisition would give it.

    Along each LR voxel axis the spectrum is multiplied by min(1, sinc(k) / A(k)), A the model's
    :func:`transfer_function`: what the acquisition kept sharper than a voxel average (a k-space
    readout, a narrow PSF) is averaged as a box would; what it blurred more is left as it is (raising
    a frequency would raise its noise too). Identity for ``box``. Edges are mirrored by ``pad_voxels``
    before the (periodic) FFT. Returns float32 of ``data``'s shape.

    Examples
    --------
    >>> from aslsr.grids import Grid
    >>> grid = Grid((8, 8, 8), np.eye(4))
    >>> flat = np.ones(grid.shape)
    >>> bool(np.allclose(box_equivalent(flat, grid, AcquisitionModel("kspace")), 1.0))
    True
    """
    out = np.asarray(data, dtype=np.float64)
    if model.kind == "box":
        return out.astype(np.float32)
    for axis in range(3):
        pad = min(pad_voxels, out.shape[axis] - 1)
        widths = [(0, 0)] * 3
        widths[axis] = (pad, pad)
        padded = np.pad(out, widths, mode="symmetric")
        k = np.fft.rfftfreq(padded.shape[axis])
        response = transfer_function(model, grid, axis, k)
        gain = np.where(response > np.sinc(k), np.sinc(k) / np.maximum(response, 1e-12), 1.0)
        shape = [1, 1, 1]
        shape[axis] = -1
        filtered = np.fft.irfft(np.fft.rfft(padded, axis=axis) * gain.reshape(shape), n=padded.shape[axis], axis=axis)
        out = np.take(filtered, np.arange(pad, pad + out.shape[axis]), axis=axis)
    return out.astype(np.float32)


def as_box_acquisition(asl: Volume, config: Config) -> Volume:
    """The LR ASL as a box-average acquisition would give it (:func:`box_equivalent`
    under ``config``'s acquisition model; the same volume for ``box``).

    The pyramid, the training targets, the dTV the generator refines and the consistency step all
    assume box averages; a k-space readout's sharper, ringing voxels taught the generator to draw
    ringing one scale finer (BENCHMARKS.md).
    """
    if config.acquisition == "box":
        return asl
    return Volume(box_equivalent(asl.data, asl.grid, AcquisitionModel.from_config(config)), asl.grid)


def gaussian_weights(centres: np.ndarray, sigma_voxels: float, size: int) -> np.ndarray:
    """Gaussian PSF (sigma in source voxels) centred at ``centres`` and integrated over each source voxel.

    Shape (len(centres), size); rows whose centre is outside the source field of view are 0.
    """
    sigma = max(float(sigma_voxels), 1e-6)
    edges = np.arange(size + 1) - 0.5
    cdf = 0.5 * (1.0 + erf((edges[None, :] - np.asarray(centres)[:, None]) / (sigma * sqrt(2.0))))
    weights = np.diff(cdf, axis=1)
    weights[(centres < -0.5 - 1e-6) | (centres > size - 0.5 + 1e-6)] = 0.0
    return weights


def kspace_weights(centres: np.ndarray, step: int, size: int, window: str = "none", alpha: float = 0.5) -> np.ndarray:
    """Band-limited sampling: the ``size``-point DFT truncated to |k| <= size / (2 step), at ``centres``.

    Row i is (1/size) sum_k w(k) cos(2 pi k (centres[i] - j) / size); the Nyquist bins at the band
    edge get half weight each (so the operator is real); ``window`` (applied only when ``step`` > 1)
    tapers the band: hann, or tukey with ``alpha`` the tapered fraction. Rows whose centre is
    outside the source field of view are 0. Shape (len(centres), size).
    """
    band = size / (2.0 * step)
    k = np.arange(-int(np.floor(band)), int(np.floor(band)) + 1, dtype=np.float64)
    weight = np.where(np.abs(np.abs(k) - band) < 1e-9, 0.5, 1.0)
    if step > 1 and window != "none":
        r = np.abs(k) / band
        if window == "hann":
            weight = weight * 0.5 * (1.0 + np.cos(np.pi * r))
        else:
            taper = np.clip((r - (1.0 - alpha)) / alpha, 0.0, 1.0)
            weight = weight * 0.5 * (1.0 + np.cos(np.pi * taper))
    shift = np.asarray(centres, dtype=np.float64)[:, None] - np.arange(size)[None, :]
    weights = np.cos(2 * np.pi * shift[:, :, None] * k[None, None, :] / size) @ weight / size
    weights[(centres < -0.5 - 1e-6) | (centres > size - 0.5 + 1e-6)] = 0.0
    return weights


def _contract(matrix: torch.Tensor, z: torch.Tensor, axis: int) -> torch.Tensor:
    """``matrix`` (m, n) applied along ``axis`` (of size n) of the 3D tensor ``z``, without transposing copies."""
    if axis == 0:
        return (matrix @ z.reshape(z.shape[0], -1)).reshape((matrix.shape[0],) + tuple(z.shape[1:]))
    if axis == 1:
        return torch.matmul(matrix, z)
    return torch.matmul(z, matrix.T)


def _parallel_axes(linear: np.ndarray) -> list[int] | None:
    """For each LR axis the parallel fine axis (a permutation), or None when the grids are oblique."""
    magnitude = np.abs(linear)
    permutation = [int(np.argmax(magnitude[:, a])) for a in range(3)]
    if sorted(permutation) != [0, 1, 2]:
        return None
    off = magnitude.copy()
    off[permutation, [0, 1, 2]] = 0.0
    return permutation if np.all(off <= 1e-6 * magnitude.max()) else None


class _TrilinearSampler:
    """Trilinear samples of the fine image at the centres of an LR-aligned sub-grid (LR voxels split
    ``counts`` times per axis), as :func:`aslsr.grids.resample` does (edge values extended, samples
    outside the fine field of view 0). Linear; the adjoint is its autograd vector-Jacobian product."""

    def __init__(self, fine: Grid, lr: Grid, counts: np.ndarray, device: torch.device, dtype: torch.dtype):
        self.fine_shape = fine.shape
        shape = tuple(int(n) for n in np.array(lr.shape) * counts)
        origin = lr.index_to_world(-0.5 + 0.5 / counts)
        axes = np.meshgrid(*[np.arange(n, dtype=np.float64) for n in shape], indexing="ij")
        world = np.stack(axes, axis=-1) @ (lr.affine[:3, :3] / counts).T + origin
        index = fine.world_to_index(world)  # (..., 3) fine voxel indices
        size = np.array(fine.shape, dtype=np.float64)
        inside = np.all((index >= -0.5 - 1e-6) & (index <= size - 0.5 + 1e-6), axis=-1)
        normalised = np.where(size > 1, 2.0 * index / np.maximum(size - 1, 1) - 1.0, 0.0)
        self.grid = torch.as_tensor(normalised[..., ::-1].copy(), dtype=dtype, device=device)[None]
        self.inside = torch.as_tensor(inside, dtype=dtype, device=device)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        sampled = F.grid_sample(x[None, None], self.grid, mode="bilinear", padding_mode="border", align_corners=True)[
            0, 0
        ]
        return sampled * self.inside

    def adjoint(self, y: torch.Tensor) -> torch.Tensor:
        with torch.enable_grad():
            x = torch.zeros(self.fine_shape, dtype=y.dtype, device=y.device, requires_grad=True)
            (gradient,) = torch.autograd.grad(self.forward(x), x, grad_outputs=y)
        return gradient
