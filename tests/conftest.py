"""Shared fixtures: a tiny phantom case (seconds to simulate) for end-to-end tests."""

from __future__ import annotations

import pytest

from aslsr import phantom

#: NR 32x24x12 at 7.5x7.5x10 mm, LR 16x12x12: small enough to train on in seconds.
TINY = {"nr_shape": (32, 24, 12), "nr_voxel_size": (7.5, 7.5, 10.0), "t1_voxel_size": 2.0}


@pytest.fixture(scope="session")
def tiny_case(tmp_path_factory) -> dict:
    """A small phantom with a lesion; returns ``{role: absolute path}`` plus the case dict under '_case'."""
    case = phantom.simulate(tmp_path_factory.mktemp("tiny_case"), phantom.PhantomConfig(seed=3, lesion=True, **TINY))
    files = {role: entry["path"] for role, entry in case["files"].items()}
    files["_case"] = case
    return files
