"""Shared fixtures and helpers: a tiny phantom case (seconds to simulate) for end-to-end tests, the
command lines that simulate it or run on it, the checks of a refused command (exit 2, one line), and the
benchmark scripts loaded as modules."""

from __future__ import annotations

import hashlib
import importlib.util
import os
import sys
import warnings
from pathlib import Path

import pytest

from aslsr import phantom
from aslsr.cli import main

BENCHMARKS = Path(__file__).resolve().parents[1] / "benchmarks"


def benchmark_script(name: str):
    """``benchmarks/NAME.py`` imported as a module (the folder is put on sys.path for its sibling imports)."""
    if str(BENCHMARKS) not in sys.path:
        sys.path.insert(0, str(BENCHMARKS))
    spec = importlib.util.spec_from_file_location(name, BENCHMARKS / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


#: NR 32x24x12 at 7.5x7.5x10 mm, LR 16x12x12: small enough to train on in seconds.
TINY = {"nr_shape": (32, 24, 12), "nr_voxel_size": (7.5, 7.5, 10.0), "t1_voxel_size": 2.0}
#: A phantom variant's fields for a coarse version of it: 3 mm templates, the TINY grid, T1 at 3 mm.
COARSE_VARIANT = {**TINY, "t1_voxel_size": 3.0, "template_resolution_mm": 3}


def tiny_simulate_options(**fields) -> list[str]:
    """The ``aslsr simulate`` options of :data:`TINY` (``--nr-shape 32 24 12 ...``); ``fields`` change or
    add options by their name with ``_`` for ``-`` (``t1_voxel_size=3``, ``template_resolution=3``)."""
    options: list[str] = []
    for name, value in {**TINY, **fields}.items():
        values = value if isinstance(value, (tuple, list)) else (value,)
        options += [f"--{name.replace('_', '-')}", *(f"{v:g}" if isinstance(v, float) else str(v) for v in values)]
    return options


def tiny_run_args(
    case: dict, out, *extra: str, asl: str | None = None, t1: str | None = None, full: bool = False
) -> list[str]:
    """``aslsr run`` arguments (preset test, quiet) on ``case``'s LR ASL and T1w (or ``asl``, ``t1``)
    into ``out``; ``full`` adds the LR M0 and the NR grid as target (``--like``); then ``extra``."""
    args = ["run", "--asl", asl or case["asl_lr"], "--t1", t1 or case["t1w"], "--out", str(out)]
    if full:
        args += ["--m0", case["m0_lr"], "--like", case["asl_nr"]]
    return [*args, "--preset", "test", "--quiet", *extra]


@pytest.fixture(scope="session")
def tiny_case(tmp_path_factory) -> dict:
    """A small phantom with a lesion; returns ``{role: absolute path}`` plus the case dict under '_case'."""
    case = phantom.simulate(tmp_path_factory.mktemp("tiny_case"), phantom.PhantomConfig(seed=3, lesion=True, **TINY))
    files = {role: entry["path"] for role, entry in case["files"].items()}
    files["_case"] = case
    return files


# --------------------------------------------------------------------------------------------------
# the contract of a refused command: exit 2, one line on stderr, nothing written, inputs untouched


def fingerprint(paths) -> dict[str, tuple[str, int]]:
    """SHA-256 and mtime of each of ``paths`` that is a file."""
    result = {}
    for path in paths:
        path = Path(path)
        if path.is_file():
            result[str(path)] = (hashlib.sha256(path.read_bytes()).hexdigest(), path.stat().st_mtime_ns)
    return result


def one_line_error(capsys: pytest.CaptureFixture, argv: list[str], *fragments: str) -> str:
    """Run the CLI; assert exit 2, one stderr line with ``fragments``, no traceback and no warning."""
    inputs = [a for a in argv if os.path.isfile(a)]
    before = fingerprint(inputs)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        code = main(argv)
    captured = capsys.readouterr()
    lines = captured.err.strip().splitlines()
    assert code == 2, captured.err
    assert len(lines) == 1, captured.err
    assert lines[0].startswith(f"aslsr {argv[0]}: error: "), lines[0]
    assert "Traceback" not in captured.err + captured.out
    assert not [str(w.message) for w in caught]
    for fragment in fragments:
        assert fragment in lines[0], lines[0]
    assert fingerprint(inputs) == before  # inputs unchanged (bytes and mtime)
    return lines[0]


def assert_nothing_written(out: Path) -> None:
    """Neither ``out`` nor a hidden ``.<name>...`` staging folder beside it exists."""
    assert not out.exists()
    assert not [p.name for p in out.parent.iterdir() if p.name.startswith(f".{out.name}")]


def run_error(capsys, tiny: dict, tmp_path: Path, *fragments: str, asl=None, t1=None, extra=()) -> str:
    """``aslsr run`` on ``tiny`` (see :func:`tiny_run_args`) is refused with ``fragments``; nothing written."""
    out = tmp_path / "out"
    line = one_line_error(capsys, tiny_run_args(tiny, out, *extra, asl=asl, t1=t1), *fragments)
    assert_nothing_written(out)
    return line


def generate_args(run: dict, tiny: dict, out: Path, *, asl: str | None = None, t1: str | None = None, extra=()):
    """``aslsr generate`` with the model of ``run["out"]`` on ``tiny``'s LR ASL and T1w, no registration."""
    return [
        "generate",
        "--model",
        str(run["out"] / "model.pt"),
        "--asl",
        asl or tiny["asl_lr"],
        "--t1",
        t1 or tiny["t1w"],
        "--out",
        str(out),
        "--no-register",
        *extra,
    ]
