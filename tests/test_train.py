import dataclasses

import numpy as np
import pytest
import torch

from aslsr.config import preset
from aslsr.io import load_volume
from aslsr.pyramid import zoom_between
from aslsr.train import plan_scales, train


@pytest.fixture(scope="module")
def inputs(tiny_case):
    asl, nr, t1 = (load_volume(tiny_case[r]) for r in ("asl_lr", "asl_nr", "t1w"))
    return asl, t1, zoom_between(asl.grid, nr.grid)


def _weights(model):
    return torch.cat([p.detach().flatten() for p in model.generator.parameters()])


def test_two_scale_training_end_to_end(inputs):
    asl, t1, zoom = inputs
    config = preset("test", n_scales=2)
    model = train(asl, t1, config=config, zoom=zoom, progress=False)
    assert len(model.grids) == 2 and model.grids[-1] == asl.grid
    np.testing.assert_allclose(model.factor, [2, 2, 1])
    assert {row["scale"] for row in model.history} == {0, 1}
    assert all(np.isfinite(row["loss_g"]) for row in model.history)
    assert any("gp" in row for row in model.history) and any("adv_g" in row for row in model.history)
    assert len(model.scale_seconds) == 2


def test_same_seed_same_generator_on_cpu(inputs):
    asl, t1, zoom = inputs
    config = preset("test", n_scales=2, seed=5)
    first = _weights(train(asl, t1, config=config, zoom=zoom, progress=False))
    second = _weights(train(asl, t1, config=config, zoom=zoom, progress=False))
    other = _weights(train(asl, t1, config=preset("test", n_scales=2, seed=6), zoom=zoom, progress=False))
    assert torch.equal(first, second)
    assert not torch.equal(first, other)


@pytest.mark.parametrize("ablation", [{"use_t1": False}, {"use_lowpass": False}, {"use_adversarial": False},
                                      {"single_scale": True}, {"input_source": "generated"}])
def test_ablations_train(inputs, ablation):
    asl, t1, zoom = inputs
    model = train(asl, t1, config=preset("test", **ablation), zoom=zoom, progress=False)
    rows = model.history
    assert rows and all(np.isfinite(r["loss_g"]) for r in rows)
    if ablation.get("use_adversarial") is False:
        assert not any("adv_g" in r for r in rows)
    if ablation.get("use_lowpass") is False:
        assert not any("lowpass" in r for r in rows)
    if ablation.get("single_scale"):
        assert {r["scale"] for r in rows} == {len(model.grids) - 1}


def test_plan_follows_zoom_axes(inputs):
    asl, _, _ = inputs
    factor, grids = plan_scales(asl.grid, np.array([1.0, 3.0, 1.0]), preset("test"))
    np.testing.assert_allclose(factor, [1, 3, 1])
    assert all(g.shape[0] == asl.grid.shape[0] for g in grids)


def test_finest_generator_learns_to_reduce_the_training_error(inputs):
    """A few dozen iterations must lower the MSE of G_N against x_N below the first logged value."""
    asl, t1, zoom = inputs
    config = preset("test", iterations=(30,), single_scale=True, use_adversarial=False, patch_size=None)
    model = train(asl, t1, config=config, zoom=zoom, progress=False)
    mse = [row["mse"] for row in model.history]
    assert min(mse[-5:]) < mse[0]


def test_a_non_finite_loss_stops_the_scale_with_the_last_good_weights(inputs):
    asl, t1, zoom = inputs
    # an infinite weight is refused by the configuration's checks; set here to make the loss non-finite
    config = dataclasses.replace(preset("test", use_adversarial=False), alpha=float("inf"))
    model = train(asl, t1, config=config, zoom=zoom, progress=False)
    assert model.warnings and "non-finite" in model.warnings[0]
    assert all(torch.isfinite(p).all() for p in model.generator.parameters())


def test_the_divergence_guard_rolls_back_a_spike_with_half_the_learning_rate():
    from aslsr.networks import Generator
    from aslsr.train import MAX_RETRIES, SPIKE_MIN_STEPS, DivergenceGuard

    torch.manual_seed(0)
    generator = Generator(channels=(4, 8, 8))
    optimizer = torch.optim.Adam(generator.parameters(), lr=1e-3)
    guard = DivergenceGuard(generator, optimizer)
    for step in range(SPIKE_MIN_STEPS):
        assert guard.check({"loss_g": 1.0, "mse": 1.0 + 0.1 * (step % 3)}) == ""
    guard.remember()
    good = {k: v.clone() for k, v in generator.state_dict().items()}
    with torch.no_grad():
        for parameter in generator.parameters():
            parameter.add_(1.0)  # a blown-up step
    assert "jumped to 455x" in guard.check({"loss_g": 500.0, "mse": 500.0})
    assert guard.roll_back() is False
    assert all(torch.equal(good[k], v) for k, v in generator.state_dict().items())
    assert guard.learning_rate == pytest.approx(5e-4)
    assert "non-finite" in guard.check({"loss_g": float("nan"), "mse": 1.0})
    for _ in range(MAX_RETRIES - 1):
        assert guard.roll_back() is False
    assert guard.roll_back() is True
    assert guard.learning_rate == pytest.approx(1e-3 * 0.5 ** (MAX_RETRIES + 1))
