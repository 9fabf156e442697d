"""Machine facts through psutil, in the units their names say."""

from __future__ import annotations

import numpy as np
import psutil

from aslsr import machine


def test_memory_facts_are_bytes_and_consistent():
    total, available = machine.total_memory(), machine.available_memory()
    assert 2**27 < available <= total  # more than 128 MiB free, at most all of it


def test_peak_memory_is_megabytes_and_covers_what_is_resident_now():
    block = np.ones(32 * 2**20 // 8)  # 32 MiB resident while measured
    rss_mb = psutil.Process().memory_info().rss / 2**20
    peak = machine.peak_memory_mb()
    assert rss_mb - 1 <= peak < machine.total_memory() / 2**20  # KiB read as bytes or bytes as KiB fails
    assert float(block.sum()) == block.size


def test_cpu_facts():
    assert machine.physical_cores() >= 1
    assert isinstance(machine.cpu_name(), str) and machine.cpu_name()
