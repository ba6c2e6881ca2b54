"""Atomic file writing: a temporary file in the same folder, fsync, rename. Never a half file.

Files go through the one writer in ``edgefin_runtime.atomic``; this module adds JSON, text and whole
directories. Every file the toolkit writes goes through here, so a crash or a full disk leaves either the old
file or the new one. Tests inject failures through ``_before_replace``.
"""

from __future__ import annotations

import contextlib
import json
import os
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path

from edgefin_runtime.atomic import write_bytes as _write_atomically

_before_replace: Callable[[Path], None] | None = None  # test hook: raise here to simulate a crash


def write_bytes(path: str | os.PathLike[str], data: bytes, *, mode: int | None = None) -> Path:
    """Write ``data`` to ``path`` atomically (``mode``: file permissions, default as open() would)."""
    return _write_atomically(path, data, mode=mode, before_replace=_before_replace)


def write_text(path: str | os.PathLike[str], text: str, *, mode: int | None = None) -> Path:
    return write_bytes(path, text.encode("utf-8"), mode=mode)


def write_json(path: str | os.PathLike[str], obj: object) -> Path:
    """Strict JSON (no NaN), indented, sorted keys, atomically."""
    return write_text(path, json.dumps(obj, indent=2, sort_keys=True, allow_nan=False, default=_default) + "\n")


def _default(o: object) -> object:
    try:
        import numpy as np
    except ImportError:  # pragma: no cover
        raise TypeError(type(o).__name__) from None
    if isinstance(o, np.generic):
        return o.item()
    if isinstance(o, np.ndarray):
        return o.tolist()
    if isinstance(o, Path):
        return str(o)
    raise TypeError(f"cannot serialise {type(o).__name__}")


@contextlib.contextmanager
def atomic_dir(path: str | os.PathLike[str]) -> Iterator[Path]:
    """Build a directory (e.g. a Keras SavedModel) beside ``path``, then swap it in whole."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent))
    try:
        yield tmp
        if _before_replace is not None:
            _before_replace(path)
        old = None
        if path.exists():
            old = path.with_name(f".{path.name}.old")
            if old.exists():
                _rmtree(old)
            os.replace(path, old)
        os.replace(tmp, path)
        if old is not None:
            _rmtree(old)
    except BaseException:
        _rmtree(tmp)
        raise


def _rmtree(p: Path) -> None:
    import shutil

    shutil.rmtree(p, ignore_errors=True)
