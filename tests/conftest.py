"""Shared fixtures and helpers: a tiny phantom case (seconds to simulate) for end-to-end tests, and the
command lines that simulate it or run on it."""

from __future__ import annotations

import pytest

from aslsr import phantom

#: NR 32x24x12 at 7.5x7.5x10 mm, LR 16x12x12: small enough to train on in seconds.
TINY = {"nr_shape": (32, 24, 12), "nr_voxel_size": (7.5, 7.5, 10.0), "t1_voxel_size": 2.0}


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
