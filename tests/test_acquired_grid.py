"""An ASL stored zero-filled on a finer grid than acquired: found (sidecar, noise) and brought back exactly."""

from __future__ import annotations

import json
from pathlib import Path

import nibabel as nib
import numpy as np
import pytest
from conftest import run_error, tiny_run_args

from aslsr.acquired_grid import band_edge, crop_to_band, find_acquired_grid, zero_fill
from aslsr.cli import main
from aslsr.errors import InputError
from aslsr.grids import Grid
from aslsr.io import Volume, load_volume
from aslsr.model import Model


def noisy_head(shape=(40, 36, 30), seed=0) -> np.ndarray:
    """A bright block (the brain) in white noise of sd 1."""
    rng = np.random.default_rng(seed)
    data = rng.normal(0.0, 1.0, shape)
    data[14:26, 12:24, 10:20] += 50.0
    return data


def brain_of(shape: tuple[int, ...], factors: tuple[int, ...]) -> np.ndarray:
    brain = np.zeros(shape, bool)
    fx, fy, fz = factors
    brain[14 * fx : 26 * fx, 12 * fy : 24 * fy, 10 * fz : 20 * fz] = True
    return brain


@pytest.mark.parametrize("shape", [(10, 8, 6), (9, 7, 6)])
def test_cropping_undoes_zero_filling_and_keeps_voxel_0(shape):
    rng = np.random.default_rng(1)
    acquired = Grid(shape, np.array([[0, 0, -3.0, 10], [2.5, 0, 0, -5], [0, 2.5, 0, 7], [0, 0, 0, 1]]))
    data = rng.normal(size=shape).astype(np.float32)
    stored = zero_fill(Volume(data, acquired), (2, 2, 1))
    assert stored.grid.shape == (shape[0] * 2, shape[1] * 2, shape[2])
    np.testing.assert_allclose(stored.grid.affine, acquired.affine @ np.diag([0.5, 0.5, 1.0, 1.0]))
    np.testing.assert_allclose(stored.data[::2, ::2], data, atol=1e-5)  # the acquired samples are kept
    back = crop_to_band(stored, shape)
    np.testing.assert_allclose(back.data, data, atol=1e-5)
    np.testing.assert_allclose(back.grid.affine, acquired.affine)


def test_the_noise_spectrum_shows_where_the_stored_band_is_empty():
    data = noisy_head().astype(np.float32)
    stored = zero_fill(Volume(data, Grid(data.shape, np.diag([2.0, 2.0, 2.0, 1.0]))), (2, 2, 1))
    brain = brain_of(stored.grid.shape, (2, 2, 1))
    assert band_edge(stored, brain) == pytest.approx((0.5, 0.5, 1.0), abs=1.5 / 72)
    found = find_acquired_grid(stored, mask=brain)
    assert found.acquired_shape == (40, 36, 30) and found.source == "noise spectrum"
    assert found.acquired_voxel_mm == (2.0, 2.0, 2.0)


@pytest.mark.parametrize("window", ["none", "hann"])
def test_a_readout_that_was_not_zero_filled_is_left_as_stored(window):
    data = noisy_head()
    if window == "hann":  # a Hann-windowed k-space readout on its own grid: the noise falls to 0 at the band edge
        spectrum = np.fft.fftn(data)
        for axis, n in enumerate(data.shape):
            k = np.abs(np.fft.fftfreq(n)) / 0.5
            shape = [1, 1, 1]
            shape[axis] = n
            spectrum = spectrum * (0.5 * (1 + np.cos(np.pi * k))).reshape(shape)
        data = np.real(np.fft.ifftn(spectrum))
    volume = Volume(data.astype(np.float32), Grid(data.shape, np.eye(4)))
    assert find_acquired_grid(volume, mask=brain_of(data.shape, (1, 1, 1))) is None


def test_the_sidecar_decides_and_a_2d_readouts_slices_are_not_cropped():
    stored = Volume(np.zeros((64, 64, 20), np.float32), Grid((64, 64, 20), np.diag([1.5, 1.5, 5.0, 1.0])))
    three_d = find_acquired_grid(stored, metadata={"AcquisitionVoxelSize": [3.0, 3.0, 6.0]})
    assert three_d.acquired_shape == (32, 32, 17) and three_d.source == "sidecar AcquisitionVoxelSize"
    two_d = {"AcquisitionVoxelSize": [3.0, 3.0, 6.0], "MRAcquisitionType": "2D"}
    assert find_acquired_grid(stored, metadata=two_d).acquired_shape == (32, 32, 20)
    assert find_acquired_grid(stored, metadata={"AcquisitionVoxelSize": [1.5, 1.5, 5.0]}) is None
    with pytest.raises(InputError, match="asl.json: AcquisitionVoxelSize must be three positive numbers"):
        find_acquired_grid(stored, metadata={"AcquisitionVoxelSize": [3.0, "x"]}, sidecar="asl.json")


def test_a_run_on_a_zero_filled_asl_works_on_the_acquired_grid(tiny_case, tmp_path):
    """The tiny LR (15 x 15 x 10 mm) and its M0 stored zero-filled at 7.5 x 7.5 x 10 mm with a sidecar, a mask on
    that grid: the run brings all three back, models a k-space readout, and its dTV is the one of the LR as
    acquired told the same."""
    for role in ("asl_lr", "m0_lr"):
        filled = zero_fill(load_volume(tiny_case[role]), (2, 2, 1))
        nib.save(nib.Nifti1Image(filled.data, filled.affine), tmp_path / f"{role}_zf.nii.gz")
    mask = nib.load(tiny_case["mask_lr"])
    doubled = np.repeat(np.repeat(np.asarray(mask.dataobj), 2, axis=0), 2, axis=1)
    nib.save(nib.Nifti1Image(doubled, mask.affine @ np.diag([0.5, 0.5, 1, 1])), tmp_path / "mask_zf.nii.gz")
    voxel = [float(v) for v in load_volume(tiny_case["asl_lr"]).grid.voxel_size]
    (tmp_path / "asl_lr_zf.json").write_text(json.dumps({"AcquisitionVoxelSize": voxel}))
    common = ["--like", tiny_case["asl_nr"], "--method", "dtv"]
    stored = ["--m0", str(tmp_path / "m0_lr_zf.nii.gz"), "--mask", str(tmp_path / "mask_zf.nii.gz")]
    stored = [*common, *stored, "--acquisition", "auto"]
    assert main(tiny_run_args(tiny_case, tmp_path / "zf", *stored, asl=str(tmp_path / "asl_lr_zf.nii.gz"))) == 0
    told = [*common, "--m0", tiny_case["m0_lr"], "--mask", tiny_case["mask_lr"], "--acquisition", "kspace"]
    assert main(tiny_run_args(tiny_case, tmp_path / "lr", *told)) == 0
    report = json.loads((tmp_path / "zf" / "report.json").read_text())
    assert report["asl"]["acquired_grid"]["acquired_shape"] == list(load_volume(tiny_case["asl_lr"]).grid.shape)
    assert report["config"]["acquisition"] == "kspace" and report["config"]["acquisition_window"] == "none"
    masks = (load_volume(tmp_path / run / "mask.nii.gz", allow_constant=True).data for run in ("zf", "lr"))
    np.testing.assert_array_equal(*masks)
    zf, lr = (load_volume(tmp_path / run / "dtv.nii.gz").data for run in ("zf", "lr"))
    np.testing.assert_allclose(zf, lr, atol=1e-3 * float(np.abs(lr).max()))
    # the interpolation baselines start from the image as stored (what a user would interpolate)
    spline = load_volume(tmp_path / "zf" / "spline.nii.gz").data
    assert not np.allclose(spline, load_volume(tmp_path / "lr" / "spline.nii.gz").data)


def test_a_stated_acquisition_keeps_the_stored_grid_in_the_run_and_in_generate(tiny_case, tmp_path):
    """A run told the acquisition model (as the paper preset is) works on the grid as stored, and its model file
    makes ``aslsr generate`` do the same: the same inputs give the run's SR."""
    image = load_volume(tiny_case["asl_lr"])
    filled = zero_fill(image, (2, 2, 1))
    nib.save(nib.Nifti1Image(filled.data, filled.affine), tmp_path / "asl.nii.gz")
    voxel = [float(v) for v in image.grid.voxel_size]
    (tmp_path / "asl.json").write_text(json.dumps({"AcquisitionVoxelSize": voxel}))
    args = tiny_run_args(tiny_case, tmp_path / "out", "--acquisition", "box", asl=str(tmp_path / "asl.nii.gz"))
    assert main([*args, "--zoom", "2"]) == 0
    report = json.loads((tmp_path / "out" / "report.json").read_text())
    assert "acquired_grid" not in report["asl"]
    assert Model.load(tmp_path / "out" / "model.pt").finds_acquired_grid is False
    generate = ["generate", "--model", str(tmp_path / "out" / "model.pt"), "--asl", str(tmp_path / "asl.nii.gz")]
    generate += ["--t1", tiny_case["t1w"], "--zoom", "2", "--out", str(tmp_path / "again.nii.gz")]
    assert main(generate) == 0
    again, written = (load_volume(tmp_path / name).data for name in ("again.nii.gz", "out/sr.nii.gz"))
    np.testing.assert_allclose(again, written, rtol=0, atol=1e-5)


@pytest.mark.parametrize(
    "voxel, fragment",
    [
        ([3.0, "x"], "AcquisitionVoxelSize must be three positive numbers (mm), not [3.0, 'x']"),
        ([60.0, 60.0, 10.0], "the ASL's acquired grid has shape (4, 3, 12) (sidecar AcquisitionVoxelSize)"),
    ],
    ids=["not-numbers", "too-coarse"],
)
def test_run_refuses_a_sidecar_acquisition_voxel_size_it_cannot_use(tiny_case, tmp_path, capsys, voxel, fragment):
    asl = tmp_path / "in" / "asl.nii.gz"
    asl.parent.mkdir()
    asl.write_bytes(Path(tiny_case["asl_lr"]).read_bytes())
    sidecar = asl.with_name("asl.json")
    sidecar.write_text(json.dumps({"AcquisitionVoxelSize": voxel}))
    run_error(capsys, tiny_case, tmp_path, str(sidecar), fragment, asl=str(asl), extra=["--acquisition", "auto"])
