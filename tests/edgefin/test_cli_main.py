"""The top-level CLI: instant help without TensorFlow, version, exit codes, config defaults."""

from __future__ import annotations

import subprocess
import sys

import click
from click.testing import CliRunner

from edgefin import __version__
from edgefin.cli.common import config_option
from edgefin.cli.main import COMMANDS, cli


def test_help_lists_every_command_and_loads_no_tensorflow():
    code = (
        "import sys; from edgefin.cli.main import main; sys.argv=['edgefin','--help'];\n"
        "try:\n    main()\nexcept SystemExit: pass\n"
        "assert 'tensorflow' not in sys.modules, 'help imported TF'"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    for name in COMMANDS:
        assert name in out.stdout


def test_version():
    res = CliRunner().invoke(cli, ["--version"])
    assert res.exit_code == 0 and __version__ in res.output


def test_unknown_command_is_usage_error():
    res = CliRunner().invoke(cli, ["frobnicate"])
    assert res.exit_code == 2


def test_config_file_gives_defaults_and_flags_win(tmp_path):
    @click.command(name="demo-cmd")
    @config_option
    @click.option("--seed", type=int, default=0)
    @click.option("--name", default="x")
    def cmd(seed: int, name: str) -> None:
        click.echo(f"{seed} {name}")

    cfg = tmp_path / "c.toml"
    cfg.write_text('seed = 7\n[demo-cmd]\nname = "fromfile"\n')
    r = CliRunner().invoke(cmd, ["--config", str(cfg)])
    assert r.output.strip() == "7 fromfile"
    r = CliRunner().invoke(cmd, ["--config", str(cfg), "--seed", "3"])
    assert r.output.strip() == "3 fromfile"
    cfg.write_text("sede = 7\n")
    r = CliRunner().invoke(cmd, ["--config", str(cfg)])
    assert r.exit_code == 2 and "unknown option 'sede'" in r.output


def test_exit_codes_are_mapped_in_one_place():
    from edgefin_converters.errors import ParityGateError, UnsupportedOpError
    from edgefin_runtime.errors import BundleFormatError, MissingFieldError, SelfTestError

    from edgefin.cli.exit_codes import ExitStatus, exit_status_for
    from edgefin.errors import DataError, ModelError, QualityGateError, UsageError

    assert exit_status_for(UsageError("x")) == ExitStatus.USAGE == 2
    assert exit_status_for(DataError("x")) == ExitStatus.USAGE
    assert exit_status_for(BundleFormatError("x")) == ExitStatus.USAGE
    assert exit_status_for(MissingFieldError("x", field="Age")) == ExitStatus.USAGE
    assert exit_status_for(UnsupportedOpError("x", target="tflite", op="StringSplit")) == ExitStatus.USAGE
    assert exit_status_for(QualityGateError("x")) == ExitStatus.GATE_FAILED == 3
    assert exit_status_for(ParityGateError(["onnx-int8: flip rate 2% > 1%"])) == ExitStatus.GATE_FAILED
    assert exit_status_for(SelfTestError("x")) == ExitStatus.GATE_FAILED  # as in edgefin-run
    assert exit_status_for(ModelError("x")) == ExitStatus.FAILURE == 1
    assert exit_status_for(RuntimeError("x")) == ExitStatus.FAILURE
