"""`aslsr reproduce` end to end on a tiny phantom: tables, figures, ablations and summary."""

from __future__ import annotations

import csv
import json
import math
from pathlib import Path

import numpy as np
import pytest
from conftest import TINY
from matplotlib.image import imread

from aslsr import __version__, metrics
from aslsr.cli import main
from aslsr.errors import InputError
from aslsr.io import load_mask, load_volume
from aslsr.phantom import PhantomConfig
from aslsr.reproduce import ABLATIONS, reproduce

pytestmark = pytest.mark.slow

METHODS = ["nearest", "linear", "spline", "dTV", "proposed"]
FILES = (
    "table1.md",
    "table1.csv",
    "table2.md",
    "table2.csv",
    "ablations.md",
    "ablations.csv",
    "fig_sagittal.png",
    "fig_transaxial.png",
    "fig_experiment2.png",
    "summary.json",
)


@pytest.fixture(scope="module")
def reproduced(tmp_path_factory) -> tuple[Path, dict]:
    out = tmp_path_factory.mktemp("reproduce") / "out"
    summary = reproduce(
        out, preset="test", ablations=True, seed=0, phantom=PhantomConfig(seed=3, lesion=True, **TINY), progress=False
    )
    return out, summary


def read_csv(path: Path) -> list[dict[str, str]]:
    with path.open(newline="") as handle:
        return list(csv.DictReader(handle))


def test_every_output_is_written(reproduced):
    out, _ = reproduced
    for name in FILES:
        assert (out / name).is_file(), name
    for folder in (
        "experiment1",
        "experiment2",
        "ablations/no_t1",
        "ablations/lowpass",
        "ablations/adversarial",
        "ablations/all_scales",
        "ablations/no_consistency",
    ):
        assert (out / folder / "sr.nii.gz").is_file() and (out / folder / "report.json").is_file(), folder
    assert (out / "phantom" / "case.json").is_file()
    assert not list(out.rglob(".*partial*")) and not [p for p in out.iterdir() if p.name.startswith("tmp")]


def test_table1_has_the_four_methods_with_finite_numbers(reproduced):
    out, _ = reproduced
    rows = read_csv(out / "table1.csv")
    assert [row["method"] for row in rows] == METHODS
    for key in ("nr", "hr", "clean"):
        for metric in ("psnr", "ssim"):
            assert f"{metric}_{key}" in rows[0] and f"{metric}_{key}_brain" in rows[0]
    assert "lesion_contrast_error" in rows[0]
    for row in rows:
        values = [float(v) for k, v in row.items() if k != "method"]
        assert all(math.isfinite(v) for v in values), row
    text = (out / "table1.md").read_text()
    assert "Preset `test`, seed 0" in text and "docs/metrics.md" in text
    for method in METHODS:
        assert f"| {method} |" in text


def test_csv_numbers_equal_a_recomputation_from_the_nifti_files(reproduced):
    out, _ = reproduced
    phantom = out / "phantom"
    grid = load_volume(phantom / "asl_nr.nii.gz").grid
    mask = load_mask(phantom / "mask.nii.gz", grid)
    rows = {row["method"]: row for row in read_csv(out / "table1.csv")}
    hr = load_volume(phantom / "ref_hr.nii.gz").data
    sr = load_volume(out / "experiment1" / "sr.nii.gz").data
    assert float(rows["proposed"]["psnr_hr_brain"]) == pytest.approx(metrics.psnr(hr, sr, mask), rel=1e-12)
    clean = load_volume(phantom / "ref_clean.nii.gz").data
    linear = load_volume(out / "experiment1" / "linear.nii.gz").data
    assert float(rows["linear"]["ssim_clean"]) == pytest.approx(metrics.ssim(clean, linear), rel=1e-12)


def test_table2_scores_experiment2_against_the_truth(reproduced):
    out, summary = reproduced
    rows = read_csv(out / "table2.csv")
    assert [row["method"] for row in rows] == METHODS
    assert all(math.isfinite(float(v)) for row in rows for k, v in row.items() if k != "method")
    sr = load_volume(out / "experiment2" / "sr.nii.gz")
    assert np.allclose(sr.grid.voxel_size, 2.0)  # the tiny phantom's T1 voxel size
    assert "box-averaged" in summary["experiment2"]["truth"]  # 2 mm SR grid != the 1 mm truth grid


def test_figures_load_and_are_not_blank(reproduced):
    out, _ = reproduced
    for name in ("fig_sagittal.png", "fig_transaxial.png", "fig_experiment2.png"):
        image = imread(out / name)[..., :3]
        assert image.shape[0] > 200 and image.shape[1] > 400, name
        assert image.std() > 0.1 and len(np.unique(image[::3, ::3].reshape(-1, 3), axis=0)) > 50, name


def test_ablation_table_has_every_variant_and_the_baselines(reproduced):
    out, _ = reproduced
    rows = read_csv(out / "ablations.csv")
    variants = [row for row in rows if row["kind"] == "method"]
    assert [row["variant"] for row in variants] == [label for _, label, _ in ABLATIONS]
    assert [row["variant"] for row in rows if row["kind"] == "baseline"] == [
        "linear interpolation",
        "spline interpolation",
        "dTV (T1-guided)",
    ]
    for row in variants:
        assert float(row["training_s"]) > 0
        assert all(math.isfinite(float(row[k])) for k in ("psnr_hr_brain", "ssim_clean_brain", "lesion_contrast_error"))
    table1 = {row["method"]: row for row in read_csv(out / "table1.csv")}
    assert variants[0]["psnr_hr_brain"] == table1["proposed"]["psnr_hr_brain"]
    no_t1 = json.loads((out / "ablations" / "no_t1" / "report.json").read_text())
    assert no_t1["config"]["use_t1"] is False


def test_summary_holds_everything(reproduced):
    out, summary = reproduced
    on_disk = json.loads((out / "summary.json").read_text())
    assert on_disk["aslsr_version"] == __version__ and on_disk["preset"] == "test" and on_disk["seed"] == 0
    assert set(on_disk["experiment1"]["table"]) == set(METHODS)
    assert on_disk["experiment1"]["report"]["timings"]["training_s"] > 0
    assert len(on_disk["ablations"]) == len(ABLATIONS) + 3 and summary["preset"] == "test"  # linear, spline, dTV


def test_a_non_empty_folder_is_refused_without_overwrite(reproduced, capsys):
    out, _ = reproduced
    before = sorted(p.name for p in out.iterdir())
    with pytest.raises(InputError, match="--overwrite"):
        reproduce(out, preset="test")
    code = main(["reproduce", str(out), "--preset", "test", "--quiet"])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and len(err) == 1 and "--overwrite" in err[0]
    assert sorted(p.name for p in out.iterdir()) == before
