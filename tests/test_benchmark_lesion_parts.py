"""benchmarks/lesion_parts.py: a lesion-contrast error split into the lesion's and the mirror region's errors."""

import shutil

import numpy as np
import pytest
from conftest import benchmark_script

from aslsr import metrics
from aslsr.baselines import interpolate
from aslsr.io import load_mask, load_volume, save_volume


@pytest.fixture(scope="module")
def case_and_run(tiny_case, tmp_path_factory):
    """A case folder (reference, mask, lesion) and a run folder with the spline and, as "sr", the reference."""
    root = tmp_path_factory.mktemp("lesion_parts")
    case, run = root / "case", root / "run"
    case.mkdir()
    run.mkdir()
    for role in ("ref_clean", "mask", "lesion"):
        shutil.copyfile(tiny_case[role], case / f"{role}.nii.gz")
    reference = load_volume(case / "ref_clean.nii.gz")
    spline = interpolate(load_volume(tiny_case["asl_lr"]), reference.grid, "spline")
    save_volume(run / "spline.nii.gz", spline, reference.grid)
    shutil.copyfile(case / "ref_clean.nii.gz", run / "sr.nii.gz")
    return case, run


def test_the_parts_compose_to_the_contrast_error(case_and_run):
    case, run = case_and_run
    reference = load_volume(case / "ref_clean.nii.gz")
    roi = load_mask(case / "lesion.nii.gz", reference.grid)
    brain = load_mask(case / "mask.nii.gz", reference.grid)
    spline = load_volume(run / "spline.nii.gz").data.astype(np.float64)
    parts = benchmark_script("lesion_parts").lesion_parts(reference.data, spline, roi, brain)
    composed = (1 + parts["lesion"] / 100) / (1 + parts["mirror"] / 100) - 1
    assert composed == pytest.approx(parts["contrast"] / 100, rel=1e-9)
    assert abs(parts["contrast"]) / 100 == pytest.approx(
        metrics.lesion_contrast_error(reference.data, spline, roi, brain), rel=1e-9
    )
    assert parts["lesion"] == pytest.approx(
        100 * (spline[roi].mean() / reference.data[roi].astype(np.float64).mean() - 1)
    )
    assert abs(parts["lesion"]) > 0.01  # the spline of a noisy 2x-coarser image is not the reference


def test_table_rows_per_image_and_lesion(case_and_run, capsys):
    case, run = case_and_run
    assert benchmark_script("lesion_parts").main([str(case), str(run)]) == 0
    rows = [line.split(" | ") for line in capsys.readouterr().out.splitlines() if line.startswith(f"| {run} |")]
    assert [row[1] for row in rows] == ["spline", "sr"]  # the images present, in the script's order
    assert rows[1][3:] == ["+0.00 %", "+0.00 %", "+0.00 % |"]  # the reference itself: no error anywhere
    assert all(row[2] == "lesion" for row in rows)


def test_a_case_without_lesions_is_refused(case_and_run, tmp_path):
    case, run = case_and_run
    for name in ("ref_clean", "mask"):
        shutil.copyfile(case / f"{name}.nii.gz", tmp_path / f"{name}.nii.gz")
    with pytest.raises(SystemExit, match="no lesion ROI"):
        benchmark_script("lesion_parts").main([str(tmp_path), str(run)])
