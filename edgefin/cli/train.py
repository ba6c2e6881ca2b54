"""`edgefin train`: the train step (:mod:`edgefin.steps.train`) with its flags, progress and a summary."""

from __future__ import annotations

from typing import Any

import click
from rich.markup import escape

from .common import config_option, emit_json, handle_errors, output_options, stderr
from .options import apply, train_options
from .reporter import RichReporter

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


@click.command(epilog=EPILOG)
@click.argument("data", metavar="DATA")
@apply("train")
@config_option
@output_options
@handle_errors
def train(data: str, out: str, as_json: bool, quiet: bool, **values: object) -> None:
    """Train a dense classifier on CSV/Parquet DATA into the run directory OUT.

    Writes the schema, preprocessing spec, data-quality report, splits, the Keras model,
    metrics.json (dense model and a logistic-regression baseline) and run.json.
    """
    from ..steps import train as step

    with RichReporter(quiet) as reporter:
        result = step.run(out, train_options(values, data), reporter)
    if not quiet:
        _summary(result.metrics, out)
    if as_json:
        emit_json(result.to_dict())


def _summary(m: dict[str, Any], out: str) -> None:
    from rich.box import SIMPLE
    from rich.table import Table

    table = Table(title=escape(f"edgefin train -> {out}"), title_justify="left", box=SIMPLE)
    table.add_column("split", no_wrap=True)
    for col in ("n", "AUC", "KS", "Brier", "logloss", "prec", "recall", "F1"):
        table.add_column(col, justify="right", no_wrap=True)
    for split in ("validation", "test"):
        s = m[split]
        table.add_row(
            split,
            str(s["n"]),
            f"{s['auc']:.4f}",
            f"{s['ks']:.4f}",
            f"{s['brier']:.4f}",
            f"{s['logloss']:.4f}",
            f"{s['precision']:.3f}",
            f"{s['recall']:.3f}",
            f"{s['f1']:.3f}",
        )
    stderr.print(table)
    lr = m["baseline"]["logistic_regression"]
    model = m["model"]
    stderr.print(
        f"threshold {m['threshold']:.4f} ({m['threshold_method']}; positive = '{m['positive_label']}')  "
        f"dense {'-'.join(map(str, model['hidden']))}: {model['params']} params, "
        f"{model['epochs_run']} epochs (best {model['best_epoch']})",
        markup=False,
    )
    trials = model.get("bins_validation_auc", {})
    if len(trials) > 1:
        tried = ", ".join(f"{'plain' if k == '0' else k + ' bins'} {v:.4f}" for k, v in trials.items() if v is not None)
        chosen = f"{model['bins']} bins per numeric column" if model["bins"] else "plain numeric input"
        stderr.print(f"numeric encoding: {chosen} (validation AUC: {tried})")
    delta = m["test"]["auc"] - lr["test_auc"]
    colour = "green" if delta >= 0 else "yellow"
    stderr.print(f"logistic-regression baseline test AUC {lr['test_auc']:.4f}  [{colour}]dense {delta:+.4f}[/]")
