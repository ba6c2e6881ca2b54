"""Reading TOML files (configs, hardware profiles) with one typed error for every way that fails."""

from __future__ import annotations

import os
import tomllib
from pathlib import Path
from typing import Any

from .errors import UsageError


def read_toml(path: str | os.PathLike[str], what: str = "config file") -> dict[str, Any]:
    """The parsed file; a missing, undecodable or invalid file is a UsageError naming it."""
    p = Path(path)
    try:
        return tomllib.loads(p.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise UsageError(f"{what} {p} not found") from None
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise UsageError(f"{what} {p} is not valid TOML: {exc}") from None
