"""`edgefin pipeline` and `edgefin demo`: every step in one command, resumable.

The pipeline takes the same options as the single commands, copied from them: train's under their
own names (``--target``, ``--epochs``), the others under their own names unless that name is
taken, then prefixed with the step (``--compress-epochs``, ``--convert-variants``). A config file
holds ``[train]``, ``[compress]``, ``[convert]`` and ``[bench]`` tables with the single commands'
option names; flags win.
"""

from __future__ import annotations

import importlib
from pathlib import Path
from typing import Any, Mapping

import click

from .bench import bench_options, json_summary, progress_bar, render_summary
from .common import emit_json, handle_errors, output_options, stderr

STEP_COMMANDS = (("train", "edgefin.cli.train", "train"), ("compress", "edgefin.cli.compress", "compress"),
                 ("convert", "edgefin.cli.convert", "convert"))
NOT_COPIED = {"out", "as_json", "quiet", "config", "out_dir"}
# options that only make sense for a user's own model file, not for a run directory
STEP_ONLY = {"compress": {"data", "target", "positive", "raw_features", "encoding", "drop"},
             "convert": {"data", "target", "positive", "schema", "preprocess", "threshold"}}
# a flag two steps share goes to this step; the other gets the --STEP- prefix
PREFER = {"--max-auc-drop": "bench", "--variants": "convert", "--threshold": "train"}
SEP = "__"

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


def _step_params() -> list[tuple[str, click.Parameter]]:
    """(step, option) pairs copied from the single-step commands that exist in this build."""
    out: list[tuple[str, click.Parameter]] = []
    for step, module, attr in STEP_COMMANDS:
        try:
            cmd = getattr(importlib.import_module(module), attr)
        except (ImportError, AttributeError):
            continue
        out.extend((step, p) for p in cmd.params if isinstance(p, click.Option) and p.name not in NOT_COPIED
                   and p.name not in STEP_ONLY.get(step, ()))
    return out


def _copy(step: str, p: click.Option, taken: set[str]) -> click.Option:
    """A copy of option ``p`` whose value lands in ``STEP__name``; renamed ``--STEP-...`` if its flag is taken."""
    flags = list(p.opts) + list(p.secondary_opts)
    if any(f in taken or PREFER.get(f, step) != step for f in flags):
        def ren(f: str) -> str:
            return f"--no-{step}-{f[5:]}" if f.startswith("--no-") else f"--{step}-{f.lstrip('-')}"
        opts, secondary = [ren(f) for f in p.opts if f.startswith("--")], [ren(f) for f in p.secondary_opts]
    else:
        opts, secondary = [f for f in p.opts], list(p.secondary_opts)
    taken.update(opts + secondary)
    decl = "/".join([opts[0], *secondary]) if secondary else opts[0]
    extra = [o for o in opts[1:]] if not secondary else []
    kw: dict[str, Any] = {"type": p.type, "multiple": p.multiple, "default": p.default, "show_default": p.show_default,
                          "help": f"[{step}] {p.help or ''}".strip(), "metavar": p.metavar, "hidden": p.hidden}
    if p.is_flag and not secondary:
        kw.update(is_flag=True, flag_value=p.flag_value)
        kw.pop("type")
    return click.Option([decl, *extra, f"{step}{SEP}{p.name}"], **kw)


def _config_callback(ctx: click.Context, _param: click.Parameter, value: str | None) -> str | None:
    """TOML config -> ctx.default_map: [train]/[compress]/[convert]/[bench] tables and top-level keys."""
    if not value:
        return value
    from ..errors import UsageError
    from ..tomlfile import read_toml

    path = Path(value)
    try:
        data = read_toml(path)
    except UsageError as exc:
        raise click.BadParameter(str(exc), param_hint="--config") from None
    names = {p.name for p in ctx.command.params if p.name}
    defaults: dict[str, Any] = dict(ctx.default_map or {})
    steps = ("train", "compress", "convert", "bench")
    for key, val in data.items():
        if isinstance(val, dict) and key in (*steps, "pipeline"):
            for k, v in val.items():
                defaults[_dest(names, k, key if key != "pipeline" else None, path)] = v
        else:
            defaults[_dest(names, key, None, path)] = val
    ctx.default_map = defaults
    return value


def _dest(names: set[str], key: str, step: str | None, path: Path) -> str:
    k = key.replace("-", "_")
    cands = [f"{step}{SEP}{k}", k] if step else [k] + [f"{s}{SEP}{k}" for s in ("train", "compress", "convert", "bench")]
    for c in cands:
        if c in names:
            return c
    where = f"[{step}] " if step else ""
    known = sorted(n.split(SEP)[-1] for n in names if not step or n.startswith(f"{step}{SEP}") or SEP not in n)
    raise click.BadParameter(f"config file {path}: unknown option {where}'{key}' (known: {', '.join(known)})",
                             param_hint="--config")


def _route(values: Mapping[str, Any]) -> dict[str, dict[str, Any]]:
    out: dict[str, dict[str, Any]] = {"train": {}, "compress": {}, "convert": {}, "bench": {}}
    for name, v in values.items():
        step, _, key = name.partition(SEP)
        if key and step in out:
            out[step][key] = list(v) if isinstance(v, tuple) else v
    return out


class _Reporter:
    """Step lines on stderr; training epochs and bench variants as progress bars."""

    def __init__(self, quiet: bool) -> None:
        self.quiet = quiet
        self._bench_cm: Any = None

    def step_started(self, step: str, index: int, total: int) -> None:
        if not self.quiet:
            stderr.print(f"[bold][{index + 1}/{total}] {step}[/]")

    def step_skipped(self, step: str, reason: str) -> None:
        if not self.quiet:
            stderr.print(f"[dim]skipped {step}: {reason}[/]")

    def step_done(self, step: str, seconds: float) -> None:
        if self._bench_cm is not None:
            self._bench_cm.__exit__(None, None, None)
            self._bench_cm = None
        if not self.quiet:
            stderr.print(f"[green]done {step}[/] in {seconds:.1f} s")

    def train_reporter(self) -> Any:
        from .train import _RichReporter

        return _RichReporter(self.quiet)

    def compress_reporter(self) -> Any:
        quiet = self.quiet

        class _Compress:
            def stage(self, message: str) -> None:
                if not quiet:
                    stderr.print(f"[dim]-[/] {message}")

            def warn(self, message: str) -> None:
                if not quiet:
                    stderr.print(f"[yellow]warning:[/] {message}", soft_wrap=True)

            def epoch(self, stage: str, epoch: int, total: int, logs: dict[str, float]) -> None:
                pass

        return _Compress()

    def convert_progress(self) -> Any:
        if self.quiet:
            return None
        from .convert import _Progress

        return _Progress()

    def bench_progress(self) -> Any:
        self._bench_cm = progress_bar(self.quiet, "bench")
        return self._bench_cm.__enter__()


def _run(data: str | None, out: str, routed: dict[str, dict[str, Any]], *, no_compress: bool, force: bool,
         as_json: bool, quiet: bool) -> None:
    from ..bench.report import load_report
    from ..pipeline import PipelineConfig, PipelineGateError, run_pipeline

    cfg = PipelineConfig(train=routed["train"], compress=None if no_compress else routed["compress"],
                         convert=routed["convert"], bench=routed["bench"])
    reporter = _Reporter(quiet)
    gate: PipelineGateError | None = None
    try:
        result = run_pipeline(data, out, cfg, reporter=reporter, force=force)
    except PipelineGateError as exc:  # everything ran and was reported; show it, then exit 3
        gate, result = exc, exc.result
    finally:
        if reporter._bench_cm is not None:
            reporter._bench_cm.__exit__(None, None, None)
    report = load_report(Path(out) / "report" / "report.json")
    if not quiet:
        render_summary(report)
        stderr.print(f"report: {result['report']['report.html']}", highlight=False)
    if as_json:
        emit_json({**json_summary(report, result["report"]), "pipeline": result})
    if gate is not None:
        raise gate


def _pipeline_command() -> click.Command:
    taken: set[str] = {"--out", "--json", "-q", "--quiet", "--config", "--force", "--no-compress", "-h", "--help"}
    params: list[click.Parameter] = [click.Argument(["data"], required=True)]
    for step, p in _step_params():
        params.append(_copy(step, p, taken))  # type: ignore[arg-type]

    def cb(**kw: Any) -> None:
        pass

    bench_probe = click.command()(bench_options(cb))
    for p in bench_probe.params:
        params.append(_copy("bench", p, taken))  # type: ignore[arg-type]
    params += [
        click.Option(["--out"], required=True, type=click.Path(file_okay=False), help="Run directory."),
        click.Option(["--no-compress"], is_flag=True, help="Skip pruning and QAT (convert the dense model)."),
        click.Option(["--force"], is_flag=True, help="Rerun every step even when its inputs are unchanged."),
        click.Option(["--config"], type=click.Path(dir_okay=False), callback=_config_callback, is_eager=True,
                     expose_value=False, help="TOML with [train], [compress], [convert], [bench] tables; flags win."),
        click.Option(["--json", "as_json"], is_flag=True, help="Print the result as JSON on stdout."),
        click.Option(["-q", "--quiet"], is_flag=True, help="No progress or logs on stderr."),
    ]

    @handle_errors
    def run(data: str, out: str, no_compress: bool, force: bool, as_json: bool, quiet: bool, **kw: Any) -> None:
        _run(data, out, _route(kw), no_compress=no_compress, force=force, as_json=as_json, quiet=quiet)

    return click.Command("pipeline", params=params, callback=run,
                         help="Train, compress, convert, bench and report DATA into the run directory --out.\n\n"
                              "Resumes: a step whose options and input files are unchanged and whose outputs are "
                              "present is skipped (said on stderr). Options of compress, convert and bench that "
                              "clash with train's are prefixed with the step (--compress-epochs).",
                         epilog="\b\nExamples:\n  edgefin pipeline credit.csv --target Status --positive bad --out runs/credit\n"
                                "  edgefin pipeline loans.csv --target default --config pipeline.toml --out runs/loans")


pipeline = _pipeline_command()


@click.command()
@click.option("--out", default="runs/demo", show_default=True, type=click.Path(file_okay=False),
              help="Run directory for the demo.")
@click.option("--profile", default=DEMO_OPTIONS["bench"]["profile"], show_default=True,
              help="Hardware profile for the benchmark.")
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
        stderr.print(f"edgefin demo: {DEMO_DATA.name} -> {out}", highlight=False)
    _run(str(DEMO_DATA), out, routed, no_compress=False, force=force, as_json=as_json, quiet=quiet)
