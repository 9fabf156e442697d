import json
import pickle

import numpy as np
import pytest
import torch

from aslsr.config import MODEL_SETTINGS, Config, model_settings, preset, replace
from aslsr.errors import InputError
from aslsr.generate import enforce_consistency, super_resolve
from aslsr.grids import resample_average
from aslsr.io import load_volume
from aslsr.model import Model, _tile_plan, apply_generator
from aslsr.networks import Generator
from aslsr.pyramid import zoom_between
from aslsr.train import train


@pytest.fixture(scope="module")
def trained(tiny_case):
    asl, nr, t1 = (load_volume(tiny_case[r]) for r in ("asl_lr", "asl_nr", "t1w"))
    model = train(asl, t1, config=preset("test", n_scales=2), zoom=zoom_between(asl.grid, nr.grid), progress=False)
    return model, asl, nr, t1


def test_save_load_round_trip_gives_the_same_sr(trained, tmp_path):
    model, asl, nr, t1 = trained
    path = model.save(tmp_path / "model.pt", metadata={"note": "test"})
    loaded = Model.load(path)
    assert model_settings(loaded.config) == model_settings(model.config)
    assert loaded.metadata == {"note": "test", "trained_with": json.loads(json.dumps(model.config.to_dict()))}
    assert loaded.trained_seed == model.trained_seed == model.config.seed
    assert isinstance(loaded, type(model)) and loaded.grids == model.grids and len(loaded.grids) == 2
    np.testing.assert_array_equal(loaded.factor, model.factor)
    np.testing.assert_array_equal(super_resolve(model, asl, t1, nr.grid), super_resolve(loaded, asl, t1, nr.grid))


def test_the_model_file_keeps_only_what_applying_the_model_needs(trained, tmp_path):
    model = trained[0]
    trained_on = replace(model.config, learning_rate=0.5, iterations=(7,), device="cpu", tile_size=40, seed=4)
    saved = Model(model.generator, model.normalizer, trained_on, model.factor).save(tmp_path / "m.pt")
    payload = torch.load(saved, weights_only=True)
    assert set(payload["settings"]) == set(MODEL_SETTINGS)
    loaded = Model.load(tmp_path / "m.pt")
    assert (loaded.config.learning_rate, loaded.config.iterations) == (Config.learning_rate, Config.iterations)
    assert (loaded.config.device, loaded.config.tile_size) == (Config.device, Config.tile_size)
    assert loaded.trained_seed == 4 and loaded.metadata["trained_with"]["learning_rate"] == 0.5


def test_a_version_1_model_file_is_still_read(trained, tmp_path):
    model = trained[0]
    payload = torch.load(model.save(tmp_path / "m.pt"), weights_only=True)
    payload["version"] = 1
    payload["config"] = {**model.config.to_dict(), "iterations": [9]}
    del payload["settings"]
    torch.save(payload, tmp_path / "v1.pt")
    loaded = Model.load(tmp_path / "v1.pt")
    assert model_settings(loaded.config) == model_settings(model.config)
    assert loaded.config.iterations == Config.iterations


def test_model_file_loads_with_weights_only(trained, tmp_path):
    path = trained[0].save(tmp_path / "model.pt")
    payload = torch.load(path, weights_only=True)
    assert payload["format"] == "aslsr-model"


class _Exploit:
    def __reduce__(self):
        return (print, ("this must never run",))


@pytest.mark.filterwarnings("ignore:Detected pickle protocol:UserWarning")  # torch, reading the crafted pickle
def test_crafted_model_file_is_refused(tmp_path, capsys):
    path = tmp_path / "evil.pt"
    with open(path, "wb") as handle:
        pickle.dump({"format": "aslsr-model", "payload": _Exploit()}, handle)
    with pytest.raises(InputError, match="evil.pt"):
        Model.load(path)
    assert "this must never run" not in capsys.readouterr().out


@pytest.mark.filterwarnings("ignore:Detected pickle protocol:UserWarning")  # torch, reading the crafted pickle
@pytest.mark.parametrize("content", [b"", b"not a model", b"\x80\x04K\x01."])
def test_damaged_model_files_are_refused(tmp_path, content):
    path = tmp_path / "bad.pt"
    path.write_bytes(content)
    with pytest.raises(InputError):
        Model.load(path)


def test_tiling_blends_back_to_the_whole_volume():
    """With an identity generator, overlapping tiles must reassemble the input exactly."""
    generator = Generator(channels=(4, 8, 8))
    rng = np.random.default_rng(0)
    image, t1 = rng.normal(size=(30, 21, 17)).astype(np.float32), rng.random((30, 21, 17)).astype(np.float32)
    config = preset("test", tile_size=12, tile_overlap=4)
    out = apply_generator(generator, image, t1, config=config, device=torch.device("cpu"))
    np.testing.assert_allclose(out, image, atol=1e-5)


@pytest.mark.parametrize("size", [17, 128, 129, 180, 240, 300, 517])
def test_tiles_cover_each_axis_with_the_overlap_and_no_longer_than_needed(size):
    length, starts, overlap = _tile_plan(size, 128, 16)
    assert length <= 128 and starts[0] == 0 and starts[-1] + length == size
    assert all(b - a <= length - overlap for a, b in zip(starts, starts[1:]))  # neighbours share >= overlap voxels
    if len(starts) > 1:
        assert overlap == 16 and length % 4 == 0
        assert len(starts) == -(-(size - 16) // 112)  # as few tiles as 128-voxel tiles need
        shorter = length - 4  # ... and the next shorter length could not cover the axis with as many
        assert len(starts) * shorter - (len(starts) - 1) * 16 < size
    assert _tile_plan(180, 128, 16)[:2] == (100, [0, 80])  # not two tiles of 128 (1.3x the voxels)


def test_tiled_and_whole_generation_agree_for_a_trained_generator(trained):
    model, asl, nr, t1 = trained
    rng = np.random.default_rng(1)
    image, prior = rng.normal(size=(40, 36, 20)).astype(np.float32), rng.random((40, 36, 20)).astype(np.float32)
    whole = apply_generator(
        model.generator, image, prior, config=preset("test", tile_size=64), device=torch.device("cpu")
    )
    tiled = apply_generator(
        model.generator, image, prior, config=preset("test", tile_size=24, tile_overlap=8), device=torch.device("cpu")
    )
    assert np.abs(whole - tiled).mean() < 0.05 * np.abs(whole).mean()


def test_consistency_projection_matches_the_lr(trained):
    model, asl, nr, t1 = trained
    sr = super_resolve(model, asl, t1, nr.grid)
    projected = enforce_consistency(sr, nr.grid, asl, iterations=10)
    before = np.abs(resample_average(sr, nr.affine, asl.grid) - asl.data).mean()
    after = np.abs(resample_average(projected, nr.affine, asl.grid) - asl.data).mean()
    assert after < 0.2 * before


def test_with_weights_the_consistency_step_acts_only_where_they_are_nonzero():
    from aslsr.generate import consistency_weights
    from aslsr.grids import Grid
    from aslsr.io import Volume

    lr = Volume(np.random.default_rng(0).normal(10.0, 2.0, (16, 8, 8)), Grid((16, 8, 8), np.diag([4.0, 4.0, 4.0, 1.0])))
    fine = lr.grid.zoomed(np.array([2.0, 2.0, 2.0]))
    brain = np.zeros(lr.grid.shape, bool)
    brain[:6] = True  # the first 6 LR slabs along i
    weights = consistency_weights(brain)
    assert np.all(weights[brain] == 1.0) and np.all(weights[11:] == 0.0) and 0.0 < weights[7, 0, 0] < 1.0
    start = np.zeros(fine.shape, np.float32)
    everywhere = enforce_consistency(start, fine, lr, iterations=10)
    in_brain = enforce_consistency(start, fine, lr, iterations=10, weights=weights)

    def disagreement(sr, where):
        return np.abs(resample_average(sr, fine.affine, lr.grid) - lr.data)[where].mean()

    assert disagreement(in_brain, slice(0, 4)) < 0.2 * disagreement(start, slice(0, 4))  # the brain agrees
    assert disagreement(in_brain, slice(0, 4)) < 1.5 * disagreement(everywhere, slice(0, 4))
    assert np.all(in_brain[2 * 12 :] == 0.0)  # far outside, the SR is left as it was
    assert np.abs(everywhere[2 * 12 :]).mean() > 5.0  # where the step without weights pulls it to the LR


def test_the_consistency_region_is_the_brain_unless_configured_otherwise(trained):
    import dataclasses

    from aslsr.masking import derive_mask

    model, asl, nr, t1 = trained
    assert model.config.consistency_region == "brain"
    brain = derive_mask(None, t1, asl.grid)
    assert brain.any() and not brain.all()
    derived = super_resolve(model, asl, t1, nr.grid)
    np.testing.assert_array_equal(derived, super_resolve(model, asl, t1, nr.grid, brain_mask=brain))
    everywhere = dataclasses.replace(model, config=dataclasses.replace(model.config, consistency_region="all"))
    all_sr = super_resolve(everywhere, asl, t1, nr.grid)
    outside_lr = ~np.asarray(brain)
    outside = resample_average(outside_lr.astype(np.float32), asl.affine, nr.grid) > 0.999
    assert not np.allclose(derived[outside], all_sr[outside])
    none = np.zeros(asl.grid.shape, bool)
    np.testing.assert_array_equal(super_resolve(everywhere, asl, t1, nr.grid, brain_mask=none), all_sr)  # ignored
    with pytest.raises(ValueError, match="not the ASL grid"):
        super_resolve(model, asl, t1, nr.grid, brain_mask=np.ones(nr.grid.shape, bool))


def test_a_generator_trained_to_refine_dtv_takes_the_dtv_reconstruction_as_its_input(tiny_case):
    import dataclasses

    from aslsr.baselines import dtv_baseline

    asl, nr, t1 = (load_volume(tiny_case[r]) for r in ("asl_lr", "asl_nr", "t1w"))
    config = preset("test", input_source="dtv", single_scale=True, use_adversarial=False, dtv_iterations=30)
    model = train(asl, t1, config=config, zoom=zoom_between(asl.grid, nr.grid), progress=False)
    prior = resample_average(t1.data, t1.affine, nr.grid)
    dtv = dtv_baseline(asl, prior, nr.grid, config).image
    model.generator.unet.reset_head()  # the identity: the SR must then be the dTV reconstruction itself
    model.config = dataclasses.replace(model.config, consistency="off")
    sr = super_resolve(model, asl, t1, nr.grid, t1_on_target=prior)
    np.testing.assert_allclose(sr, dtv, rtol=1e-4, atol=1e-4 * float(np.abs(dtv).max()))
    model.config = dataclasses.replace(model.config, input_source="real")
    assert not np.allclose(sr, super_resolve(model, asl, t1, nr.grid, t1_on_target=prior))


def test_the_generator_chain_sees_a_kspace_readout_as_its_box_equivalent(tiny_case):
    """With ``acquisition = "kspace"`` the SR is made consistent with the LR's box equivalent, not the LR."""
    from aslsr.acquisition import AcquisitionModel, box_equivalent

    asl, nr, t1 = (load_volume(tiny_case[r]) for r in ("asl_lr", "asl_nr", "t1w"))
    config = preset("test", single_scale=True, use_adversarial=False, acquisition="kspace", consistency="full")
    model = train(asl, t1, config=config, zoom=zoom_between(asl.grid, nr.grid), progress=False)
    averaged = resample_average(super_resolve(model, asl, t1, nr.grid), nr.affine, asl.grid)
    equivalent = box_equivalent(asl.data, asl.grid, AcquisitionModel(kind="kspace"))
    inner = (slice(2, -2),) * 3
    to_equivalent = np.abs(averaged - equivalent)[inner].mean()
    to_lr = np.abs(averaged - asl.data)[inner].mean()
    assert to_equivalent < 0.5 * to_lr, (to_equivalent, to_lr)


def test_beyond_the_learnt_zoom_the_generator_refines_the_dtv_through_the_acquisition_model(tiny_case):
    """k-space data: at the learnt zoom G_N refines the box-model dTV of the LR's box equivalent (what it was
    trained on) unless the LR is clean enough; on a finer target the dTV through the k-space operator, as the
    run's dtv.nii.gz."""
    import dataclasses

    from aslsr.acquisition import as_box_acquisition
    from aslsr.baselines import dtv_baseline
    from aslsr.generate import refines_acquisition_dtv
    from aslsr.masking import derive_mask
    from aslsr.noise import relative_noise

    asl, nr, t1 = (load_volume(tiny_case[r]) for r in ("asl_lr", "asl_nr", "t1w"))
    config = preset(
        "test",
        input_source="dtv",
        single_scale=True,
        use_adversarial=False,
        dtv_iterations=20,
        acquisition="kspace",
        acquisition_dtv_below_noise=0.0,  # never at the learnt zoom
    )
    model = train(asl, t1, config=config, zoom=zoom_between(asl.grid, nr.grid), progress=False)
    model.generator.unet.reset_head()  # the identity: the SR is then the generator's input itself
    model.config = dataclasses.replace(model.config, consistency="off")
    finer = asl.grid.zoomed(np.array([4.0, 4.0, 2.0]))
    mask = derive_mask(None, t1, asl.grid)
    assert not refines_acquisition_dtv(model, asl, nr.grid, mask)
    assert refines_acquisition_dtv(model, asl, finer, mask)
    box = replace(config, acquisition="box")

    def check(grid, expected_config, data):
        prior = resample_average(t1.data, t1.affine, grid)
        expected = dtv_baseline(data, prior, grid, expected_config).image
        sr = super_resolve(model, asl, t1, grid, t1_on_target=prior, brain_mask=mask)
        np.testing.assert_allclose(sr, expected, rtol=1e-4, atol=1e-4 * float(np.abs(expected).max()))

    check(nr.grid, box, as_box_acquisition(asl, config))
    check(finer, config, asl)
    noise = relative_noise(asl, mask)
    assert 0.0 < noise < 1.0
    model.config = dataclasses.replace(model.config, acquisition_dtv_below_noise=1.01 * noise)  # clean enough
    assert refines_acquisition_dtv(model, asl, nr.grid, mask)
    check(nr.grid, config, asl)
    model.config = dataclasses.replace(model.config, acquisition_dtv_below_noise=0.99 * noise)
    assert not refines_acquisition_dtv(model, asl, nr.grid, mask)
    for kind in ("box", "gaussian"):  # the noise decides for a k-space model only
        model.config = dataclasses.replace(model.config, acquisition=kind)
        assert refines_acquisition_dtv(model, asl, nr.grid, mask)


def test_beyond_the_learnt_zoom_on_box_data_a_share_of_the_sr_is_made_where_the_generator_learnt(trained):
    import dataclasses

    from aslsr.baselines import interpolate
    from aslsr.generate import learnt_zoom_share
    from aslsr.io import Volume

    model, asl, nr, t1 = trained

    def with_settings(**settings):
        return dataclasses.replace(model, config=dataclasses.replace(model.config, **settings))

    learnt = asl.grid.zoomed(model.factor)
    finer = asl.grid.zoomed(model.factor * np.array([2.0, 1.0, 1.0]))  # beyond the learnt zoom along one axis
    assert model.config.acquisition == "box"
    assert learnt_zoom_share(with_settings(learnt_zoom_share=0.25), asl.grid, finer) == 0.25
    assert learnt_zoom_share(with_settings(learnt_zoom_share=0.25), asl.grid, learnt) == 0.0  # where it learnt
    assert learnt_zoom_share(with_settings(learnt_zoom_share=0.25, acquisition="kspace"), asl.grid, finer) == 0.0
    assert learnt_zoom_share(with_settings(learnt_zoom_share=0.0), asl.grid, finer) == 0.0
    on_target = super_resolve(with_settings(learnt_zoom_share=0.0), asl, t1, finer)
    at_learnt = super_resolve(with_settings(learnt_zoom_share=0.0), asl, t1, learnt)
    brought = interpolate(Volume(at_learnt, learnt), finer, "spline")
    blended = super_resolve(with_settings(learnt_zoom_share=0.25), asl, t1, finer)
    scale = float(np.abs(on_target).max())
    np.testing.assert_allclose(blended, 0.75 * on_target + 0.25 * brought, rtol=1e-5, atol=1e-5 * scale)
    whole = super_resolve(with_settings(learnt_zoom_share=1.0), asl, t1, finer)
    np.testing.assert_allclose(whole, brought, rtol=1e-5, atol=1e-5 * scale)
    assert np.abs(on_target - brought).max() > 1e-3 * scale  # the two SRs differ, so the share shows
    assert np.array_equal(super_resolve(with_settings(learnt_zoom_share=0.25), asl, t1, learnt), at_learnt)


def test_flip_ensemble_examples():
    import doctest

    import aslsr.generate

    assert doctest.testmod(aslsr.generate).failed == 0


def test_the_flip_ensemble_is_the_mean_of_the_generator_over_the_8_flips(trained, tmp_path):
    import dataclasses

    from aslsr.generate import FLIPS

    trained_model, asl, nr, t1 = trained
    plain = dataclasses.replace(trained_model, config=dataclasses.replace(trained_model.config, consistency="off"))
    single = super_resolve(plain, asl, t1, nr.grid)
    by_hand = []
    for axes in FLIPS:  # the SR of flipped inputs, flipped back, through the same public call
        flipped = dataclasses.replace(plain)
        flipped.apply = lambda image, prior, device=None, axes=axes: np.flip(
            plain.apply(np.flip(image, axes).copy(), np.flip(prior, axes).copy(), device=device), axes
        )
        by_hand.append(super_resolve(flipped, asl, t1, nr.grid))
    ensembled = dataclasses.replace(plain, config=dataclasses.replace(plain.config, flip_ensemble=True))
    ensemble = super_resolve(ensembled, asl, t1, nr.grid)
    np.testing.assert_allclose(ensemble, np.mean(by_hand, axis=0), rtol=1e-5, atol=1e-5 * float(np.abs(single).max()))
    assert not np.allclose(ensemble, single)  # a trained network is not flip-symmetric
    assert Model.load(ensembled.save(tmp_path / "model.pt")).config.flip_ensemble  # the model file keeps it
