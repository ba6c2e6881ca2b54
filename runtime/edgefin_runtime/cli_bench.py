"""``edgefin-run bench BUNDLE [BUNDLE...]``: benchmark bundles on this device, TensorFlow-free.

Each bundle is measured in a fresh process with the code the toolkit's ``edgefin bench`` runs
(:mod:`edgefin_runtime.benchmark`): single-record latency p50/p95/p99 through the runtime (dict ->
Score) and through the bare engine, batch and columns throughput, cold start (process start to
first score) and peak memory, plus a description of this machine. Records come from ``--data`` (a
CSV or JSON Lines file of the device's own rows, never copied into the results) or, by default, from
each bundle's acceptance set, whose scores are then also compared with the build machine's.

``--output FILE`` writes the results (JSON, schema ``edgefin-device-bench`` version 1, see
runtime/README.md) atomically for ``edgefin bench RUN_DIR --device FILE``; ``--json`` prints them on
stdout. Exit codes: 0 every bundle measured, 1 a bundle could not be measured (engine missing, worker
failed), 2 usage or input (unreadable bundle or data file).
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable, Mapping
from typing import Any

HELP = "benchmark bundles on this machine: latency, throughput, cold start, memory (results JSON for edgefin bench)"
DATA_ROWS = 1000  # rows of --data used when --records is not given


def _cpus(text: str) -> list[int]:
    try:
        cpus = sorted({int(c) for c in text.split(",") if c.strip()})
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected CPU ids like 0 or 0,1, got {text!r}") from None
    if not cpus or min(cpus) < 0:
        raise argparse.ArgumentTypeError(f"expected CPU ids like 0 or 0,1, got {text!r}")
    return cpus


def add_arguments(parser: argparse.ArgumentParser, common: Callable[..., None]) -> None:
    from .cli import _positive

    parser.add_argument("bundles", nargs="+", metavar="BUNDLE", help=".efb bundles, each measured in a fresh process")
    parser.add_argument("--data", metavar="FILE", help="CSV or JSON Lines records to time (default: acceptance set)")
    parser.add_argument("--input-format", choices=("csv", "jsonl"), help="--data format (default: from extension)")
    parser.add_argument(
        "--records", type=_positive, metavar="N", help=f"use the first N records (default: all; --data: {DATA_ROWS})"
    )
    parser.add_argument(
        "--repeat", choices=("quick", "default", "thorough"), default="default", help="how long to measure"
    )
    parser.add_argument("--threads", type=_positive, default=1, help="engine threads (default 1)")
    parser.add_argument("--cpus", type=_cpus, metavar="LIST", help="pin the measuring processes to these CPU ids")
    parser.add_argument("--name", help="device name in the results (default: this host's name)")
    parser.add_argument("--json", action="store_true", help="print the results JSON on stdout")
    parser.add_argument("--output", "-o", metavar="FILE", help="write the results JSON to FILE, atomically")
    parser.add_argument("--quiet", "-q", action="store_true", help="no progress on stderr")


def _read_data(path: str, fmt: str | None, bundle: str, limit: int) -> list[Mapping[str, Any]]:
    """Up to ``limit`` records of ``path`` that the first bundle scores (rejected ones are counted, not timed)."""
    from . import load
    from .cli_io import UsageProblem, detect_format, open_input, read_rows
    from .errors import InputError

    predictor = load(bundle)
    rows: list[Mapping[str, Any]] = []
    bad = 0
    with open_input(path) as fh:
        for _row, rec in read_rows(fh, detect_format(path, fmt), predictor.schema):
            if isinstance(rec, InputError) or not predictor.score_batch([rec])[0].ok:
                bad += 1  # counted, never shown: the row is the device's data
                continue
            rows.append(rec)
            if len(rows) >= limit:
                break
    if not rows:
        raise UsageProblem(f"--data {path}: no record the bundle can score ({bad} rejected)")
    if bad:
        print(f"edgefin-run bench: --data: {bad} record(s) the bundle rejects were skipped", file=sys.stderr)
    return rows


def run(args: argparse.Namespace) -> int:
    import json

    from .atomic import open_atomic
    from .benchmark.device import bench_bundles
    from .cli import FAILURE, OK

    data = None
    if args.data:
        data = _read_data(args.data, args.input_format, args.bundles[0], args.records or DATA_ROWS)

    def progress(i: int, n: int, what: str) -> None:
        if not args.quiet:
            print(f"edgefin-run bench: [{min(i + 1, n)}/{n}] {what}", file=sys.stderr, flush=True)

    doc = bench_bundles(
        args.bundles,
        data=data,
        records=args.records,
        repeat=args.repeat,
        threads=args.threads,
        cpus=args.cpus,
        name=args.name,
        progress=progress,
    )
    text = json.dumps(doc, indent=2, sort_keys=True, allow_nan=False)
    if args.output:
        with open_atomic(args.output, text=True) as fh:
            fh.write(text + "\n")
    if args.json:
        print(text)
    else:
        print(summary_text(doc))
    return OK if all(b["status"] == "ok" for b in doc["bundles"]) else FAILURE


def summary_text(doc: Mapping[str, Any]) -> str:
    """A table of the results: one line per bundle."""
    m = doc["device"]["machine"]
    lines = [
        f"device {doc['device']['name']}: {m.get('cpu_model')} ({m.get('machine')}, {m.get('cpus_available')} CPUs, "
        f"Python {m.get('python')}), threads {doc['threads']}",
        f"{'bundle':<28} {'p50 us':>8} {'p99 us':>8} {'engine p50':>10} {'cols rec/s':>11} "
        f"{'cold ms':>8} {'RSS MiB':>8}",
    ]
    for b in doc["bundles"]:
        if b["status"] != "ok":
            lines.append(f"{b['file']:<28} error: {b.get('error', '')[:90]}")
            continue
        lat, eng = b["latency"]["runtime"], b["latency"]["engine"]
        cols = [t for t in b["throughput"]["runtime_columns"] if "records_per_s" in t]
        rate = max(cols, key=lambda t: t["batch"])["records_per_s"] if cols else float("nan")
        lines.append(
            f"{b['file']:<28} {lat['p50_us']:>8.1f} {lat['p99_us']:>8.1f} {eng['p50_us']:>10.1f} {rate:>11,.0f} "
            f"{b['cold_start']['spawn_to_first_score_ms']:>8.1f} {b['memory']['peak_rss_mib']:>8.1f}"
        )
        acc = b.get("acceptance")
        if acc and acc.get("max_abs_diff") is not None:
            lines[-1] += f"  (acceptance max |dp| vs build machine {acc['max_abs_diff']:.2g})"
    return "\n".join(lines)
