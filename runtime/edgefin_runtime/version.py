"""The runtime's version, and the one parser for version strings."""

from __future__ import annotations

__version__ = "0.2.0"


def version_tuple(text: str) -> tuple[int, ...]:
    """Parse 'X.Y.Z' into a comparable tuple; raise ValueError naming what was wrong."""
    parts = text.split(".")
    if not 1 <= len(parts) <= 4 or not all(p.isdigit() and len(p) <= 6 for p in parts):
        raise ValueError(f"expected a version like '1.2.3', got {text!r}")
    return tuple(int(p) for p in parts) + (0,) * (4 - len(parts))
