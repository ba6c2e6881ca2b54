"""What a figure was measured on: CPU model and features, cores, memory, OS, Python, engine versions.

Stdlib only (NumPy is asked for its CPU feature list when it is already importable). Used by device
results and by the toolkit's report, so both describe a machine the same way.
"""

from __future__ import annotations

import os
import platform
import sys
from typing import Any

ENGINE_DISTRIBUTIONS = ("ai-edge-litert", "onnxruntime", "numpy", "edgefin-runtime")


def cpu_model() -> str:
    """The CPU's model name (/proc/cpuinfo), else what ``platform`` knows."""
    try:
        with open("/proc/cpuinfo", encoding="utf-8", errors="replace") as fh:
            for line in fh:
                key = line.split(":", 1)[0].strip().lower()
                if key in ("model name", "cpu model", "hardware"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def cpu_features() -> list[str]:
    """The SIMD features NumPy detected at run time (portable across x86 and ARM), sorted."""
    try:
        from numpy._core._multiarray_umath import __cpu_features__ as feats
    except ImportError:  # numpy < 2
        try:
            from numpy.core._multiarray_umath import __cpu_features__ as feats  # type: ignore[no-redef]
        except ImportError:
            return []
    return sorted(k for k, v in feats.items() if v)


def memory_total_mib() -> float | None:
    try:
        with open("/proc/meminfo", encoding="ascii") as fh:
            for line in fh:
                if line.startswith("MemTotal:"):
                    return round(int(line.split()[1]) / 1024.0, 1)
    except OSError:
        pass
    return None


def load_average() -> list[float] | None:
    """1, 5 and 15-minute load averages: a busy machine slows every wall-clock figure."""
    try:
        return [round(v, 2) for v in os.getloadavg()]
    except OSError:  # pragma: no cover
        return None


def versions(distributions: tuple[str, ...] = ENGINE_DISTRIBUTIONS) -> dict[str, str]:
    """Installed versions of the given distributions ("not installed" for one that is not)."""
    from importlib import metadata

    out: dict[str, str] = {}
    for name in distributions:
        try:
            out[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            out[name] = "not installed"
    return out


def machine_info() -> dict[str, Any]:
    """The machine, as a device results file and the toolkit's report record it."""
    return {
        "cpu_model": cpu_model(),
        "cpu_features": cpu_features(),
        "cpu_count": os.cpu_count(),
        "cpus_available": len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count(),
        "memory_total_mib": memory_total_mib(),
        "machine": platform.machine(),
        "os": f"{platform.system()} {platform.release()}",
        "platform": platform.platform(),
        "python": sys.version.split()[0],
        "python_implementation": platform.python_implementation(),
        "load_average": load_average(),
    }
