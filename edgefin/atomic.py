"""Atomic file writing: a temporary file in the same folder, fsync, rename. Never a half file.

Every file the toolkit writes goes through here, so a crash or a full disk leaves either the old
file or the new one. Tests inject failures through ``_before_replace``.
"""

from __future__ import annotations

import contextlib
import json
import os
import tempfile
from pathlib import Path
from typing import Any, Callable, Iterator

_before_replace: Callable[[Path], None] | None = None  # test hook: raise here to simulate a crash


def _fsync_dir(path: Path) -> None:
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def _default_mode() -> int:
    """Permissions a plain open() would give (0o666 minus the umask); mkstemp alone gives 0o600."""
    mask = os.umask(0o022)
    os.umask(mask)
    return 0o666 & ~mask


_DEFAULT_MODE = _default_mode()


def write_bytes(path: str | os.PathLike[str], data: bytes, *, mode: int | None = None) -> Path:
    """Write ``data`` to ``path`` atomically (``mode``: file permissions, default as open() would)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as fh:
            os.fchmod(fh.fileno(), _DEFAULT_MODE if mode is None else mode)
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        if _before_replace is not None:
            _before_replace(path)
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise
    _fsync_dir(path.parent)
    return path


def write_text(path: str | os.PathLike[str], text: str, *, mode: int | None = None) -> Path:
    return write_bytes(path, text.encode("utf-8"), mode=mode)


def write_json(path: str | os.PathLike[str], obj: Any) -> Path:
    """Strict JSON (no NaN), indented, sorted keys, atomically."""
    return write_text(path, json.dumps(obj, indent=2, sort_keys=True, allow_nan=False, default=_default) + "\n")


def _default(o: Any) -> Any:
    try:
        import numpy as np
    except ImportError:  # pragma: no cover
        raise TypeError(type(o).__name__)
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
