"""`edgefin bench` and `edgefin report`: thin commands over edgefin.bench."""

from __future__ import annotations

import sys
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

import click
from rich.markup import escape

from .common import config_option, emit_json, handle_errors, output_options, stderr
from .exit_codes import ExitStatus
from .options import apply, bench_options
from .reporter import RichReporter

if TYPE_CHECKING:
    from rich.console import Console

TERMINAL_COLUMNS = (
    "variant",
    "status",
    "parity",
    "bundle_kib",
    "gzip_kib",
    "auc",
    "auc_drop",
    "flip_rate",
    "p50_us",
    "p99_us",
    "engine_p50_us",
    "rps_1024_columns",
    "cold_start_ms",
    "peak_rss_mib",
    "keras_x",
)


def render_summary(report: Mapping[str, Any], console: Console = stderr) -> None:
    """The summary table and the recommendation, on stderr."""
    from rich.console import Console
    from rich.table import Table

    from ..bench.recommend import explain
    from ..bench.report import COLUMNS, fmt, summary_rows

    if not console.is_terminal and console.width < 180:  # a log or a pipe: do not squeeze the table
        console = Console(stderr=True, highlight=False, width=180)
    cols = [c for c in COLUMNS if c[0] in TERMINAL_COLUMNS]
    rec = report.get("recommendation", {})
    table = Table(
        title=escape(
            f"profile {report.get('profile', {}).get('name')}: {report.get('profile', {}).get('description', '')}"
        ),
        title_justify="left",
    )
    for key, header, _ in cols:
        table.add_column(
            header, justify="left" if key in ("variant", "status") else "right", no_wrap=key in ("variant", "status")
        )
    for r in summary_rows(report):
        style = "bold green" if r["variant"] == rec.get("chosen") else ("dim" if r["status"] != "ok" else None)
        table.add_row(*[escape(fmt(r[k], f)) for k, _, f in cols], style=style)
    console.print(table)
    lines = explain(rec)
    console.print(
        ("[bold green]recommended:[/] " if rec.get("chosen") else "[bold red]no fit:[/] ")
        + (f"(for device {escape(str(rec['device']))}) " if rec.get("device") else "")
        + escape(lines[0]),
        markup=True,
        highlight=False,
    )
    for line in lines[1:]:
        console.print(line, markup=False, highlight=False)


@click.command()
@click.argument("run_dir", type=click.Path(file_okay=False))
@apply("bench")
@config_option
@output_options
@handle_errors
def bench(run_dir: str, as_json: bool, quiet: bool, **values: object) -> None:
    """Benchmark every bundle of RUN_DIR under a hardware profile, recommend one, write the report.

    Each variant runs in its own fresh process pinned to the profile's cores, with its thread count
    and memory cap applied before the engine loads. Exit code 3 when constraints were given and no
    variant meets them (the report is still written and names the nearest variant).

    \b
    Examples:
      edgefin bench runs/credit --profile kiosk-1core
      edgefin bench runs/credit --max-latency-us 50 --max-size-kb 20 --max-auc-drop 0.005
      edgefin bench runs/credit --device kiosk.json --for-device kiosk-07 --max-latency-us 50
    """
    from ..steps import bench as bench_step
    from ..steps import report as report_step

    options = bench_options(values)
    with RichReporter(quiet) as reporter:
        measured = bench_step.run(run_dir, options, reporter)
        rendered = report_step.run(run_dir, report_step.Options(source=str(measured.paths["report.json"])), reporter)
    if not quiet:
        render_summary(measured.report)
        stderr.print(f"report: {rendered.paths['report.html']}", highlight=False, markup=False)
    if as_json:
        emit_json(measured.to_dict())
    if measured.no_fit:
        sys.exit(int(ExitStatus.GATE_FAILED))


@click.command()
@click.argument("path", type=click.Path())
@apply("report")
@output_options
@handle_errors
def report(
    path: str,
    as_json: bool,
    quiet: bool,
    slices: tuple[str, ...] = (),
    devices: tuple[str, ...] = (),
    for_device: str | None = None,
) -> None:
    """Rebuild report.md and report.html from a run's report.json (RUN_DIR, its report/ folder or the file).

    With --slice COL, the slices of COL are computed again from the run (its bundles, dense model and
    test split) into report.json first. With --device FILE.json (from `edgefin-run bench --output` on a
    device), that device's figures are merged into report.json first; --for-device NAME recommends from
    them."""
    from ..steps import report as step

    options = step.Options(source=path, slices=tuple(slices), devices=tuple(devices), for_device=for_device)
    step.check(options)
    with RichReporter(quiet) as reporter:
        result = step.run(path, options, reporter)
    if not quiet:
        render_summary(result.report)
        stderr.print(f"report: {result.paths['report.html']}", highlight=False, markup=False)
    if as_json:
        emit_json(result.to_dict())
