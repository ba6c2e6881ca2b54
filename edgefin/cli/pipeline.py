"""`edgefin pipeline` and `edgefin demo`: every step in one command, resumable.

The pipeline takes the single commands' options, generated from the same specs
(:mod:`edgefin.cli.options`): train's under their own names (``--target``, ``--epochs``), the others
under their own names unless that name is taken, then prefixed with the step (``--compress-epochs``,
``--convert-variants``). A config file holds ``[train]``, ``[compress]``, ``[convert]`` and ``[bench]``
tables with the single commands' option names; flags win.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import click

from .bench import render_summary
from .common import emit_json, handle_errors, output_options, stderr
from .options import (
    PIPELINE_STEPS,
    SEP,
    Keys,
    config_defaults,
    config_keys,
    pipeline_options,
    pipeline_params,
    route,
    step_keys,
)
from .reporter import RichReporter

DEMO_DATA = Path(__file__).resolve().parents[1] / "datasets" / "credit_scoring.csv"
# The steps' own defaults (early stopping keeps training short): the configuration whose quality bars the
# train, compress and convert benchmarks check on this data. Measured: the whole demo (train, compress,
# convert 8 variants, bench each in its own process, report) took 1m42s-2m00s on the 2-core development VM
# while other jobs kept its load average at 7-8; well inside the 5-minute budget.
DEMO_OPTIONS: dict[str, dict[str, Any]] = {
    "train": {"target": "Status", "positive": "bad", "seed": 42},
    "compress": {"sparsity": 0.8},
    "convert": {},
    "bench": {"profile": "kiosk-1core", "repeat": "default"},
}


def _config_callback(ctx: click.Context, _param: click.Parameter, value: str | None) -> str | None:
    """TOML config -> ctx.default_map: [train]/[compress]/[convert]/[bench] tables and top-level keys."""
    if not value:
        return value
    from ..errors import UsageError
    from ..tomlfile import read_toml

    path = Path(value)
    own = {p.name for p in ctx.command.params if p.name and SEP not in p.name}
    top: Keys = {k: v for k, v in config_keys(p for p in ctx.command.params if p.name in own).items()}
    for step in PIPELINE_STEPS:  # a top-level key may be any step's option (the first step that has it)
        for k, v in step_keys(step, f"{step}{SEP}").items():
            top.setdefault(k, v)
    multiple = {p.name for p in ctx.command.params if getattr(p, "multiple", False) and p.name}
    defaults: dict[str, Any] = dict(ctx.default_map or {})
    try:
        data = read_toml(path)
        if data.get("compress") is False:  # `compress = false`: no compression step
            data = {k: v for k, v in data.items() if k != "compress"}
            defaults["no_compress"] = True
        tables = {k: v for k, v in data.items() if isinstance(v, dict) and k in (*PIPELINE_STEPS, "pipeline")}
        loose = {k: v for k, v in data.items() if k not in tables}
        defaults.update(config_defaults(top, {**loose, **tables.pop("pipeline", {})}, f"config file {path}", multiple))
        for step, table in tables.items():
            defaults.update(
                config_defaults(step_keys(step, f"{step}{SEP}"), table, f"config file {path}: [{step}]", multiple)
            )
    except UsageError as exc:
        raise click.BadParameter(str(exc), param_hint="--config") from None
    ctx.default_map = defaults
    return value


def _run(
    data: str | None,
    out: str,
    routed: dict[str, dict[str, object]],
    *,
    no_compress: bool,
    force: bool,
    as_json: bool,
    quiet: bool,
) -> None:
    from ..bench.report import load_report
    from ..pipeline import PipelineGateError, run_pipeline
    from ..steps.bench import summary

    options = pipeline_options(data, routed, no_compress=no_compress)
    gate: PipelineGateError | None = None
    with RichReporter(quiet) as reporter:
        try:
            result = run_pipeline(out, options, reporter=reporter, force=force)
        except PipelineGateError as exc:  # everything ran and was reported; show it, then exit 3
            gate, result = exc, exc.result
    report = load_report(Path(out) / "report" / "report.json")
    if not quiet:
        render_summary(report)
        stderr.print(f"report: {result['report']['report.html']}", highlight=False, markup=False)
    if as_json:
        emit_json({**summary(report, result["report"]), "pipeline": result})
    if gate is not None:
        raise gate


def _pipeline_command() -> click.Command:
    params: list[click.Parameter] = [click.Argument(["data"], required=True), *pipeline_params()]
    params += [
        click.Option(["--out"], required=True, type=click.Path(file_okay=False), help="Run directory."),
        click.Option(["--no-compress"], is_flag=True, help="Skip pruning and QAT (convert the dense model)."),
        click.Option(["--force"], is_flag=True, help="Rerun every step even when its inputs are unchanged."),
        click.Option(
            ["--config"],
            type=click.Path(dir_okay=False),
            callback=_config_callback,
            is_eager=True,
            expose_value=False,
            help="TOML with [train], [compress], [convert], [bench] tables; flags win.",
        ),
        click.Option(["--json", "as_json"], is_flag=True, help="Print the result as JSON on stdout."),
        click.Option(["-q", "--quiet"], is_flag=True, help="No progress or logs on stderr."),
    ]

    @handle_errors
    def run(data: str, out: str, no_compress: bool, force: bool, as_json: bool, quiet: bool, **kw: object) -> None:
        _run(data, out, route(kw), no_compress=no_compress, force=force, as_json=as_json, quiet=quiet)

    return click.Command(
        "pipeline",
        params=params,
        callback=run,
        help="Train, compress, convert, bench and report DATA into the run directory --out.\n\n"
        "Resumes: a step whose options and input files are unchanged and whose outputs are "
        "present is skipped (said on stderr). Options of compress, convert and bench that "
        "clash with train's are prefixed with the step (--compress-epochs).",
        epilog="\b\nExamples:\n  edgefin pipeline credit.csv --target Status --positive bad --out runs/credit\n"
        "  edgefin pipeline loans.csv --target default --config pipeline.toml --out runs/loans",
    )


pipeline = _pipeline_command()


@click.command()
@click.option(
    "--out",
    default="runs/demo",
    show_default=True,
    type=click.Path(file_okay=False),
    help="Run directory for the demo.",
)
@click.option(
    "--profile", default=DEMO_OPTIONS["bench"]["profile"], show_default=True, help="Hardware profile for the benchmark."
)
@click.option("--force", is_flag=True, help="Rerun every step even when its inputs are unchanged.")
@output_options
@handle_errors
def demo(out: str, profile: str, force: bool, as_json: bool, quiet: bool) -> None:
    """Run the whole pipeline on the bundled credit data (target Status, positive class 'bad').

    Ends with the summary table and the path of the HTML report. A second run resumes: finished
    steps are skipped.
    """
    routed = {k: dict(v) for k, v in DEMO_OPTIONS.items()}
    routed["bench"]["profile"] = profile
    if not quiet:
        stderr.print(f"edgefin demo: {DEMO_DATA.name} -> {out}", highlight=False, markup=False)
    _run(str(DEMO_DATA), out, routed, no_compress=False, force=force, as_json=as_json, quiet=quiet)
