"""Facts about the machine a run happens on (for ``report.json`` and input checks), through psutil.

Memory is in bytes unless a name says MB (2**20 bytes). Nothing here changes the process.
"""

from __future__ import annotations

import platform
import sys
from pathlib import Path

import psutil


def available_memory() -> int:
    """Bytes of memory available now without swapping (free plus reclaimable cache)."""
    return int(psutil.virtual_memory().available)


def total_memory() -> int:
    """Bytes of physical memory."""
    return int(psutil.virtual_memory().total)


def physical_cores() -> int:
    """Physical CPU cores (logical ones where the platform does not tell), at least 1."""
    return int(psutil.cpu_count(logical=False) or psutil.cpu_count(logical=True) or 1)


def peak_memory_mb() -> float:
    """Peak resident memory of this process so far (MB).

    psutil gives the peak only on Windows (``peak_wset``); elsewhere it comes from ``getrusage``,
    whose ``ru_maxrss`` is in bytes on macOS and in KiB on Linux and the BSDs.
    """
    info = psutil.Process().memory_info()
    peak = getattr(info, "peak_wset", None)
    if peak is None:
        import resource  # POSIX only

        maxrss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        peak = maxrss if sys.platform == "darwin" else maxrss * 1024
    return round(max(float(peak), float(info.rss)) / 2**20, 1)


def cpu_name() -> str:
    """The CPU model, e.g. "AMD EPYC 7B13"; else what the platform module knows.

    psutil does not report the model: on Linux it is read from ``/proc/cpuinfo``, on macOS
    ``platform.processor()`` gives the architecture only.
    """
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()
