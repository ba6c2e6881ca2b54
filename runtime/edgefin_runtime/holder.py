"""Hot swap: serve one model while another is loaded, and switch between them atomically.

A :class:`ModelHolder` always holds a fully verified, self-tested :class:`Predictor`. ``swap``
loads the new bundle completely (hashes, signature, versions, engine, golden self-test and an
optional caller check) *before* it replaces the reference, so a bundle that fails leaves the old
one serving; the failure is raised as the typed error and kept in ``last_error``.

Every scoring call reads the current reference once and uses it for the whole call, so a result
never mixes two models, and each result says which model produced it (:class:`ModelInfo`).
Requests in flight during a swap finish on the model they started with; nothing is dropped.
"""

from __future__ import annotations

import collections
import os
import threading
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Generic, TypeVar

from .bundle import Source, sha256_hex
from .errors import EdgefinRuntimeError
from .predictor import ColumnsScore, Predictor, Score, load
from .results import Result

T = TypeVar("T")


@dataclass(frozen=True)
class ModelInfo:
    """Which model is (or was) serving: the bundle's sha256, variant, engine and swap generation."""

    sha256: str
    variant: str
    engine: str
    source: str
    generation: int
    loaded_at: float

    @classmethod
    def of(cls, predictor: Predictor, generation: int) -> ModelInfo:
        m = predictor.info.model
        return cls(
            sha256=predictor.bundle_sha256,
            variant=m.variant,
            engine=predictor.engine.name,
            source=predictor.source,
            generation=generation,
            loaded_at=time.time(),
        )


@dataclass(frozen=True)
class Served(Generic[T]):
    """A scoring result together with the model that produced it."""

    result: T
    model: ModelInfo


@dataclass(frozen=True)
class SwapReport:
    """The outcome of one swap attempt: ``ok`` with the new model, or the error that kept the old one."""

    ok: bool
    source: str
    serving: ModelInfo
    error: BaseException | None = None
    seconds: float = 0.0

    @property
    def reason(self) -> str:
        return "" if self.error is None else f"{type(self.error).__name__}: {self.error}"


class ModelHolder:
    """Holds the serving Predictor; thread-safe scoring, atomic swaps, failed swaps keep the old model.

    ``load_kwargs`` (backend, policy, trusted_keys, require_signature, threads...) are the defaults
    for every load, so a swap can never skip the signature check the first load had.
    ``check(predictor)`` runs on each new model before it serves (e.g. score canary records and
    raise if they look wrong); the golden self-test always runs.
    """

    def __init__(
        self,
        source: Source | Predictor,
        *,
        check: Callable[[Predictor], None] | None = None,
        history: int = 32,
        **load_kwargs: Any,
    ) -> None:
        if load_kwargs.get("self_test") is False:
            raise ValueError("ModelHolder always self-tests bundles before serving them; drop self_test=False")
        load_kwargs.pop("self_test", None)
        self._load_kwargs = load_kwargs
        self._check = check
        self._swap_lock = threading.Lock()
        self._history: collections.deque[SwapReport] = collections.deque(maxlen=history)
        self._last_error: BaseException | None = None
        self._generation = 0
        predictor = source if isinstance(source, Predictor) else self._prepare(source, load_kwargs)
        if isinstance(source, Predictor) and check is not None:
            check(source)
        self._current: tuple[Predictor, ModelInfo] = (predictor, ModelInfo.of(predictor, 0))

    # ------------------------------------------------------------ what is serving
    @property
    def predictor(self) -> Predictor:
        """The serving Predictor (keep this reference for a sequence of calls on one model)."""
        return self._current[0]

    @property
    def model(self) -> ModelInfo:
        return self._current[1]

    @property
    def generation(self) -> int:
        """How many successful swaps happened since the holder was built."""
        return self._current[1].generation

    @property
    def last_error(self) -> BaseException | None:
        """Why the most recent failed swap failed (None once a later swap succeeds)."""
        return self._last_error

    @property
    def history(self) -> list[SwapReport]:
        """The most recent swap attempts, oldest first."""
        return list(self._history)

    # ------------------------------------------------------------ scoring (one reference per call)
    def score(self, record: Mapping[str, Any]) -> Served[Score]:
        predictor, info = self._current
        return Served(predictor.score(record), info)

    def score_batch(self, records: Iterable[Mapping[str, Any]]) -> Served[list[Result]]:
        predictor, info = self._current
        return Served(predictor.score_batch(records), info)

    def score_columns(self, columns: Any) -> Served[ColumnsScore]:
        predictor, info = self._current
        return Served(predictor.score_columns(columns), info)

    # ------------------------------------------------------------ swapping
    def swap(self, source: Source, **load_kwargs: Any) -> ModelInfo:
        """Load, verify and self-test ``source``, then make it the serving model.

        Raises the typed load error (the old model keeps serving, ``last_error`` says why).
        """
        report = self.try_swap(source, **load_kwargs)
        if not report.ok:
            assert report.error is not None
            raise report.error
        return report.serving

    def try_swap(self, source: Source, **load_kwargs: Any) -> SwapReport:
        """Like :meth:`swap` but never raises for a bad bundle: returns a :class:`SwapReport`."""
        if load_kwargs.get("self_test") is False:
            raise ValueError("ModelHolder always self-tests bundles before serving them; drop self_test=False")
        load_kwargs.pop("self_test", None)
        kwargs = {**self._load_kwargs, **load_kwargs}
        label = _label(source)
        with self._swap_lock:  # one load at a time; scoring never waits for it
            t0 = time.perf_counter()
            try:
                predictor = self._prepare(source, kwargs)
            except Exception as exc:  # typed runtime errors, and anything a caller's check raises
                self._last_error = exc
                report = SwapReport(False, label, self._current[1], exc, time.perf_counter() - t0)
                self._history.append(report)
                return report
            info = ModelInfo.of(predictor, self._current[1].generation + 1)
            self._current = (predictor, info)  # the swap: one reference assignment
            self._last_error = None
            report = SwapReport(True, label, info, None, time.perf_counter() - t0)
            self._history.append(report)
            return report

    def swap_if_changed(self, path: str | os.PathLike[str], **load_kwargs: Any) -> SwapReport | None:
        """Swap to the bundle at ``path`` when its bytes differ from the serving bundle; None if equal.

        Meant for a polling loop on a device: a deployment drops a new file in place with one rename.
        """
        from .bundle import read_bytes

        try:
            data, _ = read_bytes(path)
        except EdgefinRuntimeError as exc:
            self._last_error = exc
            report = SwapReport(False, str(path), self._current[1], exc)
            self._history.append(report)
            return report
        if sha256_hex(data) == self._current[1].sha256:
            return None
        return self.try_swap(path, **load_kwargs)

    def _prepare(self, source: Source, kwargs: Mapping[str, Any]) -> Predictor:
        predictor = load(source, **kwargs, self_test=False)
        predictor.self_test()  # both paths before serving (load alone defers the batch half to first use)
        if self._check is not None:
            self._check(predictor)
        return predictor

    def __repr__(self) -> str:
        info = self._current[1]
        return f"ModelHolder(variant={info.variant!r}, sha256={info.sha256[:12]}..., generation={info.generation})"


def _label(source: Source) -> str:
    if isinstance(source, (bytes, bytearray, memoryview)):
        return "<bytes>"
    return str(Path(os.fspath(source)))


__all__ = ["ModelHolder", "ModelInfo", "Served", "SwapReport"]
