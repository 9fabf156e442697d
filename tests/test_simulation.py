"""``aslsr simulate`` as a library call: options to a variant, checks before writing, what was written."""

from __future__ import annotations

import pytest
from conftest import TINY

import aslsr
from aslsr.errors import InputError
from aslsr.phantom import load_case
from aslsr.phantom_psf import PSF
from aslsr.phantom_variants import VARIANTS
from aslsr.simulation import variant_spec


def test_options_without_a_variant_option_mean_the_default_phantom():
    assert variant_spec(None, seed=3, lesion=True, noise_sd=2.0, warp=None) is None


def test_variant_options_become_spec_fields():
    spec = variant_spec(
        None, seed=3, lesion=True, psf="gaussian", psf_fwhm=1.5, oblique=[5.0, 0.0, 0.0], vessels=(2, 1), noise_sd=2.0
    )
    assert spec.psf == PSF(kind="gaussian", fwhm_voxels=1.5) and spec.asl_rotation_deg == (5.0, 0.0, 0.0)
    assert (spec.vessel_tubes, spec.vessel_spots, spec.lesions, spec.seed, spec.noise_sd) == (2, 1, (0.4,), 3, 2.0)
    named = variant_spec("hypo-box", seed=1, lesion=True, kspace_window=0.5)
    assert named.lesions == VARIANTS["hypo-box"].lesions and named.psf.window == 0.5 and named.name == "hypo-box"


@pytest.mark.parametrize(
    "options, error, fragment",
    [
        ({"subjects": 2}, InputError, "--subjects needs --bids"),
        ({"bids": True, "variant": "hypo-box"}, InputError, "--bids does not take phantom variants"),
        ({"variant": "nope"}, InputError, "unknown phantom variant 'nope'"),
        ({"noise": 3.0}, TypeError, "unknown options: noise"),
    ],
)
def test_bad_options_write_nothing(tmp_path, options, error, fragment):
    with pytest.raises(error, match=fragment):
        aslsr.simulate_phantom(tmp_path / "out", **options)
    assert not (tmp_path / "out").exists()


def test_the_default_phantom_is_written_and_a_second_call_needs_overwrite(tmp_path):
    result = aslsr.simulate_phantom(tmp_path / "out", seed=2, lesion=True, **TINY)
    assert result.spec is None and result.dataset is None and result.config.nr_shape == TINY["nr_shape"]
    assert result.case == load_case(tmp_path / "out")
    assert result.n_files == len(list((tmp_path / "out").iterdir())) == 13
    with pytest.raises(InputError, match="not empty"):
        aslsr.simulate_phantom(tmp_path / "out", **TINY)
