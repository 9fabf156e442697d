"""Where a run computes: its torch device (resolved once per run, then passed to every step) and
torch's process-wide state (random stream, CPU threads, cuDNN TF32), set for training and restored
afterwards; and, for the command line's process, the C allocator's reuse of freed memory."""

from __future__ import annotations

import contextlib
import ctypes
import ctypes.util
import sys
from typing import Iterator

import numpy as np
import torch

from .errors import InputError


def resolve_device(name: str) -> torch.device:
    """``auto`` picks CUDA when present, else the CPU."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name.startswith("cuda") and not torch.cuda.is_available():
        raise InputError("--device cuda was asked for, but no CUDA device is available")
    return torch.device(name)


def compute_layout(module: torch.nn.Module, device: torch.device, *, channels_last: bool) -> torch.nn.Module:
    """``module`` moved to ``device`` (in place), its 5D weights channels-last there when asked and on the CPU.

    oneDNN's 3D convolutions run 1.15-1.3x faster on channels-last feature maps (N, D, H, W, C in memory) with
    the same float32 arithmetic; :class:`aslsr.networks.UNet3d` lays its input out like its first weight.
    """
    module = module.to(device)
    if channels_last and device.type == "cpu":
        module = module.to(memory_format=torch.channels_last_3d)
    return module


#: glibc's mallopt parameters (malloc.h): M_TRIM_THRESHOLD, M_MMAP_THRESHOLD.
_M_TRIM_THRESHOLD, _M_MMAP_THRESHOLD = -1, -3


def keep_freed_memory() -> bool:
    """Have glibc's malloc keep freed memory for reuse rather than return it to the system (process-wide).

    Torch allocates each intermediate of a volume anew. glibc serves an allocation above its mmap
    threshold (at most 32 MiB) with a fresh ``mmap`` and unmaps it on ``free``, so every PDHG iteration of
    dTV and every convolution on a 1 mm volume (a 240 x 180 x 120 float32 array is 20 MiB) faults its
    pages in again: on a 2-core CPU the default target's dTV spent 65 of its 162 CPU seconds in the
    kernel (BENCHMARKS.md, 2026-12-07). With both thresholds at 2 GiB the memory is reused (the same
    arithmetic, the same results; a higher peak, as the heap fragments). PyTorch's CPU tuning guide gets
    the same with jemalloc or tcmalloc. The command line calls this for its own process (not in Dask
    workers, whose memory Dask watches and trims); a notebook may. Returns whether it applied (False off
    glibc, e.g. macOS, Windows, musl).
    """
    if not sys.platform.startswith("linux"):
        return False
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        mallopt = libc.mallopt
    except (OSError, AttributeError):
        return False
    mallopt.argtypes, mallopt.restype = (ctypes.c_int, ctypes.c_int), ctypes.c_int
    threshold = 2**31 - 1  # mallopt takes an int: 2 GiB
    return bool(mallopt(_M_MMAP_THRESHOLD, threshold)) and bool(mallopt(_M_TRIM_THRESHOLD, threshold))


def cpu_has_bfloat16() -> bool:
    """Whether this CPU computes bfloat16 in hardware (AVX512-BF16 or AMX), as PyTorch's oneDNN reports it."""
    try:
        return bool(torch.ops.mkldnn._is_mkldnn_bf16_supported())
    except (AttributeError, RuntimeError):  # a build without oneDNN
        return False


def use_bfloat16(device: torch.device, setting: str) -> bool:
    """Whether ``Config.bfloat16 = setting`` turns bfloat16 autocast on: "on", or "auto" on a CPU with bf16 units."""
    return setting == "on" or (setting == "auto" and device.type == "cpu" and cpu_has_bfloat16())


def seed_everything(seed: int) -> tuple[np.random.Generator, torch.Generator]:
    """Seed torch's global stream (network initialisation); call inside :func:`scoped_torch_state`."""
    torch.manual_seed(seed)
    return np.random.default_rng(seed), torch.Generator().manual_seed(seed)


@contextlib.contextmanager
def torch_threads(threads: int | None) -> Iterator[None]:
    """Torch's CPU thread count set to ``threads`` (``None``: left as it is), restored afterwards.

    A run holds it for all its torch work (dTV, training, generation), so ``Config.threads`` bounds the whole run.
    """
    before = torch.get_num_threads()
    try:
        if threads is not None:
            torch.set_num_threads(threads)
        yield
    finally:
        torch.set_num_threads(before)


@contextlib.contextmanager
def scoped_torch_state(threads: int | None) -> Iterator[None]:
    """Torch's global random stream, CPU thread count and cuDNN TF32 switch as training needs them, restored
    afterwards. TF32 convolutions (cuDNN's default on recent GPUs) keep 10 mantissa bits, while the data
    term is a small residual of its inputs; training convolves in full float32 on every device, so that a
    GPU run computes the same losses as the CPU does (to float32 rounding)."""
    tf32 = torch.backends.cudnn.allow_tf32
    with torch.random.fork_rng(devices=[]), torch_threads(threads):
        try:
            torch.backends.cudnn.allow_tf32 = False
            yield
        finally:
            torch.backends.cudnn.allow_tf32 = tf32
