import math

import numpy as np
import pytest
import torch

from aslsr.config import preset
from aslsr.grids import Grid
from aslsr.networks import Generator
from aslsr.pyramid import Scale
from aslsr.scale_training import ScaleTrainer, train_scale


def _scale(seed: int = 0) -> tuple[Scale, np.ndarray]:
    """A 12^3 scale in network units (a smooth ASL following the T1) and a coarser input brought up (noisy)."""
    rng = np.random.default_rng(seed)
    t1 = np.clip(rng.normal(0.5, 0.2, (12, 12, 12)), 0, 1).astype(np.float32)
    asl = (0.8 * t1 + 0.1).astype(np.float32)
    source = (asl + rng.normal(0, 0.05, asl.shape)).astype(np.float32)
    return Scale(Grid((12, 12, 12), np.eye(4)), asl, t1), source


def _trainer(config, seed: int = 0) -> ScaleTrainer:
    torch.manual_seed(seed)
    scale, source = _scale(seed)
    return ScaleTrainer(
        Generator(channels=config.generator_channels),
        scale,
        source,
        level=1,
        n_scales=2,
        config=config,
        device=torch.device("cpu"),
        rng=np.random.default_rng(seed),
        noise_generator=torch.Generator().manual_seed(seed),
    )


def test_a_row_is_logged_only_when_due_and_validation_rows_carry_the_held_out_loss():
    config = preset("test", use_adversarial=False, validate_every=4, log_every=2, iterations=(9,), extend_iterations=0)
    trainer = _trainer(config)
    assert trainer.total == 9
    terms = {"mse": 0.5}
    assert trainer.record(1, 1e-3, terms) == {}  # neither logged nor validated nor the last
    logged = trainer.record(2, 1e-3, terms)
    assert logged["iteration"] == 2 and logged["mse"] == 0.5 and "validation" not in logged
    validated = trainer.record(4, 1e-3, terms)
    assert math.isfinite(validated["validation"]) and trainer.best_live == validated["validation"]
    assert trainer.record(8, 1e-3, terms)["iteration"] == 8  # the last iteration is always logged
    assert [row["iteration"] for row in trainer.rows] == [2, 4, 8]


def _error(generator: Generator, scale: Scale, source: np.ndarray) -> float:
    """Mean squared error of G_n([source, T1]) against x_n over the whole scale."""
    image, t1 = (torch.from_numpy(a)[None, None] for a in (source, scale.t1))
    with torch.no_grad():
        return torch.mean((generator(image, t1, residual=True) - torch.from_numpy(scale.asl)) ** 2).item()


def test_the_loop_trains_the_generator_and_summarises_the_scale_in_its_last_row():
    config = preset("test", use_adversarial=False, iterations=(30,), extend_iterations=0, validate_every=5)
    trainer = _trainer(config)
    trainer.generator.unet.reset_head()  # the identity on its image input, as a finer scale starts
    scale, source = _scale()
    before = _error(trainer.generator, scale, source)
    warnings: list[str] = []
    rows, seconds = train_scale(trainer, progress=False, warnings=warnings)
    assert _error(trainer.generator, scale, source) < before and seconds > 0 and warnings == []
    last = rows[-1]
    assert last["steps"] == 30 and 0 <= last["best_iteration"] <= 30 and last["best_weights"] == "last"
    assert last["hard_batches"] == 0 and last["clipped_steps"] == 0


@pytest.mark.parametrize("stop", [False, True])
def test_a_roll_back_warns_with_the_scale_and_iteration_and_says_whether_the_scale_stops(monkeypatch, stop):
    trainer = _trainer(preset("test", use_adversarial=False))
    monkeypatch.setattr(trainer.guard, "roll_back", lambda: stop)
    warnings: list[str] = []
    assert trainer.roll_back(7, "the data term jumped", warnings) is stop
    assert warnings[0].startswith("scale 1, iteration 7: the data term jumped; ")
    assert ("stopped this scale" in warnings[0]) is stop


def test_a_resumed_trainer_takes_up_the_rows_the_best_loss_and_the_clock():
    config = preset("test", use_adversarial=False, validate_every=2, log_every=2)
    first = _trainer(config)
    first.record(0, 1e-3, {"mse": 0.1})
    first.record(2, 1e-3, {"mse": 0.1})
    state = first.checkpoint_state()

    class Saved:  # the fields of a checkpoint.TrainingState that a resume reads
        scale, iteration = state, 3
        numpy_rng = np.random.default_rng(5).bit_generator.state
        noise_rng = torch.Generator().manual_seed(5).get_state()
        torch_rng = torch.get_rng_state()

    second = _trainer(config, seed=1)
    assert second.resume(Saved) == 3
    assert second.rows == first.rows and second.best_live == min(row["validation"] for row in first.rows)
    assert second.seconds() >= state["seconds"]
