"""Tests of the phantom variants (``aslsr.phantom_spec``, ``aslsr.phantom_variants``,
``aslsr.phantom_variant_simulation``), their PSFs and fields, and
``aslsr simulate --variant``. Every variant runs on a coarse version: 3 mm templates, NR 32 x 24 x 12
at 7.5 x 7.5 x 10 mm (the default field of view), T1 at 3 mm."""

from __future__ import annotations

import doctest
import json
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
from conftest import COARSE_VARIANT, tiny_simulate_options
from nibabel.orientations import aff2axcodes

from aslsr import cli, metrics, phantom_fields, phantom_spec
from aslsr.errors import InputError
from aslsr.grids import Grid, rigid_matrix
from aslsr.io import load_volume
from aslsr.phantom_anatomy import load_anatomy
from aslsr.phantom_psf import PSF, acquire, acquisition_grid, fine_grid, slice_profile, tukey_window
from aslsr.phantom_spec import PhantomSpec
from aslsr.phantom_variant_simulation import simulate_variant
from aslsr.phantom_variants import VARIANTS, variant

COARSE = COARSE_VARIANT
CLI_COARSE = tiny_simulate_options(t1_voxel_size=3, template_resolution=3)


@pytest.fixture(scope="module")
def cases(tmp_path_factory) -> dict[str, dict]:
    """Every named variant, simulated once (seed 1)."""
    root = tmp_path_factory.mktemp("variants")
    return {name: simulate_variant(root / name, variant(name, seed=1, **COARSE)) for name in VARIANTS}


def _load(case: dict, role: str):
    return load_volume(case["files"][role]["path"], allow_constant=True)


def _info(case: dict) -> dict:
    return json.loads((Path(case["files"]["ref_clean"]["path"]).parent / "phantom.json").read_text())


def test_panel_halves_cover_the_axes():
    halves = {half: [spec for spec in VARIANTS.values() if spec.half == half] for half in ("tune", "report")}
    assert len(VARIANTS) == 8 and all(len(specs) == 4 for specs in halves.values())
    for specs in halves.values():  # both halves depart along every axis
        assert {spec.psf.kind for spec in specs} >= {"box", "gaussian", "kspace"}
        assert any(spec.lesions for spec in specs) and any(spec.vessel_tubes for spec in specs)
        assert any(any(spec.asl_rotation_deg) for spec in specs)
        assert any(spec.asl_orientation != "RAS" for spec in specs) and all(spec.warp_mm > 0 for spec in specs)
    report = halves["report"]
    assert any(f < 1 for spec in report for f in spec.lesions) and any(f > 1 for spec in report for f in spec.lesions)


def test_every_variant_writes_consistent_files(cases):
    for name, case in cases.items():
        spec = VARIANTS[name]
        info = _info(case)
        assert info["variant"] == name and info["half"] == spec.half and info["spec"]["psf"]["kind"] == spec.psf.kind
        nr, lr = _load(case, "ref_clean").grid, _load(case, "asl_lr").grid
        for role in ("asl_nr", "asl_nr_clean", "ref_hr", "m0", "mask"):
            assert _load(case, role).grid == nr, (name, role)
        for role in ("asl_lr_clean", "m0_lr", "mask_lr"):
            assert _load(case, role).grid == lr, (name, role)
        assert np.allclose(lr.voxel_size, nr.voxel_size * np.array([2, 2, 1]))
        assert np.allclose(lr.directions, nr.directions)
        if not any(spec.asl_rotation_deg):
            assert "".join(aff2axcodes(nr.affine)) == spec.asl_orientation == info["grids"]["lr"]["axes"]
        mask = _load(case, "mask").data > 0
        clean = _load(case, "ref_clean").data
        assert 0.2 < mask.mean() < 0.8 and 20 < clean[mask].mean() < 80, name
        # the acquisitions agree with the reference at their resolution (mean CBF in the brain)
        assert abs(_load(case, "asl_nr_clean").data[mask].mean() / clean[mask].mean() - 1) < 0.15, name
        assert sum(role.startswith("lesion") for role in case["files"]) == 2 * len(spec.lesions), name
        for number, lesion in enumerate(info["lesions"], start=1):
            roi = _load(case, lesion["roles"][0]).data > 0
            assert roi.any() and not (roi & ~mask).any()
            ratio = metrics.lesion_contrast(clean, roi, mask)
            assert 0 <= lesion["mirror_log_asymmetry"] < 0.5
            assert (ratio < 0.75) if lesion["cbf_factor"] < 1 else (ratio > 1.15), (name, number, ratio)
        if spec.warp_mm:
            assert 0.3 < info["warp"]["jacobian_min"] < 1 < info["warp"]["jacobian_max"] < 2
            assert info["warp"]["max_displacement_mm"] <= spec.warp_mm + 1e-3
        assert len(info["vessels"]) == spec.vessel_tubes + spec.vessel_spots


def test_lesions_are_invisible_on_the_t1(cases, tmp_path):
    spec = variant("hypo-box", seed=1, **COARSE)
    plain = simulate_variant(tmp_path / "plain", replace(spec, lesions=()))
    lesion = cases["hypo-box"]
    assert "lesion" not in plain["files"]
    for role in ("t1w", "t1w_aligned", "m0", "mask"):
        a, b = _load(plain, role), _load(lesion, role)
        assert a.grid == b.grid and np.array_equal(a.data, b.data), role
    roi = _load(lesion, "lesion").data > 0
    with_lesion, without = _load(lesion, "ref_clean").data, _load(plain, "ref_clean").data
    assert with_lesion[roi].mean() < 0.7 * without[roi].mean()
    center = _load(lesion, "ref_clean").grid.world_to_index(np.array(_info(lesion)["lesions"][0]["center_mm"]))
    index = np.indices(roi.shape).transpose(1, 2, 3, 0)
    far = np.linalg.norm((index - center) * np.array([7.5, 7.5, 10.0]), axis=-1) > 30
    np.testing.assert_allclose(with_lesion[far], without[far], rtol=1e-5, atol=1e-4)


def test_noise_draw_changes_only_the_asl_noise(cases, tmp_path):
    spec = variant("lesions-kspace-lpi", seed=1, **COARSE)
    first = cases["lesions-kspace-lpi"]
    spec_again = PhantomSpec.from_dict(_info(first)["spec"])
    assert spec_again == spec
    second = simulate_variant(tmp_path / "draw1", replace(spec_again, noise_draw=1))
    for role in ("ref_clean", "asl_lr_clean", "asl_nr_clean", "t1w", "m0", "mask", "lesion"):
        assert np.array_equal(_load(first, role).data, _load(second, role).data), role
    for role, clean in (("asl_lr", "asl_lr_clean"), ("asl_nr", "asl_nr_clean"), ("ref_hr", "ref_clean")):
        noise_a = _load(first, role).data - _load(first, clean).data
        noise_b = _load(second, role).data - _load(second, clean).data
        assert not np.allclose(noise_a, noise_b), role
        assert abs(noise_b.std() / noise_a.std() - 1) < 0.1, role  # another draw of the same noise
        assert abs(np.corrcoef(noise_a.ravel(), noise_b.ravel())[0, 1]) < 0.1, role
    with pytest.raises(InputError, match="noise draw must be a non-negative integer"):
        replace(spec, noise_draw=-1)
    assert doctest.testmod(phantom_spec).failed == 0  # from_dict's example


def test_orientation_variants_keep_world_values(cases, tmp_path):
    """LPI (and a k-space LR grid sampled on NR voxel centres) holds the same value at the same world
    point as its RAS twin; the oblique grid is rotated as asked and carries its lesion ROI in world."""
    lpi = cases["lesions-kspace-lpi"]
    ras = simulate_variant(
        tmp_path / "ras", variant("lesions-kspace-lpi", seed=1, **{**COARSE, "asl_orientation": "RAS"})
    )
    for role in ("ref_clean", "asl_lr", "asl_nr", "m0_lr", "lesion", "mask_lr"):
        a, b = _load(ras, role), _load(lpi, role)
        index = np.indices(a.grid.shape).reshape(3, -1).T
        other = np.rint(b.grid.world_to_index(a.grid.index_to_world(index))).astype(int)
        assert np.allclose(b.grid.index_to_world(other), a.grid.index_to_world(index), atol=1e-4), role
        np.testing.assert_array_equal(b.data[tuple(other.T)], a.data[tuple(index.T)], err_msg=role)
    oblique = cases["oblique-gauss-hyper"]
    grid = _load(oblique, "ref_clean").grid
    rotation = rigid_matrix(VARIANTS["oblique-gauss-hyper"].asl_rotation_deg, (0, 0, 0))[:3, :3]
    np.testing.assert_allclose(grid.directions, rotation, atol=1e-6)
    center = np.rint(grid.world_to_index(np.array(_info(oblique)["lesions"][0]["center_mm"]))).astype(int)
    assert _load(oblique, "lesion").data[tuple(center)] == 1


def test_kspace_psf_is_exact_for_band_limited_images():
    """k-space truncation returns the exact samples, at the LR voxel centres, of an image whose
    spectrum lies inside the window's flat band (on an oblique grid, with a margin, awkward sizes)."""
    nr = Grid((24, 14, 14), rigid_matrix((20.0, -10.0, 5.0), (3.0, 1.0, -2.0)) @ np.diag([2.0, 2.5, 3.0, 1.0]))
    psf = PSF(kind="kspace", window=0.3)
    fine, lr = fine_grid(nr, 2, psf, margin=2), acquisition_grid(nr, (2, 2, 1), psf)
    assert fine.shape == (56, 36, 36) and lr.shape == (12, 7, 14)
    rng = np.random.default_rng(5)
    spectrum = rng.normal(size=fine.shape) + 1j * rng.normal(size=fine.shape)
    for axis, n in enumerate(fine.shape):  # |k| within the flat band of the LR matrix's window
        n_lr = round(n * fine.voxel_size[axis] / lr.voxel_size[axis])  # LR matrix over the fine FOV
        band = np.floor((1 - psf.window) * n_lr / 2)
        keep = np.abs(np.rint(np.fft.fftfreq(n) * n)) <= band
        spectrum *= keep.reshape([-1 if a == axis else 1 for a in range(3)])
    image = np.fft.ifftn(spectrum).real
    image *= 10.0 / np.abs(image).max()
    lr_index = np.indices(lr.shape).reshape(3, -1).T
    at = fine.world_to_index(lr.index_to_world(lr_index))  # LR samples on fine voxel centres
    assert np.allclose(at, np.rint(at), atol=1e-6)
    acquired = acquire(image, fine, lr, psf)
    np.testing.assert_allclose(acquired.ravel(), image[tuple(np.rint(at).astype(int).T)], atol=1e-4)
    # a frequency beyond the LR band is removed; the window tapers to 0 at the band edge
    high = np.cos(np.pi * np.indices(fine.shape)[0])
    assert np.abs(acquire(high, fine, lr, psf)).max() < 1e-6
    assert tukey_window(8, 0.5)[0] == 1 and tukey_window(8, 0.5)[4] == 0 and np.all(tukey_window(8, 0.0) == 1)


def test_box_and_gaussian_psfs():
    nr = Grid((8, 8, 4), np.diag([2.0, 2.0, 3.0, 1.0]))
    rng = np.random.default_rng(0)
    box = PSF(kind="box")
    fine, lr = fine_grid(nr, 2, box), acquisition_grid(nr, (2, 2, 1), box)
    data = rng.random(fine.shape)
    np.testing.assert_allclose(
        acquire(data, fine, lr, box), data.reshape(4, 4, 4, 4, 4, 2).mean(axis=(1, 3, 5)), rtol=1e-5
    )
    assert lr == nr.with_voxel_size((4.0, 4.0, 3.0))
    gaussian = PSF(kind="gaussian", fwhm_voxels=1.2, slice_thickness_voxels=1.5, slice_edge_voxels=0.3)
    fine, lr = fine_grid(nr, 4, gaussian), acquisition_grid(nr, (2, 2, 1), gaussian)
    constant = acquire(np.ones(fine.shape), fine, lr, gaussian)
    assert abs(constant[2, 2, 2] - 1.0) < 1e-3  # a PSF integrates to 1 (0 beyond the FOV)
    profile = slice_profile(8, 1.5, 0.3)
    assert abs(profile.sum() - 1) < 1e-12 and np.sum(profile >= profile.max() / 2) in (11, 12, 13)  # FWHM ~1.5 x 8
    with pytest.raises(InputError):
        PSF(kind="sinc")


def test_warp_is_smooth_and_invertible():
    anatomy = load_anatomy(3)
    grid = anatomy.grid
    u = phantom_fields.random_displacement(np.random.default_rng(4), grid, 6.0, 15.0)
    jacobian = phantom_fields.jacobian_determinant(u, grid)
    assert np.sqrt((u**2).sum(axis=0)).max() == pytest.approx(6.0, abs=1e-3)
    assert 0.5 <= jacobian.min() and jacobian.max() < 2.0
    # a linear displacement has the Jacobian of its matrix; warping by it moves an image as expected
    index = np.indices(grid.shape).astype(np.float32)
    world = np.tensordot(grid.affine[:3, :3], index, axes=([1], [0])) + grid.affine[:3, 3, None, None, None]
    shear = np.array([[0.1, 0.05, 0.0], [0.0, -0.1, 0.0], [0.02, 0.0, 0.05]])
    linear = np.tensordot(shear, world, axes=([1], [0])).astype(np.float32)
    expected = np.linalg.det(np.eye(3) + shear)
    np.testing.assert_allclose(phantom_fields.jacobian_determinant(linear, grid, stride=2), expected, rtol=1e-4)
    # invertible: the fixed point v(x) = -u(x + v(x)) exists and undoes the warp (x + v + u(x + v) = x)
    inverse = np.zeros_like(u)
    for _ in range(15):
        inverse = -np.stack([phantom_fields.warp(u[c], grid, inverse) for c in range(3)])
    residual = inverse + np.stack([phantom_fields.warp(u[c], grid, inverse) for c in range(3)])
    assert np.abs(residual).max() < 0.05 * np.abs(u).max()
    warped = phantom_fields.warp(anatomy.gm, grid, u)
    assert np.abs(warped - anatomy.gm)[anatomy.brain].mean() > 0.05  # the warp moved the anatomy


def test_cli_variant_and_bad_input(tmp_path, capsys):
    out = tmp_path / "case"
    assert (
        cli.main(
            [
                "simulate",
                str(out),
                "--variant",
                "hypo-box",
                "--psf",
                "kspace",
                "--kspace-window",
                "0.2",
                "--asl-orientation",
                "LPS",
                "--lesions",
                "0.5",
                "1.5",
                "--seed",
                "2",
                *CLI_COARSE,
            ]
        )
        == 0
    )
    info = json.loads((out / "phantom.json").read_text())
    assert info["spec"]["psf"] == {**info["spec"]["psf"], "kind": "kspace", "window": 0.2}
    assert info["grids"]["nr"]["axes"] == "LPS" and [lesion["cbf_factor"] for lesion in info["lesions"]] == [0.5, 1.5]
    assert (out / "lesion_2.nii.gz").is_file() and info["seed"] == 2
    capsys.readouterr()
    assert cli.main(["simulate", str(tmp_path / "bad"), "--kspace-window", "2", *CLI_COARSE]) == 2
    assert cli.main(["simulate", str(tmp_path / "bad"), "--variant", "hypo-box", "--bids"]) == 2
    assert cli.main(["simulate", str(out), "--variant", "hypo-box", *CLI_COARSE]) == 2  # not empty
    errors = capsys.readouterr().err.strip().splitlines()
    assert len(errors) == 3 and "window" in errors[0] and "--bids" in errors[1] and "not empty" in errors[2]
    assert not (tmp_path / "bad").exists()
    with pytest.raises(InputError):
        PhantomSpec(lesions=(-1.0,))
