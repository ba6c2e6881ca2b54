"""Reason-code texts from a TOML file (``edgefin convert --reasons FILE``).

One table per field, with a text for any of the directions a reason can take (others keep the
texts generated from the field's name, :func:`edgefin_runtime.explain.default_texts`)::

    [Income]
    lower = "Income too low for the amount requested"
    higher = "Income higher than typical"
    missing = "Income not stated"

    [Home]
    category = "Type of residence: {value}"     # {value}: the applicant's, {reference}: the typical one

A top-level ``[reasons]`` table holding the field tables is accepted too (so the file can be shared
with other settings). Field names are checked against the schema when the bundles are built.
"""

from __future__ import annotations

import tomllib
from pathlib import Path
from typing import Any

from edgefin_runtime.explain import DIRECTIONS

from .errors import UsageError


def load_reason_texts(path: str | Path) -> dict[str, dict[str, str]]:
    """``{field: {direction: text}}`` from a TOML file; UsageError naming the file and key if malformed."""
    p = Path(path)
    try:
        with open(p, "rb") as fh:
            doc: dict[str, Any] = tomllib.load(fh)
    except OSError as exc:
        raise UsageError(f"`reasons`: cannot read {p}: {exc.strerror}") from None
    except tomllib.TOMLDecodeError as exc:
        raise UsageError(f"`reasons`: {p} is not valid TOML ({exc})") from None
    table = doc.get("reasons", doc) if set(doc) == {"reasons"} else doc
    out: dict[str, dict[str, str]] = {}
    for name, texts in table.items():
        if not isinstance(texts, dict):
            raise UsageError(f"`reasons`: {p}: [{name}] must be a table of direction = text")
        for k, v in texts.items():
            if k not in DIRECTIONS or not isinstance(v, str) or not v.strip():
                raise UsageError(
                    f"`reasons`: {p}: {name}.{k} must be a non-empty text for one of {', '.join(DIRECTIONS)}"
                )
        out[str(name)] = {str(k): str(v) for k, v in texts.items()}
    return out
