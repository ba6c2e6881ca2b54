"""`edgefin compress`: prune -> (cluster) -> QAT a trained run, or a user's own MODEL.keras plus data."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import click

from .common import config_option, emit_json, handle_errors, output_options, stderr
from .options import apply, compress_options, user_model_flags
from .reporter import RichReporter

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
@apply("compress")
@config_option
@output_options
@handle_errors
def compress(
    source: str,
    data: str | None,
    target: str | None,
    positive: str | None,
    raw_features: bool,
    out: str | None,
    as_json: bool,
    quiet: bool,
    **values: Any,
) -> None:
    """Prune (then cluster and/or quantisation-aware train) the model of RUN_DIR, or your own MODEL.keras."""
    from ..errors import UsageError
    from ..steps import compress as step

    options = compress_options(values)  # bad values fail before anything is read
    path = Path(source)
    with RichReporter(quiet) as reporter:
        if path.is_dir():
            given = user_model_flags(
                "compress",
                {"data": data, "target": target, "positive": positive, "raw_features": raw_features, "out": out},
            )
            if given:
                raise UsageError(
                    f"{source} is a run directory: {', '.join(given)} are only for compressing your own MODEL.keras"
                )
            run = path
        elif path.suffix == ".keras":
            if not (data and target and out):
                raise UsageError(
                    f"compressing your own model needs its data: edgefin compress {source} --data FILE "
                    f"--target COLUMN [--positive VALUE] --out RUN_DIR"
                )
            if not path.is_file():
                raise UsageError(f"model file {source} not found")
            from ..compress.byo import import_model

            reporter.note(f"importing {source} with {data} into {out}")
            seed = options.compression.seed
            rd, reused = import_model(
                path,
                data,
                out,
                target=target,
                positive=positive,
                raw_features=raw_features,
                seed=42 if seed is None else seed,
            )
            if reused:
                reporter.note(f"{out} already holds this model and data; compressing it again")
            run = rd.root
        else:
            raise UsageError(
                f"{source}: expected an edgefin run directory (from 'edgefin train') or a Keras model "
                f"file ending in .keras"
            )
        result = step.run(run, options, reporter)
    if not quiet:
        from ..compress.report import render

        render(result.report, stderr)
    if as_json:
        emit_json(result.to_dict())
