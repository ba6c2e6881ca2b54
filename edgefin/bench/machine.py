"""What the numbers were measured on: CPU model, cores, memory, OS, Python, library versions."""

from __future__ import annotations

import os
import platform
import sys
from typing import Any

from edgefin_converters.versions import BUILD_LIBRARIES
from edgefin_converters.versions import library_versions as _versions

# what a conversion depends on (recorded in every bundle too), and the toolkit's own packages
LIBRARIES = ("edgefin", *BUILD_LIBRARIES, "scikit-learn", "pandas")


def _cpu_model() -> str:
    try:
        with open("/proc/cpuinfo", encoding="utf-8", errors="replace") as fh:
            for line in fh:
                if line.lower().startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def _mem_total_mib() -> float | None:
    try:
        with open("/proc/meminfo", encoding="ascii") as fh:
            for line in fh:
                if line.startswith("MemTotal:"):
                    return round(int(line.split()[1]) / 1024.0, 1)
    except OSError:
        pass
    return None


def machine_info() -> dict[str, Any]:
    return {
        "cpu_model": _cpu_model(),
        "cpu_count": os.cpu_count(),
        "cpus_available": len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count(),
        "memory_total_mib": _mem_total_mib(),
        "machine": platform.machine(),
        "os": f"{platform.system()} {platform.release()}",
        "platform": platform.platform(),
        "python": sys.version.split()[0],
        "python_implementation": platform.python_implementation(),
        "load_average": load_average(),
    }


def load_average() -> list[float] | None:
    """1, 5 and 15-minute load averages: a busy machine slows every wall-clock figure."""
    try:
        return [round(v, 2) for v in os.getloadavg()]
    except OSError:  # pragma: no cover
        return None


def library_versions() -> dict[str, str]:
    """Versions of :data:`LIBRARIES` ("not installed" for one that is not)."""
    return _versions(LIBRARIES, missing="not installed")
