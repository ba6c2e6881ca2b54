"""`edgefin synth`: synthetic scoring data from a run's schema and training statistics (Parquet parts)."""

from __future__ import annotations

import click
from rich.markup import escape

from .common import emit_json, handle_errors, output_options, stderr
from .reporter import RichReporter

EPILOG = """\b
Examples:
  edgefin synth runs/demo --rows 1000000 --out /data/synth-1m
  edgefin synth runs/demo --rows 10000000 --bad-share 0.02 --seed 7 --out /data/synth-10m
  edgefin-run score runs/demo/bundles/tflite-int8.efb /data/synth-1m --engine dask --output scores/
\b
Rows come from the run's statistics (quantiles, category frequencies, missing shares, a Gaussian
copula of the fields' correlations), never from its rows. Bad rows: missing required value, +-inf,
10x out of range, unseen category (see _synth.json for the counts).
"""


@click.command(epilog=EPILOG)
@click.argument("run_dir", metavar="RUN_DIR", type=click.Path(exists=True, file_okay=False))
@click.option("--rows", required=True, type=click.IntRange(min=1), help="Number of rows to write.")
@click.option("--out", required=True, type=click.Path(), help="Output directory (new or empty) for the Parquet parts.")
@click.option("--bad-share", default=0.0, show_default=True, type=click.FloatRange(0.0, 1.0), help="Share of bad rows.")
@click.option("--seed", default=0, show_default=True, type=int, help="Random seed (same seed, same rows).")
@click.option(
    "--part-rows", default=1_000_000, show_default=True, type=click.IntRange(min=1), help="Rows per Parquet file."
)
@output_options
@handle_errors
def synth(
    run_dir: str, rows: int, out: str, bad_share: float, seed: int, part_rows: int, as_json: bool, quiet: bool
) -> None:
    """Write ROWS synthetic applications drawn from RUN_DIR's schema and training statistics to OUT."""
    from ..synth import synthesize

    with RichReporter(quiet) as reporter:
        result = synthesize(run_dir, rows, out, bad_share=bad_share, seed=seed, part_rows=part_rows, reporter=reporter)
    if not quiet:
        bad = ", ".join(f"{n} {k}" for k, n in result.bad_by_kind.items() if n) or "none"
        stderr.print(
            escape(
                f"edgefin synth: {result.rows} rows in {result.parts} part file(s) -> {result.out} "
                f"({result.bad_rows} bad: {bad}) in {result.seconds:.1f} s"
            )
        )
    if as_json:
        emit_json(result.to_dict())
