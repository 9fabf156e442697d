"""Where a run computes: its torch device (resolved once per run, then passed to every step) and
torch's process-wide state (random stream, CPU threads, cuDNN TF32), set for training and restored
afterwards."""

from __future__ import annotations

import contextlib
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


def seed_everything(seed: int) -> tuple[np.random.Generator, torch.Generator]:
    """Seed torch's global stream (network initialisation); call inside :func:`scoped_torch_state`."""
    torch.manual_seed(seed)
    return np.random.default_rng(seed), torch.Generator().manual_seed(seed)


@contextlib.contextmanager
def scoped_torch_state(threads: int | None) -> Iterator[None]:
    """Torch's global random stream, CPU thread count and cuDNN TF32 switch as training needs them, restored
    afterwards. TF32 convolutions (cuDNN's default on recent GPUs) keep 10 mantissa bits, while the data
    term is a small residual of its inputs; training convolves in full float32 on every device, so that a
    GPU run computes the same losses as the CPU does (to float32 rounding)."""
    before, tf32 = torch.get_num_threads(), torch.backends.cudnn.allow_tf32
    with torch.random.fork_rng(devices=[]):
        try:
            torch.backends.cudnn.allow_tf32 = False
            if threads is not None:
                torch.set_num_threads(threads)
            yield
        finally:
            torch.set_num_threads(before)
            torch.backends.cudnn.allow_tf32 = tf32
