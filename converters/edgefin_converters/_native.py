"""Keep converter noise (MLIR diagnostics, C++ logs, warnings) off the user's terminal.

TensorFlow's converter and tf2onnx write straight to file descriptors 1 and 2 from C++; the
converters turn their failures into typed errors instead, so the raw text is captured and dropped
(or handed to the caller to mine for op names).
"""

from __future__ import annotations

import contextlib
import logging
import os
import sys
import tempfile
import warnings
from collections.abc import Iterator

_QUIET_LOGGERS = ("tensorflow", "absl", "tf2onnx", "onnxruntime", "root")


@contextlib.contextmanager
def quiet(capture: list[str] | None = None) -> Iterator[None]:
    """Silence fds 1/2, Python warnings and chatty loggers; append what was written to ``capture``."""
    for stream in (sys.stdout, sys.stderr):
        with contextlib.suppress(Exception):
            stream.flush()
    saved: list[tuple[int, int]] = []
    sink = tempfile.TemporaryFile(mode="w+b")
    levels = {name: logging.getLogger(name if name != "root" else None).level for name in _QUIET_LOGGERS}
    try:
        for fd in (1, 2):
            try:
                saved.append((fd, os.dup(fd)))
                os.dup2(sink.fileno(), fd)
            except OSError:
                pass
        for name in _QUIET_LOGGERS:
            logging.getLogger(name if name != "root" else None).setLevel(logging.CRITICAL)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            yield
    finally:
        for stream in (sys.stdout, sys.stderr):
            with contextlib.suppress(Exception):
                stream.flush()
        for fd, copy in saved:
            os.dup2(copy, fd)
            os.close(copy)
        for name, level in levels.items():
            logging.getLogger(name if name != "root" else None).setLevel(level)
        if capture is not None:
            sink.seek(0)
            capture.append(sink.read().decode("utf-8", errors="replace"))
        sink.close()
