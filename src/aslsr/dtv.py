"""Directional total variation (dTV) reconstruction: the anatomically guided model-based baseline.

Ehrhardt MJ, Betcke MM. Multicontrast MRI reconstruction with structure-guided total variation.
SIAM J Imaging Sci 2016;9(3):1084-1106. doi:10.1137/15M1047325.

With the LR ASL y (normalised by s, the 99th percentile of |y|), the acquisition operator A
(:mod:`aslsr.acquisition`) and the registered T1 a on the fine target grid, the SR image x solves

    min_x  0.5 * c * ||A x - y||^2  +  lambda * sum_voxels |P(xi) grad x|_eps

- grad: forward differences in 1/mm (Neumann boundary), so the sum approximates the integral of
  |grad x| over the volume in fine-voxel units; c = (LR voxel volume) / (fine voxel volume) puts
  the data term in the same units, so lambda (in mm, for intensities relative to s) means the same
  on any target grid;
- xi = grad a / sqrt(|grad a|^2 + eta^2), eta = ``eta`` times the 99th percentile of |grad a| over the grid,
  with |grad a| counted as 0 beyond ``EDGE_MARGIN_MM`` (and two voxels) of the brain where a brain mask is given
  (a T1 with skull and scalp then sets eta by its brain's edges, as a skull-stripped one does: the scalp's had
  raised eta by 22-31 % and cost dTV 0.3-0.4 dB; BENCHMARKS.md 2026-12-07 late evening, part 3);
  P(xi) = I - gamma xi xi^T removes (a share gamma of) the gradient component along the T1's;
- |v|_eps: the Euclidean norm (eps = 0) or its Huber smoothing with eps relative to 1/mm.

Solver: primal-dual hybrid gradient (Chambolle & Pock 2011, theta = 1), with both operators
rescaled to unit norm (norm of A by power iteration, of P grad by its bound) and the steps set from
the stacked operator's norm L (power iteration): tau = r / L, sigma = 1 / (r L). The ratio r = 0.1
(image steps 100x smaller than dual steps) got closer to the minimum in 200 iterations than equal
steps in 800 (a k-space phantom at 1 mm; BENCHMARKS.md 2026-12-07 morning); the minimiser does not
depend on it. It stops when the relative change of x over 10 iterations falls below ``tolerance`` or
after ``iterations``; :func:`objective` gives the value minimised. Torch tensors (float32) on CPU or CUDA.
"""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass, replace
from typing import Any, Callable

import numpy as np
import torch

from .acquisition import AcquisitionModel, AcquisitionOperator
from .config import Config
from .grids import Grid, resample, resample_average
from .io import Volume
from .masking import dilate
from .pyramid import zoom_between

Tensor = torch.Tensor

#: How far beyond the brain mask the T1's edges count towards eta's reference (mm): past the CSF and skull, short
#: of the scalp (5-13 mm out), and beyond every edge of a skull-stripped T1 whose brain mask came from the M0.
EDGE_MARGIN_MM = 6.0


@dataclass(frozen=True)
class DTVSettings:
    """One fixed setting for every case (not tuned per subject). Units in the module docstring.

    ``lam``: regularisation weight, mm (intensities relative to the 99th percentile of |y|);
    ``gamma``: 0 = plain isotropic TV, towards 1 = edges parallel to the T1's are free;
    ``eta``: edge threshold relative to the 99th percentile of the T1 gradient magnitude;
    ``epsilon``: Huber smoothing of the norm, in (relative intensity)/mm, 0 = none;
    ``iterations``: maximum PDHG iterations; ``tolerance``: relative change per 10 iterations to stop;
    ``step_ratio``: r in tau = r / L, sigma = 1 / (r L) (module docstring): the path, not the minimiser.
    """

    lam: float = Config.dtv_lambda
    gamma: float = Config.dtv_gamma
    eta: float = Config.dtv_eta
    epsilon: float = 0.0
    iterations: int = Config.dtv_iterations
    tolerance: float = 3e-4
    step_ratio: float = 0.1

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class DTVResult:
    """The reconstruction (numpy float32, fine grid, input units) and how the solver went."""

    image: np.ndarray
    iterations: int
    converged: bool
    relative_change: float
    seconds: float
    scale: float  # s: the 99th percentile of |y|, input units
    eta_abs: float  # eta in T1 units per mm
    device: str
    lam: float  # the weight lambda used (mm, intensities relative to scale)

    def summary(self) -> dict[str, Any]:
        return {key: value for key, value in asdict(self).items() if key != "image"}


def gradient(x: Tensor, voxel_mm: tuple[float, float, float]) -> Tensor:
    """Forward differences in 1/mm along each axis, shape (3, *x.shape); 0 at the last voxel."""
    out = x.new_zeros((3,) + tuple(x.shape))
    for axis, h in enumerate(voxel_mm):
        n = x.shape[axis]
        if n > 1:
            out[axis].narrow(axis, 0, n - 1).copy_((x.narrow(axis, 1, n - 1) - x.narrow(axis, 0, n - 1)) / h)
    return out


def gradient_adjoint(v: Tensor, voxel_mm: tuple[float, float, float]) -> Tensor:
    """The exact transpose of :func:`gradient` (minus the divergence)."""
    out = v.new_zeros(v.shape[1:])
    for axis, h in enumerate(voxel_mm):
        n = out.shape[axis]
        if n > 1:
            part = v[axis].narrow(axis, 0, n - 1) / h
            out.narrow(axis, 0, n - 1).sub_(part)
            out.narrow(axis, 1, n - 1).add_(part)
    return out


def directions(
    anatomy: Tensor, voxel_mm: tuple[float, float, float], eta: float, region: Tensor | None = None
) -> tuple[Tensor, float]:
    """xi = grad a / sqrt(|grad a|^2 + eta_abs^2) and eta_abs = eta * 99th percentile of |grad a| (per mm) over
    the grid, |grad a| taken as 0 outside ``region`` (bool, the grid's shape) where one is given."""
    grad = gradient(anatomy, voxel_mm)
    magnitude = _dot3(grad, grad).sqrt_()
    counted = magnitude if region is None else magnitude * region
    reference = float(torch.quantile(counted.flatten()[:: max(1, counted.numel() // 2_000_000)].float(), 0.99))
    eta_abs = max(eta * reference, 1e-12)
    return grad / torch.sqrt(magnitude**2 + eta_abs**2), eta_abs


def _dot3(a: Tensor, b: Tensor) -> Tensor:
    """Voxel-wise dot product of two (3, ...) vector fields."""
    out = a[0] * b[0]
    return out.addcmul_(a[1], b[1]).addcmul_(a[2], b[2])


def operator_norm(
    forward: Callable[[Tensor], Tensor],
    adjoint: Callable[[Tensor], Tensor],
    like: Tensor,
    iterations: int = 30,
    seed: int = 0,
) -> float:
    """||K|| by power iteration on K^T K, starting from seeded noise shaped like ``like``."""
    generator = torch.Generator(device="cpu").manual_seed(seed)
    x = torch.randn(like.shape, generator=generator, dtype=like.dtype).to(like.device)
    value = 0.0
    for _ in range(iterations):
        x = x / torch.linalg.vector_norm(x)
        x = adjoint(forward(x))
        value = float(torch.linalg.vector_norm(x))
    return float(np.sqrt(value))


@dataclass(frozen=True)
class _Problem:
    """The dTV problem in the solver's units: intensities divided by ``scale``, gradients per mm."""

    y: Tensor  # LR data / scale
    scale: float  # the 99th percentile of |y|, input units
    c: float  # LR voxel volume / fine voxel volume
    voxel_mm: tuple[float, float, float]
    xi: Tensor  # the T1's normalised gradient, (3, *fine.shape)
    eta_abs: float
    gamma: float

    def project(self, v: Tensor) -> Tensor:
        """P(xi) v = v - gamma xi (xi . v); self-adjoint."""
        return v.addcmul(self.xi, _dot3(self.xi, v), value=-self.gamma) if self.gamma else v


def _problem(
    y: np.ndarray,
    operator: AcquisitionOperator,
    anatomy: np.ndarray,
    settings: DTVSettings,
    anatomy_guided: bool,
    edge_region: np.ndarray | None = None,
) -> _Problem:
    device, dtype = operator.device, operator.dtype
    voxel_mm = tuple(float(v) for v in operator.fine.voxel_size)
    y_t = torch.as_tensor(np.asarray(y), dtype=dtype, device=device)
    scale = float(torch.quantile(y_t.abs().flatten().float(), 0.99))
    c = abs(np.linalg.det(operator.lr.affine[:3, :3]) / np.linalg.det(operator.fine.affine[:3, :3]))
    region = None if edge_region is None else torch.as_tensor(np.asarray(edge_region, bool), device=device)
    anatomy_t = torch.as_tensor(np.asarray(anatomy), dtype=dtype, device=device)
    xi, eta_abs = directions(anatomy_t, voxel_mm, settings.eta, region)
    gamma = settings.gamma if anatomy_guided else 0.0
    return _Problem(y_t / max(scale, 1e-30), scale, float(c), voxel_mm, xi, eta_abs, gamma)


def objective(
    image: np.ndarray,
    y: np.ndarray,
    operator: AcquisitionOperator,
    anatomy: np.ndarray,
    *,
    settings: DTVSettings = DTVSettings(),
    anatomy_guided: bool = True,
    edge_region: np.ndarray | None = None,
) -> float:
    """The dTV objective (module docstring) of ``image`` (fine grid, units of ``y``), in the solver's units.

    ``0.5 * c * ||A x - y||^2 + lambda * sum |P(xi) grad x|_eps`` with x and y divided by the 99th percentile
    of |y|: what :func:`reconstruct` minimises, to compare solutions (the lower, the closer to the minimiser).
    """
    problem = _problem(y, operator, anatomy, settings, anatomy_guided, edge_region)
    x = torch.as_tensor(np.asarray(image), dtype=operator.dtype, device=operator.device) / max(problem.scale, 1e-30)
    residual = operator.forward(x) - problem.y
    directional = problem.project(gradient(x, problem.voxel_mm))
    norm = _dot3(directional, directional)
    eps = settings.epsilon
    if eps > 0:  # Huber: |v|^2 / (2 eps) below eps, |v| - eps / 2 above
        magnitude = norm.sqrt()
        penalty = torch.where(magnitude <= eps, norm / (2 * eps), magnitude - eps / 2)
    else:
        penalty = norm.sqrt()
    return float(0.5 * problem.c * (residual * residual).sum() + settings.lam * penalty.sum())


def reconstruct(
    y: np.ndarray,
    operator: AcquisitionOperator,
    anatomy: np.ndarray,
    *,
    settings: DTVSettings = DTVSettings(),
    initial: np.ndarray | None = None,
    anatomy_guided: bool = True,
    edge_region: np.ndarray | None = None,
) -> DTVResult:
    """Solve the dTV problem for LR data ``y`` (shape ``operator.lr.shape``, any units).

    ``anatomy``: the T1 on ``operator.fine`` (any units); ``initial``: a starting image on the fine
    grid in the units of ``y`` (default A^T y normalised by A^T 1). ``anatomy_guided=False`` is plain
    isotropic TV (as gamma = 0). ``edge_region``: bool on the fine grid, where the T1's edges set eta's reference
    (:func:`edge_region`; None: everywhere). Returns the image in the units of ``y``.
    """
    started = time.perf_counter()
    device, dtype = operator.device, operator.dtype
    problem = _problem(y, operator, anatomy, settings, anatomy_guided, edge_region)
    scale, c, voxel_mm, eta_abs = problem.scale, problem.c, problem.voxel_mm, problem.eta_abs
    if scale <= 0:
        image = np.zeros(operator.fine.shape, np.float32)
        return DTVResult(image, 0, True, 0.0, time.perf_counter() - started, scale, 0.0, str(device), settings.lam)
    data = problem.y * np.sqrt(c)  # the data term 0.5 * ||sqrt(c) A x - data||^2
    project = problem.project

    norm_a = np.sqrt(c) * operator_norm(
        operator.forward, operator.adjoint, torch.zeros(operator.fine.shape, dtype=dtype, device=device)
    )
    norm_d = 2.0 * float(np.sqrt(np.sum(1.0 / np.square(voxel_mm))))  # ||P grad|| <= ||grad|| <= this bound
    a_scale, d_scale = np.sqrt(c) / norm_a, 1.0 / norm_d  # A_hat = a_scale * A, D_hat = d_scale * P grad

    def forward(x: Tensor) -> tuple[Tensor, Tensor]:
        return a_scale * operator.forward(x), d_scale * project(gradient(x, voxel_mm))

    def adjoint(p: Tensor, q: Tensor) -> Tensor:
        return a_scale * operator.adjoint(p) + d_scale * gradient_adjoint(project(q), voxel_mm)

    if initial is None:
        weight = operator.adjoint(torch.ones_like(problem.y))
        x = operator.adjoint(problem.y) / torch.clamp(weight, min=1e-6 * float(weight.max()))
    else:
        x = torch.as_tensor(np.asarray(initial), dtype=dtype, device=device) / scale
    norm_k = operator_norm(
        lambda v: torch.cat([t.flatten() for t in forward(v)]),
        lambda w: adjoint(w[: data.numel()].view(data.shape), w[data.numel() :].view((3,) + tuple(x.shape))),
        x,
    )
    tau = 0.99 * settings.step_ratio / (norm_k * 1.01)
    sigma = 0.99 / (settings.step_ratio * norm_k * 1.01)
    # sqrt(c) A = norm_a * A_hat, so the data term is (mu / 2) ||A_hat x - b||^2 with:
    mu, b = norm_a**2, data / norm_a
    bound = settings.lam / d_scale  # lambda * sum |P grad x| = (lambda / d_scale) * sum |D_hat x|
    huber = settings.epsilon * d_scale
    p = torch.zeros_like(data)
    q = x.new_zeros((3,) + tuple(x.shape))
    change, iteration, converged = float("inf"), 0, False
    previous = x.clone()
    for iteration in range(1, settings.iterations + 1):
        x_new = x - tau * adjoint(p, q)
        u, v = forward(2.0 * x_new - x)
        p = (p + sigma * u - sigma * b) / (1.0 + sigma / mu)
        q.add_(v, alpha=sigma)
        if huber > 0 and bound > 0:
            q.div_(1.0 + sigma * huber / bound)
        q.div_(_dot3(q, q).sqrt_().div_(max(bound, 1e-30)).clamp_(min=1.0))  # onto the ball of radius bound
        x = x_new
        if iteration % 10 == 0:
            change = float(torch.linalg.vector_norm(x - previous) / torch.clamp(torch.linalg.vector_norm(x), min=1e-12))
            previous = x.clone()
            if change < settings.tolerance:
                converged = True
                break
    image = (x * scale).float().cpu().numpy()
    return DTVResult(
        image, iteration, converged, change, time.perf_counter() - started, scale, eta_abs, str(device), settings.lam
    )


def super_resolve_dtv(
    asl: Volume,
    t1_on_target: np.ndarray,
    target: Grid,
    *,
    settings: DTVSettings = DTVSettings(),
    acquisition: AcquisitionModel = AcquisitionModel(),
    device: torch.device | str = "cpu",
    brain: np.ndarray | None = None,
) -> DTVResult:
    """dTV SR of ``asl`` onto ``target`` guided by the registered T1 already on ``target`` (Volume level).

    ``brain``: a brain mask on ``asl``'s grid (bool); the T1's edges within ``EDGE_MARGIN_MM`` of it set eta's
    reference (:func:`edge_region`; None: the whole grid's).

    Starts from trilinear interpolation; the result is in the ASL's units, on ``target``. A k-space
    acquisition model needs whole target voxels per ASL voxel; on any other target the reconstruction is
    made on the ASL grid subdivided by the next whole numbers (:func:`reconstruction_grid`) and averaged
    onto ``target``.
    """
    grid = reconstruction_grid(asl.grid, target, acquisition)
    t1 = t1_on_target if grid == target else resample(t1_on_target, target.affine, grid, order=1)
    operator = AcquisitionOperator(acquisition, grid, asl.grid, device=device)
    initial = resample(asl.data, asl.affine, grid, order=1)
    region = None if brain is None else edge_region(brain, asl.grid, grid)
    result = reconstruct(asl.data, operator, t1, settings=settings, initial=initial, edge_region=region)
    if grid == target:
        return result
    return replace(result, image=resample_average(result.image, grid.affine, target).astype(np.float32))


def edge_region(brain: np.ndarray, brain_grid: Grid, grid: Grid, margin_mm: float = EDGE_MARGIN_MM) -> np.ndarray:
    """The voxels of ``grid`` within ``margin_mm`` of the brain mask ``brain`` (bool, on ``brain_grid``), and at
    least within two of ``grid``'s largest voxels (on a coarse grid the T1's brain edge spreads over its voxels)."""
    inside = resample(np.asarray(brain, dtype=np.float32), brain_grid.affine, grid, order=1) > 0.5
    if not inside.any():
        return np.ones(grid.shape, bool)
    return dilate(inside, max(margin_mm, 2.0 * float(np.max(grid.voxel_size))), grid.voxel_size)


def reconstruction_grid(asl_grid: Grid, target: Grid, acquisition: AcquisitionModel) -> Grid:
    """``target``, unless a k-space model meets a target that does not split each ASL voxel into a whole
    number of its voxels: then the ASL grid with each voxel split into the next whole number above the
    zoom along each axis (3.75 mm ASL voxels and a 1.2 mm target, 3.125 per voxel: 4, voxels of 0.94 mm)."""
    if acquisition.kind != "kspace":
        return target
    zoom = zoom_between(asl_grid, target)
    if np.all(np.abs(zoom - np.round(zoom)) <= 1e-3):
        return target
    return asl_grid.zoomed(np.maximum(1.0, np.ceil(zoom - 1e-3)))


def settings_from_config(config: Config) -> tuple[DTVSettings, AcquisitionModel]:
    """The dTV settings and acquisition model of a run's configuration."""
    settings = DTVSettings(
        lam=config.dtv_lambda, gamma=config.dtv_gamma, eta=config.dtv_eta, iterations=config.dtv_iterations
    )
    return settings, AcquisitionModel.from_config(config)
