"""QC and comparison figures: world orientation of slices, valid non-blank PNGs, atomic writes."""

from __future__ import annotations

import numpy as np
import pytest
from matplotlib.image import imread

from aslsr.figure_comparison import comparison_figure
from aslsr.figure_qc import _cumulative_iterations, qc_figure
from aslsr.figure_slices import slice_axis, slice_view
from aslsr.grids import Grid, reorient, resample, rigid_matrix
from aslsr.io import Volume

VOXEL = (2.0, 1.5, 3.0)
ORIENTATIONS = {
    "RAS": ((False, False, False), (0, 1, 2)),
    "LAS": ((True, False, False), (0, 1, 2)),
    "LPS": ((True, True, False), (0, 1, 2)),
    "PSL (permuted)": ((True, False, True), (1, 2, 0)),
}


def _ras_grid(shape: tuple[int, int, int] = (10, 12, 8), voxel: tuple[float, ...] = VOXEL) -> Grid:
    affine = np.diag([*voxel, 1.0])
    affine[:3, 3] = -(np.array(shape) - 1) / 2 * np.array(voxel)
    return Grid(shape, affine)


def _marker_volume(grid: Grid) -> tuple[np.ndarray, np.ndarray]:
    """A volume with a block in the right-anterior-superior corner, and the block's world centre."""
    data = np.zeros(grid.shape, dtype=np.float32)
    data[-3:, -3:, -2:] = 1.0
    data[0, 0, 0] = 0.5  # a second, asymmetric feature (left-posterior-inferior corner)
    centre = grid.index_to_world(np.array(grid.shape) - 2)
    return data, centre


@pytest.mark.parametrize("view", ["axial", "coronal", "sagittal"])
def test_slice_view_puts_right_anterior_superior_top_right_in_every_orientation(view):
    grid = _ras_grid()
    data, marker = _marker_volume(grid)
    expected_aspect = {"axial": VOXEL[1] / VOXEL[0], "coronal": VOXEL[2] / VOXEL[0], "sagittal": VOXEL[2] / VOXEL[1]}[
        view
    ]
    reference = None
    for name, (flips, permutation) in ORIENTATIONS.items():
        stored, stored_grid = reorient(data, grid, flips=flips, permutation=permutation)
        axis = slice_axis(stored_grid, view)
        index = int(round(stored_grid.world_to_index(marker)[axis]))
        plane, aspect = slice_view(stored, stored_grid, view, index)
        assert aspect == pytest.approx(expected_aspect), name
        rows, columns = np.nonzero(plane == 1.0)
        assert rows.size > 0, name
        assert rows.max() < plane.shape[0] / 2, f"{name}: marker not at the top of the {view} view"
        assert columns.min() > plane.shape[1] / 2, f"{name}: marker not on the right of the {view} view"
        if reference is None:
            reference = plane
        np.testing.assert_array_equal(plane, reference, err_msg=f"{name} {view} differs from RAS")


def test_slice_view_oblique_grid_and_errors():
    grid = _ras_grid()
    tilted = Grid(grid.shape, rigid_matrix((12.0, -8.0, 15.0), (0, 0, 0)) @ grid.affine)
    assert [slice_axis(tilted, view) for view in ("sagittal", "coronal", "axial")] == [0, 1, 2]
    plane, _ = slice_view(np.zeros(grid.shape), tilted, "axial")
    assert plane.shape == (grid.shape[1], grid.shape[0])
    with pytest.raises(ValueError, match="view"):
        slice_view(np.zeros(grid.shape), grid, "transverse")
    with pytest.raises(ValueError, match="outside"):
        slice_view(np.zeros(grid.shape), grid, "axial", grid.shape[2])
    with pytest.raises(ValueError, match="shape"):
        slice_view(np.zeros((3, 3, 3)), grid, "axial")


def _phantom(seed: int = 0):
    """An ellipsoidal 'brain' with a bright cortical ribbon and ventricles, on an LPS target grid."""
    rng = np.random.default_rng(seed)
    grid = _ras_grid((36, 44, 30), (2.0, 2.0, 2.5))
    xyz = grid.index_to_world(np.stack(np.indices(grid.shape), axis=-1))
    radius = np.sqrt(((xyz / np.array([30.0, 38.0, 30.0])) ** 2).sum(axis=-1))
    mask = radius < 1.0
    cbf = np.where(mask, 20.0, 0.0) + np.where(mask & (radius > 0.8), 40.0, 0.0)
    cbf[(np.abs(xyz[..., 0]) < 6) & (np.abs(xyz[..., 1]) < 12) & (np.abs(xyz[..., 2]) < 8)] = 5.0
    t1 = np.where(mask, np.where(radius > 0.8, 600.0, 900.0), 0.0) + rng.normal(0, 10, grid.shape)
    arrays = [cbf + rng.normal(0, 3, grid.shape), t1, mask.astype(np.uint8)]
    flips = (True, True, False)
    out = [reorient(a.astype(np.float32), grid, flips=flips)[0] for a in arrays]
    target = reorient(arrays[0], grid, flips=flips)[1]
    lr_grid = target.zoomed((0.5, 0.5, 1.0))
    lr = Volume(resample(out[0], target.affine, lr_grid, order=1), lr_grid)
    return lr, out[0], out[1], out[2], target


def _history() -> list[dict]:
    rows = []
    for scale, iterations in ((0, 40), (1, 60)):
        for iteration in range(0, iterations, 5):
            row = {
                "scale": scale,
                "iteration": iteration,
                "seconds": 0.1 * iteration,
                "mse": 1.0 / (1 + iteration),
                "lowpass": 0.1 / (1 + iteration),
                "adv_g": -0.2,
            }
            if iteration % 10 == 0:
                row.update(loss_d=-0.5, gp=0.01, validation=2.0 / (1 + iteration), validation_ema=2.1 / (1 + iteration))
            rows.append(row)
    return rows


def _check_png(path, min_width: int) -> None:
    image = imread(str(path))
    assert image.ndim == 3 and image.shape[2] in (3, 4)
    assert image.shape[1] >= min_width and image.shape[0] > 200
    assert float(image[..., :3].std()) > 0.05  # not blank
    assert not [p for p in path.parent.iterdir() if p.name.startswith(".")]  # no temporary file left


@pytest.mark.parametrize("history", [[], _history()], ids=["empty-history", "two-scales"])
def test_qc_figure_writes_a_png(tmp_path, history):
    lr, sr, t1, mask, grid = _phantom()
    linear = resample(lr.data, lr.affine, grid, order=1)
    spline = resample(lr.data, lr.affine, grid, order=3)
    out = qc_figure(
        tmp_path / "qc.png", lr=lr, linear=linear, spline=spline, sr=sr, t1=t1, mask=mask, grid=grid, history=history
    )
    assert out == tmp_path / "qc.png"
    _check_png(out, min_width=1500)


def test_the_loss_panel_shows_the_held_out_loss_that_picks_the_weights_and_the_training_length():
    import matplotlib.pyplot as plt

    from aslsr.figure_qc import _plot_losses

    figure, (recon, adversarial) = plt.subplots(1, 2)
    _plot_losses(recon, adversarial, _history())
    labels = [text.get_text() for text in recon.get_legend().get_texts()]
    plt.close(figure)
    assert labels == ["mse", "lowpass", "gp", "held-out loss (live)", "held-out loss (average)"]
    without_critic = [{k: v for k, v in row.items() if k not in ("adv_g", "loss_d", "gp")} for row in _history()]
    figure, recon = plt.subplots(1, 1)
    _plot_losses(recon, None, without_critic)  # a run without a critic: one loss panel
    labels = [text.get_text() for text in recon.get_legend().get_texts()]
    plt.close(figure)
    assert labels == ["mse", "lowpass", "held-out loss (live)", "held-out loss (average)"]


def test_qc_figure_survives_an_empty_mask_and_rejects_wrong_shapes(tmp_path):
    lr, sr, t1, mask, grid = _phantom()
    linear = resample(lr.data, lr.affine, grid, order=1)
    qc_figure(
        tmp_path / "qc.png",
        lr=lr,
        linear=linear,
        spline=linear,
        sr=sr,
        t1=t1,
        mask=np.zeros_like(mask),
        grid=grid,
        history=[{"scale": 0, "mse": 0.1}],
    )
    _check_png(tmp_path / "qc.png", min_width=1500)
    with pytest.raises(ValueError, match="SR"):
        qc_figure(
            tmp_path / "bad.png",
            lr=lr,
            linear=linear,
            spline=linear,
            sr=sr[1:],
            t1=t1,
            mask=mask,
            grid=grid,
            history=[],
        )


def test_comparison_figure(tmp_path):
    lr, sr, t1, mask, grid = _phantom()
    panels = [
        ("NR", sr),
        ("HR", sr * 0.9),
        ("nearest", resample(lr.data, lr.affine, grid, order=0)),
        ("linear", resample(lr.data, lr.affine, grid, order=1)),
        ("proposed", sr),
    ]
    rows = [["NR", "HR"], ["nearest", "linear", "proposed"]]
    for view in ("axial", "coronal", "sagittal"):
        path = comparison_figure(
            tmp_path / f"{view}.png", panels=panels, grid=grid, view=view, rows=rows, title=f"{view} comparison"
        )
        _check_png(path, min_width=800)
    comparison_figure(
        tmp_path / "masked.png", panels=panels, grid=grid, view="axial", mask=mask, window=(0.0, 60.0), slice_index=3
    )
    _check_png(tmp_path / "masked.png", min_width=1500)
    with pytest.raises(ValueError, match="unknown"):
        comparison_figure(tmp_path / "bad.png", panels=panels, grid=grid, view="axial", rows=[["NR", "GT"]])


def test_cumulative_iterations_across_scales():
    x, starts = _cumulative_iterations(_history())
    assert starts == [(0, 0.0), (1, 36.0)]  # scale 0 logged up to iteration 35
    assert x[0] == 0 and x[-1] == 36 + 55
    assert np.all(np.diff(x) > 0)
