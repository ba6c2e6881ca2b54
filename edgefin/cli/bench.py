"""`edgefin bench` and `edgefin report`: thin commands over edgefin.bench."""

from __future__ import annotations

import sys
from contextlib import contextmanager
from typing import Any, Iterator, Mapping

import click

from .common import config_option, emit_json, handle_errors, output_options, stderr
from .exit_codes import ExitStatus

TERMINAL_COLUMNS = ("variant", "status", "parity", "bundle_kib", "gzip_kib", "auc", "auc_drop", "flip_rate", "p50_us",
                    "p99_us", "engine_p50_us", "rps_1024_columns", "cold_start_ms", "peak_rss_mib", "keras_x")


def bench_options(f: Any) -> Any:
    """The bench options, shared with `edgefin pipeline` so both spell them the same."""
    opts = [
        click.option("--profile", default="unconstrained", show_default=True,
                     help="Hardware profile: kiosk-1core, teller-2core, unconstrained, or one from --profiles."),
        click.option("--profiles", "profiles_file", type=click.Path(dir_okay=False),
                     help="TOML file with [profiles.NAME] tables (cores, threads, memory_mib)."),
        click.option("--variants", default="all", show_default=True,
                     help="Comma-separated bundle names under RUN_DIR/bundles to measure."),
        click.option("--max-latency-us", type=float, help="Constraint: single-record latency (at --latency-percentile)."),
        click.option("--max-size-kb", type=float, help="Constraint: bundle size in KiB (1,024 bytes)."),
        click.option("--max-auc-drop", type=float, help="Constraint: test AUC below the dense Keras model."),
        click.option("--latency-percentile", type=click.Choice(["p50", "p95", "p99"]), default="p99",
                     show_default=True, help="Which latency percentile --max-latency-us limits."),
        click.option("--repeat", "repeat", type=click.Choice(["quick", "default", "thorough"]), default="default",
                     show_default=True, help="Repetition preset: warm-up, timed blocks, throughput time."),
        click.option("--keras/--no-keras", default=True, show_default=True,
                     help="Also time the source Keras model (model(x), model.predict) for the ratios."),
    ]
    for o in reversed(opts):
        f = o(f)
    return f


@contextmanager
def progress_bar(quiet: bool, label: str = "benchmarking") -> Iterator[Any]:
    """A rich progress bar on stderr; yields a callback (what, done, total)."""
    if quiet:
        yield None
        return
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    with Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
                  console=stderr, transient=True) as bar:
        task = bar.add_task(label, total=None)

        def update(what: str, done: int, total: int) -> None:
            bar.update(task, description=f"{label}: {what}", completed=done, total=total)

        yield update


def render_summary(report: Mapping[str, Any], console: Any = stderr) -> None:
    """The summary table and the recommendation, on stderr."""
    from rich.table import Table

    from ..bench.recommend import explain
    from ..bench.report import COLUMNS, fmt, summary_rows

    from rich.console import Console

    if not console.is_terminal and console.width < 180:  # a log or a pipe: do not squeeze the table
        console = Console(stderr=True, highlight=False, width=180)
    cols = [c for c in COLUMNS if c[0] in TERMINAL_COLUMNS]
    rec = report.get("recommendation", {})
    table = Table(title=f"profile {report.get('profile', {}).get('name')}: "
                        f"{report.get('profile', {}).get('description', '')}", title_justify="left")
    for key, header, _ in cols:
        table.add_column(header, justify="left" if key in ("variant", "status") else "right",
                         no_wrap=key in ("variant", "status"))
    for r in summary_rows(report):
        style = "bold green" if r["variant"] == rec.get("chosen") else ("dim" if r["status"] != "ok" else None)
        table.add_row(*[fmt(r[k], f) for k, _, f in cols], style=style)
    console.print(table)
    lines = explain(rec)
    console.print(("[bold green]recommended:[/] " if rec.get("chosen") else "[bold red]no fit:[/] ") + lines[0],
                  markup=True, highlight=False)
    for line in lines[1:]:
        console.print(line, markup=False, highlight=False)


def json_summary(report: Mapping[str, Any], paths: Mapping[str, Any]) -> dict[str, Any]:
    from ..bench.report import summary_rows

    return {"report": {k: str(v) for k, v in paths.items()}, "recommendation": report.get("recommendation"),
            "variants": summary_rows(report), "profile": report.get("profile"), "machine": report.get("machine"),
            "source": {k: v for k, v in report.get("source", {}).items() if k != "keras"}}


@click.command()
@click.argument("run_dir", type=click.Path(file_okay=False))
@bench_options
@click.option("--out", "out_dir", type=click.Path(file_okay=False), help="Report folder [default: RUN_DIR/report].")
@config_option
@output_options
@handle_errors
def bench(run_dir: str, out_dir: str | None, as_json: bool, quiet: bool, **kw: Any) -> None:
    """Benchmark every bundle of RUN_DIR under a hardware profile, recommend one, write the report.

    Each variant runs in its own fresh process pinned to the profile's cores, with its thread count
    and memory cap applied before the engine loads. Exit code 3 when constraints were given and no
    variant meets them (the report is still written and names the nearest variant).

    \b
    Examples:
      edgefin bench runs/credit --profile kiosk-1core
      edgefin bench runs/credit --max-latency-us 50 --max-size-kb 20 --max-auc-drop 0.005
    """
    from pathlib import Path

    from ..bench.harness import run_bench
    from ..bench.report import write_report
    from ..rundir import RunDir

    from ..bench.harness import bench_options_from

    options = bench_options_from(**kw)
    with progress_bar(quiet) as update:
        report = run_bench(run_dir, options, progress=update)
    paths = write_report(report, Path(out_dir) if out_dir else RunDir.at(run_dir).report_dir)
    if not quiet:
        render_summary(report)
        stderr.print(f"report: {paths['report.html']}", highlight=False)
    if as_json:
        emit_json(json_summary(report, paths))
    if options.constraints.any and report["recommendation"]["chosen"] is None:
        sys.exit(int(ExitStatus.GATE_FAILED))


@click.command()
@click.argument("path", type=click.Path())
@output_options
@handle_errors
def report(path: str, as_json: bool, quiet: bool) -> None:
    """Rebuild report.md and report.html from a run's report.json (RUN_DIR, its report/ folder or the file)."""
    from ..bench.report import load_report, rebuild

    paths = rebuild(path)
    rep = load_report(paths["report.json"])
    if not quiet:
        render_summary(rep)
        stderr.print(f"report: {paths['report.html']}", highlight=False)
    if as_json:
        emit_json(json_summary(rep, paths))
