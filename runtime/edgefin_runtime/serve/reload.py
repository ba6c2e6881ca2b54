"""The serving model and its hot swaps (HTTP, SIGHUP, --watch) on top of the runtime's ModelHolder.

Every swap loads the bundle completely - hashes, signature when the first load required one, versions,
engine, golden self-test - and runs the whole acceptance set before the new model serves; a bundle that
fails any of it leaves the old one serving. Swaps run on their own thread (never a scoring worker),
one at a time.
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any, Optional

from ..acceptance import require
from ..holder import ModelHolder, ModelInfo, SwapReport
from ..predictor import Predictor

#: (size, mtime_ns, inode) of the bundle file, or None when it cannot be read
FileStamp = Optional[tuple[int, int, int]]


def model_id(info: ModelInfo) -> dict[str, Any]:
    """How a response names the model that produced it: the bundle's sha256 is the id."""
    return {"id": info.sha256, "variant": info.variant, "engine": info.engine, "generation": info.generation}


def _accept(predictor: Predictor) -> None:
    require(predictor)  # SelfTestError naming every failed gate


def open_holder(path: str, **load_kwargs: Any) -> ModelHolder:
    """Load, verify, self-test and acceptance-check the bundle at ``path`` (typed errors on failure)."""
    return ModelHolder(path, check=_accept, **load_kwargs)


def file_stamp(path: str) -> FileStamp:
    try:
        st = os.stat(path)
    except OSError:
        return None
    return (st.st_size, st.st_mtime_ns, st.st_ino)


class Reloader:
    """Runs swaps off the event loop and reports each outcome to ``on_report(trigger, report)``."""

    def __init__(self, holder: ModelHolder, path: str, on_report: Callable[[str, SwapReport], None]) -> None:
        self.holder, self.path, self.on_report = holder, path, on_report
        self._pool = ThreadPoolExecutor(1, thread_name_prefix="edgefin-reload")
        self._stamp = file_stamp(path)

    async def reload(self, trigger: str) -> SwapReport:
        """Swap to the bundle now at ``path`` (always reloads, even if its bytes are unchanged)."""
        loop = asyncio.get_running_loop()
        self._stamp = file_stamp(self.path)
        report = await loop.run_in_executor(self._pool, self.holder.try_swap, self.path)
        self.on_report(trigger, report)
        return report

    async def watch(self, interval: float) -> None:
        """Poll the bundle file; when its size, mtime or inode changes and its bytes differ, swap."""
        loop = asyncio.get_running_loop()
        while True:
            await asyncio.sleep(interval)
            stamp = file_stamp(self.path)
            if stamp == self._stamp or stamp is None:
                continue  # unchanged, or mid-rename: look again next time
            self._stamp = stamp
            report = await loop.run_in_executor(self._pool, self.holder.swap_if_changed, self.path)
            if report is not None:
                self.on_report("watch", report)

    def close(self) -> None:
        self._pool.shutdown(wait=True)
