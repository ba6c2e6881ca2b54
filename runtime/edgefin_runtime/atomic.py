"""The one atomic file writer: a temporary file beside the target, fsync, rename, fsync the folder.

It lives in the runtime because every package may depend on the runtime (runtime <- converters <-
toolkit): the toolkit's ``edgefin.atomic``, the converters' bundle writer and ``edgefin-run score
--output`` all write through here. A failure at any step leaves the old file (or none) and no
temporary file behind.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import IO, Any

BeforeReplace = Callable[[Path], None]


def default_mode() -> int:
    """Permissions a plain open() would give (0o666 minus the umask); mkstemp alone gives 0o600."""
    mask = os.umask(0o022)
    os.umask(mask)
    return 0o666 & ~mask


DEFAULT_MODE = default_mode()


def fsync_dir(path: Path) -> None:
    """Make a rename durable; some filesystems refuse a directory fsync, which is not an error."""
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


@contextlib.contextmanager
def open_atomic(
    path: str | os.PathLike[str],
    *,
    text: bool = False,
    mode: int | None = None,
    before_replace: BeforeReplace | None = None,
) -> Iterator[IO[Any]]:
    """Yield a file to write; on a clean exit it replaces ``path`` whole, on any error nothing changes.

    ``mode``: permissions (default as open() would give). ``before_replace``: a test hook called just
    before the rename, to simulate a crash there.
    """
    path = Path(path)
    directory = path.parent if str(path.parent) else Path(".")
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=directory)
    try:
        with os.fdopen(fd, "w", encoding="utf-8", newline="") if text else os.fdopen(fd, "wb") as fh:
            os.fchmod(fh.fileno(), DEFAULT_MODE if mode is None else mode)
            yield fh
            fh.flush()
            os.fsync(fh.fileno())
        if before_replace is not None:
            before_replace(path)
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise
    fsync_dir(directory)


def write_bytes(
    path: str | os.PathLike[str], data: bytes, *, mode: int | None = None, before_replace: BeforeReplace | None = None
) -> Path:
    """Write ``data`` to ``path`` atomically, creating its folder if needed."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with open_atomic(path, mode=mode, before_replace=before_replace) as fh:
        fh.write(data)
    return path
