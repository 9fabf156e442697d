"""`aslsr run` and `aslsr generate` end to end on the tiny phantom (real NIfTI, registration, training)."""

import json
import sys

import nibabel as nib
import numpy as np
import pytest
import torch
from conftest import tiny_run_args

from aslsr.cli import main
from aslsr.io import load_volume

OUTPUTS = (
    "sr.nii.gz",
    "nearest.nii.gz",
    "linear.nii.gz",
    "spline.nii.gz",
    "dtv.nii.gz",
    "t1_registered.nii.gz",
    "model.pt",
    "report.json",
    "report.html",
    "losses.csv",
    "qc.png",
)


@pytest.fixture(scope="module")
def run_dir(tiny_case, tmp_path_factory):
    out = tmp_path_factory.mktemp("run") / "out"
    code = main(tiny_run_args(tiny_case, out, full=True))
    assert code == 0
    return out


def test_run_writes_every_output_on_the_target_grid(run_dir, tiny_case):
    for name in OUTPUTS:
        assert (run_dir / name).is_file(), name
    reference = load_volume(tiny_case["asl_nr"]).grid
    for name in ("sr", "nearest", "linear", "spline", "dtv", "t1_registered"):
        volume = load_volume(run_dir / f"{name}.nii.gz", allow_constant=True)
        assert volume.grid == reference, name
        assert np.all(np.isfinite(volume.data))
    assert not list(run_dir.parent.glob(".*partial*"))


def test_report_holds_config_timings_and_registration(run_dir):
    report = json.loads((run_dir / "report.json").read_text())
    assert report["config"]["iterations"] == [3, 4]
    assert report["seed"] == 0 and report["device"] == "cpu"
    assert report["command"] == " ".join(sys.argv)  # the command line passes its own; main() ran in this process
    assert report["registration"]["performed"] is True
    assert len(report["registration"]["matrix_asl_to_t1_ras_mm"]) == 4
    assert report["timings"]["training_s"] > 0 and report["peak_memory_mb"] > 0
    agreement = report["lr_agreement"]
    assert agreement["sr_rms"] >= 0 and agreement["ratio_to_spline"] == pytest.approx(
        agreement["sr_rms"] / agreement["spline_rms"]
    )
    assert [s["scale"] for s in report["scales"]] == list(range(len(report["grids"]["scales"])))
    generation = report["generation"]  # box data at the learnt zoom
    assert generation["refines_acquisition_dtv"] is True and generation["learnt_zoom_share"] == 0.0
    assert 0.0 < generation["relative_noise"] < 1.0
    header = (run_dir / "losses.csv").read_text().splitlines()[0]
    assert header.startswith("scale,iteration,seconds,lr,loss_g,mse") and "validation" in header


def test_registration_recovers_the_phantom_motion(run_dir, tiny_case):
    report = json.loads((run_dir / "report.json").read_text())
    truth = np.array(tiny_case["_case"]["t1_motion"]["matrix"])
    found = np.array(report["registration"]["matrix_asl_to_t1_ras_mm"])
    corners = np.array([[x, y, z, 1.0] for x in (-60, 60) for y in (-80, 60) for z in (-40, 60)])
    assert np.abs((found - truth) @ corners.T).max() < 2.0  # mm, on coarse 7.5 mm test grids


def test_run_refuses_a_non_empty_output_folder(run_dir, tiny_case, capsys):
    before = sorted(p.name for p in run_dir.iterdir())
    code = main(tiny_run_args(tiny_case, run_dir))
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and len(err) == 1 and "--overwrite" in err[0]
    assert sorted(p.name for p in run_dir.iterdir()) == before


def test_run_with_a_missing_input_leaves_nothing(tiny_case, tmp_path, capsys):
    out = tmp_path / "never"
    code = main(tiny_run_args(tiny_case, out, asl=str(tmp_path / "missing.nii.gz")))
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and len(err) == 1 and "missing.nii.gz" in err[0]
    assert not out.exists() and not list(tmp_path.glob(".*"))


def test_generate_onto_another_grid_without_retraining(run_dir, tiny_case, tmp_path):
    out = tmp_path / "sr_zoom.nii.gz"
    code = main(
        [
            "generate",
            "--model",
            str(run_dir / "model.pt"),
            "--asl",
            tiny_case["asl_lr"],
            "--t1",
            tiny_case["t1w"],
            "--out",
            str(out),
            "--zoom",
            "3",
            "--no-register",
        ]
    )
    assert code == 0
    image = nib.load(out)
    lr = load_volume(tiny_case["asl_lr"]).grid
    assert image.shape == tuple(3 * n for n in lr.shape)
    np.testing.assert_allclose(np.linalg.norm(image.affine[:3, :3], axis=0), lr.voxel_size / 3, rtol=1e-5)


def test_generate_with_the_runs_inputs_gives_the_runs_sr(run_dir, tiny_case, tmp_path):
    """The same inputs (M0 and so the brain mask of the consistency step, registration seed, grid) give the same SR;
    a --mask over the whole ASL grid changes it (the consistency step then acts outside the brain too)."""
    args = ["generate", "--model", str(run_dir / "model.pt"), "--asl", tiny_case["asl_lr"], "--t1", tiny_case["t1w"]]
    args += ["--m0", tiny_case["m0_lr"], "--like", tiny_case["asl_nr"]]
    assert main([*args, "--out", str(tmp_path / "again.nii.gz")]) == 0
    written = np.asarray(nib.load(run_dir / "sr.nii.gz").dataobj)
    np.testing.assert_allclose(np.asarray(nib.load(tmp_path / "again.nii.gz").dataobj), written, rtol=0, atol=1e-5)
    everywhere = tmp_path / "everywhere_mask.nii.gz"
    lr = load_volume(tiny_case["asl_lr"])
    nib.save(nib.Nifti1Image(np.ones(lr.grid.shape, np.uint8), lr.affine), everywhere)
    assert main([*args, "--mask", str(everywhere), "--out", str(tmp_path / "masked.nii.gz")]) == 0
    assert not np.allclose(np.asarray(nib.load(tmp_path / "masked.nii.gz").dataobj), written, atol=1e-5)


def test_generate_can_switch_the_flip_ensemble(run_dir, tiny_case, tmp_path):
    import torch

    from aslsr.model import Model

    model = Model.load(run_dir / "model.pt")  # a few test iterations may keep the identity start: perturb it
    with torch.no_grad():
        for parameter in model.generator.parameters():
            parameter.add_(0.05 * torch.randn(parameter.shape, generator=torch.Generator().manual_seed(0)))
    model_path = model.save(tmp_path / "model.pt")

    def generate(name, *extra):
        args = ["generate", "--model", str(model_path), "--asl", tiny_case["asl_lr"], "--t1", tiny_case["t1w"]]
        assert main([*args, "--out", str(tmp_path / name), "--zoom", "2", "--no-register", *extra]) == 0
        return np.asarray(nib.load(tmp_path / name).dataobj)

    as_trained, off, on = (
        generate("a.nii.gz"),
        generate("b.nii.gz", "--no-flip-ensemble"),
        generate("c.nii.gz", "--flip-ensemble"),
    )
    np.testing.assert_array_equal(as_trained, off)  # the test preset's model is applied without it
    assert not np.allclose(on, off)


def test_generate_refuses_a_crafted_model(tiny_case, tmp_path, capsys):
    evil = tmp_path / "model.pt"
    evil.write_bytes(b"\x80\x02cos\nsystem\nq\x00X\x04\x00\x00\x00trueq\x01\x85q\x02Rq\x03.")
    code = main(
        [
            "generate",
            "--model",
            str(evil),
            "--asl",
            tiny_case["asl_lr"],
            "--t1",
            tiny_case["t1w"],
            "--out",
            str(tmp_path / "sr.nii.gz"),
        ]
    )
    assert code == 2 and "model.pt" in capsys.readouterr().err
    assert not (tmp_path / "sr.nii.gz").exists()


def test_config_threads_bound_the_whole_run_and_are_restored(tiny_case, tmp_path):
    config = tmp_path / "one.toml"
    config.write_text("threads = 1\n")
    before = torch.get_num_threads()
    torch.set_num_threads(2)
    try:
        code = main(tiny_run_args(tiny_case, tmp_path / "out", "--config", str(config), "--method", "dtv"))
        after = torch.get_num_threads()
    finally:
        torch.set_num_threads(before)
    report = json.loads((tmp_path / "out" / "report.json").read_text())
    assert code == 0 and report["threads"] == 1 and after == 2


def test_the_sr_follows_the_units_of_the_asl(tiny_case, tmp_path):
    """ASL in other units (e.g. a ratio to M0, ~1e-4 of ml/100g/min) gives the same SR in those units:
    every threshold is relative (noise, dTV weight, normalisation), here with the default's noise matching, weight
    average, flips, relative clip and `auto` acquisition on the test preset's short training."""
    (tmp_path / "fast.toml").write_text(
        'input_noise = "matched"\nacquisition = "auto"\nema_decay = 0.99\nflip_ensemble = true\n'
        'generator_init = "he"\ngrad_clip_relative = 5.0\ninput_source = "dtv"\n'
    )
    asl = nib.load(tiny_case["asl_lr"])
    results = {}
    for factor in (1.0, 1e-4):
        path = tmp_path / f"asl_{factor:g}.nii.gz"
        nib.save(nib.Nifti1Image(np.asarray(asl.dataobj, np.float32) * np.float32(factor), asl.affine), path)
        out = tmp_path / f"out_{factor:g}"
        args = tiny_run_args(tiny_case, out, "--config", str(tmp_path / "fast.toml"), asl=str(path), full=True)
        assert main(args) == 0
        results[factor] = {name: load_volume(out / f"{name}.nii.gz").data / factor for name in ("sr", "dtv")}
        assert json.loads((out / "report.json").read_text())["warnings"] == []
    for name, image in results[1e-4].items():
        reference = results[1.0][name]
        np.testing.assert_allclose(image, reference, atol=1e-4 * float(np.abs(reference).max()), err_msg=name)
