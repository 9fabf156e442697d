"""benchmarks/lesion_noise.py: the noisy-vs-noise-free lesion table that BENCHMARKS.md quotes for #14."""

import shutil

import pytest
from conftest import benchmark_script, tiny_run_args

from aslsr import metrics
from aslsr.baselines import interpolate
from aslsr.cli import main
from aslsr.io import load_mask, load_volume


@pytest.fixture(scope="module")
def layout(tiny_case, tmp_path_factory):
    """A panel output, a prepared case and a stability output with one trained model, as the script expects.
    Its "noise-free" LR is a copy of the noisy one, so both columns must agree."""
    root = tmp_path_factory.mktemp("lesion_noise")
    phantom, case = root / "panel/v/seed0/phantom", root / "cases/v"
    phantom.mkdir(parents=True)
    case.mkdir(parents=True)
    shutil.copyfile(tiny_case["asl_lr"], phantom / "asl_lr.nii.gz")
    shutil.copyfile(tiny_case["asl_lr"], phantom / "asl_lr_clean.nii.gz")
    for role, name in (("t1w", "t1"), ("ref_clean", "ref_clean"), ("mask", "mask"), ("lesion", "lesion")):
        shutil.copyfile(tiny_case[role], case / f"{name}.nii.gz")
        shutil.copyfile(tiny_case[role], phantom / f"{name}.nii.gz")
    run = root / "models/v/test/seed0"
    assert main(tiny_run_args(tiny_case, run, "--no-register", "--like", tiny_case["ref_clean"])) == 0
    return root


def test_models_are_scored_on_both_lr_images(layout, capsys):
    root = layout
    argv = [str(root / "panel"), "--models", str(root / "models"), "--cases", str(root / "cases")]
    assert benchmark_script("lesion_noise").main(argv) == 0
    rows = [line.split(" | ") for line in capsys.readouterr().out.splitlines() if line.startswith("| v |")]
    spline, model = rows[0], rows[1]
    assert spline[1] == "spline" and model[1] == "test seed0"
    assert model[2] == model[3].rstrip(" |")  # the same LR twice: the same error
    case = root / "cases/v"
    reference = load_volume(case / "ref_clean.nii.gz")
    image = interpolate(load_volume(root / "panel/v/seed0/phantom/asl_lr.nii.gz"), reference.grid, "spline")
    roi, brain = load_mask(case / "lesion.nii.gz", reference.grid), load_mask(case / "mask.nii.gz", reference.grid)
    assert spline[2] == f"{100 * metrics.lesion_contrast_error(reference.data, image, roi, brain):.2f} %"


def test_models_need_their_cases(layout):
    with pytest.raises(SystemExit):
        benchmark_script("lesion_noise").main([str(layout / "panel"), "--models", str(layout / "models")])
