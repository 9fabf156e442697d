"""Directional TV reconstruction: operators, the plain-TV limit, data consistency, recovery, `run --method dtv`."""

import json

import numpy as np
import pytest
import torch
from conftest import tiny_run_args
from skimage.restoration import denoise_tv_chambolle

from aslsr import dtv, metrics
from aslsr.acquisition import AcquisitionModel, AcquisitionOperator
from aslsr.cli import main
from aslsr.grids import Grid, resample, resample_average
from aslsr.io import Volume, load_volume

VOXEL = (1.0, 1.5, 2.0)


@pytest.fixture(autouse=True)
def one_thread():
    """Tiny tensors: one torch thread is fastest (and not slowed down by a busy machine)."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def _blocks(shape: tuple[int, int, int]) -> np.ndarray:
    """A piecewise-constant label image: background 0, two boxes 1 and 2, a ball 3."""
    labels = np.zeros(shape, dtype=int)
    i, j, k = np.indices(shape)
    labels[3:-3, 3:-3, 2:-2] = 1
    labels[6:14, 5:12, 3:9] = 2
    labels[(i - 20) ** 2 + (j - 16) ** 2 + ((k - 6) * 1.3) ** 2 < 30] = 3
    return labels


def test_gradient_adjoint_is_the_exact_transpose():
    rng = np.random.default_rng(0)
    x = torch.as_tensor(rng.standard_normal((7, 6, 5)))
    v = torch.as_tensor(rng.standard_normal((3, 7, 6, 5)))
    left = float((dtv.gradient(x, VOXEL) * v).sum())
    assert left == pytest.approx(float((x * dtv.gradient_adjoint(v, VOXEL)).sum()), rel=1e-12)


def test_gamma_zero_is_plain_isotropic_tv():
    """With A = identity and gamma 0, dTV is TV denoising (ROF); checked against scikit-image's
    independent Chambolle solver, which minimises 0.5 ||u - f||^2 + weight * TV(u) on 1 mm voxels."""
    rng = np.random.default_rng(0)
    grid = Grid((16, 14, 12), np.eye(4))
    truth = _blocks(grid.shape).astype(float)
    noisy = truth + 0.4 * rng.standard_normal(grid.shape)
    anatomy = rng.random(grid.shape)  # informative or not, gamma 0 must ignore it
    operator = AcquisitionOperator(AcquisitionModel(), grid, grid, dtype=torch.float64)
    settings = dtv.DTVSettings(lam=0.05, gamma=0.0, iterations=4000, tolerance=1e-8)
    ours = dtv.reconstruct(noisy, operator, anatomy, settings=settings).image
    scale = float(np.quantile(np.abs(noisy), 0.99))
    reference = denoise_tv_chambolle(noisy / scale, weight=0.05, eps=1e-9, max_num_iter=8000) * scale
    assert np.abs(ours - reference).max() < 0.01 * np.abs(noisy - reference).max()
    guided = dtv.reconstruct(noisy, operator, truth, settings=dtv.DTVSettings(lam=0.05, gamma=0.9)).image
    assert np.abs(guided - reference).max() > 0.05 * np.abs(noisy - reference).max()


def test_small_lambda_reproduces_the_lr_data():
    """lambda -> 0: the SR averaged onto the LR grid (grids.resample_average) gives back the LR."""
    rng = np.random.default_rng(1)
    fine = Grid((24, 20, 12), np.diag([1.5, 1.5, 2.0, 1.0]))
    lr = fine.with_voxel_size((3.0, 3.0, 4.0))
    y = rng.random(lr.shape).astype(np.float32)
    operator = AcquisitionOperator(AcquisitionModel(), fine, lr)
    anatomy = _blocks(fine.shape).astype(np.float32)
    result = dtv.reconstruct(y, operator, anatomy, settings=dtv.DTVSettings(lam=1e-6, iterations=3000, tolerance=1e-7))
    back = resample_average(result.image, fine.affine, lr)
    assert np.sqrt(np.mean((back - y) ** 2)) < 2e-3 * np.sqrt(np.mean(y**2))
    spline = resample(y, lr.affine, fine, order=3)
    assert np.sqrt(np.mean((resample_average(spline, fine.affine, lr) - y) ** 2)) > 0.05


def test_the_default_step_ratio_reaches_the_minimum_of_the_objective_sooner():
    """The step ratio changes the path, not the minimiser: ratio 1 (equal steps) after 20000 iterations and the
    default ratio after 3000 end at one objective value, below that of small perturbations of the solution; after
    the same 2000 iterations the default is the closer to it (float64, a 2x zoom with the T1's edges)."""
    rng = np.random.default_rng(2)
    fine = Grid((24, 20, 12), np.diag([1.5, 1.5, 2.0, 1.0]))
    lr = fine.with_voxel_size((3.0, 3.0, 4.0))
    anatomy = _blocks(fine.shape).astype(float)
    operator = AcquisitionOperator(AcquisitionModel(), fine, lr, dtype=torch.float64)
    y = operator.apply(anatomy) + 0.1 * rng.standard_normal(lr.shape)
    initial = resample(y, lr.affine, fine, order=1)

    def solve(ratio: float, iterations: int) -> tuple[np.ndarray, float]:
        settings = dtv.DTVSettings(step_ratio=ratio, iterations=iterations, tolerance=0.0)
        image = dtv.reconstruct(y, operator, anatomy, settings=settings, initial=initial).image.astype(float)
        return image, dtv.objective(image, y, operator, anatomy, settings=settings)

    assert dtv.DTVSettings().step_ratio < 1.0
    image, minimum = solve(dtv.DTVSettings().step_ratio, 3000)
    assert solve(1.0, 20000)[1] == pytest.approx(minimum, rel=3e-5)
    for _ in range(3):
        assert dtv.objective(image + 0.02 * rng.standard_normal(image.shape), y, operator, anatomy) > minimum
    equal_steps, default = solve(1.0, 2000)[1], solve(dtv.DTVSettings().step_ratio, 2000)[1]
    assert default - minimum < 0.1 * (equal_steps - minimum)
    assert dtv.objective(initial, y, operator, anatomy) > 1.1 * minimum


@pytest.mark.parametrize("kind", ["box", "kspace"])
def test_edges_shared_with_the_t1_are_recovered_better_than_by_interpolation(kind):
    """Piecewise-constant CBF whose edges are the T1's edges (other contrasts), acquired with
    ``kind`` and noise: dTV with the default setting beats linear interpolation clearly."""
    rng = np.random.default_rng(2)
    fine = Grid((28, 24, 12), np.diag([1.5, 1.5, 2.0, 1.0]))
    lr = fine.with_voxel_size((3.0, 3.0, 4.0))
    labels = _blocks(fine.shape)
    truth = np.array([0.0, 40.0, 70.0, 20.0])[labels]
    t1 = np.array([50.0, 120.0, 80.0, 160.0])[labels] + 2.0 * rng.standard_normal(fine.shape)
    acquisition = AcquisitionModel(kind=kind)
    operator = AcquisitionOperator(acquisition, fine, lr)
    asl = Volume((operator.apply(truth) + 2.0 * rng.standard_normal(lr.shape)).astype(np.float32), lr)
    result = dtv.super_resolve_dtv(asl, t1, fine, acquisition=acquisition)
    assert result.image.shape == fine.shape and result.converged
    linear = resample(asl.data, asl.affine, fine, order=1)
    assert metrics.psnr(truth, result.image) > metrics.psnr(truth, linear) + 3.0


def test_a_kspace_model_on_a_target_that_does_not_divide_the_asl_voxels_reconstructs_on_whole_subdivisions():
    """3 mm ASL voxels, a 1.2 mm target (2.5 per voxel): dTV runs on the 1 mm grid (3 per voxel) and is
    averaged onto the target, so it equals the 1 mm reconstruction averaged there."""
    rng = np.random.default_rng(5)
    lr = Grid((8, 8, 6), np.diag([3.0, 3.0, 3.0, 1.0]))
    whole, target = lr.zoomed(3.0), lr.with_voxel_size((1.2, 1.2, 1.2))
    labels = _blocks(whole.shape)
    truth = np.array([0.0, 40.0, 70.0, 20.0])[labels]
    acquisition = AcquisitionModel(kind="kspace")
    asl = Volume(AcquisitionOperator(acquisition, whole, lr).apply(truth) + rng.standard_normal(lr.shape), lr)
    t1 = np.array([50.0, 120.0, 80.0, 160.0])[labels].astype(np.float32)
    t1_on_target = resample_average(t1, whole.affine, target)
    settings = dtv.DTVSettings(iterations=60, tolerance=0.0)
    assert dtv.reconstruction_grid(lr, target, acquisition) == whole
    assert dtv.reconstruction_grid(lr, target, AcquisitionModel(kind="box")) == target
    result = dtv.super_resolve_dtv(asl, t1_on_target, target, settings=settings, acquisition=acquisition)
    on_whole = dtv.super_resolve_dtv(
        asl, resample(t1_on_target, target.affine, whole, order=1), whole, settings=settings, acquisition=acquisition
    )
    assert result.image.shape == target.shape
    np.testing.assert_allclose(result.image, resample_average(on_whole.image, whole.affine, target), atol=1e-4)


def test_plain_tv_is_worse_than_dtv_where_the_t1_knows_the_edges():
    rng = np.random.default_rng(3)
    fine = Grid((28, 24, 12), np.diag([1.5, 1.5, 2.0, 1.0]))
    lr = fine.with_voxel_size((3.0, 3.0, 4.0))
    labels = _blocks(fine.shape)
    truth = np.array([0.0, 40.0, 70.0, 20.0])[labels]
    operator = AcquisitionOperator(AcquisitionModel(), fine, lr)
    y = operator.apply(truth) + 2.0 * rng.standard_normal(lr.shape)
    guided = dtv.reconstruct(y, operator, labels.astype(float)).image
    plain = dtv.reconstruct(y, operator, labels.astype(float), anatomy_guided=False).image
    assert metrics.psnr(truth, guided) > metrics.psnr(truth, plain) + 1.0


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_cuda_agrees_with_the_cpu():
    fine = Grid((20, 16, 12), np.eye(4))
    lr = fine.with_voxel_size(2.0)
    y = np.random.default_rng(4).random(lr.shape).astype(np.float32)
    anatomy = _blocks(fine.shape).astype(np.float32)
    settings = dtv.DTVSettings(iterations=200, tolerance=0.0)
    results = [
        dtv.reconstruct(
            y, AcquisitionOperator(AcquisitionModel(), fine, lr, device=device), anatomy, settings=settings
        ).image
        for device in ("cpu", "cuda")
    ]
    assert np.abs(results[0] - results[1]).max() < 1e-3 * np.abs(results[0]).max()


def test_run_method_dtv_end_to_end(tiny_case, tmp_path):
    out = tmp_path / "out"
    code = main(tiny_run_args(tiny_case, out, "--method", "dtv", full=True))
    assert code == 0
    reference = load_volume(tiny_case["asl_nr"]).grid
    sr = load_volume(out / "sr.nii.gz")
    assert sr.grid == reference and np.allclose(sr.affine, reference.affine, atol=1e-5)
    np.testing.assert_array_equal(sr.data, load_volume(out / "dtv.nii.gz").data)
    assert not (out / "model.pt").exists()
    report = json.loads((out / "report.json").read_text())
    assert report["method"] == "dtv" and report["model"] is None and "model.pt" not in report["outputs"]
    assert report["dtv"]["iterations"] > 0 and report["timings"]["dtv_s"] > 0
    assert set(report["outputs"]) <= {p.name for p in out.iterdir()}
    clean = load_volume(tiny_case["ref_clean"]).data
    spline = load_volume(out / "spline.nii.gz").data
    assert metrics.psnr(clean, sr.data) > metrics.psnr(clean, spline)
    assert "dtv" in (out / "report.html").read_text().lower()


def test_a_scalp_beyond_the_brain_does_not_raise_the_edge_threshold():
    """A skull-stripped T1 and the same T1 with a bright shell (a scalp) 8-12 mm outside its brain: given the brain
    mask, eta's reference is the skull-stripped T1's in both (the whole grid's without one, as before), and so are
    the directions xi inside the brain."""
    fine = Grid((40, 40, 30), np.diag([1.0, 1.0, 1.0, 1.0]))
    lr = fine.with_voxel_size((2.0, 2.0, 2.0))
    i, j, k = np.indices(fine.shape)
    radius = np.sqrt((i - 19.5) ** 2 + (j - 19.5) ** 2 + ((k - 14.5) * 1.3) ** 2)
    brain = radius < 8
    stripped = np.where(brain, 100.0 + 40.0 * (radius < 4), 0.0)
    with_scalp = stripped + 150.0 * ((radius >= 16) & (radius < 20))
    brain_lr = resample_average(brain.astype(np.float32), fine.affine, lr) > 0.5
    region = dtv.edge_region(brain_lr, lr, fine)
    assert region[brain].all() and not region[radius >= 16].any()

    def eta_and_xi(t1, edge_region=None):
        anatomy = torch.as_tensor(t1, dtype=torch.float32)
        mask = None if edge_region is None else torch.as_tensor(edge_region)
        xi, eta_abs = dtv.directions(anatomy, tuple(fine.voxel_size), 0.1, mask)
        return eta_abs, xi.numpy()

    eta_stripped, xi_stripped = eta_and_xi(stripped)
    assert eta_and_xi(stripped, region)[0] == pytest.approx(eta_stripped)  # every edge lies within the region
    assert eta_and_xi(with_scalp)[0] > 1.2 * eta_stripped  # the scalp's edges, counted over the whole grid
    eta_head, xi_head = eta_and_xi(with_scalp, region)
    assert eta_head == pytest.approx(eta_stripped)
    np.testing.assert_allclose(xi_head[:, brain], xi_stripped[:, brain], atol=1e-6)
