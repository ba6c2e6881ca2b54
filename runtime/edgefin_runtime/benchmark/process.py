"""What a measuring process knows of itself: peak memory, the CPU it ran on, whether it ran out of memory.

Stdlib only, Linux-first (``/proc``), with portable fallbacks.
"""

from __future__ import annotations

import resource
import sys

_OOM_MARKERS = (
    "failed to map segment",
    "cannot allocate memory",
    "bad_alloc",
    "bad allocation",
    "out of memory",
    "memoryerror",
    "std::length_error",
    "resource exhausted",
)

# modules a scoring process must never load: they would distort cold start and memory, and a device
# does not have them
HEAVY_MODULES = ("tensorflow", "tf_keras", "pandas", "sklearn", "edgefin.train")


def last_cpu() -> int | None:
    """The CPU this process last ran on (field 39 of /proc/self/stat): proof that pinning took effect."""
    try:
        with open("/proc/self/stat", encoding="ascii") as fh:
            tail = fh.read().rsplit(")", 1)[1].split()
        return int(tail[36])
    except (OSError, IndexError, ValueError):  # pragma: no cover - not Linux
        return None


def is_out_of_memory(exc: BaseException) -> bool:
    """True when an exception (or its cause chain) says an allocation failed."""
    seen = 0
    e: BaseException | None = exc
    while e is not None and seen < 8:
        if isinstance(e, MemoryError):
            return True
        text = f"{type(e).__name__}: {e}".lower()
        if any(m in text for m in _OOM_MARKERS):
            return True
        e = e.__cause__ or e.__context__
        seen += 1
    return False


def memory() -> dict[str, float]:
    """Peak resident set (VmHWM) and peak address space (VmPeak) of this process, in MiB.

    ``ru_maxrss`` is only the fallback: Linux carries it over from the parent across fork + exec, so a
    worker started by a big parent would report the parent's peak.
    """
    out: dict[str, float] = {}
    try:
        with open("/proc/self/status", encoding="ascii") as fh:
            for line in fh:
                if line.startswith("VmHWM:"):
                    out["peak_rss_mib"] = int(line.split()[1]) / 1024.0
                elif line.startswith("VmPeak:"):
                    out["peak_vm_mib"] = int(line.split()[1]) / 1024.0
    except OSError:  # pragma: no cover - not Linux
        out["peak_rss_mib"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0
    return out


def heavy_modules_loaded() -> list[str]:
    """Which of :data:`HEAVY_MODULES` this process has imported (must be none for a bundle's run)."""
    return sorted(m for m in HEAVY_MODULES if m in sys.modules)
