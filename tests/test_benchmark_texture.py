"""benchmarks/texture.py: the sharpness and texture statistics that BENCHMARKS.md quotes for the paper preset."""

import doctest

import numpy as np
from conftest import benchmark_script
from scipy import ndimage


def test_examples():
    assert doctest.testmod(benchmark_script("texture")).failed == 0


def test_blur_noise_and_shuffled_detail_are_told_apart():
    texture = benchmark_script("texture")
    rng = np.random.default_rng(1)
    ref = ndimage.gaussian_filter(rng.random((32, 32, 32)), 1.0)
    brain = np.zeros(ref.shape, bool)
    brain[4:-4, 4:-4, 4:-4] = True
    blurred = texture.texture_scores(ref, ndimage.gaussian_filter(ref, 1.5), brain)
    noisy = texture.texture_scores(ref, ref + rng.normal(0, ref.std(), ref.shape), brain)
    other = ndimage.gaussian_filter(rng.random(ref.shape), 1.0)  # the same statistics, none of the placement
    swapped = texture.texture_scores(ref, other, brain)
    assert blurred["gradient_energy"] < 0.6 and blurred["detail_energy"] < 0.6
    assert noisy["gradient_energy"] > 1.5 and noisy["detail_energy"] > 1.5
    # texture of the right energy in the wrong place: texture statistic near 1, correlation near 0
    assert abs(swapped["detail_energy"] - 1) < 0.2 and abs(swapped["detail_correlation"]) < 0.2
