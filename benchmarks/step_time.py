"""Seconds per training step of the default generator on the CPU, in float32 and with other number formats.

One step = forward, MSE, backward and Adam on a batch of 2 patches of 32^3 voxels (the ``fast`` preset's
U-Net, He initialisation). Prints the median of 10 steps after 2 warm-up steps for: float32, float32 with
channels-last memory (``Config.channels_last``, on by default since 2026-12-06), bfloat16 autocast
(``Config.bfloat16``; fast only where the CPU has bf16 units, e.g. AMX or AVX512-BF16) and both; then the seconds of
one no-gradient pass over a whole 128 x 96 x 48 volume (what a validation or a generation pass costs), float32 with
either layout. A micro-benchmark, not a run's time (BENCHMARKS.md 2026-12-02 afternoon, 2026-12-06).

    python benchmarks/step_time.py [--threads 1]
"""

from __future__ import annotations

import argparse
import statistics
import time

import torch

from aslsr.config import preset
from aslsr.devices import compute_layout
from aslsr.networks import Generator

FAST = preset("fast")


def fast_generator(*, channels_last: bool) -> Generator:
    """The ``fast`` preset's generator (seed 0) on the CPU, laid out as a run lays it out."""
    torch.manual_seed(0)
    generator = Generator(channels=FAST.generator_channels, init=FAST.generator_init)
    return compute_layout(generator, torch.device("cpu"), channels_last=channels_last)


def step_seconds(*, channels_last: bool = False, bfloat16: bool = False, steps: int = 12) -> float:
    """Median seconds of one training step (the first two steps not counted)."""
    generator = fast_generator(channels_last=channels_last)
    image, t1 = torch.randn(2, 1, 32, 32, 32), torch.randn(2, 1, 32, 32, 32)
    if channels_last:
        image, t1 = (x.to(memory_format=torch.channels_last_3d) for x in (image, t1))
    optimizer = torch.optim.Adam(generator.parameters(), lr=FAST.learning_rate, betas=FAST.adam_betas)
    times = []
    for _ in range(steps):
        started = time.perf_counter()
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=bfloat16):
            loss = generator(image, t1, residual=True).float().square().mean()
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        times.append(time.perf_counter() - started)
    return statistics.median(times[2:])


def volume_pass_seconds(*, channels_last: bool = False, passes: int = 4) -> float:
    """Median seconds of one no-gradient pass of the U-Net over a 128 x 96 x 48 volume (the first not counted)."""
    generator = fast_generator(channels_last=channels_last).eval()
    image, t1 = torch.randn(1, 1, 128, 96, 48), torch.randn(1, 1, 128, 96, 48)
    times = []
    with torch.no_grad():
        for _ in range(passes):
            started = time.perf_counter()
            generator(image, t1, residual=True)
            times.append(time.perf_counter() - started)
    return statistics.median(times[1:])


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    for label, options in (
        ("float32", {}),
        ("float32, channels-last", {"channels_last": True}),
        ("bfloat16 autocast", {"bfloat16": True}),
        ("bfloat16, channels-last", {"bfloat16": True, "channels_last": True}),
    ):
        print(f"{label:24s} {step_seconds(**options):.3f} s per step")
    for label, options in (("float32", {}), ("float32, channels-last", {"channels_last": True})):
        print(f"{label:24s} {volume_pass_seconds(**options):.3f} s per whole-volume pass")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
