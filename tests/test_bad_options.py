"""Bad paths, options and configuration files given to ``aslsr run``: checked before any long work.

Missing, folder or unreadable inputs, an impossible or absurd target grid, a bad ``--config``.
Every case must end with exit code 2, exactly one line on stderr that names the offending file
(where there is one), no traceback, no warning, no output folder or staging folder, and the input
files untouched (``one_line_error`` in conftest.py). The table in docs/bad_inputs.md lists these
tests; bad images are in test_bad_images.py.
"""

from __future__ import annotations

import os
import shutil
import time
from pathlib import Path

import pytest
from conftest import run_error

# --------------------------------------------------------------------------------------------------
# paths


@pytest.mark.parametrize("role", ["t1", "m0", "mask"])
def test_run_missing_file(tiny_case, tmp_path, capsys, role):
    missing = str(tmp_path / f"missing_{role}.nii.gz")
    options = {"t1": missing} if role == "t1" else {"extra": [f"--{role}", missing]}
    run_error(capsys, tiny_case, tmp_path, missing, "no such file", **options)


def test_run_input_is_a_folder(tiny_case, tmp_path, capsys):
    folder = tmp_path / "asl.nii.gz"
    folder.mkdir()
    run_error(capsys, tiny_case, tmp_path, str(folder), "is a folder", asl=str(folder))


@pytest.mark.skipif(
    hasattr(os, "geteuid") and os.geteuid() == 0,
    reason="runs as root: root reads files without read permission, so nothing fails",
)
def test_run_unreadable_file(tiny_case, tmp_path, capsys):
    locked = tmp_path / "locked.nii.gz"
    shutil.copyfile(tiny_case["asl_lr"], locked)
    locked.chmod(0)
    try:
        run_error(capsys, tiny_case, tmp_path, str(locked), "permission denied", asl=str(locked))
    finally:
        locked.chmod(0o644)


# --------------------------------------------------------------------------------------------------
# target grid


@pytest.mark.parametrize(
    "option",
    [["--voxel-size", "0.001"], ["--voxel-size", "1e-300"], ["--zoom", "1e6"]],
    ids=["0.001mm", "1e-300mm", "zoom-1e6"],
)
def test_run_absurd_target_is_refused_before_allocating(tiny_case, tmp_path, capsys, option):
    start = time.perf_counter()
    line = run_error(
        capsys, tiny_case, tmp_path, "would need about", "GiB of memory", "choose a larger voxel size", extra=option
    )
    assert time.perf_counter() - start < 10.0, line


@pytest.mark.parametrize(
    "option",
    [
        ["--voxel-size", "0"],
        ["--voxel-size", "-2"],
        ["--voxel-size", "1", "-2", "1"],
        ["--voxel-size", "1", "2"],
        ["--voxel-size", "inf"],
        ["--zoom", "0"],
        ["--zoom", "nan"],
        ["--zoom", "2", "2", "2", "2"],
    ],
    ids=[
        "voxel-0",
        "voxel-negative",
        "voxel-one-negative",
        "voxel-two-numbers",
        "voxel-inf",
        "zoom-0",
        "zoom-nan",
        "zoom-four-numbers",
    ],
)
def test_run_bad_target_numbers(tiny_case, tmp_path, capsys, option):
    line = run_error(
        capsys,
        tiny_case,
        tmp_path,
        f"{option[0]} needs 1 or 3 finite positive numbers, got " + " ".join(f"{float(v):g}" for v in option[1:]),
        extra=option,
    )
    assert "np.float64" not in line


def test_run_like_missing(tiny_case, tmp_path, capsys):
    missing = str(tmp_path / "reference.nii.gz")
    run_error(capsys, tiny_case, tmp_path, missing, "no such file", extra=["--like", missing])


# --------------------------------------------------------------------------------------------------
# configuration


def _config_file(tmp_path: Path, kind: str) -> str:
    path = tmp_path / "settings.toml"
    if kind == "missing":
        return str(path)
    if kind == "folder":
        path.mkdir()
    elif kind == "invalid":
        path.write_text("iterations = [3, 4\n")
    elif kind == "unknown":
        path.write_text("iterations = [3, 4]\nlearnin_rate = 0.1\n")
    elif kind == "bad value":
        path.write_text("patch_size = 2\n")
    return str(path)


@pytest.mark.parametrize(
    "kind, fragment",
    [
        ("missing", "no such file"),
        ("folder", "is a folder"),
        ("invalid", "not valid TOML"),
        ("unknown", "unknown configuration field(s): learnin_rate"),
        ("bad value", "patch_size must be unset or an integer from 8 to 1024, got 2"),
    ],
)
def test_run_bad_config(tiny_case, tmp_path, capsys, kind, fragment):
    config = _config_file(tmp_path, kind)
    run_error(capsys, tiny_case, tmp_path, config, fragment, extra=["--config", config])
