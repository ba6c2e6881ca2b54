"""How hard a benchmark tries: the runtime's repetition presets (one home:
:mod:`edgefin_runtime.benchmark.settings`), refused with the toolkit's UsageError here.
"""

from __future__ import annotations

from edgefin_runtime.benchmark.settings import PRESETS, Settings
from edgefin_runtime.benchmark.settings import preset as _preset

from ..errors import UsageError


def preset(name: str) -> Settings:
    try:
        return _preset(name)
    except KeyError as exc:
        raise UsageError(str(exc.args[0])) from None


__all__ = ["Settings", "PRESETS", "preset"]
