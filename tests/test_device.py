"""Device selection; the CUDA path runs where a GPU is present and is skipped otherwise."""

import numpy as np
import pytest
import torch

from aslsr.config import preset, replace, resolve_device
from aslsr.errors import InputError
from aslsr.generate import super_resolve
from aslsr.io import load_volume
from aslsr.pyramid import zoom_between
from aslsr.train import train

cuda = pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA device on this machine")


def test_auto_picks_cuda_exactly_when_present():
    expected = "cuda" if torch.cuda.is_available() else "cpu"
    assert resolve_device("auto").type == expected
    assert resolve_device("cpu").type == "cpu"


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the error raised without a GPU")
def test_asking_for_cuda_without_a_gpu_is_a_clean_input_error():
    with pytest.raises(InputError, match="CUDA"):
        resolve_device("cuda")


@cuda
def test_training_and_generation_on_cuda(tiny_case):
    asl, nr, t1 = (load_volume(tiny_case[r]) for r in ("asl_lr", "asl_nr", "t1w"))
    zoom = zoom_between(asl.grid, nr.grid)
    model = train(asl, t1, config=preset("test", device="cuda"), zoom=zoom, progress=False)
    assert next(model.generator.parameters()).device.type == "cuda"
    sr = super_resolve(model, asl, t1, nr.grid)
    assert sr.shape == nr.grid.shape and np.all(np.isfinite(sr))
    model.config = replace(model.config, tile_size=12, tile_overlap=4)  # many tiles on the GPU
    tiled = super_resolve(model, asl, t1, nr.grid)
    on_cpu = super_resolve(model, asl, t1, nr.grid, device=torch.device("cpu"))
    np.testing.assert_allclose(tiled, on_cpu, rtol=1e-3, atol=1e-3 * float(np.abs(on_cpu).max()))
