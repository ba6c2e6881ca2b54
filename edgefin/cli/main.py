"""`edgefin`: the toolkit's command line. Commands load lazily so `--help` is instant.

Exit codes: 0 ok, 1 failure, 2 usage or input error, 3 a quality gate failed.
"""

from __future__ import annotations

import importlib

import click

from .. import __version__

# command name -> (module, attribute, one-line help)
COMMANDS: dict[str, tuple[str, str, str]] = {
    "train": ("edgefin.cli.train", "train", "Train a dense classifier on CSV/Parquet data into a run directory."),
    "compress": ("edgefin.cli.compress", "compress", "Prune and quantisation-aware-train a trained model."),
    "convert": ("edgefin.cli.convert", "convert", "Convert to TFLite/ONNX variants, check parity, write bundles."),
    "inspect": ("edgefin.cli.convert", "inspect", "Show a bundle's manifest in readable form."),
    "bench": ("edgefin.cli.bench", "bench", "Benchmark every variant under a hardware profile and recommend one."),
    "report": ("edgefin.cli.bench", "report", "Rebuild report.md / report.html from a run's report.json."),
    "targets": (
        "edgefin.cli.targets",
        "targets",
        "Re-check a run's bundles on other CPUs (x86-64 levels, ARM64) under emulation.",
    ),
    "pipeline": ("edgefin.cli.pipeline", "pipeline", "Train, compress, convert, bench and report in one go."),
    "demo": ("edgefin.cli.pipeline", "demo", "Run the whole pipeline on the bundled credit data."),
    "keygen": ("edgefin.cli.sign", "keygen", "Create an Ed25519 key pair for signing bundles."),
    "sign": ("edgefin.cli.sign", "sign", "Sign a bundle with an Ed25519 private key."),
    "synth": ("edgefin.cli.synth", "synth", "Write synthetic Parquet rows from a run's schema and statistics."),
}

EPILOG = """\b
Examples:
  edgefin demo --out runs/demo
  edgefin train data.csv --target Status --positive bad --out runs/credit
  edgefin compress runs/credit --sparsity 0.8
  edgefin convert runs/credit --variants tflite-int8,onnx-fp32
  edgefin bench runs/credit --profile kiosk-1core --max-latency-us 50
\b
Exit codes: 0 ok, 1 failure, 2 usage or input error, 3 quality gate failed.
"""


class LazyGroup(click.Group):
    """A click group that imports a command's module only when that command runs."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        return list(COMMANDS)

    def get_command(self, ctx: click.Context, name: str) -> click.Command | None:
        if name not in COMMANDS:
            return None
        module, attr, _ = COMMANDS[name]
        command: click.Command = getattr(importlib.import_module(module), attr)
        return command

    def format_commands(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        rows = [(name, help_) for name, (_, _, help_) in COMMANDS.items()]
        with formatter.section("Commands"):
            formatter.write_dl(rows)


@click.group(cls=LazyGroup, epilog=EPILOG, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="edgefin")
def cli() -> None:
    """edgefin: train, compress, convert, verify and benchmark deep tabular finance models for
    constrained branch devices."""


def main() -> None:
    cli()


if __name__ == "__main__":
    main()
