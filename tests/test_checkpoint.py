"""Checkpoints and resume: an interrupted training continues to exactly the uninterrupted result."""

import os
import pickle
import signal
import subprocess
import sys
import time

import numpy as np
import pytest
import torch

from aslsr.checkpoint import Checkpointer, TrainingState, fingerprint
from aslsr.cli import main
from aslsr.config import preset
from aslsr.errors import InputError
from aslsr.io import load_volume
from aslsr.registration import apply_registration, identity_result
from aslsr.train import train


class Crash(Exception):
    pass


class CrashingCheckpointer(Checkpointer):
    """Saves like the real one, then dies on the ``crash_at``-th save (as a killed process would)."""

    def __init__(self, path, *, fingerprint, crash_at):
        super().__init__(path, fingerprint=fingerprint)
        self.saves, self.crash_at = 0, crash_at

    def save(self, state):
        super().save(state)
        self.saves += 1
        if self.saves == self.crash_at:
            raise Crash


@pytest.fixture(scope="module")
def inputs(tiny_case):
    asl, t1 = load_volume(tiny_case["asl_lr"]), load_volume(tiny_case["t1w"])
    return asl, apply_registration(t1, identity_result())


def _weights(model):
    return {k: v.clone() for k, v in model.generator.state_dict().items()}


@pytest.mark.parametrize(
    "overrides",
    [
        {},
        {"input_source": "generated"},
        # the fast preset's recipe (no critic, no low-pass term, refining dTV), on k-space data
        {
            "single_scale": True,
            "use_adversarial": False,
            "input_source": "dtv",
            "use_lowpass": False,
            "acquisition": "kspace",
            "input_noise": "matched",  # the noise estimate and the noise drawn for the input come out the same
        },
        # training extended past the nominal count while the held-out loss falls: the rule reads the restored rows
        {"validate_every": 1, "extend_iterations": 4, "extend_window": 2, "extend_min_fall": 0.0},
    ],
)
@pytest.mark.parametrize("crash_at", [1, 2, 3])
def test_resumed_training_ends_with_the_uninterrupted_weights(inputs, tmp_path, overrides, crash_at):
    config = preset("test", iterations=(4, 6), checkpoint_every=2, threads=1, **overrides)
    _assert_resume_is_exact(inputs, tmp_path, config, crash_at)


def test_resume_restores_the_relative_gradient_clip(inputs, tmp_path):
    """The clip's recent norms travel in the checkpoint: resumed at step 12, it clips exactly as before."""
    config = preset(
        "test",
        iterations=(16,),
        single_scale=True,
        use_adversarial=False,
        grad_clip_relative=1.2,
        checkpoint_every=6,
        threads=1,
    )
    _assert_resume_is_exact(inputs, tmp_path, config, crash_at=2)


def _assert_resume_is_exact(inputs, tmp_path, config, crash_at):
    asl, t1 = inputs
    zoom = np.array([2.0, 2.0, 1.0])
    reference = train(asl, t1, config=config, zoom=zoom, progress=False)

    crashing = CrashingCheckpointer(tmp_path / "checkpoint.pt", fingerprint="same", crash_at=crash_at)
    with pytest.raises(Crash):
        train(asl, t1, config=config, zoom=zoom, progress=False, checkpointer=crashing)
    resumed = train(
        asl,
        t1,
        config=config,
        zoom=zoom,
        progress=False,
        checkpointer=Checkpointer(tmp_path / "checkpoint.pt", fingerprint="same"),
    )

    for name, value in _weights(reference).items():
        assert torch.equal(value, resumed.generator.state_dict()[name]), name
    assert [(r["scale"], r["iteration"], r["loss_g"]) for r in resumed.history] == [
        (r["scale"], r["iteration"], r["loss_g"]) for r in reference.history
    ]


def test_a_checkpoint_from_other_inputs_is_refused(inputs, tmp_path):
    asl, t1 = inputs
    config = preset("test", checkpoint_every=1)
    key = fingerprint(config=config.to_dict(), arrays={"asl": asl.data})
    train(
        asl,
        t1,
        config=config,
        zoom=np.array([2.0, 2.0, 1.0]),
        progress=False,
        checkpointer=Checkpointer(tmp_path / "c.pt", fingerprint=key),
    )
    other = fingerprint(config=config.to_dict(), arrays={"asl": asl.data * 2})
    with pytest.raises(InputError, match="other inputs or settings"):
        Checkpointer(tmp_path / "c.pt", fingerprint=other).load()
    assert fingerprint(config={**config.to_dict(), "threads": 7}, arrays={"asl": asl.data}) == key


class _Exploit:
    def __reduce__(self):
        return (os.system, ("touch pwned",))


def test_a_crafted_checkpoint_is_refused_without_running_code(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    path = tmp_path / "checkpoint.pt"
    path.write_bytes(pickle.dumps({"format": "aslsr-checkpoint-1", "x": _Exploit()}, protocol=2))
    with pytest.raises(InputError, match="not a readable aslsr checkpoint"):
        Checkpointer(path, fingerprint="x").load()
    assert not (tmp_path / "pwned").exists()


def test_the_state_round_trips_through_weights_only_loading(tmp_path):
    rng = np.random.default_rng(5)
    state = TrainingState(
        level=1,
        iteration=3,
        generator={"w": torch.ones(2)},
        numpy_rng=rng.bit_generator.state,
        noise_rng=torch.Generator().manual_seed(2).get_state(),
        torch_rng=torch.get_rng_state(),
        history=[{"scale": 0, "iteration": 0, "mse": 0.5}],
        warnings=["w"],
    )
    checkpointer = Checkpointer(tmp_path / "c.pt", fingerprint="f")
    checkpointer.save(state)
    loaded = checkpointer.load()
    assert loaded.level == 1 and loaded.iteration == 3 and loaded.history == state.history
    assert loaded.numpy_rng == state.numpy_rng and torch.equal(loaded.noise_rng, state.noise_rng)
    checkpointer.remove()
    assert checkpointer.load() is None


def _run_command(case, out, config, *extra):
    return [
        sys.executable,
        "-m",
        "aslsr",
        "run",
        "--asl",
        case["asl_lr"],
        "--t1",
        case["t1w"],
        "--m0",
        case["m0_lr"],
        "--out",
        str(out),
        "--like",
        case["asl_nr"],
        "--config",
        str(config),
        "--quiet",
        *extra,
    ]


@pytest.mark.slow
def test_a_run_killed_mid_scale_resumes_to_the_same_result(tiny_case, tmp_path):
    config = tmp_path / "slow.toml"
    config.write_text('preset = "test"\niterations = [40, 30]\ncheckpoint_every = 5\nthreads = 1\n')
    complete = tmp_path / "complete"
    subprocess.run(_run_command(tiny_case, complete, config), check=True, capture_output=True)

    killed = tmp_path / "killed"
    checkpoint = tmp_path / ".killed.partial" / "checkpoint.pt"
    process = subprocess.Popen(
        _run_command(tiny_case, killed, config), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    deadline = time.monotonic() + 300
    while not checkpoint.exists() and process.poll() is None and time.monotonic() < deadline:
        time.sleep(0.02)
    process.send_signal(signal.SIGKILL)
    process.wait()
    state = Checkpointer(checkpoint, fingerprint="unused")
    saved = torch.load(state.path, weights_only=True)
    assert saved["iteration"] > 0, "the kill should land mid-scale"
    assert not killed.exists(), "a killed run must not publish outputs"

    refused = subprocess.run(_run_command(tiny_case, killed, config), capture_output=True, text=True)
    assert refused.returncode == 2 and "--resume" in refused.stderr

    other_target = [
        a
        for a in _run_command(tiny_case, killed, config, "--resume", "--zoom", "1.5")
        if a not in ("--like", tiny_case["asl_nr"])
    ]
    refused = subprocess.run(other_target, capture_output=True, text=True)  # the target grid is in the fingerprint
    assert refused.returncode == 2 and "other inputs or settings" in refused.stderr, refused.stderr
    assert checkpoint.exists() and not killed.exists()

    command = [arg for arg in _run_command(tiny_case, killed, config, "--resume") if arg != "--quiet"]
    resumed = subprocess.run(command, capture_output=True, text=True)
    assert resumed.returncode == 0, resumed.stderr
    assert "resuming from" in resumed.stderr  # an INFO log line (stderr; --quiet would hide it)
    assert "it/s" not in resumed.stderr  # no progress bar when stderr is not a terminal
    assert not checkpoint.parent.exists() and not (killed / "checkpoint.pt").exists()
    for name in ("sr.nii.gz", "spline.nii.gz", "t1_registered.nii.gz"):
        a, b = load_volume(complete / name, allow_constant=True), load_volume(killed / name, allow_constant=True)
        assert np.array_equal(a.data, b.data) and np.array_equal(a.affine, b.affine), name


def test_resume_of_a_complete_run_and_resume_with_overwrite_are_refused(tiny_case, tmp_path, capsys):
    out = tmp_path / "done"
    out.mkdir()
    (out / "report.json").write_text("{}")
    args = ["run", "--asl", tiny_case["asl_lr"], "--t1", tiny_case["t1w"], "--out", str(out), "--preset", "test"]
    assert main(args + ["--resume"]) == 2
    assert "already complete" in capsys.readouterr().err
    with pytest.raises(SystemExit) as exit_info:
        main(args + ["--resume", "--overwrite"])
    assert exit_info.value.code == 2
