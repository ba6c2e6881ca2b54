"""What the numbers were measured on: the machine as the runtime describes it (one description for a
device's results and the build machine's report), plus the toolkit's library versions."""

from __future__ import annotations

from edgefin_converters.versions import BUILD_LIBRARIES
from edgefin_converters.versions import library_versions as _versions
from edgefin_runtime.benchmark.machine import load_average, machine_info

# what a conversion depends on (recorded in every bundle too), and the toolkit's own packages
LIBRARIES = ("edgefin", *BUILD_LIBRARIES, "scikit-learn", "pandas")


def library_versions() -> dict[str, str]:
    """Versions of :data:`LIBRARIES` ("not installed" for one that is not)."""
    return _versions(LIBRARIES, missing="not installed")


__all__ = ["LIBRARIES", "library_versions", "load_average", "machine_info"]
