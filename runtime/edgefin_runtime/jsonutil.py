"""Strict JSON for untrusted bundle members: no NaN/Infinity (nor 1e999), no duplicate keys, bounded depth."""

from __future__ import annotations

import json
import re
from typing import Any

from .errors import BundleFormatError

MAX_DEPTH = 32


def _no_constants(name: str) -> Any:
    raise ValueError(f"non-standard JSON constant {name}")


def _finite_float(text: str) -> float:
    value = float(text)
    if value in (float("inf"), float("-inf")):
        raise ValueError(f"number {text[:40]} overflows to infinity")
    return value


def _no_duplicates(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    out = dict(pairs)
    if len(out) != len(pairs):
        seen: set[str] = set()
        for k, _ in pairs:
            if k in seen:
                raise ValueError(f"duplicate key {k!r}")
            seen.add(k)
    return out


#: a JSON string, escapes included; one left open runs to the end of the text
_STRING = re.compile(r'"[^"\\]*(?:\\.[^"\\]*)*(?:"|\\?\Z)', re.DOTALL)
_NOT_BRACKET = re.compile(r"[^\[\]{}]+")
#: what could make a JSON number overflow a float, looked for in the text with its strings removed (so
#: only numbers are left to match): a three-digit positive exponent or a 200-digit run. A text without
#: any (the usual manifest) is parsed with the C float conversion; one with any, by the checking hook
_MAYBE_HUGE = re.compile(r"[eE]\+?[0-9]{3}|[0-9]{200}")


def _depth(bare: str) -> int:
    """The deepest nesting of ``[`` and ``{`` in ``bare`` (a JSON text without its strings: a regex pass
    leaves only the brackets to walk; a character loop over the whole manifest cost a few ms a load)."""
    depth = best = 0
    for ch in _NOT_BRACKET.sub("", bare):
        if ch in "[{":
            depth += 1
            if depth > best:
                best = depth
        else:
            depth -= 1
    return best


def strict_loads(data: bytes, what: str) -> Any:
    """Parse strict UTF-8 JSON, raising BundleFormatError that names ``what``."""
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise BundleFormatError(f"{what}: not valid UTF-8 ({exc.reason} at byte {exc.start})") from None
    bare = _STRING.sub("", text)
    if _depth(bare) > MAX_DEPTH:
        raise BundleFormatError(f"{what}: JSON nested deeper than {MAX_DEPTH} levels")
    parse_float = _finite_float if _MAYBE_HUGE.search(bare) else float
    try:
        return json.loads(text, parse_constant=_no_constants, parse_float=parse_float, object_pairs_hook=_no_duplicates)
    except (ValueError, RecursionError) as exc:
        raise BundleFormatError(f"{what}: not strict JSON ({exc})") from None
