"""`edgefin train`: parse options, call :func:`edgefin.train.train`, render progress and a summary."""

from __future__ import annotations

from typing import Any

import click

from .common import config_option, emit_json, handle_errors, output_options, stderr

EPILOG = """\b
Examples:
  edgefin train credit.csv --target Status --positive bad --out runs/credit
  edgefin train loans.parquet --target default --drop customer_id --categorical branch \\
      --hidden 128,64 --dropout 0.1 --threshold rate:0.2 --out runs/loans
  edgefin train train.csv --target y --test-data holdout.csv --config train.toml --json --out runs/y
  edgefin train loans.csv --target default --bins 16 --out runs/binned   # always bin numeric columns
\b
A config file (TOML) holds the same options, at the top level or under [train]:
  target = "Status"
  positive = "bad"
  drop = ["Id"]
  hidden = [64, 32]
Command-line flags win over the file. Progress goes to stderr; --json prints metrics on stdout.
"""


class _Hidden(click.ParamType):
    name = "SIZES"

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> tuple[int, ...]:
        if isinstance(value, (list, tuple)):
            parts = list(value)
        elif isinstance(value, int):
            parts = [value]
        else:
            parts = [p for p in str(value).replace(" ", "").split(",") if p]
        try:
            sizes = tuple(int(p) for p in parts)
        except (TypeError, ValueError):
            self.fail(f"expected layer sizes like 64,32; got {value!r}", param, ctx)
        if not sizes or any(s < 1 for s in sizes):
            self.fail(f"expected one or more positive layer sizes like 64,32; got {value!r}", param, ctx)
        return sizes


class _Threshold(click.ParamType):
    name = "max-ks|P|rate:R"

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> str:
        from ..errors import UsageError
        from ..metrics import parse_threshold

        try:
            parse_threshold(value)
        except UsageError as exc:
            self.fail(str(exc).removeprefix("--threshold: "), param, ctx)
        return str(value)


class _Bins(click.ParamType):
    name = "auto|N"

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> int | str:
        from ..data.preprocessing import check_bins

        try:
            return check_bins(value)
        except ValueError as exc:
            self.fail(str(exc), param, ctx)


@click.command(epilog=EPILOG)
@click.argument("data", metavar="DATA")
@click.option("--target", required=True, help="Column to predict (two classes).")
@click.option("--positive", default=None, help="Target value of the positive (risk) class; default 1 / true.")
@click.option("--drop", multiple=True, metavar="COL", help="Leave a column out (repeatable).")
@click.option("--categorical", multiple=True, metavar="COL", help="Treat a column as categorical (repeatable).")
@click.option("--numeric", multiple=True, metavar="COL", help="Treat a column as numeric (repeatable).")
@click.option("--na-values", multiple=True, metavar="TEXT", help="Extra text that means missing in CSV (repeatable).")
@click.option("--test-data", type=click.Path(dir_okay=False), default=None,
              help="Evaluate on this file instead of a held-out share of DATA.")
@click.option("--validation-data", type=click.Path(dir_okay=False), default=None,
              help="Early-stop and pick the threshold on this file instead of a share of DATA.")
@click.option("--test-size", type=click.FloatRange(0, 1, min_open=True, max_open=True), default=0.2,
              show_default=True, help="Share of DATA held out for testing (without --test-data).")
@click.option("--validation-size", type=click.FloatRange(0, 1, min_open=True, max_open=True), default=0.2,
              show_default=True, help="Share of DATA for early stopping and the threshold (without --validation-data).")
@click.option("--seed", type=int, default=42, show_default=True, help="Seed for the split and the model.")
@click.option("--hidden", type=_Hidden(), default="64,32", show_default=True, help="Hidden layer sizes.")
@click.option("--dropout", type=click.FloatRange(0, 1, max_open=True), default=0.0, show_default=True,
              help="Dropout after each hidden layer.")
@click.option("--l2", type=click.FloatRange(min=0), default=3e-3, show_default=True, help="L2 weight penalty.")
@click.option("--learning-rate", type=click.FloatRange(min=0, min_open=True), default=1e-3, show_default=True,
              help="Adam learning rate.")
@click.option("--batch-size", type=click.IntRange(min=1), default=64, show_default=True, help="Rows per step.")
@click.option("--epochs", type=click.IntRange(min=1), default=200, show_default=True, help="At most this many epochs.")
@click.option("--patience", type=click.IntRange(min=1), default=20, show_default=True,
              help="Stop after this many epochs without a better validation AUC (best weights are kept).")
@click.option("--class-weight/--no-class-weight", default=True, show_default=True,
              help="Weight classes inversely to their frequency.")
@click.option("--encoding", type=click.Choice(["onehot", "index"]), default="onehot", show_default=True,
              help="How categories become features.")
@click.option("--bins", type=_Bins(), default="auto", show_default=True,
              help="Piecewise-linear bins per numeric column, between training quantiles (lets the dense model "
              "learn sharp thresholds, at ~1.6x the scoring time); 0 = standardise only; auto = train both ways "
              "and keep bins only if they win on validation AUC.")
@click.option("--threshold", type=_Threshold(), default="max-ks", show_default=True,
              help="Decision threshold: max-ks (on validation), a probability like 0.35, or rate:0.2 (flag 20%).")
@click.option("--augment", type=click.Choice(["none", "smote", "jitter", "smote+jitter"]), default="none",
              show_default=True, help="Oversample the minority class in the raw training split (after "
              "preprocessing is fitted; validation and test rows are never augmented).")
@click.option("--out", required=True, type=click.Path(file_okay=False), help="Run directory to write.")
@config_option
@output_options
@handle_errors
def train(data: str, out: str, as_json: bool, quiet: bool, **options: Any) -> None:
    """Train a dense classifier on CSV/Parquet DATA into the run directory OUT.

    Writes the schema, preprocessing spec, data-quality report, splits, the Keras model,
    metrics.json (dense model and a logistic-regression baseline) and run.json.
    """
    from ..train import TrainOptions, train as run_training

    opts = TrainOptions(**{k: (tuple(v) if isinstance(v, list) else v) for k, v in options.items()})
    reporter = _RichReporter(quiet)
    metrics = run_training(data, out, opts, reporter=reporter)
    if not quiet:
        _summary(metrics, out)
    if as_json:
        emit_json(metrics)


class _RichReporter:
    """Stages and warnings as lines, epochs as a progress bar, all on stderr."""

    def __init__(self, quiet: bool) -> None:
        self.quiet = quiet
        self._progress: Any = None
        self._task: Any = None

    def stage(self, message: str) -> None:
        if not self.quiet:
            stderr.print(f"[dim]-[/] {message}")

    def warn(self, message: str) -> None:
        if not self.quiet:
            stderr.print(f"[yellow]warning:[/] {message}", soft_wrap=True)

    def epochs_started(self, total: int) -> None:
        if self.quiet:
            return
        from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

        self._progress = Progress(TextColumn("  epoch"), MofNCompleteColumn(), BarColumn(),
                                  TextColumn("{task.fields[info]}"), TimeElapsedColumn(),
                                  console=stderr, transient=True)
        self._task = self._progress.add_task("train", total=total, info="")
        self._progress.start()

    def epoch(self, epoch: int, logs: dict[str, float]) -> None:
        if self._progress is None:
            return
        info = f"loss {logs.get('loss', float('nan')):.4f}"
        if "val_auc" in logs:
            info += f"  val AUC {logs['val_auc']:.4f} (best {logs.get('best_val_auc', logs['val_auc']):.4f})"
        self._progress.update(self._task, completed=epoch, info=info)

    def epochs_done(self) -> None:
        if self._progress is not None:
            self._progress.stop()
            self._progress = None


def _summary(m: dict[str, Any], out: str) -> None:
    from rich.box import SIMPLE
    from rich.table import Table

    table = Table(title=f"edgefin train -> {out}", title_justify="left", box=SIMPLE)
    table.add_column("split", no_wrap=True)
    for col in ("n", "AUC", "KS", "Brier", "logloss", "prec", "recall", "F1"):
        table.add_column(col, justify="right", no_wrap=True)
    for split in ("validation", "test"):
        s = m[split]
        table.add_row(split, str(s["n"]), f"{s['auc']:.4f}", f"{s['ks']:.4f}", f"{s['brier']:.4f}",
                      f"{s['logloss']:.4f}", f"{s['precision']:.3f}", f"{s['recall']:.3f}", f"{s['f1']:.3f}")
    stderr.print(table)
    lr = m["baseline"]["logistic_regression"]
    model = m["model"]
    stderr.print(f"threshold {m['threshold']:.4f} ({m['threshold_method']}; positive = '{m['positive_label']}')  "
                 f"dense {'-'.join(map(str, model['hidden']))}: {model['params']} params, "
                 f"{model['epochs_run']} epochs (best {model['best_epoch']})")
    trials = model.get("bins_validation_auc", {})
    if len(trials) > 1:
        tried = ", ".join(f"{'plain' if k == '0' else k + ' bins'} {v:.4f}" for k, v in trials.items() if v is not None)
        chosen = f"{model['bins']} bins per numeric column" if model["bins"] else "plain numeric input"
        stderr.print(f"numeric encoding: {chosen} (validation AUC: {tried})")
    delta = m["test"]["auc"] - lr["test_auc"]
    colour = "green" if delta >= 0 else "yellow"
    stderr.print(f"logistic-regression baseline test AUC {lr['test_auc']:.4f}  "
                 f"[{colour}]dense {delta:+.4f}[/]")
