"""Tests of BIDS input discovery and derivative naming (``aslsr.bids``) and of the BIDS phantom
(``aslsr.phantom_bids``, ``aslsr simulate --bids``), checked with the official bids-validator 1.15."""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
from pathlib import Path

import nibabel as nib
import numpy as np
import pytest
from conftest import TINY, tiny_simulate_options

from aslsr.bids import (
    SubjectInputs,
    check_label,
    derivative_path,
    figure_path,
    find_subjects,
    resolution_label,
    write_dataset_description,
)
from aslsr.cli import simulate as simulate_command
from aslsr.errors import InputError
from aslsr.io import load_volume
from aslsr.phantom import PhantomConfig
from aslsr.phantom_bids import lr_noise_sd, simulate_bids
from aslsr.quantify import cbf_from_deltam, parameters_from_sidecar

ROOT = Path(__file__).resolve().parents[1]
VALIDATOR = ROOT / ".tools" / "bids-validator" / "node_modules" / ".bin" / "bids-validator"


@pytest.fixture(scope="module")
def phantom_dataset(tmp_path_factory) -> tuple[Path, dict]:
    out = tmp_path_factory.mktemp("bids") / "raw"
    return out, simulate_bids(out, n_subjects=2, config=PhantomConfig(seed=4, **TINY))


def _touch(root: Path, *names: str) -> None:
    for name in names:
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(b"")


def _dataset(root: Path, *names: str) -> Path:
    _touch(root, *names)
    (root / "dataset_description.json").write_text('{"Name": "x", "BIDSVersion": "1.9.0"}')
    return root


# --- the simulated dataset ------------------------------------------------------------------------


def test_bids_validator_accepts_simulated_dataset(phantom_dataset):
    out, _ = phantom_dataset
    command = os.environ.get("ASLSR_BIDS_VALIDATOR")
    if command is None:
        if shutil.which("node") is None:
            pytest.skip("Node.js is not installed (needed by bids-validator)")
        if not VALIDATOR.exists():
            pytest.skip(
                f"bids-validator is not installed: npm install --prefix .tools/bids-validator "
                f"bids-validator@1.15 (or set ASLSR_BIDS_VALIDATOR); looked for {VALIDATOR}"
            )
        command = str(VALIDATOR)
    result = subprocess.run([command, str(out), "--json"], capture_output=True, text=True, timeout=300)
    report = json.loads(result.stdout)
    errors, warnings = report["issues"]["errors"], report["issues"]["warnings"]
    for issue in warnings:
        print(f"bids-validator warning {issue['key']}: {issue.get('reason', '')}")
    assert not errors, [
        (issue["key"], issue.get("reason"), [f["file"]["relativePath"] for f in issue["files"] if f.get("file")])
        for issue in errors
    ]


def test_simulated_dataset_layout(phantom_dataset):
    out, summary = phantom_dataset
    assert summary["subjects"] == ["01", "02"]
    for name in (
        "dataset_description.json",
        "README",
        "participants.tsv",
        "participants.json",
        "sub-01/anat/sub-01_T1w.nii.gz",
        "sub-02/perf/sub-02_asl.json",
        "derivatives/phantom/dataset_description.json",
    ):
        assert name in summary["files"] and (out / name).is_file()
    assert json.loads((out / "dataset_description.json").read_text())["DatasetType"] == "raw"
    assert (out / "participants.tsv").read_text().splitlines() == [
        "participant_id\tphantom_seed\tlesion",
        "sub-01\t4\tno",
        "sub-02\t5\tno",
    ]
    runs = find_subjects(out)
    assert [run.name for run in runs] == ["sub-01", "sub-02"]
    assert runs[0].t1w == out / "sub-01/anat/sub-01_T1w.nii.gz" and runs[0].m0 is None


def test_simulated_series_quantifies_to_the_truth(phantom_dataset):
    out, _ = phantom_dataset
    means = []
    for label in ("01", "02"):
        perf = out / f"sub-{label}" / "perf"
        image = nib.load(str(perf / f"sub-{label}_asl.nii.gz"))
        series = np.asarray(image.dataobj)
        types = (perf / f"sub-{label}_aslcontext.tsv").read_text().split()
        assert series.dtype == np.float32 and series.shape[3] == 9
        assert types == ["volume_type", "m0scan"] + ["control", "label"] * 4
        sidecar = json.loads((perf / f"sub-{label}_asl.json").read_text())
        assert sidecar["M0Type"] == "Included" and sidecar["TotalAcquiredPairs"] == 4
        parameters = parameters_from_sidecar(sidecar, None, volume_types=types[1:])
        cbf = cbf_from_deltam((series[..., 1::2] - series[..., 2::2]).mean(-1), series[..., 0], parameters)
        references = out / "derivatives" / "phantom" / f"sub-{label}" / "perf"
        truth = load_volume(references / f"sub-{label}_space-asl_res-15x15x10mm_desc-truth_cbf.nii.gz")
        mask = load_volume(references / f"sub-{label}_space-asl_res-15x15x10mm_desc-brain_mask.nii.gz").data > 0
        assert truth.grid.shape == series.shape[:3] and np.allclose(truth.affine, image.affine)
        error = (cbf - truth.data)[mask]
        noise = lr_noise_sd(
            PhantomConfig(**TINY),
            load_volume(references / (f"sub-{label}_space-asl_res-7p5x7p5x10mm_desc-truth_cbf.nii.gz")).grid,
            truth.grid,
        )
        assert noise == pytest.approx(3.0)  # 6 / sqrt(4): the phantom's LR noise
        assert abs(error.mean()) < 0.5 and 0.7 * noise < error.std() < 1.5 * noise
        means.append(truth.data[mask].mean())
    assert means[0] != means[1]  # different seeds, different CBF fields


def test_simulate_bids_refuses_bad_requests(tmp_path):
    with pytest.raises(InputError, match="positive integer"):
        simulate_bids(tmp_path / "a", n_subjects=0)
    with pytest.raises(InputError, match="pairs"):
        simulate_bids(tmp_path / "a", n_pairs=0)
    (tmp_path / "b" / "sub-07").mkdir(parents=True)
    with pytest.raises(InputError, match="sub-07"):
        simulate_bids(tmp_path / "b", n_subjects=1)
    (tmp_path / "c").write_text("")
    with pytest.raises(InputError, match="not a folder"):
        simulate_bids(tmp_path / "c")


def _simulate_command(argv: list[str]) -> int:
    """``aslsr simulate ARGV`` through its own parser (independent of the other commands' modules)."""
    parser = argparse.ArgumentParser()
    simulate_command.add_parser(parser.add_subparsers())
    args = parser.parse_args(["simulate", *argv])
    return args.func(args)


def test_cli_simulate_bids(tmp_path, capsys):
    out = tmp_path / "raw"
    size = tiny_simulate_options()
    assert _simulate_command([str(out), "--bids", "--subjects", "1", "--seed", "9", *size]) == 0
    assert "BIDS dataset of 1 subject " in capsys.readouterr().out
    assert [run.name for run in find_subjects(out)] == ["sub-01"]
    assert "\tphantom_seed\t" in (out / "participants.tsv").read_text()
    with pytest.raises(InputError, match="--subjects needs --bids"):
        _simulate_command([str(tmp_path / "x"), "--subjects", "2"])


# --- find_subjects --------------------------------------------------------------------------------


def test_find_subjects_sessions_m0_and_t1w_choice(tmp_path):
    root = _dataset(
        tmp_path / "ds",
        "sub-01/ses-1/perf/sub-01_ses-1_acq-x_run-1_asl.nii.gz",
        "sub-01/ses-1/perf/sub-01_ses-1_acq-x_run-1_m0scan.nii.gz",
        "sub-01/ses-1/perf/sub-01_ses-1_acq-x_run-2_asl.nii",
        "sub-01/ses-1/perf/sub-01_ses-1_acq-x_run-1_aslcontext.tsv",
        "sub-01/ses-1/anat/sub-01_ses-1_run-2_T1w.nii.gz",
        "sub-01/ses-1/anat/sub-01_ses-1_run-1_T1w.nii.gz",
        "sub-01/ses-2/perf/sub-01_ses-2_asl.nii.gz",
        "sub-01/anat/sub-01_T1w.nii.gz",
        "sub-02/perf/sub-02_asl.nii.gz",
        "sub-02/perf/notes_asl.nii.gz",  # not a BIDS name: ignored
        "sub-02/anat/sub-02_T1w.nii",
        "sub-03/anat/sub-03_T1w.nii.gz",
    )  # no ASL: skipped
    runs = find_subjects(root)
    assert [r.name for r in runs] == ["sub-01_ses-1_acq-x_run-1", "sub-01_ses-1_acq-x_run-2", "sub-01_ses-2", "sub-02"]
    first, second, other_session, plain = runs
    assert (first.subject, first.session) == ("01", "1")
    assert first.entities == {"sub": "01", "ses": "1", "acq": "x", "run": "1"}
    assert first.m0 == root / "sub-01/ses-1/perf/sub-01_ses-1_acq-x_run-1_m0scan.nii.gz"
    assert second.m0 is None
    assert first.t1w == root / "sub-01/ses-1/anat/sub-01_ses-1_run-1_T1w.nii.gz"  # first in sorted order
    assert other_session.t1w == root / "sub-01/anat/sub-01_T1w.nii.gz"  # session-less fallback
    assert plain.session is None and plain.t1w == root / "sub-02/anat/sub-02_T1w.nii"


def test_find_subjects_participant_filter(tmp_path):
    root = _dataset(
        tmp_path / "ds",
        "sub-01/perf/sub-01_asl.nii.gz",
        "sub-01/anat/sub-01_T1w.nii.gz",
        "sub-02/perf/sub-02_asl.nii.gz",
        "sub-02/anat/sub-02_T1w.nii.gz",
        "sub-03/anat/sub-03_T1w.nii.gz",
    )
    assert [r.subject for r in find_subjects(root, ["02"])] == ["02"]
    assert [r.subject for r in find_subjects(root, ["sub-02", "01", "sub-01"])] == ["01", "02"]
    with pytest.raises(InputError, match=r"no folder for sub-09 \(subjects here: sub-01, sub-02, sub-03\)"):
        find_subjects(root, ["09"])
    with pytest.raises(InputError, match="no ASL series") as caught:
        find_subjects(root, ["03"])
    assert caught.value.path.endswith("sub-03")
    for bad in ("../x", "sub-../x", "", "a_b"):
        with pytest.raises(InputError, match="participant label"):
            find_subjects(root, [bad])


def test_find_subjects_errors(tmp_path):
    with pytest.raises(InputError, match="not a folder"):
        find_subjects(tmp_path / "missing")
    _touch(tmp_path, "plain/sub-01/perf/sub-01_asl.nii.gz")
    with pytest.raises(InputError, match="dataset_description.json"):
        find_subjects(tmp_path / "plain")
    root = _dataset(tmp_path / "not1", "sub-01/perf/sub-01_asl.nii.gz", "sub-01/ses-1/anat/sub-01_ses-1_T1w.nii")
    with pytest.raises(InputError, match="no T1w") as caught:
        find_subjects(root)
    assert caught.value.path == str(root / "sub-01/perf/sub-01_asl.nii.gz")
    with pytest.raises(InputError, match="no ASL series found"):
        find_subjects(_dataset(tmp_path / "empty", "sub-01/anat/sub-01_T1w.nii.gz"))
    root = _dataset(tmp_path / "moved", "sub-01/perf/sub-02_asl.nii.gz", "sub-01/anat/sub-01_T1w.nii.gz")
    with pytest.raises(InputError, match="do not match its folder"):
        find_subjects(root)


@pytest.mark.parametrize(
    "name",
    [
        "sub-01_acq-..%2F_asl.nii.gz",
        "sub-01_acq-a.b_asl.nii.gz",
        "sub-01_run-1_run-2_asl.nii.gz",
        "sub-01_a c-x_asl.nii",
    ],
)
def test_find_subjects_refuses_crafted_file_names(tmp_path, name):
    root = _dataset(tmp_path / "ds", f"sub-01/perf/{name}", "sub-01/anat/sub-01_T1w.nii.gz")
    with pytest.raises(InputError) as caught:
        find_subjects(root)
    assert caught.value.path == str(root / "sub-01" / "perf" / name)


def test_find_subjects_refuses_crafted_folders(tmp_path):
    root = _dataset(tmp_path / "ds", "sub-01/perf/sub-01_asl.nii.gz", "sub-01/anat/sub-01_T1w.nii.gz")
    (root / "sub-..").mkdir()
    with pytest.raises(InputError, match="invalid subject label '..'"):
        find_subjects(root)
    (root / "sub-..").rmdir()
    (root / "sub-01" / "ses-x.y").mkdir()
    with pytest.raises(InputError, match="invalid session label"):
        find_subjects(root)


# --- labels, derivative names, dataset description -----------------------------------------------


@pytest.mark.parametrize("label", ["../x", "01/..", "", "a_b", "a-b", "a.b", "é", "a b", None])
def test_check_label_refuses(label):
    with pytest.raises(InputError, match="invalid subject label") as caught:
        check_label(label, "subject label", "/data/x")
    assert caught.value.path == "/data/x"


def test_check_label_accepts():
    assert check_label("01A", "subject label") == "01A"


def _inputs(subject="01", session=None, **extra) -> SubjectInputs:
    entities = {"sub": subject, **({"ses": session} if session else {}), **extra}
    return SubjectInputs(subject, session, Path("in_asl.nii.gz"), Path("in_T1w.nii.gz"), None, entities)


def test_derivative_path_names(tmp_path):
    path = derivative_path(
        tmp_path, _inputs("01", "1", run="2", acq="x"), desc="sr", suffix="cbf", extension=".nii.gz", res="1p5mm"
    )
    assert path == tmp_path / "sub-01/ses-1/perf/sub-01_ses-1_acq-x_run-2_space-asl_res-1p5mm_desc-sr_cbf.nii.gz"
    assert derivative_path(tmp_path, _inputs(), desc="sr", suffix="deltam", extension=".json") == (
        tmp_path / "sub-01/perf/sub-01_space-asl_desc-sr_deltam.json"
    )
    assert figure_path(tmp_path, _inputs("01", "1", run="2"), desc="report", extension=".html") == (
        tmp_path / "sub-01/figures/sub-01_ses-1_run-2_desc-report_asl.html"
    )
    assert not any(tmp_path.iterdir())  # naming only: nothing is created


@pytest.mark.parametrize(
    "change",
    [
        dict(inputs=_inputs("../x")),
        dict(inputs=_inputs("01", "..")),
        dict(inputs=_inputs(acq="..%2F")),
        dict(desc="../x"),
        dict(desc="a_b"),
        dict(suffix="x/y"),
        dict(space="a/.."),
        dict(res="1.5mm"),
        dict(extension="/../../x"),
        dict(extension="nii"),
        dict(inputs=SubjectInputs("01", None, Path("a"), Path("b"), None, {"sub": "02"})),
    ],
)
def test_derivative_path_refuses_unsafe_names(tmp_path, change):
    options = dict(inputs=_inputs(), desc="sr", suffix="cbf", extension=".nii.gz", space="asl", res=None)
    options.update(change)
    with pytest.raises(InputError):
        derivative_path(tmp_path, **options)
    figure_options = {k: options[k] for k in ("inputs", "desc", "extension")}
    if set(change) & set(figure_options):
        with pytest.raises(InputError):
            figure_path(tmp_path, **figure_options)


def test_derivative_path_stays_inside_out_dir_through_links(tmp_path):
    out, elsewhere = tmp_path / "out", tmp_path / "elsewhere"
    out.mkdir(), elsewhere.mkdir()
    (out / "sub-01").symlink_to(elsewhere)
    with pytest.raises(InputError, match="outside the output folder"):
        derivative_path(out, _inputs(), desc="sr", suffix="cbf", extension=".nii.gz")
    with pytest.raises(InputError, match="outside the output folder"):
        figure_path(out, _inputs(), desc="sr", extension=".png")


@pytest.mark.parametrize(
    "size, label",
    [
        (1.0, "1mm"),
        (1.5, "1p5mm"),
        ((2, 2, 2), "2mm"),
        ((1.5, 1.5, 2.5), "1p5x1p5x2p5mm"),
        (0.9375, "0p938mm"),
        ((1.875, 1.875, 2.5), "1p875x1p875x2p5mm"),
        (np.float32(3), "3mm"),
    ],
)
def test_resolution_label(size, label):
    assert resolution_label(size) == label


@pytest.mark.parametrize("size", [0.0, -1.0, (1.0, 2.0), float("nan")])
def test_resolution_label_refuses(size):
    with pytest.raises(InputError):
        resolution_label(size)


def test_write_dataset_description(tmp_path):
    out, source = tmp_path / "out", tmp_path / "raw"
    path = write_dataset_description(out, version="1.2.3", source_dir=source)
    description = json.loads(path.read_text())
    assert path == out / "dataset_description.json"
    assert description["BIDSVersion"] == "1.9.0" and description["DatasetType"] == "derivative"
    assert description["GeneratedBy"][0]["Name"] == "aslsr" and description["GeneratedBy"][0]["Version"] == "1.2.3"
    assert description["SourceDatasets"] == [{"URL": source.resolve().as_uri()}]
    before = path.stat().st_ino
    write_dataset_description(out, version="1.2.3", source_dir=source)
    assert path.stat().st_ino == before  # identical: left alone
    write_dataset_description(out, version="1.2.4", source_dir=source)
    assert json.loads(path.read_text())["GeneratedBy"][0]["Version"] == "1.2.4"
    assert [p.name for p in out.iterdir()] == ["dataset_description.json"]  # no temporary files left
