import pytest

from aslsr.config import PRESETS, Config, load_config, preset, replace
from aslsr.errors import InputError


def test_presets_differ_where_documented():
    paper, fast = preset("paper"), preset("fast")
    assert paper.iterations == (2000,) and paper.learning_rate == 1e-3 and paper.use_adversarial
    assert fast.single_scale and fast.patch_size == 32
    assert fast.generator_init == "he" and paper.generator_init == "pytorch"
    assert fast.grad_clip_relative == 5.0 and paper.grad_clip_relative is None  # the paper clips nothing
    assert fast.max_scale_factor == 2.0 and paper.max_scale_factor is None  # the paper learns the whole zoom
    assert set(PRESETS) >= {"paper", "fast"}


def test_toml_overrides_preset_and_command_line_overrides_toml(tmp_path):
    path = tmp_path / "run.toml"
    path.write_text('preset = "paper"\niterations = [5, 6]\nalpha = 3.5\n')
    config = load_config(path, "fast", seed=7)
    assert config.iterations == (5, 6) and config.alpha == 3.5 and config.seed == 7
    assert config.use_adversarial  # from the paper preset named in the file
    nested = tmp_path / "nested.toml"
    nested.write_text("[aslsr]\nbeta = 2.0\n")
    assert load_config(nested).beta == 2.0


@pytest.mark.parametrize(
    "text, message",
    [
        ("nonsense = 1\n", "unknown configuration field"),
        ("iterations = [", "not valid TOML"),
        ('consistency = "sometimes"\n', "consistency"),
        ("patch_size = 2\n", "patch_size"),
        ('extend_iterations = 200\nlr_schedule = "cosine"\n', "extend_iterations needs lr_schedule 'constant'"),
    ],
)
def test_bad_config_files_name_the_file(tmp_path, text, message):
    path = tmp_path / "bad.toml"
    path.write_text(text)
    with pytest.raises(InputError, match=message) as error:
        load_config(path)
    assert "bad.toml" in str(error.value)


def test_config_round_trips_through_its_dict():
    config = preset("fast", seed=3)
    assert replace(Config(), **config.to_dict()) == config


def test_iterations_are_aligned_to_the_finest_scale():
    config = preset("test", iterations=(10, 20))
    assert [config.iterations_at(level, 3) for level in range(3)] == [10, 10, 20]
    assert preset("test", iterations=(7,)).iterations_at(2, 3) == 7
