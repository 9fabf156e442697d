"""Cohorts: ``aslsr bids`` on a tiny simulated BIDS dataset, sequentially and on Dask clusters.

Real runs throughout: phantom subjects, registration, training (test preset), Dask worker
processes, and one worker killed with SIGKILL while it trains.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import threading
import time
from pathlib import Path

import nibabel as nib
import numpy as np
import pytest
from conftest import TINY

from aslsr import phantom
from aslsr.bids import find_subjects
from aslsr.cli import main
from aslsr.cohort import SubjectJob, run_cohort
from aslsr.config import preset
from aslsr.phantom_bids import simulate_bids
from aslsr.pipeline import RunOptions

SR_NAME = "sub-{0}/perf/sub-{0}_space-asl_res-2mm_desc-sr_cbf"


@pytest.fixture(scope="module")
def raw(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("bids") / "raw"
    simulate_bids(folder, n_subjects=2, config=phantom.PhantomConfig(**TINY), n_pairs=2)
    return folder


def _bids(raw: Path, out: Path, *extra: str) -> list[str]:
    return ["bids", str(raw), str(out), "participant", "--preset", "test", "--quiet", "--quantify", *extra]


@pytest.mark.slow
def test_a_dataset_runs_into_bids_derivatives_and_a_rerun_skips_it(raw, tmp_path, capsys):
    out = tmp_path / "derivatives"
    assert main(_bids(raw, out)) == 0
    for subject in ("01", "02"):
        image = nib.load(out / f"{SR_NAME.format(subject)}.nii.gz")
        sidecar = json.loads((out / f"{SR_NAME.format(subject)}.json").read_text())
        assert sidecar["Units"] == "ml/100g/min"
        assert sidecar["Sources"][0] == f"bids:raw:sub-{subject}/perf/sub-{subject}_asl.nii.gz"
        assert np.all(np.isfinite(image.get_fdata()))
        assert np.allclose(image.header.get_zooms(), 2.0)
        assert (out / f"sub-{subject}/figures/sub-{subject}_desc-qc_asl.png").is_file()
        html = (out / f"sub-{subject}.html").read_text()
        assert "data:image/png;base64," in html and f"sub-{subject}" in html
    description = json.loads((out / "dataset_description.json").read_text())
    assert description["DatasetType"] == "derivative" and description["GeneratedBy"][0]["Name"] == "aslsr"
    capsys.readouterr()

    before = {p: p.stat().st_mtime_ns for p in out.rglob("*.nii.gz")}
    assert main(_bids(raw, out)) == 0
    assert "0 done, 2 skipped" in capsys.readouterr().out
    assert before == {p: p.stat().st_mtime_ns for p in out.rglob("*.nii.gz")}

    # another target grid changes the result: computed again, never "skipped (complete)"
    assert main(_bids(raw, out, "--participant-label", "01", "--voxel-size", "3")) == 0
    assert "1 done, 0 skipped" in capsys.readouterr().out
    assert (out / f"{SR_NAME.format('01').replace('res-2mm', 'res-3mm')}.nii.gz").is_file()


@pytest.mark.slow
def test_a_failed_subject_is_reported_and_the_others_finish_on_two_workers(raw, tmp_path, capsys):
    bad = tmp_path / "raw"
    shutil.copytree(raw, bad)
    (bad / "sub-02/anat/sub-02_T1w.nii.gz").write_bytes(b"not a NIfTI")
    (bad / "sub-03/perf").mkdir(parents=True)  # an ASL series without any T1w
    for source in (bad / "sub-01/perf").iterdir():
        shutil.copyfile(source, bad / "sub-03/perf" / source.name.replace("sub-01", "sub-03"))
    out = tmp_path / "derivatives"
    assert main(_bids(bad, out, "--workers", "2")) == 1
    printed = capsys.readouterr().out
    assert "local Dask cluster of 2 workers" in printed
    assert "sub-01: done" in printed
    assert "sub-02: failed" in printed and "sub-02_T1w.nii.gz: not a readable NIfTI image" in printed
    assert "sub-03: failed" in printed and "sub-03_asl.nii.gz: no T1w image" in printed
    assert "1 done, 0 skipped (complete), 2 failed" in printed
    assert (out / f"{SR_NAME.format('01')}.nii.gz").is_file()
    assert not (out / "sub-02").exists() and not (out / "work/sub-02").exists()


@pytest.mark.slow
def test_a_dataset_with_only_top_level_sidecars_runs_on_dask_with_progress_lines(tmp_path, capsys):
    """BIDS inheritance: asl.json, aslcontext.tsv and T1w.json only at the top; --quantify needs all of them."""
    raw = tmp_path / "raw"
    simulate_bids(raw, n_subjects=1, config=phantom.PhantomConfig(**TINY), n_pairs=2)
    for name, top in (
        ("perf/sub-01_asl.json", "asl.json"),
        ("perf/sub-01_aslcontext.tsv", "aslcontext.tsv"),
        ("anat/sub-01_T1w.json", "T1w.json"),
    ):
        (raw / "sub-01" / name).replace(raw / top)
    assert not list(raw.glob("sub-01/*/*.json")) and not list(raw.glob("sub-01/*/*.tsv"))
    out = tmp_path / "derivatives"
    argv = ["bids", str(raw), str(out), "participant", "--preset", "test", "--quantify", "--workers", "1"]
    assert main(argv) == 0, capsys.readouterr()
    printed = capsys.readouterr()
    sidecar = json.loads((out / f"{SR_NAME.format('01')}.json").read_text())
    assert sidecar["Units"] == "ml/100g/min"
    assert sidecar["aslsr"]["asl"]["quantification"]["labeling_efficiency"] == 0.85
    assert "sub-01: done" in printed.out
    assert "aslsr: Dask dashboard: " in printed.err
    assert "aslsr: sub-01: running (0 done, 1 running, 0 failed, 0 waiting of 1)" in printed.err
    assert "aslsr: sub-01: done (1 done, 0 running, 0 failed, 0 waiting of 1)" in printed.err


@pytest.mark.slow
def test_a_worker_killed_mid_run_loses_no_subject(raw, tmp_path):
    distributed = pytest.importorskip("distributed")
    out = tmp_path / "derivatives"
    config = preset("test", iterations=(10, 60), checkpoint_every=5, threads=1)
    jobs = [
        SubjectJob(inputs=subject, out_dir=out, config=config, options=RunOptions(quantify=True))
        for subject in find_subjects(raw)
    ]
    with (
        distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None) as cluster,
        distributed.Client(cluster) as client,
    ):
        outcomes: list = []
        thread = threading.Thread(target=lambda: outcomes.extend(run_cohort(jobs, scheduler=cluster.scheduler_address)))
        thread.start()
        checkpoint = out / "work" / ".sub-01.partial" / "checkpoint.pt"
        deadline = time.monotonic() + 300
        while not checkpoint.exists() and thread.is_alive() and time.monotonic() < deadline:
            time.sleep(0.05)
        holder = [worker for worker, keys in client.processing().items() if "aslsr-sub-01" in keys]
        assert holder, "sub-01 should be running when its first checkpoint appears"
        os.kill(client.run(os.getpid, workers=holder)[holder[0]], signal.SIGKILL)
        thread.join(timeout=600)
    assert [(o.name, o.status) for o in outcomes] == [("sub-01", "done"), ("sub-02", "done")], outcomes
    report = json.loads((out / "work/sub-01/report.json").read_text())
    assert report["resumed_from_checkpoint"] is True
    assert not list((out / "work").glob(".*partial"))


@pytest.mark.parametrize(
    "extra, fragment",
    [
        (["--participant-label", "../x"], "invalid participant label '../x'"),
        (["--participant-label", "07"], "sub-07"),
        (["--workers", "0"], "--workers must be at least 1"),
    ],
    ids=["dotdot-label", "missing-subject", "zero-workers"],
)
def test_bad_bids_arguments_are_one_line_and_write_nothing(raw, tmp_path, capsys, extra, fragment):
    out = tmp_path / "derivatives"
    assert main(_bids(raw, out, *extra)) == 2
    lines = capsys.readouterr().err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("aslsr bids: error: ") and fragment in lines[0], lines
    assert not out.exists()


def test_a_folder_that_is_not_bids_is_refused(tmp_path, capsys):
    (tmp_path / "raw").mkdir()
    assert main(_bids(tmp_path / "raw", tmp_path / "out")) == 2
    assert "dataset_description.json" in capsys.readouterr().err
