"""benchmarks/lesion_noise.py: the noisy-vs-noise-free and noise-draw lesion tables quoted for #14."""

import dataclasses
import shutil

import pytest
from conftest import COARSE_VARIANT, benchmark_script, tiny_run_args

from aslsr import metrics
from aslsr.baselines import interpolate
from aslsr.cli import main
from aslsr.io import load_mask, load_volume
from aslsr.phantom_variant_simulation import simulate_variant
from aslsr.phantom_variants import variant


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


def test_draws_score_spline_and_models_on_other_noise(tmp_path, capsys):
    """--draws: the variant simulated again with other ASL noise; spline's mean over the draws is the mean of
    the errors on those same draws, recomputed here from the simulation."""
    spec = variant("hypo-box", seed=1, **COARSE_VARIANT)
    phantom, case = tmp_path / "panel/hypo-box/seed0/phantom", tmp_path / "cases/hypo-box"
    files = {role: entry["path"] for role, entry in simulate_variant(phantom, spec)["files"].items()}
    case.mkdir(parents=True)
    for role, name in (("t1w_aligned", "t1"), ("ref_clean", "ref_clean"), ("mask", "mask"), ("lesion", "lesion")):
        shutil.copyfile(files[role], case / f"{name}.nii.gz")
    run = tmp_path / "models/hypo-box/test/seed0"
    args = ["run", "--asl", files["asl_lr"], "--t1", files["t1w_aligned"], "--out", str(run), "--no-register"]
    assert main([*args, "--like", files["ref_clean"], "--preset", "test", "--quiet"]) == 0
    argv = [str(tmp_path / "panel"), "--models", str(tmp_path / "models"), "--cases", str(case.parent), "--draws", "2"]
    assert benchmark_script("lesion_noise").main(argv) == 0
    rows = [line.split(" | ") for line in capsys.readouterr().out.splitlines() if line.startswith("| hypo-box |")]
    spline, model = rows[-2], rows[-1]
    assert spline[1] == "spline" and model[1] == "test seed0"
    assert model[3].rstrip(" |") in ("0 of 2", "1 of 2", "2 of 2")
    reference = load_volume(case / "ref_clean.nii.gz")
    roi, brain = load_mask(case / "lesion.nii.gz", reference.grid), load_mask(case / "mask.nii.gz", reference.grid)
    errors = []
    for draw in (1, 2):
        other = simulate_variant(tmp_path / f"draw{draw}", dataclasses.replace(spec, noise_draw=draw))
        image = interpolate(load_volume(other["files"]["asl_lr"]["path"]), reference.grid, "spline")
        errors.append(100 * metrics.lesion_contrast_error(reference.data, image, roi, brain))
    assert spline[2].startswith(f"{sum(errors) / 2:.2f} % ({min(errors):.2f}-{max(errors):.2f})")
