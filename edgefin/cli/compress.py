"""`edgefin compress`: prune -> (cluster) -> QAT a trained run, or a user's own model plus data (ingested first)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import click

from ..compress.options import AUC_TOLERANCE
from .common import config_option, emit_json, handle_errors, output_options, stderr
from .options import apply, compress_options, user_model_flags
from .reporter import RichReporter

EPILOG = f"""\b
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
--gate exits with 3 when the quality bar (AUC within {AUC_TOLERANCE} of dense, sparsity reached and kept,
pruned weights under half the dense gzip size at >= 80% sparsity) is missed.
"""


@click.command(epilog=EPILOG)
@click.argument("source", metavar="RUN_DIR|MODEL")
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
    schema: str | None,
    preprocess: str | None,
    as_json: bool,
    quiet: bool,
    **values: object,
) -> None:
    """Prune (then cluster and/or quantisation-aware train) the model of RUN_DIR, or your own MODEL
    (a Keras 3 or tf_keras .keras, .h5 or tf_keras SavedModel; ingested into --out first)."""
    from ..errors import UsageError
    from ..ingest import Options as IngestOptions
    from ..ingest import ingest, is_saved_model
    from ..steps import compress as step

    options = compress_options(values)  # bad values fail before anything is read
    path = Path(source)
    with RichReporter(quiet) as reporter:
        if path.is_dir() and not is_saved_model(path):
            given = user_model_flags(
                "compress",
                {
                    "data": data,
                    "target": target,
                    "positive": positive,
                    "raw_features": raw_features,
                    "out": out,
                    "schema": schema,
                    "preprocess": preprocess,
                },
            )
            if given:
                raise UsageError(
                    f"{source} is a run directory: {', '.join(given)} are only for compressing your own model "
                    f"(edgefin compress MODEL.keras --data FILE --target COL --out RUN_DIR)"
                )
            run = path
        elif path.exists():
            if not (data and target and out):
                raise UsageError(
                    f"compressing your own model needs its data: edgefin compress {source} --data FILE "
                    f"--target COLUMN [--positive VALUE] --out RUN_DIR"
                )
            reporter.note(f"ingesting {source} with {data} into {out}")
            seed = options.compression.seed
            done = ingest(
                path,
                out,
                IngestOptions(
                    data=data,
                    target=target,
                    positive=positive,
                    schema=schema,
                    preprocess=preprocess,
                    raw_features=raw_features,
                    seed=42 if seed is None else seed,
                    for_compression=True,
                ),
                reporter,
            )
            for note in done.notes:
                reporter.note(note)
            options = _skip_preprocessing(options, done.lineage, reporter)
            run = done.run.root
        else:
            raise UsageError(
                f"{source} does not exist: expected an edgefin run directory (from 'edgefin train') or a model "
                f"(.keras, .h5, SavedModel directory)"
            )
        result = step.run(run, options, reporter)
    if not quiet:
        from ..compress.report import render

        render(result.report, stderr)
    if as_json:
        emit_json(result.to_dict())


def _skip_preprocessing(options: Any, lineage: dict[str, Any], reporter: Any) -> Any:
    """Preprocessing layers inside a user's model (Normalization, Rescaling...) hold no weights to prune
    and TFMOT does not wrap them: they are left as they are (added to ``skip_layers``), and said so."""
    from dataclasses import replace

    inside = [d["layer"] for d in lineage.get("model_preprocessing") or [] if isinstance(d, dict)]
    extra = [n for n in inside if n not in options.compression.skip_layers]
    if not extra:
        return options
    reporter.note(
        f"preprocessing layers inside the model stay as they are (not pruned or quantised): {', '.join(extra)}"
    )
    compression = replace(options.compression, skip_layers=tuple(options.compression.skip_layers) + tuple(extra))
    return replace(options, compression=compression)
