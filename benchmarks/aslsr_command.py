"""The ``aslsr run`` command line that the benchmark scripts start as a child process, one per case.

Shared by ``panel.py`` and ``stability.py``: the case's files, a seed, extra arguments, and a TOML
that pins the run's CPU threads so that parallel runs do not oversubscribe the cores.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib


def run_command(case: Path, out: Path, *, t1: str, like: str, seed: int, extra: list[str]) -> list[str]:
    """``python -m aslsr run`` on ``case``'s LR ASL and M0 with the T1 file ``t1``, onto the grid of ``like``."""
    return [
        sys.executable,
        "-m",
        "aslsr",
        "run",
        "--asl",
        str(case / "asl_lr.nii.gz"),
        "--t1",
        str(case / t1),
        "--m0",
        str(case / "m0_lr.nii.gz"),
        "--like",
        str(case / like),
        "--out",
        str(out),
        "--seed",
        str(seed),
        "--overwrite",
        "--quiet",
        *extra,
    ]


def with_threads(args: list[str], threads: int, toml_path: Path) -> list[str]:
    """``args`` with ``--config`` pointing at a TOML that sets ``threads`` (merged into a given one)."""
    settings: dict[str, Any] = {}
    args = list(args)
    if "--config" in args:
        at = args.index("--config")
        settings = tomllib.loads(Path(args[at + 1]).read_text())
        settings = dict(settings.get("aslsr", settings))  # an [aslsr] table, as aslsr's own reader takes it
        del args[at : at + 2]
    settings.setdefault("threads", threads)
    toml_path.parent.mkdir(parents=True, exist_ok=True)
    toml_path.write_text("".join(f"{key} = {json.dumps(value)}\n" for key, value in settings.items()))
    return [*args, "--config", str(toml_path)]
