"""``edgefin-run drift BUNDLE DATA``: PSI of a data file against the bundle's training bins.

Reads CSV or JSON Lines (as ``score`` does), scores every record with the bundle, counts fields and
scores into the bundle's reference bins (``edgefin_runtime.drift.DriftMonitor``) and prints PSI per
field and for the score, its level, the sample-size-aware 95% critical value and the shares of missing
values, unseen categories and out-of-range values beside training's. ``--json`` prints the report on
stdout; ``--counts FILE`` writes the monitor's counts (to merge with other devices or windows,
``--merge FILE`` adds saved counts first); ``--fail-on-drift`` exits 3 when a field or the score drifted
(PSI >= 0.1 and above the critical value).
"""

from __future__ import annotations

import argparse
from collections.abc import Callable
from typing import Any

HELP = "population drift of a CSV/JSON Lines file against the bundle's training bins (PSI per field and score)"
BATCH = 4096


def add_arguments(parser: argparse.ArgumentParser, common: Callable[..., None]) -> None:
    common(parser)
    parser.add_argument("data", metavar="DATA", help="CSV or JSON Lines records (- for stdin)")
    parser.add_argument("--input-format", choices=("csv", "jsonl"), help="default: from the extension")
    parser.add_argument("--json", action="store_true", help="print the report as JSON on stdout")
    parser.add_argument("--counts", metavar="FILE", help="write the counts (JSON, mergeable) to FILE, atomically")
    parser.add_argument(
        "--merge", metavar="FILE", action="append", default=[], help="add counts saved by --counts first (repeatable)"
    )
    parser.add_argument("--fail-on-drift", action="store_true", help="exit 3 if any field or the score drifted")


def run(args: argparse.Namespace) -> int:
    import json

    from .atomic import open_atomic
    from .cli import OK, SELF_TEST, _load
    from .cli_io import UsageProblem, detect_format, open_input, read_rows
    from .drift import DriftMonitor
    from .errors import InputError

    predictor = _load(args)
    monitor = DriftMonitor(predictor)
    for path in args.merge:
        try:
            with open(path, encoding="utf-8") as fh:
                text = fh.read()
        except OSError as exc:
            raise UsageProblem(f"cannot read counts {path}: {exc.strerror}") from None
        monitor.merge(DriftMonitor.from_json(text, predictor))
    unreadable = 0
    batch: list[Any] = []
    with open_input(args.data) as fin:
        for _row, rec in read_rows(fin, detect_format(args.data, args.input_format), predictor.schema):
            if isinstance(rec, InputError):
                unreadable += 1
                continue
            batch.append(rec)
            if len(batch) >= BATCH:
                _observe(predictor, monitor, batch)
                batch = []
    if batch:
        _observe(predictor, monitor, batch)
    report = monitor.report()
    if args.counts:
        try:
            with open_atomic(args.counts, text=True) as fh:
                fh.write(monitor.to_json())
        except OSError as exc:
            raise UsageProblem(f"cannot write counts {args.counts}: {exc.strerror}") from None
    if args.json:
        print(json.dumps({"bundle": args.bundle, "unreadable_rows": unreadable, **report.to_dict()}, sort_keys=True))
    else:
        print(report_text(report, unreadable))
    return SELF_TEST if args.fail_on_drift and report.drifted else OK


def _observe(predictor: Any, monitor: Any, batch: list[Any]) -> None:
    """Count a batch; scores from score_batch (a rejected record counts for its fields, not the score)."""
    results = predictor.score_batch(batch)
    scores = [r.score.probability if r.ok else float("nan") for r in results]
    monitor.observe(batch, scores=scores)


def report_text(report: Any, unreadable: int = 0) -> str:
    """The report as a table for people."""
    lines = [
        f"{report.n} records against {report.reference_rows} training rows; PSI levels 0.1 / 0.25, "
        f"critical value at {report.confidence:.0%} for this sample size"
        + (f"; {unreadable} unreadable rows skipped" if unreadable else ""),
        f"{'field':<16} {'PSI':>8} {'critical':>9}  {'level':<11} {'missing':>15} {'unseen':>7} {'out of range':>15}",
    ]
    items = list(report.fields.values()) + ([report.score] if report.score is not None else [])
    for f in items:
        miss = "" if f.missing_share is None else f"{f.missing_share:.3f} ({f.reference_missing_share:.3f})"
        unseen = "" if f.unseen_share is None else f"{f.unseen_share:.3f}"
        oor = (
            "" if f.out_of_range_share is None else f"{f.out_of_range_share:.3f} ({f.reference_out_of_range_share:.3f})"
        )
        flag = " DRIFT" if f.name in report.drifted else ""
        lines.append(
            f"{f.name[:16]:<16} {f.psi:>8.4f} {f.critical:>9.4f}  {f.level:<11} {miss:>15} {unseen:>7} {oor:>15}{flag}"
        )
    lines.append("(shares: observed (training))")
    if report.drifted:
        lines.append(f"drifted: {', '.join(report.drifted)}")
    return "\n".join(lines)
