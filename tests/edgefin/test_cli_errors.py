"""Messages are plain text on the terminal: square brackets in an error or a progress line print intact."""

from __future__ import annotations

import click
import pytest
from click.testing import CliRunner

from edgefin.cli.common import handle_errors
from edgefin.errors import QualityGateError, UsageError

BRACKETS = [
    "install the engine: pip install 'edgefin-runtime[litert]'",
    "profiles file p.toml has no [profiles.NAME] table",
    "a message with [/x in it",  # an unmatched closing tag: rich would raise MarkupError
    "[bold]not bold[/] and [red]not red[/red]",
]


@pytest.mark.parametrize("message", BRACKETS)
def test_error_messages_with_square_brackets_print_intact(message: str) -> None:
    @click.command()
    @handle_errors
    def cmd() -> None:
        raise UsageError(message)

    res = CliRunner().invoke(cmd, [])
    assert res.exit_code == 2, res.output
    assert res.exception is None or isinstance(res.exception, SystemExit)  # no MarkupError traceback
    assert f"error: {message}" in res.output


def test_a_failed_gate_message_keeps_its_brackets_too() -> None:
    @click.command()
    @handle_errors
    def cmd() -> None:
        raise QualityGateError("variant [onnx-int8] flips 2% [/max 1%]")

    res = CliRunner().invoke(cmd, [])
    assert res.exit_code == 3 and "quality gate failed: variant [onnx-int8] flips 2% [/max 1%]" in res.output


def test_progress_lines_keep_square_brackets() -> None:
    import io

    from rich.console import Console

    from edgefin.cli.reporter import RichReporter

    out = io.StringIO()
    with RichReporter(console=Console(file=out, width=200)) as rep:
        rep.note("reading data[/x] from runs/[test]")
        rep.warn("column 'a[b]' has [bold]markup[/]")
        rep.checked("onnx-[int8]", False, "9.5 KB, [parity] on 891 rows")
        rep.step_skipped("bench", "inputs [unchanged]")
        rep.started("epoch", 3)
        rep.advanced("epoch", 1, 3, "loss [/x]")
        rep.done("epoch")
    text = out.getvalue()
    for part in (
        "- reading data[/x] from runs/[test]",
        "warning: column 'a[b]' has [bold]markup[/]",
        "FAIL onnx-[int8]: 9.5 KB, [parity] on 891 rows",
        "skipped bench: inputs [unchanged]",
    ):
        assert part in text, text


def test_compress_table_prints_a_run_path_and_notes_with_brackets_intact() -> None:
    import io

    from rich.console import Console

    from edgefin.compress.report import render

    stage = {
        "test": {"auc": 0.8, "gini": 0.6, "ks": 0.5, "brier": 0.1},
        "flip_rate_vs_dense": 0.0,
        "sparsity": {
            "kernel_sparsity": 0.8,
            "nonzero_params": 10,
            "params": 50,
            "layers": [{"layer": "dense[/x]", "kernel_sparsity": 0.8}],
        },
        "size": {"file_bytes": 100, "file_gzip_bytes": 50, "weights_bytes": 80, "weights_gzip_bytes": 40},
    }
    report = {
        "run": "runs/[/x]credit",
        "threshold": 0.3,
        "stages": {"pruned": stage},
        "quality_bar": {"checks": [{"name": "auc [bold]", "detail": "within [0.005]", "passed": True}]},
        "notes": ["pip install 'edgefin-runtime[litert]'"],
    }
    buf = io.StringIO()
    render(report, Console(file=buf, width=200, color_system=None))
    out = buf.getvalue()
    for text in ("runs/[/x]credit", "dense[/x]", "auc [bold]: within [0.005]", "edgefin-runtime[litert]"):
        assert text in out
