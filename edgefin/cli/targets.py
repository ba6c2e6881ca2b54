"""`edgefin targets`: re-check a run's bundles on other CPUs (thin command over edgefin.targets)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import click
from rich.markup import escape

from .common import config_option, emit_json, handle_errors, output_options, stderr
from .reporter import RichReporter

EPILOG = """\b
Examples:
  edgefin targets runs/demo
  edgefin targets runs/demo --target native,x86-64-v2 --json
  edgefin targets --list
\b
Targets: native (this CPU), x86-64-v2 (qemu-x86_64 -cpu Nehalem-v1: SSE4.2, no AVX),
x86-64-v3 (-cpu Haswell-v4: AVX2+FMA), arm64 (Cortex-A72 in an emulated Debian root; needs root,
built once into ~/.cache/edgefin/targets). x86-64-v4 (AVX-512) is not available: QEMU's TCG
does not emulate AVX-512.
\b
Per bundle and target: loads or not (hashes, self-test), the acceptance set (else golden vectors)
against the build machine and the source model with edgefin-run verify's gates, and the test split
against the source Keras model with convert's parity gate. No latency: emulation time is not device
time. Writes RUN_DIR/bundles/targets.json (and a section in RUN_DIR/report/ when a report exists).
Exit codes: 0 all pass, 2 unknown target or missing emulator, 3 a bundle fails on a target.
"""


@click.command(epilog=EPILOG)
@click.argument("run_dir", type=click.Path(file_okay=False), required=False)
@click.option(
    "--target",
    "targets",
    default="native,x86-64-v2,x86-64-v3,arm64",
    show_default=True,
    metavar="NAME,NAME",
    help="Targets to check, comma-separated.",
)
@click.option(
    "--rows", type=click.IntRange(min=1), default=None, help="Check only the first N scorable test rows (default: all)."
)
@click.option(
    "--timeout",
    type=click.FloatRange(min=1),
    default=3600,
    show_default=True,
    help="Seconds one target's probe may run.",
)
@click.option("--no-gate", is_flag=True, help="Write targets.json and exit 0 even if a cell fails.")
@click.option("--list", "list_targets", is_flag=True, help="List the targets and exit.")
@config_option
@output_options
@handle_errors
def targets(
    run_dir: str | None,
    targets: str,
    rows: int | None,
    timeout: float,
    no_gate: bool,
    list_targets: bool,
    as_json: bool,
    quiet: bool,
) -> None:
    """Re-check every bundle of RUN_DIR on other CPUs: x86-64 levels under qemu-x86_64 -cpu, ARM64 in an
    emulated root. Same gates as convert and edgefin-run verify; writes bundles/targets.json."""
    from ..errors import UsageError
    from ..targets import TARGETS, resolve_targets, run_targets
    from ..targets.errors import TargetGateError

    if list_targets:
        rows_ = [{**t.to_dict(), "unavailable": t.unavailable} for t in TARGETS.values()]
        if as_json:
            emit_json(rows_)
        else:
            for t in rows_:
                click.echo(
                    f"{t['name']:10s} {t['isa']}" + (f"  [unavailable: {t['unavailable']}]" if t["unavailable"] else "")
                )
        return
    if run_dir is None:
        raise UsageError("missing RUN_DIR: pass a run directory with bundles (e.g. runs/demo), or --list")
    resolve_targets(targets)  # an unknown or unavailable target fails before anything loads
    with RichReporter(quiet=quiet) as reporter:
        try:
            result = run_targets(run_dir, targets, rows=rows, reporter=reporter, timeout=timeout, gate=not no_gate)
        except TargetGateError as exc:
            if exc.result is not None:
                _render(exc.result, as_json, quiet)
            raise
    _render(result, as_json, quiet)


def _render(result: Any, as_json: bool, quiet: bool) -> None:
    if not quiet:
        render_grid(result.data)
        if result.path is not None:
            stderr.print(f"wrote {escape(str(result.path))}", highlight=False)
    if as_json:
        emit_json({**result.data, "path": str(result.path) if result.path else None})


def cell_text(c: Mapping[str, object]) -> str:
    """One grid cell in words: pass/FAIL, load refusal, max |dp| and flips against the build machine."""
    head = "pass" if c.get("passed") else "FAIL"
    if not c.get("loaded"):
        head += " (no load)"
    dp = c.get("max_abs_delta")
    parts = [head]
    if dp is not None:
        parts.append(f"|dp| {dp:.2g}")
    if c.get("flips") is not None:
        parts.append(f"{c['flips']} flips")
    if c.get("test_flips_vs_source") is not None:
        parts.append(f"src {c['test_flips_vs_source']}")
    return " ".join(parts)


def render_grid(data: Mapping[str, Any]) -> None:
    """The bundle x target grid on stderr, then every failure."""
    from rich.table import Table

    names = list(data.get("targets", {}))
    table = Table(
        title="bundle x target (|dp|, flips: vs the build machine; src: test-split flips vs the source model)",
        title_justify="left",
    )
    table.add_column("bundle", no_wrap=True)
    for n in names:
        table.add_column(n)
    for b, info in data.get("bundles", {}).items():
        cells = info.get("cells", {})
        table.add_row(
            escape(b), *[f"[{'green' if cells[n]['passed'] else 'red'}]{escape(cell_text(cells[n]))}[/]" for n in names]
        )
    stderr.print(table)
    secs = ", ".join(f"{n} {t.get('seconds')} s" for n, t in data.get("targets", {}).items())
    stderr.print(f"[dim]wall time per target (emulation, not device latency): {escape(secs)}[/]")
    for f in data.get("failures", []):
        stderr.print(f"[red]-[/] {escape(f)}", soft_wrap=True, highlight=False)
