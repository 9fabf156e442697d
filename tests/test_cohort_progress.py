"""A cohort's progress: one line per change of a subject's state, with the counts."""

from __future__ import annotations

import pytest

from aslsr.cohort_progress import CohortProgress


def test_each_change_is_one_line_with_the_counts(caplog):
    caplog.set_level("INFO", logger="aslsr")
    progress = CohortProgress(["sub-01", "sub-02", "sub-03"])
    assert progress.set("sub-01", "running")
    assert not progress.set("sub-01", "running")  # no change, no line
    progress.on_event((1.0, {"name": "sub-02", "state": "running"}))  # as Dask delivers a task's start
    progress.on_event((2.0, {"name": "sub-09", "state": "running"}))  # not ours: ignored
    progress.on_event((3.0, {"name": "sub-03", "state": "exploded"}))  # not a state: ignored
    assert progress.set("sub-01", "done") and progress.set("sub-02", "failed")
    assert not progress.set("sub-02", "running")  # a late start event after the outcome changes nothing
    assert progress.set("sub-03", "skipped")
    assert [record.getMessage() for record in caplog.records] == [
        "sub-01: running (0 done, 1 running, 0 failed, 2 waiting of 3)",
        "sub-02: running (0 done, 2 running, 0 failed, 1 waiting of 3)",
        "sub-01: done (1 done, 1 running, 0 failed, 1 waiting of 3)",
        "sub-02: failed (1 done, 0 running, 1 failed, 1 waiting of 3)",
        "sub-03: skipped (1 done, 1 skipped, 0 running, 1 failed, 0 waiting of 3)",
    ]
    assert progress.counts() == {"waiting": 0, "running": 0, "done": 1, "skipped": 1, "failed": 1}
    with pytest.raises(ValueError):
        progress.set("sub-01", "exploded")
