"""Hostile values: configuration fields, model files, simulate options, and files whose content
Python cannot take (complex voxels, tiny images, sidecars nested too deep or with huge numbers).

Every case is one line on stderr, exit code 2, the file and the field named, nothing written and
the inputs untouched (see ``one_line_error`` in conftest.py).
"""

from __future__ import annotations

import dataclasses
import math
import shutil
from pathlib import Path

import nibabel as nib
import numpy as np
import pytest
import torch
from conftest import assert_nothing_written, one_line_error, run_error

from aslsr import checks
from aslsr.config import FIELD_CHECKS, Config, model_settings, preset, replace
from aslsr.errors import InputError
from aslsr.model import MODEL_FORMAT, MODEL_VERSION, _plain
from aslsr.networks import Generator
from aslsr.phantom import PhantomConfig

# --------------------------------------------------------------------------------------------------
# configuration: every field typed and range-checked, the TOML file and the field named


def test_every_config_field_has_a_check_that_refuses_a_string():
    assert set(FIELD_CHECKS) == {f.name for f in dataclasses.fields(Config)}
    for field in FIELD_CHECKS:
        with pytest.raises(InputError, match=rf"bad configuration: {field} must be .*got 'x' \(a string\)"):
            replace(Config(), **{field: "x"})


@pytest.mark.parametrize(
    "text, fragment",
    [
        ('alpha = "ten"\n', "alpha must be a finite number from 0 to 1e+06, got 'ten' (a string)"),
        ("alpha = nan\n", "alpha must be a finite number"),
        ("beta = inf\n", "beta must be a finite number"),
        ("generator_channels = [0, 8, 8]\n", "generator_channels must be a list of 3 values, each an integer from 1"),
        ("critic_channels = 0\n", "critic_channels must be an integer from 1 to 1024, got 0"),
        ("seed = -1\n", "seed must be an integer from 0"),
        ("threads = -2\n", "threads must be unset or an integer from 1"),
        ("n_scales = 20\nmax_scales = 20\n", "max_scales must be an integer from 1 to 8, got 20"),
        ("n_scales = 3\nmax_scales = 2\n", "n_scales must not exceed max_scales"),
        ("iterations = [5, 0]\n", "the finest scale needs at least 1 iteration"),
        ("alpha = 0\nuse_lowpass = false\nuse_adversarial = false\n", "no loss term is on"),
        ("learning_rate = 0\n", "learning_rate must be a finite number above 0"),
        ("residual = 1\n", "residual must be true or false, got 1"),
        ("patch_size = 16.5\n", "patch_size must be unset or an integer"),
        ('device = "gpu"\n', "device must be auto, cpu, cuda or cuda:N"),
        ("tile_size = 16\ntile_overlap = 8\n", "tile_overlap must be less than half of tile_size"),
        ("aslsr = 3\n", "the [aslsr] entry must be a table"),
    ],
    ids=[
        "string",
        "nan",
        "inf",
        "zero-channels",
        "zero-critic",
        "negative-seed",
        "negative-threads",
        "too-many-scales",
        "scales-inconsistent",
        "untrained",
        "no-loss",
        "zero-lr",
        "int-for-bool",
        "float-for-int",
        "device",
        "tile-overlap",
        "aslsr-not-a-table",
    ],
)
def test_run_bad_config_value_names_file_and_field(tiny_case, tmp_path, capsys, text, fragment):
    config = tmp_path / "settings.toml"
    config.write_text('preset = "test"\n' + text)
    run_error(capsys, tiny_case, tmp_path, str(config), fragment, extra=["--config", str(config)])


def test_run_negative_seed_on_the_command_line(tiny_case, tmp_path, capsys):
    run_error(capsys, tiny_case, tmp_path, "seed must be an integer from 0", extra=["--seed", "-3"])


def test_a_new_field_needs_one_line():
    """The check builders word their own expectation; a table line is all a new field needs."""
    table = {"method": checks.choice("gan", "dtv")}
    assert checks.problems({"method": "tv"}, table) == ["method must be one of 'gan', 'dtv', got 'tv' (a string)"]
    assert checks.problems({"method": "dtv"}, table) == []


# --------------------------------------------------------------------------------------------------
# model files read by ``aslsr generate``


@pytest.fixture(scope="module")
def model_payload() -> dict:
    """A valid, untrained-but-finite model file payload with the test preset's generator."""
    config = preset("test")
    generator = Generator(channels=config.generator_channels, use_t1=config.use_t1, residual=config.residual)
    return {
        "format": MODEL_FORMAT,
        "version": MODEL_VERSION,
        "settings": _plain(model_settings(config)),
        "normalizer": {"asl_scale": 80.0, "t1_low": 0.0, "t1_high": 200.0},
        "factor": [2.0, 2.0, 1.0],
        "grids": [],
        "metadata": {},
        "generator": {k: v.clone() for k, v in generator.state_dict().items()},
    }


def _spoil(payload: dict, how: str) -> dict:
    payload = {
        **payload,
        "settings": dict(payload["settings"]),
        "normalizer": dict(payload["normalizer"]),
        "generator": {k: v.clone() for k, v in payload["generator"].items()},
    }
    first = next(iter(payload["generator"]))
    if how == "no-factor":
        del payload["factor"]
    elif how == "no-normalizer-key":
        del payload["normalizer"]["t1_low"]
    elif how in ("zero-scale", "nan-scale"):
        payload["normalizer"]["asl_scale"] = 0.0 if how == "zero-scale" else math.nan
    elif how == "t1-range":
        payload["normalizer"]["t1_high"] = -1.0
    elif how == "nan-sigma":
        payload["settings"]["consistency_sigma_voxels"] = math.nan
    elif how == "settings-string":
        payload["settings"] = "x"
    elif how == "nan-weights":
        payload["generator"][first].fill_(math.nan)
    elif how == "huge-weights":  # finite weights whose output overflows to infinity
        payload["generator"] = {k: v * 1e30 if v.is_floating_point() else v for k, v in payload["generator"].items()}
    return payload


@pytest.mark.parametrize(
    "how, fragment",
    [
        ("no-factor", "damaged model file: factor is missing"),
        ("no-normalizer-key", "normalizer.t1_low is missing"),
        ("zero-scale", "asl_scale must be a finite number above 0"),
        ("nan-scale", "asl_scale must be a finite number above 0"),
        ("t1-range", "t1_high must be above normalizer.t1_low"),
        ("nan-sigma", "consistency_sigma_voxels must be a finite number"),
        ("settings-string", "settings must be a table"),
        ("nan-weights", "the generator's weights hold NaN or infinite values"),
        ("huge-weights", "the model produced NaN or infinite values"),
    ],
)
def test_generate_refuses_a_crafted_model_file(model_payload, tiny_case, tmp_path, capsys, how, fragment):
    model = tmp_path / "model.pt"
    torch.save(_spoil(model_payload, how), model)
    out = tmp_path / "sr.nii.gz"
    one_line_error(
        capsys,
        [
            "generate",
            "--model",
            str(model),
            "--asl",
            tiny_case["asl_lr"],
            "--t1",
            tiny_case["t1w"],
            "--out",
            str(out),
            "--no-register",
            "--zoom",
            "2",
        ],
        str(model),
        fragment,
    )
    assert not out.exists() and not list(tmp_path.glob(".sr*"))


# --------------------------------------------------------------------------------------------------
# aslsr simulate


@pytest.mark.parametrize(
    "option, fragment",
    [
        (["--noise-sd", "inf"], "noise_sd must be a finite number from 0 to 10000, got inf"),
        (["--noise-sd", "nan"], "noise_sd must be a finite number"),
        (["--max-rotation", "inf"], "max_rotation_deg must be a finite number from 0 to 180"),
        (["--t1-voxel-size", "1e-4"], "t1_voxel_size must be a finite number from 0.05 to 20"),
        (["--nr-shape", "100000", "100000", "100000"], "nr_shape must be a list of 3 values, each an integer from 2"),
        (["--nr-shape", "4096", "4096", "4096"], "would need about"),
        (["--nr-voxel-size", "1", "-1", "1"], "nr_voxel_size must be"),
        (["--bids", "--subjects", "0"], "--subjects must be between 1 and 1000, got 0"),
    ],
    ids=[
        "noise-inf",
        "noise-nan",
        "rotation-inf",
        "t1-voxel-tiny",
        "shape-huge",
        "shape-out-of-memory",
        "voxel-negative",
        "zero-subjects",
    ],
)
def test_simulate_bad_options(tmp_path, capsys, option, fragment):
    out = tmp_path / "phantom"
    one_line_error(capsys, ["simulate", str(out), *option], fragment)
    assert_nothing_written(out)


def test_phantom_config_refuses_what_the_cli_refuses():
    with pytest.raises(InputError, match="noise_sd must be a finite number"):
        PhantomConfig(noise_sd=float("inf"))
    assert PhantomConfig(nr_shape=(np.int64(8), 8, 4)).nr_shape == (8, 8, 4)


# --------------------------------------------------------------------------------------------------
# file contents Python cannot take


def test_run_complex_valued_asl(tiny_case, tmp_path, capsys):
    image = nib.load(tiny_case["asl_lr"])
    data = image.get_fdata(dtype=np.float32)
    path = tmp_path / "complex.nii.gz"
    nib.save(nib.Nifti1Image((data + 1j * data).astype(np.complex64), image.affine), str(path))
    run_error(capsys, tiny_case, tmp_path, str(path), "complex-valued (datatype complex64)", asl=str(path))


def test_run_asl_too_small_to_super_resolve(tiny_case, tmp_path, capsys):
    image = nib.load(tiny_case["asl_lr"])
    path = tmp_path / "tiny.nii.gz"
    nib.save(nib.Nifti1Image(np.arange(8, dtype=np.float32).reshape(2, 2, 2), image.affine), str(path))
    run_error(
        capsys, tiny_case, tmp_path, str(path), "shape (2, 2, 2)", "at least 4 voxels along every axis", asl=str(path)
    )


@pytest.mark.parametrize(
    "content, fragment",
    [("[" * 100000 + "]" * 100000, "nested too deeply"), ('{"PostLabelingDelay": ' + "9" * 5000 + "}", "digits")],
    ids=["nested", "huge-integer"],
)
def test_run_sidecar_python_cannot_read(tiny_case, tmp_path, capsys, content, fragment):
    asl = tmp_path / "sub-01_asl.nii.gz"
    shutil.copyfile(tiny_case["asl_lr"], asl)
    sidecar = Path(str(asl).replace(".nii.gz", ".json"))
    sidecar.write_text(content)
    run_error(capsys, tiny_case, tmp_path, str(sidecar), "not readable JSON", fragment, asl=str(asl))


@pytest.mark.parametrize(
    "option, fragment",
    [
        (["--warp", "inf"], "warp_mm must be a finite number"),
        (["--lesions", "inf"], "lesions must be a list"),
        (["--psf", "gaussian", "--psf-fwhm", "inf"], "PSF widths and window must be finite"),
        (["--tissue-field", "-1"], "tissue_field_sd must be a finite number"),
    ],
    ids=["warp-inf", "lesion-inf", "psf-inf", "field-negative"],
)
def test_simulate_bad_variant_options(tmp_path, capsys, option, fragment):
    out = tmp_path / "phantom"
    one_line_error(capsys, ["simulate", str(out), "--variant", "hypo-box", *option], fragment)
    assert_nothing_written(out)
