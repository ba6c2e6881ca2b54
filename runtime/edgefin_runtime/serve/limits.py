"""Bounded work: at most ``workers`` requests score at once, at most ``queue_depth`` wait.

Scoring runs in a thread pool of ``workers`` threads so the event loop keeps accepting and answering
while a large batch is scored. A request that finds every worker busy and the queue full is refused
at once (:class:`Overloaded`, HTTP 503 with Retry-After); one that waits or runs longer than the
per-request timeout gets :class:`TimedOut` (HTTP 504). A timed-out call keeps its worker until the
engine returns (a thread cannot be interrupted), so the bound on memory and threads always holds.
"""

from __future__ import annotations

import asyncio
import collections
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any, TypeVar

T = TypeVar("T")


class Overloaded(Exception):
    """Every worker is busy and the queue is full."""


class TimedOut(Exception):
    """The request waited and ran longer than the per-request timeout."""


class Limiter:
    """A fixed pool of scoring threads with a FIFO queue of fixed depth (create it inside the event loop)."""

    def __init__(self, workers: int, queue_depth: int, timeout: float) -> None:
        if workers < 1 or queue_depth < 0 or not timeout > 0:
            raise ValueError("workers >= 1, queue_depth >= 0 and timeout > 0 are required")
        self.workers, self.queue_depth, self.timeout = workers, queue_depth, timeout
        self.pool = ThreadPoolExecutor(workers, thread_name_prefix="edgefin-score")
        self.running = 0
        self._waiting: collections.deque[asyncio.Future[None]] = collections.deque()

    @property
    def queued(self) -> int:
        return sum(1 for f in self._waiting if not f.done())

    async def run(self, fn: Callable[..., T], *args: object) -> T:
        """Run ``fn(*args)`` on a worker thread within the limits; raise Overloaded or TimedOut."""
        loop = asyncio.get_running_loop()
        if self.running >= self.workers and self.queued >= self.queue_depth:
            raise Overloaded()
        deadline = time.monotonic() + self.timeout
        if self.running >= self.workers:
            ticket: asyncio.Future[None] = loop.create_future()
            self._waiting.append(ticket)
            try:
                await asyncio.wait_for(ticket, self.timeout)
            except asyncio.TimeoutError:
                raise TimedOut() from None
            except BaseException:
                if ticket.done() and not ticket.cancelled():
                    self._release()  # we were handed a worker but will not use it: pass it on
                raise
            # the worker was handed over by _release: running already counts it
        else:
            self.running += 1
        try:
            job = loop.run_in_executor(self.pool, fn, *args)
        except BaseException:
            self._release()
            raise
        job.add_done_callback(lambda _: self._release())  # the worker is free when the thread is, not before
        try:
            return await asyncio.wait_for(asyncio.shield(job), max(0.0, deadline - time.monotonic()))
        except asyncio.TimeoutError:
            job.add_done_callback(_consume)  # the late result (or error) is dropped quietly
            raise TimedOut() from None

    def _release(self) -> None:
        while self._waiting:
            ticket = self._waiting.popleft()
            if not ticket.done():  # a waiter that timed out or went away is skipped
                ticket.set_result(None)
                return
        self.running -= 1

    def close(self) -> None:
        """Wait for the threads to finish their current calls (graceful shutdown)."""
        self.pool.shutdown(wait=True)


def _consume(fut: asyncio.Future[Any]) -> None:
    if not fut.cancelled():
        fut.exception()
