"""Bounded work: at most ``workers`` requests score at once, at most ``queue_depth`` more are admitted.

A request that will use a worker is admitted *before* its body is read (:meth:`Limiter.admit`), so
at most ``workers + queue_depth`` large bodies are held in memory at any time; one that finds the
service full is refused at once (:class:`Overloaded`, HTTP 503 with Retry-After). Scoring runs in a
thread pool of ``workers`` threads, so the event loop keeps accepting and answering while a large
batch is scored; a request whose wait plus work passes its deadline gets :class:`TimedOut` (HTTP
504). A timed-out call keeps its worker and its admission until the engine returns (a thread cannot
be interrupted), so the bounds on threads and memory always hold.
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


class Admission:
    """One admitted request; released by :meth:`Limiter.release`, or by its job's end once it runs."""

    __slots__ = ("handed",)

    def __init__(self) -> None:
        self.handed = False


class Limiter:
    """A fixed pool of scoring threads, a FIFO of waiting requests and a cap on admitted requests."""

    def __init__(self, workers: int, queue_depth: int, timeout: float) -> None:
        if workers < 1 or queue_depth < 0 or not timeout > 0:
            raise ValueError("workers >= 1, queue_depth >= 0 and timeout > 0 are required")
        self.workers, self.queue_depth, self.timeout = workers, queue_depth, timeout
        self.pool = ThreadPoolExecutor(workers, thread_name_prefix="edgefin-score")
        self.running = 0
        self.admitted = 0
        self._waiting: collections.deque[asyncio.Future[None]] = collections.deque()

    @property
    def queued(self) -> int:
        """Admitted requests not on a worker (reading their body or waiting for a worker)."""
        return self.admitted - self.running

    def admit(self) -> Admission:
        """Admit a request or raise Overloaded (workers busy and the queue full)."""
        if self.admitted >= self.workers + self.queue_depth:
            raise Overloaded()
        self.admitted += 1
        return Admission()

    def release(self, admission: Admission) -> None:
        """Release an admission that never reached a worker (a no-op once its job has started)."""
        if not admission.handed:
            admission.handed = True
            self.admitted -= 1

    async def run(self, admission: Admission, deadline: float, fn: Callable[..., T], *args: object) -> T:
        """Run ``fn(*args)`` on a worker thread by ``deadline`` (time.monotonic); raise TimedOut."""
        loop = asyncio.get_running_loop()
        if self.running >= self.workers:
            ticket: asyncio.Future[None] = loop.create_future()
            self._waiting.append(ticket)
            try:
                await asyncio.wait_for(ticket, max(0.0, deadline - time.monotonic()))
            except asyncio.TimeoutError:
                raise TimedOut() from None
            except BaseException:
                if ticket.done() and not ticket.cancelled():
                    self._free_worker()  # we were handed a worker but will not use it: pass it on
                raise
            # the worker was handed over by _free_worker: running already counts it
        else:
            self.running += 1
        try:
            job = loop.run_in_executor(self.pool, fn, *args)
        except BaseException:
            self._free_worker()
            raise
        admission.handed = True  # from here the job's end releases the worker and the admission
        job.add_done_callback(self._job_done)
        try:
            return await asyncio.wait_for(asyncio.shield(job), max(0.0, deadline - time.monotonic()))
        except asyncio.TimeoutError:
            job.add_done_callback(_consume)  # the late result (or error) is dropped quietly
            raise TimedOut() from None

    def _job_done(self, _: object) -> None:
        self.admitted -= 1
        self._free_worker()

    def _free_worker(self) -> None:
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
