"""BIDS inheritance: which sidecars apply to a data file, in which order, and the schema's entities."""

from __future__ import annotations

from pathlib import Path

import pytest

from aslsr.bids_metadata import dataset_root, entity_order, inherited_files, split_name
from aslsr.errors import InputError


def _touch(root: Path, *names: str) -> None:
    for name in names:
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_text("{}")


@pytest.fixture
def dataset(tmp_path: Path) -> Path:
    root = tmp_path / "ds"
    _touch(
        root,
        "dataset_description.json",
        "asl.json",
        "acq-hi_asl.json",
        "task-rest_asl.json",
        "T1w.json",
        "aslcontext.tsv",
        "sub-01/sub-01_asl.json",
        "sub-01/ses-1/perf/sub-01_ses-1_asl.json",
        "sub-01/ses-1/perf/sub-01_ses-1_asl.nii.gz",
        "sub-01/ses-1/perf/sub-01_ses-1_m0scan.json",
        "sub-01/ses-1/perf/sub-02_asl.json",
        "sub-01/ses-1/perf/sub-01_ses-2_asl.json",
        "sub-01/ses-1/perf/sub-01_ses-1_aslcontext.tsv",
        "sub-02/perf/sub-02_acq-hi_asl.nii.gz",
    )
    return root


def test_split_name():
    assert split_name("asl.json") == ({}, "asl", ".json")
    assert split_name("sub-01_ses-1_asl.nii.gz") == ({"sub": "01", "ses": "1"}, "asl", ".nii.gz")
    for bad in ("asl", ".json", "sub-01_sub-02_asl.json", "sub-0.1_asl.json", "sub_asl.json", "x-_asl.json"):
        assert split_name(bad) is None, bad


def test_dataset_root(dataset: Path, tmp_path: Path):
    assert dataset_root(dataset / "sub-01/ses-1/perf/sub-01_ses-1_asl.nii.gz") == dataset
    assert dataset_root(dataset / "asl.json") == dataset
    assert dataset_root(tmp_path / "elsewhere.nii.gz") is None


def test_sidecars_apply_from_the_top_down_and_only_with_matching_entities(dataset: Path):
    data = dataset / "sub-01/ses-1/perf/sub-01_ses-1_asl.nii.gz"
    assert inherited_files(data) == [
        dataset / "asl.json",
        dataset / "sub-01/sub-01_asl.json",
        dataset / "sub-01/ses-1/perf/sub-01_ses-1_asl.json",
    ]
    assert inherited_files(data, extension=".tsv", suffix="aslcontext") == [
        dataset / "aslcontext.tsv",
        dataset / "sub-01/ses-1/perf/sub-01_ses-1_aslcontext.tsv",
    ]
    hi = dataset / "sub-02/perf/sub-02_acq-hi_asl.nii.gz"  # no task entity: task-rest_asl.json does not apply
    assert inherited_files(hi) == [dataset / "asl.json", dataset / "acq-hi_asl.json"]
    assert inherited_files(dataset / "sub-02/anat/sub-02_T1w.nii.gz") == [dataset / "T1w.json"]


def test_outside_a_dataset_nothing_is_inherited(tmp_path: Path):
    _touch(tmp_path, "asl.json", "sub-01_asl.json")
    assert inherited_files(tmp_path / "sub-01_asl.nii.gz") == []


def test_two_equally_specific_files_at_one_level_are_refused(dataset: Path):
    _touch(
        dataset,
        "acq-hi_task-rest_asl.json",
        "sub-03/perf/sub-03_acq-hi_task-rest_asl.nii.gz",
        "task-rest_acq-hi_asl.json",
    )
    with pytest.raises(InputError, match="apply to sub-03_acq-hi_task-rest_asl.nii.gz at the same folder level"):
        inherited_files(dataset / "sub-03/perf/sub-03_acq-hi_task-rest_asl.nii.gz")


def test_entity_order_comes_from_the_bids_schema():
    order = entity_order()
    assert order[0] == "sub" and order[-1] == "desc"
    positions = [order.index(key) for key in ("sub", "ses", "task", "acq", "rec", "run", "space", "res", "desc")]
    assert positions == sorted(positions)
