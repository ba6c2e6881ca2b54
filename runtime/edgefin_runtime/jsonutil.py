"""Strict JSON for untrusted bundle members: no NaN/Infinity (nor 1e999), no duplicate keys, bounded depth.

The parse runs in the C scanner that ``json`` itself uses (``_json``), without importing the ``json``
package (its encoder, decoder and regular expressions cost ~2 ms of a device restart); the depth and
overflow checks are one walk over the parsed containers instead of regular expressions over the text.
"""

from __future__ import annotations

from typing import Any, Callable

from .errors import BundleFormatError

MAX_DEPTH = 32
_WHITESPACE = " \t\n\r"


def _no_constants(name: str) -> Any:
    raise ValueError(f"non-standard JSON constant {name}")


def _no_duplicates(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    out = dict(pairs)
    if len(out) != len(pairs):
        seen: set[str] = set()
        for k, _ in pairs:
            if k in seen:
                raise ValueError(f"duplicate key {k!r}")
            seen.add(k)
    return out


class _Context:
    """What ``_json.make_scanner`` reads from a ``json.JSONDecoder``: strict strings, C float parsing."""

    strict = True
    object_hook = None
    object_pairs_hook = staticmethod(_no_duplicates)
    parse_float = float
    parse_int = int
    parse_constant = staticmethod(_no_constants)


def _python_loads(text: str) -> Any:
    import json

    return json.loads(text, parse_constant=_no_constants, parse_float=float, object_pairs_hook=_no_duplicates)


def _c_loads() -> Callable[[str], Any]:
    try:
        from _json import make_scanner  # the C scanner behind json.loads (CPython)
    except ImportError:  # pragma: no cover - other interpreters
        return _python_loads
    scan = make_scanner(_Context())  # type: ignore[arg-type]  # duck-typed as a JSONDecoder

    def loads(text: str) -> Any:
        if text.startswith("\ufeff"):  # as json.loads says it
            raise ValueError("unexpected UTF-8 BOM (decode using utf-8-sig)")
        start = len(text) - len(text.lstrip(_WHITESPACE))
        try:
            value, end = scan(text, start)
        except StopIteration as stop:
            raise ValueError(f"expecting a value at character {stop.value}") from None
        if len(text.rstrip(_WHITESPACE)) != end:
            raise ValueError(f"extra data at character {end}")
        return value

    return loads


_loads = _c_loads()


def _check_tree(value: Any) -> str | None:
    """What is wrong with a parsed document beyond the parser's checks: nesting deeper than MAX_DEPTH or
    a number that overflowed to infinity (the parser turns 1e999 into inf); None when nothing is."""
    stack: list[tuple[Any, int]] = [([value], 0)]  # wrapped: a top-level number is checked like any other
    while stack:
        node, depth = stack.pop()
        if depth > MAX_DEPTH:
            return f"JSON nested deeper than {MAX_DEPTH} levels"
        for v in node.values() if type(node) is dict else node:
            t = type(v)
            if t is float:
                if v - v != 0.0:  # inf - inf is NaN
                    return "not strict JSON (a number overflows to infinity)"
            elif t is list or t is dict:
                stack.append((v, depth + 1))
    return None


def strict_loads(data: bytes, what: str) -> Any:
    """Parse strict UTF-8 JSON, raising BundleFormatError that names ``what``."""
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise BundleFormatError(f"{what}: not valid UTF-8 ({exc.reason} at byte {exc.start})") from None
    try:
        value = _loads(text)
    except RecursionError:  # only nesting makes the parser recurse that deep
        raise BundleFormatError(f"{what}: JSON nested deeper than {MAX_DEPTH} levels") from None
    except ValueError as exc:
        raise BundleFormatError(f"{what}: not strict JSON ({exc})") from None
    problem = _check_tree(value)
    if problem is not None:
        raise BundleFormatError(f"{what}: {problem}")
    return value
