"""A subject's derivatives: the marker that says they are complete, and the dataset's .bidsignore."""

from __future__ import annotations

import json

from aslsr.derivatives import BIDS_IGNORE, MARKER_NAME, is_complete, listed_derivatives, write_bids_ignore


def test_a_subject_is_complete_only_when_every_listed_derivative_exists(tmp_path):
    work, out = tmp_path / "work" / "sub-01", tmp_path
    work.mkdir(parents=True)
    assert not is_complete(work, out)
    (work / MARKER_NAME).write_text("{not json")
    assert not is_complete(work, out)
    listed = ["sub-01/perf/sub-01_desc-sr_cbf.nii.gz", "sub-01.html"]
    (work / MARKER_NAME).write_text(json.dumps({"outputs": listed}))
    assert not is_complete(work, out)
    for name in listed:
        (out / name).parent.mkdir(parents=True, exist_ok=True)
        (out / name).write_bytes(b"")
    assert is_complete(work, out) and listed_derivatives(work) == tuple(listed)


def test_bids_ignore_names_the_work_folders_and_reports(tmp_path):
    write_bids_ignore(tmp_path)
    assert (tmp_path / ".bidsignore").read_text().splitlines() == list(BIDS_IGNORE) == ["work/", "*.html"]
