"""Prometheus text exposition (format 0.0.4) for the scoring service, without a client library.

Every update happens on the event loop's thread (handlers update after their awaits return), so the
counters need no lock. Label values are escaped as the format requires.
"""

from __future__ import annotations

import bisect
import time
from collections.abc import Iterable, Mapping

#: latency buckets in seconds: sub-millisecond single records up to the default 10 s timeout
BUCKETS = (0.0002, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)

Labels = tuple[tuple[str, str], ...]


def _escape(value: str) -> str:
    return value.replace("\\", "\\\\").replace("\n", "\\n").replace('"', '\\"')


def _labels(labels: Labels) -> str:
    if not labels:
        return ""
    return "{" + ",".join(f'{k}="{_escape(v)}"' for k, v in labels) + "}"


def _num(value: float) -> str:
    if value == int(value) and abs(value) < 1e15:
        return str(int(value))
    return repr(float(value))


class Counter:
    """A monotonically increasing count per label set."""

    def __init__(self, name: str, help_text: str, kind: str = "counter") -> None:
        self.name, self.help, self.kind = name, help_text, kind
        self.values: dict[Labels, float] = {}

    def inc(self, labels: Labels = (), amount: float = 1.0) -> None:
        self.values[labels] = self.values.get(labels, 0.0) + amount

    def set(self, labels: Labels, value: float) -> None:
        self.values[labels] = value

    def lines(self) -> Iterable[str]:
        yield f"# HELP {self.name} {self.help}"
        yield f"# TYPE {self.name} {self.kind}"
        for labels, value in sorted(self.values.items()):
            yield f"{self.name}{_labels(labels)} {_num(value)}"


class Histogram:
    """Cumulative buckets, sum and count per label set."""

    def __init__(self, name: str, help_text: str, buckets: tuple[float, ...] = BUCKETS) -> None:
        self.name, self.help, self.buckets = name, help_text, buckets
        self.counts: dict[Labels, list[int]] = {}
        self.sums: dict[Labels, float] = {}

    def observe(self, labels: Labels, value: float) -> None:
        counts = self.counts.get(labels)
        if counts is None:
            counts = self.counts[labels] = [0] * (len(self.buckets) + 1)
            self.sums[labels] = 0.0
        counts[bisect.bisect_left(self.buckets, value)] += 1
        self.sums[labels] += value

    def lines(self) -> Iterable[str]:
        yield f"# HELP {self.name} {self.help}"
        yield f"# TYPE {self.name} histogram"
        for labels, counts in sorted(self.counts.items()):
            total = 0
            for bound, n in zip((*self.buckets, float("inf")), counts):
                total += n
                le = "+Inf" if bound == float("inf") else repr(bound)
                yield f"{self.name}_bucket{_labels((*labels, ('le', le)))} {total}"
            yield f"{self.name}_sum{_labels(labels)} {self.sums[labels]!r}"
            yield f"{self.name}_count{_labels(labels)} {total}"


class ServeMetrics:
    """What /metrics reports: requests, records, rejections by error type, latency, overload, reloads."""

    def __init__(self) -> None:
        self.started = time.time()
        self.requests = Counter("edgefin_requests_total", "HTTP requests by route and status code.")
        self.latency = Histogram("edgefin_request_duration_seconds", "Request latency by route (seconds).")
        self.records = Counter("edgefin_records_total", "Records received by /v1/score and /v1/explain, by outcome.")
        self.rejected = Counter("edgefin_rejected_records_total", "Records rejected, by error type.")
        self.overloaded = Counter(
            "edgefin_overload_rejections_total", "Requests refused with 503 because workers and queue were full."
        )
        self.timeouts = Counter("edgefin_timeouts_total", "Requests that exceeded the per-request timeout.")
        self.overloaded.set((), 0)
        self.timeouts.set((), 0)
        self.reloads = Counter("edgefin_reloads_total", "Hot-swap attempts by trigger and outcome.")
        self.reload_failed = Counter(
            "edgefin_reload_last_failed",
            "1 if the most recent hot-swap attempt failed (the previous model kept serving), else 0.",
            kind="gauge",
        )
        self.reload_failed.set((), 0)
        self.last_reload_error = ""

    def request(self, route: str, status: int, seconds: float) -> None:
        self.requests.inc((("route", route), ("status", str(status))))
        self.latency.observe((("route", route),), seconds)

    def scored(self, scored: int, rejected_by_type: Mapping[str, int]) -> None:
        self.records.inc((("outcome", "scored"),), scored)
        for error_type, n in rejected_by_type.items():
            self.records.inc((("outcome", "rejected"),), n)
            self.rejected.inc((("error_type", error_type),), n)

    def reload(self, trigger: str, ok: bool, error_type: str = "") -> None:
        self.reloads.inc((("trigger", trigger), ("outcome", "ok" if ok else "failed")))
        self.reload_failed.set((), 0 if ok else 1)
        self.last_reload_error = error_type

    def render(self, model: Mapping[str, str], generation: int, gauges: Mapping[str, tuple[str, float]]) -> str:
        """The exposition text. ``gauges`` maps a metric name to (help, value) for live values."""
        out: list[str] = [
            "# HELP edgefin_model_info The model serving now (value 1).",
            "# TYPE edgefin_model_info gauge",
            f"edgefin_model_info{_labels(tuple(sorted(model.items())))} 1",
            "# HELP edgefin_model_generation Successful hot swaps since start.",
            "# TYPE edgefin_model_generation gauge",
            f"edgefin_model_generation {generation}",
            "# HELP edgefin_uptime_seconds Seconds since the service started.",
            "# TYPE edgefin_uptime_seconds gauge",
            f"edgefin_uptime_seconds {time.time() - self.started:.3f}",
        ]
        for name, (help_text, value) in gauges.items():
            out += [f"# HELP {name} {help_text}", f"# TYPE {name} gauge", f"{name} {_num(value)}"]
        for metric in (
            self.requests,
            self.latency,
            self.records,
            self.rejected,
            self.overloaded,
            self.timeouts,
            self.reloads,
            self.reload_failed,
        ):
            out.extend(metric.lines())
        if self.last_reload_error:
            out += [
                "# HELP edgefin_reload_last_error Error type of the most recent failed hot swap (value 1).",
                "# TYPE edgefin_reload_last_error gauge",
                f"edgefin_reload_last_error{_labels((('error_type', self.last_reload_error),))} 1",
            ]
        return "\n".join(out) + "\n"
