"""`edgefin compress`: prune -> (cluster) -> QAT a trained run, or a user's own MODEL.keras plus data."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import click

from .common import config_option, emit_json, handle_errors, output_options, stderr

EPILOG = """\b
Examples:
  edgefin compress runs/credit                       # 80% sparsity, then PQAT
  edgefin compress runs/credit --sparsity 0.9 --epochs 30 --no-qat
  edgefin compress runs/credit --block 2:4 --skip-layer dense_1
  edgefin compress runs/credit --cluster 16          # prune, cluster, then CQAT
  edgefin compress my_model.keras --data loans.csv --target default --positive 1 --out runs/mine
\b
Writes models/pruned.keras, models/clustered.keras (--cluster), models/qat.keras (--qat) and
compress.json (test AUC, Gini, KS, Brier, decision flips against the dense model, per-layer
sparsity measured on the kernels, parameter counts, raw and gzip sizes) into the run directory.
--gate exits with 3 when the quality bar (AUC within 0.005 of dense, sparsity reached and kept,
pruned weights under half the dense gzip size at >= 80% sparsity) is missed.
"""


@click.command(epilog=EPILOG)
@click.argument("source", metavar="RUN_DIR|MODEL.keras")
@click.option("--sparsity", type=click.FloatRange(0, 1, min_open=True, max_open=True), default=None,
              help="Share of each pruned kernel's weights to zero, in (0, 1).  [default: 0.8]")
@click.option("--block", default="1x1", show_default=True,
              help="Sparsity pattern: 1x1 (unstructured), RxC blocks such as 1x4, or 2:4 (structured, 50%).")
@click.option("--skip-layer", multiple=True, metavar="NAME",
              help="Leave this layer unpruned and unquantised (repeatable). The output layer is never pruned "
                   "unless --prune-output.")
@click.option("--prune-output", is_flag=True, help="Prune the output layer too.")
@click.option("--epochs", type=click.IntRange(min=1), default=20, show_default=True,
              help="Pruning fine-tuning epochs (the ramp ends at 60% of them unless --end-epoch).")
@click.option("--begin-epoch", type=click.FloatRange(min=0), default=0.0, show_default=True,
              help="Epoch at which pruning starts.")
@click.option("--end-epoch", type=click.FloatRange(min=0, min_open=True), default=None,
              help="Epoch at which the target sparsity is reached.")
@click.option("--begin-step", type=click.IntRange(min=0), default=None, help="Optimizer step at which pruning starts "
              "(overrides --begin-epoch).")
@click.option("--end-step", type=click.IntRange(min=1), default=None, help="Optimizer step at which the target "
              "is reached (overrides --end-epoch).")
@click.option("--frequency", type=click.IntRange(min=1), default=None,
              help="Prune every N optimizer steps.  [default: a quarter epoch]")
@click.option("--learning-rate", type=click.FloatRange(min=0, min_open=True), default=1e-3, show_default=True,
              help="Adam learning rate while pruning.")
@click.option("--qat/--no-qat", default=True, show_default=True,
              help="Quantisation-aware fine-tuning after pruning (PQAT: keeps the zeros).")
@click.option("--qat-epochs", type=click.IntRange(min=1), default=4, show_default=True)
@click.option("--qat-learning-rate", type=click.FloatRange(min=0, min_open=True), default=1e-4, show_default=True)
@click.option("--cluster", type=click.IntRange(min=0, max=256), default=0, show_default=True, metavar="N",
              help="Cluster each kernel to N distinct values after pruning (0: off); QAT then keeps them (CQAT).")
@click.option("--cluster-epochs", type=click.IntRange(min=1), default=4, show_default=True)
@click.option("--cluster-learning-rate", type=click.FloatRange(min=0, min_open=True), default=1e-4, show_default=True)
@click.option("--batch-size", type=click.IntRange(min=1), default=None,
              help="Fine-tuning batch size.  [default: as the model was trained]")
@click.option("--class-weight/--no-class-weight", default=None,
              help="Weight classes in fine-tuning.  [default: as the model was trained]")
@click.option("--seed", type=int, default=None, help="Fine-tuning seed.  [default: the run's seed]")
@click.option("--gate", is_flag=True, help="Exit with 3 when the quality bar is missed (compress.json is still written).")
@click.option("--data", type=click.Path(dir_okay=False), default=None,
              help="MODEL.keras only: labelled CSV/Parquet data to split, fit preprocessing on, and fine-tune with.")
@click.option("--target", default=None, help="MODEL.keras only: the column to predict.")
@click.option("--positive", default=None, help="MODEL.keras only: target value of the positive (risk) class.")
@click.option("--raw-features", is_flag=True,
              help="MODEL.keras only: the model takes the data's numeric columns as they are, in file order.")
@click.option("--out", type=click.Path(file_okay=False), default=None,
              help="MODEL.keras only: the run directory to create.")
@config_option
@output_options
@handle_errors
def compress(source: str, data: str | None, target: str | None, positive: str | None, raw_features: bool,
             out: str | None, gate: bool, as_json: bool, quiet: bool, **options: Any) -> None:
    """Prune (then cluster and/or quantisation-aware train) the model of RUN_DIR, or your own MODEL.keras."""
    from ..errors import UsageError

    path = Path(source)
    reporter = _RichReporter(quiet)
    if path.is_dir():
        if data or target or positive or raw_features or out:
            raise UsageError(f"{source} is a run directory: --data, --target, --positive, --raw-features and --out "
                             f"are only for compressing your own MODEL.keras")
        run = path
    elif path.suffix == ".keras":
        if not (data and target and out):
            raise UsageError(f"compressing your own model needs its data: edgefin compress {source} --data FILE "
                             f"--target COLUMN [--positive VALUE] --out RUN_DIR")
        if not path.is_file():
            raise UsageError(f"model file {source} not found")
        from ..compress.byo import import_model

        reporter.stage(f"importing {source} with {data} into {out}")
        seed = options.get("seed")
        rd, reused = import_model(path, data, out, target=target, positive=positive, raw_features=raw_features,
                                  seed=42 if seed is None else seed)
        if reused:
            reporter.stage(f"{out} already holds this model and data; compressing it again")
        run = rd.root
    else:
        raise UsageError(f"{source}: expected an edgefin run directory (from 'edgefin train') or a Keras model "
                         f"file ending in .keras")
    from ..compress.run import compress_run

    try:
        report = compress_run(run, reporter=reporter, gate=gate, **options)
    finally:
        reporter.close()
    if not quiet:
        from ..compress.report import render

        render(report, stderr)
    if as_json:
        emit_json(report)


class _RichReporter:
    """Stage lines on stderr and one transient progress bar per fine-tuning phase."""

    def __init__(self, quiet: bool) -> None:
        self.quiet = quiet
        self._progress: Any = None
        self._task: Any = None
        self._stage: str | None = None

    def stage(self, message: str) -> None:
        self.close()
        if not self.quiet:
            stderr.print(f"[dim]-[/] {message}")

    def warn(self, message: str) -> None:
        if not self.quiet:
            stderr.print(f"[yellow]warning:[/] {message}", soft_wrap=True)

    def epoch(self, stage: str, epoch: int, total: int, logs: dict[str, float]) -> None:
        if self.quiet:
            return
        if self._progress is None or self._stage != stage:
            from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

            self.close()
            self._progress = Progress(TextColumn(f"  {stage} epoch"), MofNCompleteColumn(), BarColumn(),
                                      TextColumn("{task.fields[info]}"), TimeElapsedColumn(),
                                      console=stderr, transient=True)
            self._task = self._progress.add_task(stage, total=total, info="")
            self._progress.start()
            self._stage = stage
        info = f"loss {logs.get('loss', float('nan')):.4f}  val AUC {logs.get('val_auc', float('nan')):.4f}"
        self._progress.update(self._task, completed=epoch, info=info)

    def close(self) -> None:
        if self._progress is not None:
            self._progress.stop()
            self._progress = None
            self._stage = None
