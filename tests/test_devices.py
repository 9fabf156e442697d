"""Device selection (the CUDA path runs where a GPU is present and is skipped otherwise) and torch's
process-wide state around training (aslsr.devices)."""

import ctypes
import ctypes.util
import platform

import numpy as np
import pytest
import torch
from scipy import ndimage

from aslsr.config import preset, replace
from aslsr.devices import (
    compute_layout,
    cpu_has_bfloat16,
    keep_freed_memory,
    resolve_device,
    scoped_torch_state,
    seed_everything,
    torch_threads,
    use_bfloat16,
)
from aslsr.errors import InputError
from aslsr.generate import super_resolve
from aslsr.grids import Grid
from aslsr.io import Volume
from aslsr.networks import Generator
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


def _synthetic_case() -> tuple[Volume, Grid, Volume]:
    """A smooth random LR ASL (16x12x12 at 6 mm), its NR grid (3 mm) and a T1 (2 mm) of the same field of view:
    no phantom templates needed, so the CUDA test runs on any GPU machine with torch and nibabel."""
    rng = np.random.default_rng(0)
    lr = Grid((16, 12, 12), np.diag([6.0, 6.0, 6.0, 1.0]))
    asl = Volume(ndimage.gaussian_filter(rng.random(lr.shape), 1.0).astype(np.float32) * 60.0, lr)
    t1_grid = lr.with_voxel_size((2.0, 2.0, 2.0))
    t1 = Volume(ndimage.gaussian_filter(rng.random(t1_grid.shape), 2.0).astype(np.float32), t1_grid)
    return asl, lr.with_voxel_size((3.0, 3.0, 3.0)), t1


@cuda
def test_training_and_generation_on_cuda():
    asl, nr_grid, t1 = _synthetic_case()
    zoom = zoom_between(asl.grid, nr_grid)
    model = train(asl, t1, config=preset("test", device="cuda"), zoom=zoom, progress=False)
    assert next(model.generator.parameters()).device.type == "cuda"
    sr = super_resolve(model, asl, t1, nr_grid)
    assert sr.shape == nr_grid.shape and np.all(np.isfinite(sr))
    model.config = replace(model.config, tile_size=12, tile_overlap=4)  # many tiles on the GPU
    tiled = super_resolve(model, asl, t1, nr_grid)
    on_cpu = super_resolve(model, asl, t1, nr_grid, device=torch.device("cpu"))
    np.testing.assert_allclose(tiled, on_cpu, rtol=1e-3, atol=1e-3 * float(np.abs(on_cpu).max()))


def test_training_state_is_full_float32_inside_and_restored_outside():
    torch.backends.cudnn.allow_tf32 = True  # torch's own default
    threads = torch.get_num_threads()
    with scoped_torch_state(1):
        assert torch.backends.cudnn.allow_tf32 is False
        assert torch.get_num_threads() == 1
    assert torch.backends.cudnn.allow_tf32 is True
    assert torch.get_num_threads() == threads


def test_the_state_is_restored_when_training_fails():
    torch.backends.cudnn.allow_tf32 = True
    try:
        with scoped_torch_state(None):
            raise RuntimeError("training failed")
    except RuntimeError:
        pass
    assert torch.backends.cudnn.allow_tf32 is True


def test_seeding_inside_the_scope_is_reproducible_and_leaves_the_global_stream_alone():
    torch.manual_seed(7)
    expected = torch.rand(2)
    torch.manual_seed(7)
    draws = []
    for _ in range(2):
        with scoped_torch_state(None):
            _, generator = seed_everything(3)
            draws.append((torch.rand(2), torch.rand(2, generator=generator)))
    assert torch.equal(draws[0][0], draws[1][0]) and torch.equal(draws[0][1], draws[1][1])
    assert torch.equal(torch.rand(2), expected)


def test_channels_last_layout_changes_the_memory_order_not_the_result():
    torch.manual_seed(0)
    plain = Generator(channels=(4, 8, 8), init="he").eval()
    torch.nn.init.normal_(plain.unet.head.weight, std=0.5)  # the head starts at zero: give the U-Net a say
    laid_out = Generator(channels=(4, 8, 8), init="he").eval()
    laid_out.load_state_dict(plain.state_dict())
    cpu = torch.device("cpu")
    compute_layout(laid_out, cpu, channels_last=True)
    compute_layout(plain, cpu, channels_last=False)
    weight = laid_out.unet.encoder1[0].weight
    assert weight.is_contiguous(memory_format=torch.channels_last_3d) and not weight.is_contiguous()
    assert plain.unet.encoder1[0].weight.is_contiguous()
    image, t1 = torch.randn(1, 1, 10, 9, 7), torch.randn(1, 1, 10, 9, 7)
    with torch.no_grad():
        expected, got = plain(image, t1), laid_out(image, t1)
    assert got.shape == expected.shape
    torch.testing.assert_close(got, expected, rtol=1e-5, atol=1e-5)


def test_bfloat16_follows_its_setting_and_auto_follows_the_cpu():
    cpu = torch.device("cpu")
    assert use_bfloat16(cpu, "on") and not use_bfloat16(cpu, "off")
    assert use_bfloat16(cpu, "auto") == cpu_has_bfloat16()
    assert not use_bfloat16(torch.device("cuda"), "auto")  # auto is a CPU setting; "on" asks for it anywhere


def test_torch_threads_sets_and_restores_the_count_and_none_leaves_it():
    before = torch.get_num_threads()
    with torch_threads(1):
        assert torch.get_num_threads() == 1
        with torch_threads(None):
            assert torch.get_num_threads() == 1
    assert torch.get_num_threads() == before


class _MallInfo2(ctypes.Structure):
    _fields_ = [
        (name, ctypes.c_size_t)
        for name in ("arena", "ordblks", "smblks", "hblks", "hblkhd", "usmblks", "fsmblks", "uordblks", "fordblks")
        + ("keepcost",)
    ]


def _mmapped_bytes() -> int:
    libc = ctypes.CDLL(ctypes.util.find_library("c"))
    libc.mallinfo2.restype = _MallInfo2
    return int(libc.mallinfo2().hblkhd)


def _glibc_with_mallinfo2() -> bool:
    name, version = platform.libc_ver()
    return platform.system() == "Linux" and name == "glibc" and tuple(map(int, version.split(".")[:2])) >= (2, 33)


@pytest.mark.skipif(not _glibc_with_mallinfo2(), reason="glibc's malloc only (mallinfo2: glibc 2.33 or later)")
def test_keep_freed_memory_serves_large_tensors_from_the_heap_not_fresh_mappings():
    size = 64 * 2**20  # bytes: above glibc's largest automatic mmap threshold (32 MiB)
    assert keep_freed_memory()
    before = _mmapped_bytes()
    block = torch.ones(size // 4)
    assert _mmapped_bytes() - before < size  # from the heap, not a new mapping
    del block
    again = torch.zeros(size // 4)
    assert _mmapped_bytes() - before < size and float(again.sum()) == 0.0
