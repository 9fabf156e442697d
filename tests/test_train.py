import dataclasses
import math

import numpy as np
import pytest
import torch

from aslsr import stability
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


@pytest.mark.parametrize(
    "ablation",
    [
        {"use_t1": False},
        {"use_lowpass": False},
        {"use_adversarial": False},
        {"single_scale": True},
        {"input_source": "generated"},
    ],
)
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


def test_bfloat16_training_computes_the_forward_pass_in_bfloat16_and_stays_close(inputs):
    asl, t1, zoom = inputs
    config = preset("test", single_scale=True, use_adversarial=False, iterations=(6,))
    full = train(asl, t1, config=config, zoom=zoom, progress=False).history
    half = train(asl, t1, config=dataclasses.replace(config, bfloat16="on"), zoom=zoom, progress=False).history
    full_mse, half_mse = (np.array([row["mse"] for row in rows]) for rows in (full, half))
    assert full_mse[0] == half_mse[0]  # the identity start: the output is the input, whatever the precision
    assert not np.array_equal(full_mse, half_mse)  # later steps saw bfloat16 arithmetic
    np.testing.assert_allclose(half_mse, full_mse, rtol=0.1)


def test_plan_follows_zoom_axes(inputs):
    asl, _, _ = inputs
    factor, grids = plan_scales(asl.grid, np.array([1.0, 3.0, 1.0]), preset("test"))
    np.testing.assert_allclose(factor, [1, 3, 1])
    assert all(g.shape[0] == asl.grid.shape[0] for g in grids)


def test_a_capped_plan_learns_at_most_the_cap_per_axis_and_an_explicit_factor_wins(inputs):
    asl, _, _ = inputs
    capped = dataclasses.replace(preset("test"), max_scale_factor=2.0)
    factor, grids = plan_scales(asl.grid, np.array([3.75, 1.5, 1.0]), capped)
    np.testing.assert_allclose(factor, [2.0, 1.5, 1.0])
    np.testing.assert_allclose(grids[-2].voxel_size, asl.grid.voxel_size * [2.0, 1.5, 1.0])
    explicit = dataclasses.replace(capped, scale_factor=(3.0, 3.0, 3.0))
    np.testing.assert_allclose(plan_scales(asl.grid, np.array([3.75, 1.5, 1.0]), explicit)[0], [3.0, 3.0, 3.0])


def test_finest_generator_learns_to_reduce_the_training_error(inputs):
    """A few dozen iterations must lower the MSE of G_N against x_N below the first logged value."""
    asl, t1, zoom = inputs
    config = preset("test", iterations=(30,), single_scale=True, use_adversarial=False, patch_size=None)
    model = train(asl, t1, config=config, zoom=zoom, progress=False)
    mse = [row["mse"] for row in model.history]
    assert min(mse[-5:]) < mse[0]


def test_a_non_finite_loss_stops_the_scale_with_sound_weights(inputs):
    asl, t1, zoom = inputs
    # an infinite weight is refused by the configuration's checks; set here to make the loss non-finite
    config = dataclasses.replace(preset("test", use_adversarial=False), alpha=float("inf"))
    model = train(asl, t1, config=config, zoom=zoom, progress=False)
    assert model.warnings and "non-finite" in model.warnings[0]
    assert all(torch.isfinite(p).all() for p in model.generator.parameters())


def test_a_step_that_blows_up_the_weights_is_caught_even_at_the_last_iteration(inputs):
    """One iteration at an absurd learning rate: the only step is the last; its weights must not be kept."""
    asl, t1, zoom = inputs
    config = dataclasses.replace(
        preset("test", iterations=(1,), single_scale=True, use_adversarial=False, validate_every=1), learning_rate=1e6
    )  # past the config's range check
    model = train(asl, t1, config=config, zoom=zoom, progress=False)
    assert torch.count_nonzero(model.generator.unet.head.weight) == 0  # the identity start, validated at step 0
    assert model.history[-1]["best_iteration"] == 0
    for select_best in (True, False):  # without best-weight selection the last step is still checked
        config = dataclasses.replace(
            preset("test", iterations=(1,), single_scale=True, use_adversarial=False, select_best=select_best),
            learning_rate=float("inf"),
        )
        model = train(asl, t1, config=config, zoom=zoom, progress=False)
        assert all(torch.isfinite(p).all() for p in model.generator.parameters())


def _overshooting(**overrides):
    """12 validated steps at a learning rate that overshoots, so the best weights are not the last ones."""
    settings = {"iterations": (12,), "learning_rate": 3e-2, "validate_every": 1, **overrides}
    return preset("test", single_scale=True, use_adversarial=False, lr_schedule="constant", **settings)


def test_each_scale_returns_its_best_validated_weights(inputs):
    asl, t1, zoom = inputs
    model = train(asl, t1, config=_overshooting(), zoom=zoom, progress=False)
    scores = {row["iteration"]: row["validation"] for row in model.history if "validation" in row}
    best = model.history[-1]["best_iteration"]
    assert len(scores) >= 12 and min(scores, key=scores.get) == best
    assert best < 12 and len(set(scores.values())) > 1  # the weights changed, and the best ones were kept


def test_the_weight_average_is_validated_beside_the_live_weights(inputs):
    asl, t1, zoom = inputs
    model = train(asl, t1, config=_overshooting(ema_decay=0.5), zoom=zoom, progress=False)
    rows = [row for row in model.history if "validation" in row]
    assert len(rows) >= 12 and all("validation_ema" in row for row in rows)
    scores = {(row["iteration"], "last"): row["validation"] for row in rows}
    scores.update({(row["iteration"], "ema"): row["validation_ema"] for row in rows})
    best = min(scores, key=scores.get)
    assert (model.history[-1]["best_iteration"], model.history[-1]["best_weights"]) == best
    assert scores[(12 - 1, "ema")] != scores[(12 - 1, "last")]  # the average is not the live weights


def test_weight_average_is_an_exponential_moving_average():
    from aslsr.stability import weight_average

    layer = torch.nn.Linear(2, 1)
    assert weight_average(layer, 0.0) is None
    average = weight_average(layer, 0.75)
    values = []
    for value in (1.0, 5.0, 9.0):
        with torch.no_grad():
            layer.weight.fill_(value)
        average.update_parameters(layer)
        values.append(float(average.module.weight[0, 0].detach()))
    assert values == pytest.approx([1.0, 0.75 * 1.0 + 0.25 * 5.0, 0.75 * 2.0 + 0.25 * 9.0])


def test_held_out_blocks_are_left_out_of_the_training_loss(inputs):
    from aslsr.pyramid import build_pyramid
    from aslsr.sampling import PatchSampler
    from aslsr.stability import holdout_mask

    asl, t1, _ = inputs
    scale = build_pyramid(asl, t1, [asl.grid])[0]
    held = holdout_mask(scale.asl.shape, fraction=0.2, block_voxels=2, seed=0, brain=scale.asl > 0)
    assert 0 < held.mean() < 0.5 and not held[scale.asl <= 0].all()
    sampler = PatchSampler(scale, None, preset("test", patch_size=None), np.random.default_rng(0), held_out=held)
    _, _, _, weight = sampler.batch()
    np.testing.assert_array_equal(weight[0, 0].numpy(), (~held).astype(np.float32))


def test_flip_augmentation_flips_every_channel_of_a_sample_together(inputs):
    import itertools

    from aslsr.pyramid import build_pyramid
    from aslsr.sampling import PatchSampler

    asl, t1, _ = inputs
    scale = build_pyramid(asl, t1, [asl.grid])[0]
    originals = [torch.from_numpy(np.asarray(a, np.float32)) for a in (scale.asl * 2.0, scale.t1, scale.asl)]
    config = preset("test", patch_size=None, batch_size=16, flip_augment=True)
    batch = PatchSampler(scale, originals[0].numpy(), config, np.random.default_rng(0)).batch()[:3]
    flips = [[a for a, on in enumerate(mask) if on] for mask in itertools.product((0, 1), repeat=3)]
    used = set()
    for index in range(16):
        undo = [axes for axes in flips if torch.equal(batch[2][index, 0].flip(axes), originals[2])]
        assert undo  # the target is a flip of x_n ...
        for channel, original in zip(batch, originals):  # ... and its input and T1 are the same flip
            assert torch.equal(channel[index, 0].flip(undo[0]), original)
        used.add(tuple(undo[0]))
    assert len(used) > 2


def test_learning_rate_schedules():
    from aslsr.stability import learning_rate_at

    assert learning_rate_at(0, 100, base=1.0, schedule="constant") == 1.0
    assert learning_rate_at(79, 100, base=1.0, schedule="step") == 1.0
    assert learning_rate_at(80, 100, base=1.0, schedule="step") == pytest.approx(0.1)
    cosine = [learning_rate_at(i, 100, base=1.0, schedule="cosine", warmup=10) for i in range(100)]
    assert cosine[0] == pytest.approx(0.1) and max(cosine) == pytest.approx(cosine[9], rel=0.01)
    assert cosine[-1] == pytest.approx(0.05) and all(a >= b for a, b in zip(cosine[9:], cosine[10:]))


def test_still_improving_compares_the_best_held_out_loss_one_window_apart():
    from aslsr.stability import still_improving

    rows = [
        {"iteration": 0, "validation": 1.0},
        {"iteration": 5},  # a logged row without validation
        {"iteration": 10, "validation": 0.8, "validation_ema": 0.99},
        {"iteration": 20, "validation": 2.0, "validation_ema": 0.79},  # the average's score counts too
        {"iteration": 30, "validation": 0.9, "validation_ema": 0.85},  # worse than the best: the best stays 0.79
    ]
    assert still_improving(rows, 10, window=10, min_fall=0.19)  # 1.0 -> 0.8
    assert not still_improving(rows, 10, window=10, min_fall=0.2)
    assert not still_improving(rows, 30, window=10, min_fall=0.0)  # no new best in the window: never extends
    assert still_improving(rows, 20, window=10, min_fall=0.01)  # 0.8 -> 0.79
    assert not still_improving(rows, 20, window=10, min_fall=0.02)
    assert not still_improving(rows, 5, window=10, min_fall=0.0)  # nothing validated a window ago


def _extending(**overrides):
    """4 nominal steps, then up to 8 more in windows of 2, validated every step."""
    settings = {"iterations": (4,), "extend_window": 2, "learning_rate": 1e-3, **overrides}
    return _overshooting(extend_iterations=8, **settings)


def test_training_goes_on_past_its_count_while_the_held_out_loss_falls(inputs):
    asl, t1, zoom = inputs
    model = train(asl, t1, config=_extending(extend_min_fall=0.0), zoom=zoom, progress=False)
    scores = {row["iteration"]: row["validation"] for row in model.history if "validation" in row}
    stops = [t for t in (4, 6, 8, 10) if not stability.still_improving(model.history, t, window=2, min_fall=0.0)]
    expected = stops[0] if stops else 12  # where the rule, replayed on the logged losses, ends the run
    assert model.history[-1]["steps"] == expected and max(scores) == min(expected, 11)
    assert expected > 4  # this tiny run still learns after its 4 nominal steps


def test_a_run_whose_held_out_loss_stopped_falling_ends_as_the_fixed_count_run(inputs):
    asl, t1, zoom = inputs
    stopped = train(asl, t1, config=_extending(extend_min_fall=1.0), zoom=zoom, progress=False)
    fixed = train(asl, t1, config=_overshooting(iterations=(4,), learning_rate=1e-3), zoom=zoom, progress=False)
    assert stopped.history[-1]["steps"] == fixed.history[-1]["steps"] == 4
    assert max(row["iteration"] for row in stopped.history) == 4  # the validation that ended it is logged
    assert torch.equal(_weights(stopped), _weights(fixed))


def test_the_progress_bar_shows_the_nominal_count_and_grows_with_the_extension(inputs, monkeypatch):
    import io

    class Terminal(io.StringIO):
        def isatty(self) -> bool:
            return True

    asl, t1, zoom = inputs
    terminal = Terminal()
    monkeypatch.setattr("sys.stderr", terminal)
    model = train(asl, t1, config=_extending(extend_min_fall=0.0), zoom=zoom, progress=True)
    steps = model.history[-1]["steps"]
    assert steps > 4 and "0/4" in terminal.getvalue() and f"{steps}/{steps}" in terminal.getvalue()


def test_the_extension_decides_at_the_first_validation_of_each_window(inputs):
    """Nominal 5 steps, validations every 2: the window that starts at 5 is decided at the validation of 6."""
    asl, t1, zoom = inputs
    config = _extending(extend_min_fall=1.0, iterations=(5,), validate_every=2, extend_window=3)
    model = train(asl, t1, config=config, zoom=zoom, progress=False)
    assert model.history[-1]["steps"] == 6


def test_training_leaves_torch_global_state_as_it_found_it(inputs):
    asl, t1, zoom = inputs
    torch.manual_seed(123)
    expected = torch.rand(3)
    torch.manual_seed(123)
    threads = torch.get_num_threads()
    train(asl, t1, config=preset("test", single_scale=True, threads=1), zoom=zoom, progress=False)
    assert torch.get_num_threads() == threads
    assert torch.equal(torch.rand(3), expected)


def test_a_spike_that_the_last_good_weights_share_is_a_hard_batch_not_a_divergence():
    from aslsr.networks import Generator
    from aslsr.stability import SPIKE_MIN_STEPS, DivergenceGuard

    generator = Generator(channels=(4, 8, 8))
    guard = DivergenceGuard({"generator": generator}, 1e-3)
    for _ in range(SPIKE_MIN_STEPS):
        assert guard.check({"data": 1.0}) == ""
    guard.remember()
    calls = []

    def shared() -> dict[str, float]:
        calls.append(1)
        return {"data": 60.0}

    assert guard.check({"data": 100.0}, remembered_terms=shared) == "" and guard.hard_batches == 1
    assert "jumped to 100x" in guard.check({"data": 100.0}, remembered_terms=lambda: {"data": 1.2})
    assert guard.check({"data": 1.5}, remembered_terms=shared) == "" and len(calls) == 1  # only asked on a spike
    with torch.no_grad():
        next(generator.parameters()).add_(1.0)
    probe = guard.remembered("generator")  # the remembered weights, in a copy; the live module is untouched
    assert probe is not generator and not torch.equal(next(probe.parameters()), next(generator.parameters()))


def test_a_roll_back_returns_to_the_best_validated_weights(inputs, monkeypatch):
    """The guard remembers the live weights exactly when their held-out loss is the best so far: going back to
    the last weights with a sound batch loss, already oscillating, froze two runs (BENCHMARKS.md 2026-12-02)."""
    events = []
    update, remember = stability.HeldOutValidator.update, stability.DivergenceGuard.remember

    def scored(self, generator, iteration, *, label="last"):
        value = update(self, generator, iteration, label=label)
        events.append((iteration, label, value))
        return value

    def remembered(self):
        events.append(("remember",))
        return remember(self)

    monkeypatch.setattr(stability.HeldOutValidator, "update", scored)
    monkeypatch.setattr(stability.DivergenceGuard, "remember", remembered)
    asl, t1, zoom = inputs
    config = preset("test", iterations=(12,), single_scale=True, use_adversarial=False, validate_every=1, seed=3)
    train(asl, t1, config=config, zoom=zoom, progress=False)
    in_loop = [e for e in events if e[0] == "remember" or (e[0] < 12 and e[1] == "last")]
    remembered_after = [in_loop[i - 1] for i, e in enumerate(in_loop) if e[0] == "remember"]
    live = [e for e in in_loop if e[0] != "remember"]
    new_bests = [e for i, e in enumerate(live) if e[2] < min((x[2] for x in live[:i]), default=math.inf)]
    assert remembered_after == new_bests and 2 <= len(new_bests) < len(live)


def test_a_hard_batch_in_training_is_not_rolled_back_but_a_blown_up_step_is(inputs, monkeypatch):
    """Every 10th batch's target is 100x brighter (a batch no weights can fit): no roll-back, counted."""
    from aslsr.sampling import PatchSampler

    batch = PatchSampler.batch
    calls = []

    def hard_every_tenth(self):
        image, t1, real, weight = batch(self)
        calls.append(1)
        return image, t1, real * (100.0 if len(calls) % 10 == 0 else 1.0), weight

    monkeypatch.setattr(PatchSampler, "batch", hard_every_tenth)
    asl, t1, zoom = inputs
    config = preset("test", iterations=(60,), single_scale=True, use_adversarial=False, log_every=1)
    model = train(asl, t1, config=config, zoom=zoom, progress=False)
    assert model.warnings == [] and model.history[-1]["hard_batches"] >= 3


def test_the_divergence_guard_rolls_back_generator_and_critic_together():
    from aslsr.networks import Generator, PatchCritic
    from aslsr.stability import MAX_RETRIES, SPIKE_MIN_STEPS, DivergenceGuard

    torch.manual_seed(0)
    generator, critic = Generator(channels=(4, 8, 8)), PatchCritic(channels=4, layers=2)
    optimizers = {
        name: torch.optim.Adam(m.parameters(), lr=1e-3)
        for name, m in (("optimizer_g", generator), ("optimizer_d", critic))
    }
    guard = DivergenceGuard({"generator": generator, "critic": critic, **optimizers}, 1e-3)
    for step in range(SPIKE_MIN_STEPS):
        assert guard.check({"loss_g": 1.0, "data": 1.0 + 0.1 * (step % 3), "lowpass": 0.5}) == ""
    guard.remember()
    good = {
        name: {k: v.clone() for k, v in m.state_dict().items()}
        for name, m in (("generator", generator), ("critic", critic))
    }
    with torch.no_grad():
        for parameter in [*generator.parameters(), *critic.parameters()]:
            parameter.add_(1.0)  # a blown-up step
    assert "data term jumped to 455x" in guard.check({"loss_g": 500.0, "data": 500.0, "lowpass": 0.5})
    assert guard.check({"loss_g": 1.0, "data": 1.1, "lowpass": 50.0}) == ""  # a jump of a minor term alone
    assert guard.roll_back() is False and guard.learning_rate_factor == 0.5
    for name, module in (("generator", generator), ("critic", critic)):
        assert all(torch.equal(good[name][k], v) for k, v in module.state_dict().items())
    assert "data term jumped" in guard.check({"loss_g": 500.0, "data": 500.0})  # not blind after a roll-back
    assert "loss_d term became non-finite" in guard.check({"loss_g": 1.0, "data": 1.0, "loss_d": float("nan")})
    for _ in range(MAX_RETRIES - 1):
        assert guard.roll_back() is False
    assert guard.roll_back() is True


def test_a_relative_gradient_clip_stops_a_burst_but_lets_the_usual_size_through():
    clip = stability.GradientClip(relative=4.0)
    weight = torch.nn.Parameter(torch.zeros(3))
    for step in range(stability.CLIP_MIN_STEPS + 5):
        weight.grad = torch.full((3,), 0.01 * (1 + step % 3))  # ordinary gradients of varying size
        before = weight.grad.clone()
        clip(weight)
        assert torch.equal(weight.grad, before)  # never clipped: within 4x their median
    median = float(np.median(clip.recent))
    weight.grad = torch.full((3,), 10.0)  # a burst ~500x the usual norm
    assert clip(weight) == pytest.approx(10.0 * 3**0.5)
    assert float(weight.grad.norm()) == pytest.approx(4.0 * median)
    assert clip.limit() == pytest.approx(4.0 * float(np.median(clip.recent)))  # the burst barely moves the median


def test_a_relative_clip_records_the_gradient_norm_and_changes_training(inputs):
    asl, t1, zoom = inputs
    free = train(asl, t1, config=_overshooting(), zoom=zoom, progress=False)
    clipped = train(asl, t1, config=_overshooting(grad_clip_relative=1.01), zoom=zoom, progress=False)
    norms = [row["grad_norm"] for row in clipped.history if "grad_norm" in row]
    assert len(norms) >= 12 and all(np.isfinite(norms)) and clipped.history[-1]["clipped_steps"] > 0
    assert not any("grad_norm" in row for row in free.history)
    losses = [[row["loss_g"] for row in model.history if "loss_g" in row] for model in (free, clipped)]
    assert losses[0][: stability.CLIP_MIN_STEPS + 1] == losses[1][: stability.CLIP_MIN_STEPS + 1]  # nothing clips yet
    assert losses[0] != losses[1]  # then it does


def _first_gradient_norms(inputs, seed, warmup):
    """Gradient norms of the first 6 steps of the fast recipe (He init, zero output layer, Adam beta1 0.9)."""
    asl, t1, zoom = inputs
    fast = preset("fast")
    config = preset(
        "test",
        iterations=(6,),
        single_scale=True,
        use_adversarial=False,
        use_lowpass=False,
        input_source="real",
        generator_channels=fast.generator_channels,
        generator_init=fast.generator_init,
        adam_betas=fast.adam_betas,
        learning_rate=fast.learning_rate,
        warmup_iterations=warmup,
        grad_clip_norm=1e9,  # never clips; records the norms
        patch_size=16,
        seed=seed,
    )
    model = train(asl, t1, config=config, zoom=zoom, progress=False)
    return [row["grad_norm"] for row in model.history if "grad_norm" in row]


@pytest.mark.parametrize("seed", [0, 1])
def test_a_warm_up_keeps_adams_first_steps_from_throwing_a_gradient_burst(inputs, seed):
    """The output layer starts at zero, so Adam's first full-size, sign-like steps move every hidden weight at
    once and the next gradient bursts; that burst fills Adam's second moment and slows later steps
    (BENCHMARKS.md 2026-12-02). A 50-step warm-up (``warmup_iterations``) keeps the first steps small."""
    cold = _first_gradient_norms(inputs, seed, warmup=0)
    warm = _first_gradient_norms(inputs, seed, warmup=50)
    assert max(cold[1:5]) > 8 * cold[0]
    assert max(warm[1:5]) < 2 * warm[0]
