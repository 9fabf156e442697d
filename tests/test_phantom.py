"""Tests of the digital phantom (``aslsr.phantom``) and ``aslsr simulate``.

Most cases use a coarse NR grid (64 x 48 x 24 at 3.75 x 3.75 x 5 mm, same field of view as the
default) and a 2 mm T1; one end-to-end CLI run uses the full default size.
"""

from __future__ import annotations

import json
import time
from pathlib import Path

import nibabel as nib
import numpy as np
import pytest
from conftest import tiny_simulate_options

from aslsr import cli, phantom
from aslsr.errors import InputError
from aslsr.grids import Grid, reorient, resample, resample_average, rigid_matrix
from aslsr.io import load_volume

SMALL = dict(nr_shape=(64, 48, 24), nr_voxel_size=(3.75, 3.75, 5.0), t1_voxel_size=2.0)
NR_ROLES = ("asl_nr", "ref_hr", "ref_clean", "m0", "mask")
LR_ROLES = ("asl_lr", "m0_lr", "mask_lr")


def _simulate(factory, name: str, **options) -> dict:
    return phantom.simulate(factory.mktemp(name), phantom.PhantomConfig(**{**SMALL, **options}))


@pytest.fixture(scope="module")
def lesion_case(tmp_path_factory) -> dict:
    return _simulate(tmp_path_factory, "lesion", seed=3, lesion=True)


@pytest.fixture(scope="module")
def plain_case(tmp_path_factory) -> dict:
    return _simulate(tmp_path_factory, "plain", seed=3, lesion=False)


def _load(case: dict, role: str):
    return load_volume(case["files"][role]["path"], allow_constant=True)


def _mni_grid() -> Grid:
    return phantom.load_anatomy().grid


def test_files_shapes_and_affines(lesion_case):
    case = lesion_case
    assert set(case["files"]) == {
        "asl_lr",
        "asl_nr",
        "ref_hr",
        "ref_clean",
        "truth_1mm",
        "m0",
        "m0_lr",
        "mask",
        "mask_lr",
        "t1w",
        "lesion",
        "lesion_lr",
    }
    stored = json.loads((Path(case["files"]["asl_nr"]["path"]).parent / "case.json").read_text())
    assert stored["files"]["asl_nr"]["path"] == "asl_nr.nii.gz" and stored["units"] == "ml/100g/min"
    nr = _load(case, "asl_nr").grid
    assert nr.shape == (64, 48, 24)
    assert np.allclose(nr.affine[:3, :3], np.diag([3.75, 3.75, 5.0]))
    assert abs(nr.center[0]) < 1e-9  # midline: flipping axis i mirrors the hemispheres
    lr = nr.with_voxel_size((7.5, 7.5, 5.0))
    assert lr.shape == (32, 24, 24)
    for role in NR_ROLES + ("lesion",):
        assert _load(case, role).grid == nr, role
    for role in LR_ROLES + ("lesion_lr",):
        assert _load(case, role).grid == lr, role
    fine = _load(case, "truth_1mm").grid
    assert fine == nr.with_voxel_size(1.0) and fine.shape == (240, 180, 120)
    for role in ("mask", "mask_lr", "lesion", "lesion_lr"):
        image = nib.load(case["files"][role]["path"])
        assert image.get_data_dtype() == np.uint8
        assert set(np.unique(np.asarray(image.dataobj))) <= {0, 1}
    assert _load(case, "mask").data.mean() > 0.2


def test_lr_is_in_plane_block_average(lesion_case):
    for nr_role, lr_role in (("asl_nr", "asl_lr"), ("m0", "m0_lr")):
        nr = _load(lesion_case, nr_role).data
        expected = nr.reshape(32, 2, 24, 2, 24).mean(axis=(1, 3))
        np.testing.assert_allclose(_load(lesion_case, lr_role).data, expected, rtol=1e-5, atol=1e-3)


def test_noise_follows_number_of_averages(lesion_case):
    clean = _load(lesion_case, "ref_clean").data
    noise_nr = _load(lesion_case, "asl_nr").data - clean
    noise_hr = _load(lesion_case, "ref_hr").data - clean
    assert lesion_case["noise_sd_nr"] == 6.0
    assert abs(lesion_case["noise_sd_hr"] - 6.0 / np.sqrt(8)) < 1e-9
    assert abs(noise_nr.std() / 6.0 - 1) < 0.03
    assert abs(noise_hr.std() / (6.0 / np.sqrt(8)) - 1) < 0.03
    assert abs(noise_nr.mean()) < 0.2 and abs(np.corrcoef(noise_nr.ravel(), noise_hr.ravel())[0, 1]) < 0.05


def test_cbf_values_are_physiological(plain_case):
    anatomy = phantom.load_anatomy()
    truth = _load(plain_case, "truth_1mm")
    gm = resample_average(anatomy.gm, anatomy.grid.affine, truth.grid)
    wm = resample_average(anatomy.wm, anatomy.grid.affine, truth.grid)
    assert 45 < truth.data[gm > 0.9].mean() < 75 and 14 < truth.data[wm > 0.9].mean() < 26
    assert truth.data.min() >= 0 and truth.data.max() < 60 * 1.16
    # ref_clean is the voxel average of the same truth
    clean = _load(plain_case, "ref_clean")
    averaged = resample_average(truth.data, truth.grid.affine, clean.grid)
    assert np.corrcoef(averaged.ravel(), clean.data.ravel())[0, 1] > 0.99


def test_lesion_invisible_on_t1_and_visible_in_cbf(lesion_case, plain_case):
    t1_lesion = nib.load(lesion_case["files"]["t1w"]["path"])
    t1_plain = nib.load(plain_case["files"]["t1w"]["path"])
    assert np.array_equal(np.asarray(t1_lesion.dataobj), np.asarray(t1_plain.dataobj))
    assert np.array_equal(t1_lesion.affine, t1_plain.affine)
    roi = _load(lesion_case, "lesion").data > 0
    mask = _load(lesion_case, "mask").data > 0
    assert roi.sum() >= 20 and np.all(mask[roi])
    x = _load(lesion_case, "lesion").grid.index_to_world(np.argwhere(roi))[:, 0]
    assert np.all(np.abs(x) > 15) and len(np.unique(np.sign(x))) == 1  # one hemisphere
    mirror = roi[::-1] & mask & ~roi
    ratio = {
        name: case_["ref_clean"][roi].mean() / case_["ref_clean"][mirror].mean()
        for name, case_ in (
            ("lesion", {"ref_clean": _load(lesion_case, "ref_clean").data}),
            ("plain", {"ref_clean": _load(plain_case, "ref_clean").data}),
        )
    }
    assert ratio["lesion"] < 0.7 and ratio["plain"] > 0.75
    assert ratio["lesion"] < 0.75 * ratio["plain"]
    assert (_load(lesion_case, "lesion_lr").data > 0).sum() >= 5
    assert "lesion" not in plain_case["files"]


def test_motion_matches_t1_affine(lesion_case):
    motion = lesion_case["t1_motion"]
    matrix = np.array(motion["matrix"])
    assert np.all(np.abs(motion["rotation_deg"]) <= 5.0) and np.all(np.abs(motion["translation_mm"]) <= 5.0)
    np.testing.assert_allclose(
        rigid_matrix(motion["rotation_deg"], motion["translation_mm"], motion["center_mm"]), matrix, atol=1e-12
    )
    t1 = nib.load(lesion_case["files"]["t1w"]["path"])
    expected = matrix @ _mni_grid().with_voxel_size(2.0).affine
    np.testing.assert_allclose(t1.affine, expected, atol=1e-4)
    assert np.linalg.norm(matrix[:3, :3] - np.eye(3)) > 1e-3  # it did move


def test_same_seed_identical_other_seed_differs(lesion_case, tmp_path_factory):
    again = _simulate(tmp_path_factory, "again", seed=3, lesion=True)
    for role, entry in lesion_case["files"].items():
        first = np.asarray(nib.load(entry["path"]).dataobj)
        second = np.asarray(nib.load(again["files"][role]["path"]).dataobj)
        assert np.array_equal(first, second), role
    assert again["t1_motion"] == lesion_case["t1_motion"]
    other = phantom.simulate_t1(phantom.PhantomConfig(**{**SMALL, "seed": 4}), phantom.load_anatomy())[2]
    assert not np.allclose(other["matrix"], lesion_case["t1_motion"]["matrix"])
    assert not np.allclose(other["rotation_deg"], lesion_case["t1_motion"]["rotation_deg"])


@pytest.mark.parametrize("orientation", ["LAS", "LPS"])
def test_t1_orientation_keeps_world_content(plain_case, orientation):
    ras = load_volume(plain_case["files"]["t1w"]["path"])
    data, grid, motion = phantom.simulate_t1(
        phantom.PhantomConfig(**{**SMALL, "seed": 3, "t1_orientation": orientation}), phantom.load_anatomy()
    )
    assert motion == plain_case["t1_motion"]
    assert not np.allclose(grid.affine, ras.affine)
    flips = phantom.ORIENTATIONS[orientation]
    expected_data, expected_grid = reorient(ras.data, ras.grid, flips=flips)
    assert grid == expected_grid and np.array_equal(data, expected_data)
    back = resample(data, grid.affine, ras.grid, order=1)
    np.testing.assert_allclose(back, ras.data, atol=1e-3 * ras.data.max())
    # the stored axis directions: L flips x, P flips y
    signs = np.sign(np.diag(np.linalg.inv(np.array(motion["matrix"]))[:3, :3] @ grid.affine[:3, :3]))
    assert signs[0] == -1 and signs[1] == (-1 if orientation == "LPS" else 1) and signs[2] == 1


def test_lps_written_end_to_end(plain_case, tmp_path_factory):
    case = _simulate(tmp_path_factory, "lps", seed=3, t1_orientation="LPS")
    ras, lps = (load_volume(c["files"]["t1w"]["path"]) for c in (plain_case, case))
    np.testing.assert_allclose(resample(lps.data, lps.affine, ras.grid, order=1), ras.data, atol=1e-3 * ras.data.max())
    assert np.array_equal(_load(case, "asl_nr").data, _load(plain_case, "asl_nr").data)


def test_config_validation_and_load_case(tmp_path, lesion_case):
    with pytest.raises(InputError):
        phantom.PhantomConfig(t1_orientation="RAI")
    with pytest.raises(InputError):
        phantom.PhantomConfig(noise_sd=-1)
    with pytest.raises(InputError):
        phantom.load_case(tmp_path)
    folder = Path(lesion_case["files"]["asl_nr"]["path"]).parent
    loaded = phantom.load_case(folder)
    assert loaded["files"] == lesion_case["files"]
    assert all(Path(entry["path"]).is_absolute() for entry in loaded["files"].values())


def test_cli_full_size(tmp_path, capsys):
    out = tmp_path / "case"
    start = time.perf_counter()
    assert cli.main(["simulate", str(out), "--seed", "2", "--lesion"]) == 0
    seconds = time.perf_counter() - start
    assert "wrote" in capsys.readouterr().out
    case = phantom.load_case(out)
    assert case["lesion"] and case["seed"] == 2
    shapes = {
        "asl_nr": (128, 96, 48),
        "asl_lr": (64, 48, 48),
        "truth_1mm": (240, 180, 120),
        "m0_lr": (64, 48, 48),
        "lesion_lr": (64, 48, 48),
        "t1w": (197, 233, 189),
    }
    for role, shape in shapes.items():
        assert nib.load(case["files"][role]["path"]).shape == shape, role
    nr = _load(case, "asl_nr").grid
    np.testing.assert_allclose(nr.voxel_size, (1.875, 1.875, 2.5))
    t1 = nib.load(case["files"]["t1w"]["path"])
    np.testing.assert_allclose(t1.affine, np.array(case["t1_motion"]["matrix"]) @ _mni_grid().affine, atol=1e-4)
    assert seconds < 60, f"full-size simulation took {seconds:.1f} s"

    # a non-empty folder without --overwrite: exit 2, one line on stderr
    assert cli.main(["simulate", str(out)]) == 2
    err = capsys.readouterr().err.strip()
    assert "not empty" in err and "--overwrite" in err and len(err.splitlines()) == 1

    small = [
        *tiny_simulate_options(),
        "--t1-orientation",
        "LAS",
        "--overwrite",
    ]
    assert cli.main(["simulate", str(out), *small]) == 0
    case = phantom.load_case(out)
    assert not case["lesion"] and not (out / "lesion.nii.gz").exists()
    assert nib.load(case["files"]["asl_lr"]["path"]).shape == (16, 12, 12)
    assert cli.main(["simulate", str(tmp_path / "bad"), "--noise-sd", "-1"]) == 2
