"""Output paths that cannot destroy inputs: every command goes through :mod:`aslsr.outputs`.

Each refusal is one line on stderr with exit code 2 and leaves every input file as it was
(bytes and modification time); the successful cases check where the files went. The last test
runs random command lines and checks that no input file ever changes.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
from pathlib import Path

import pytest
from conftest import fingerprint, generate_args, one_line_error, tiny_run_args
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from aslsr import outputs, staging
from aslsr.cli import main
from aslsr.errors import InputError

#: The outputs of ``aslsr run``, so that a listing can be compared.
RUN_FILES = {
    "sr.nii.gz",
    "nearest.nii.gz",
    "linear.nii.gz",
    "spline.nii.gz",
    "t1_registered.nii.gz",
    "mask.nii.gz",
    "model.pt",
    "report.json",
    "report.html",
    "losses.csv",
    "qc.png",
}


@pytest.fixture()
def subject(tiny_case, tmp_path) -> Path:
    """A folder with a copy of the tiny phantom's files (the inputs of these tests)."""
    folder = tmp_path / "subject"
    folder.mkdir()
    for role in ("asl_lr", "t1w", "m0_lr", "mask_lr", "asl_nr", "ref_clean", "ref_hr"):
        shutil.copyfile(tiny_case[role], folder / f"{role}.nii.gz")
    return folder


def _inputs(subject: Path) -> dict[str, str]:
    return {path.name.split(".")[0]: str(path) for path in subject.iterdir()}


def _quick(subject: Path, out: Path | str, *extra: str) -> list[str]:
    return tiny_run_args(_inputs(subject), out, "--no-register", "--zoom", "2", *extra)


def _bids_dataset(root: Path) -> Path:
    root.mkdir(parents=True)
    (root / "dataset_description.json").write_text(json.dumps({"Name": "x", "BIDSVersion": "1.9.0"}))
    (root / "sub-01").mkdir()
    return root


# --------------------------------------------------------------------------------------------------
# output folders and files


def test_run_output_is_an_existing_file(tiny_case, tmp_path, capsys):
    out = tmp_path / "out"
    out.write_text("keep me\n")
    before = fingerprint([out])
    one_line_error(capsys, tiny_run_args(tiny_case, out), str(out), "exists and is not a folder")
    assert fingerprint([out]) == before
    assert not list(tmp_path.glob(".out*"))


def test_run_output_below_a_file(tiny_case, tmp_path, capsys):
    blocker = tmp_path / "blocker"
    blocker.write_text("a file, not a folder\n")
    out = blocker / "out"
    one_line_error(capsys, tiny_run_args(tiny_case, out), str(out), f"{blocker} is not a folder")
    assert blocker.read_text() == "a file, not a folder\n"
    assert not list(tmp_path.glob(".*"))


def test_run_bad_input_before_a_valid_one_never_creates_the_output(tiny_case, tmp_path, capsys):
    """A bad M0 after a valid ASL/T1: the folder is not made (nested, missing parents included)."""
    out = tmp_path / "a" / "b" / "out"
    bad = str(tmp_path / "m0.nii.gz")
    one_line_error(capsys, tiny_run_args(tiny_case, out, "--m0", bad), bad)
    assert not (tmp_path / "a").exists()


def test_generate_output_is_a_folder(tiny_case, tmp_path, capsys):
    out = tmp_path / "sr.nii.gz"
    out.mkdir()
    run = {"out": tmp_path / "run"}  # the output is checked before the model is read
    one_line_error(capsys, generate_args(run, tiny_case, out, extra=["--overwrite"]), str(out), "is a folder")
    assert out.is_dir() and not any(out.iterdir())


# --------------------------------------------------------------------------------------------------
# outputs that are, hold or lie in an input


def test_run_into_the_folder_that_holds_its_inputs_is_refused_even_with_overwrite(subject, capsys):
    before = fingerprint(subject.iterdir())
    line = one_line_error(capsys, _quick(subject, subject, "--overwrite"), str(subject), "holds the input")
    assert "asl_lr.nii.gz" in line
    assert fingerprint(subject.iterdir()) == before


def test_run_into_a_parent_or_the_current_folder_holding_inputs_is_refused(subject, monkeypatch, capsys):
    before = fingerprint(subject.iterdir())
    one_line_error(capsys, _quick(subject, subject.parent, "--overwrite"), "holds the input")
    monkeypatch.chdir(subject)
    one_line_error(capsys, _quick(subject, ".", "--overwrite"), "holds the input")
    assert fingerprint(subject.iterdir()) == before


def test_output_that_is_an_input_file_or_below_an_input_folder_is_refused(subject, capsys):
    asl = _inputs(subject)["asl_lr"]
    one_line_error(capsys, _quick(subject, asl, "--overwrite"), "exists and is not a folder")
    with pytest.raises(InputError, match="lies inside the input folder"):
        outputs.check_output(subject / "x" / "out", kind="folder", inputs=[subject])


def test_generate_onto_its_own_asl_is_refused_even_with_overwrite(subject, tmp_path, capsys):
    files = _inputs(subject)
    model = tmp_path / "model.pt"
    model.write_bytes(b"checked later")
    for target in (files["asl_lr"], files["t1w"]):
        one_line_error(
            capsys,
            [
                "generate",
                "--model",
                str(model),
                "--asl",
                files["asl_lr"],
                "--t1",
                files["t1w"],
                "--out",
                target,
                "--overwrite",
            ],
            "an output never replaces an input",
        )


def test_a_symlink_to_an_input_is_the_input(subject, tmp_path, capsys):
    link = tmp_path / "link.nii.gz"
    link.symlink_to(_inputs(subject)["ref_hr"])
    files = _inputs(subject)
    one_line_error(
        capsys,
        ["evaluate", "--ref", files["ref_clean"], "--json", str(link), "--overwrite", files["ref_hr"]],
        "is the input",
    )
    assert link.is_symlink()


def test_evaluate_json_needs_overwrite_and_never_replaces_an_input(subject, tmp_path, capsys):
    files = _inputs(subject)
    existing = tmp_path / "results.json"
    existing.write_text("{}\n")
    command = ["evaluate", "--ref", files["ref_clean"], files["ref_hr"]]
    one_line_error(capsys, [*command[:3], "--json", str(existing), *command[3:]], "exists (use --overwrite")
    assert existing.read_text() == "{}\n"
    one_line_error(capsys, [*command[:3], "--json", files["ref_clean"], "--overwrite", *command[3:]], "is the input")
    one_line_error(capsys, [*command[:3], "--json", str(tmp_path), *command[3:]], "is a folder")
    assert main([*command[:3], "--json", str(existing), "--overwrite", *command[3:]]) == 0
    assert "ref_hr" in json.loads(existing.read_text())["results"]
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]


# --------------------------------------------------------------------------------------------------
# raw BIDS datasets


def test_bids_output_into_the_raw_dataset_is_refused(tmp_path, capsys):
    raw = _bids_dataset(tmp_path / "raw")
    before = fingerprint(raw.rglob("*"))
    for out, fragment in (
        (raw, "is the input"),
        (raw / "sub-01" / "x", "lies inside the input folder"),
        (tmp_path, "holds the input"),
    ):
        one_line_error(capsys, ["bids", str(raw), str(out), "participant", "--preset", "test"], fragment)
    assert fingerprint(raw.rglob("*")) == before
    assert sorted(p.name for p in raw.iterdir()) == ["dataset_description.json", "sub-01"]


def test_outputs_inside_a_raw_dataset_only_in_its_derivatives(subject, tmp_path, capsys):
    raw = _bids_dataset(tmp_path / "raw")
    one_line_error(capsys, _quick(subject, raw / "sub-01" / "sr"), "lies inside the raw BIDS dataset")
    one_line_error(capsys, ["simulate", str(raw / "phantom")], "lies inside the raw BIDS dataset")
    assert outputs.check_output(raw / "derivatives" / "aslsr", kind="folder", inputs=[raw]) == outputs.resolve(
        raw / "derivatives" / "aslsr"
    )
    derivative = raw / "derivatives" / "other"
    derivative.mkdir(parents=True)
    (derivative / "dataset_description.json").write_text('{"DatasetType": "derivative"}')
    outputs.check_output(derivative / "sub-01", kind="folder")


# --------------------------------------------------------------------------------------------------
# where the files go


def test_a_symlinked_output_folder_is_written_through(subject, tmp_path):
    real = tmp_path / "real"
    real.mkdir()
    (real / "notes.txt").write_text("mine\n")
    link = tmp_path / "link"
    link.symlink_to(real, target_is_directory=True)
    assert main(_quick(subject, link, "--overwrite")) == 0
    assert link.is_symlink() and RUN_FILES <= {p.name for p in real.iterdir()}
    assert (real / "notes.txt").read_text() == "mine\n"  # files the run did not write are left alone
    assert not [p.name for p in tmp_path.iterdir() if p.name.startswith(".")]


def test_run_into_the_current_empty_folder_publishes_there(subject, tmp_path, monkeypatch):
    here = tmp_path / "here"
    here.mkdir()
    monkeypatch.chdir(here)
    assert main(_quick(subject, ".")) == 0
    assert RUN_FILES <= {p.name for p in here.iterdir()} and Path.cwd().samefile(here)
    assert not [p.name for p in tmp_path.iterdir() if p.name.startswith(".")]


def test_a_second_process_on_the_same_output_is_refused(subject, tmp_path, capsys):
    out = tmp_path / "out"
    with staging.OutputLock(out):
        one_line_error(capsys, _quick(subject, out), "another aslsr process", f"pid {os.getpid()}")
        assert not out.exists()
        json_out = tmp_path / "r.json"
        with staging.OutputLock(json_out):
            files = _inputs(subject)
            one_line_error(
                capsys,
                ["evaluate", "--ref", files["ref_clean"], "--json", str(json_out), files["ref_hr"]],
                "another aslsr process",
            )
    assert not list(tmp_path.glob(".*.lock"))


def test_unwritable_output_places_are_one_line(subject, tmp_path, capsys):
    """Checked by creating a file there (os.access says yes to root)."""
    files = _inputs(subject)
    one_line_error(capsys, _quick(subject, "/proc/aslsr-test/out"), "cannot write in /proc")
    one_line_error(
        capsys,
        ["evaluate", "--ref", files["ref_clean"], "--json", "/proc/aslsr.json", files["ref_hr"]],
        "cannot write in /proc",
    )
    one_line_error(capsys, ["simulate", "/proc/aslsr-phantom"], "cannot write in /proc")


# --------------------------------------------------------------------------------------------------
# random command lines never change an input


def _digests(folder: Path) -> dict[str, str]:
    return {
        str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(folder.rglob("*"))
        if p.is_file()
    }


_COMMANDS = st.sampled_from(["run", "generate", "evaluate"])
_PLACES = st.sampled_from(["subject", "subject_file", "parent", ".", "fresh", "link_to_subject"])


@settings(
    max_examples=8,
    deadline=None,
    derandomize=True,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(command=_COMMANDS, place=_PLACES, overwrite=st.booleans())
def test_random_command_lines_never_change_an_input(
    tiny_case, tmp_path_factory, monkeypatch, command, place, overwrite
):
    root = tmp_path_factory.mktemp("random")
    subject = root / "subject"
    subject.mkdir()
    for role in ("asl_lr", "t1w", "asl_nr", "ref_hr"):
        shutil.copyfile(tiny_case[role], subject / f"{role}.nii.gz")
    (root / "link").symlink_to(subject, target_is_directory=True)
    before = _digests(subject)
    out = {
        "subject": subject,
        "subject_file": subject / "asl_nr.nii.gz",
        "parent": root,
        ".": Path("."),
        "fresh": root / "new.nii.gz",
        "link_to_subject": root / "link",
    }[place]
    monkeypatch.chdir(subject)
    files = {name: str(subject / f"{name}.nii.gz") for name in ("asl_lr", "t1w", "asl_nr", "ref_hr")}
    argv = {
        "run": tiny_run_args(files, out, "--no-register", "--zoom", "2"),
        "generate": [
            "generate",
            "--model",
            files["ref_hr"],
            "--asl",
            files["asl_lr"],
            "--t1",
            files["t1w"],
            "--out",
            str(out),
        ],
        "evaluate": ["evaluate", "--ref", files["asl_nr"], "--json", str(out), files["ref_hr"]],
    }[command] + (["--overwrite"] if overwrite else [])
    try:
        main(argv)
    except SystemExit:  # argparse: --overwrite on a command without it
        pass
    assert _digests(subject) == before, argv
