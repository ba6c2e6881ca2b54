"""Library errors name options by their Options field; the CLI shows the running command's flags.

The library tests (test_schema, test_compress_prune, test_augment, ...) assert the field names
(`` `sparsity` ``); these assert that the same errors, printed by the CLI, still say ``--sparsity``.
"""

from __future__ import annotations

import click
import pandas as pd
import pytest
from click.testing import CliRunner

from edgefin.cli.main import cli
from edgefin.cli.options import cli_text
from edgefin.compress.options import Block, CompressOptions
from edgefin.errors import EdgefinError, UsageError, option


def _command(name: str) -> click.Command:
    command = cli.get_command(click.Context(cli), name)
    assert command is not None
    return command


def shown(exc: BaseException, command: str, step: str | None = None) -> str:
    """The message as `edgefin COMMAND` prints it."""
    return cli_text(str(exc), step, click.Context(_command(command), info_name=command))


def raised(fn, *args, **kwargs) -> EdgefinError:
    with pytest.raises(EdgefinError) as err:
        fn(*args, **kwargs)
    assert "--" not in str(err.value), f"a library message names a flag: {err.value}"
    return err.value


def test_option_spells_a_field_and_a_setting() -> None:
    assert option("sparsity") == "`sparsity`"
    assert option("drop", "Id") == "`drop=Id`"
    assert option("qat", False) == "`qat=False`"


def test_schema_errors_show_the_train_flags() -> None:
    from edgefin.data.schema import infer_kinds, resolve_target

    frame = pd.DataFrame({"income": ["1", "2", "unknown"] + [str(i) for i in range(20)], "y": [0, 1] * 11 + [0]})
    text = shown(raised(infer_kinds, frame, target="y", source="m.csv"), "train")
    assert "--na-values 'unknown'" in text and "--categorical income" in text and "`" not in text
    labels = pd.DataFrame({"y": ["bad", "good", "good"]})
    assert "--positive 'ugly' is not a class" in shown(raised(resolve_target, labels, "y", "ugly", "t.csv"), "train")
    assert "with --positive, e.g. --positive bad" in shown(raised(resolve_target, labels, "y", None, "t.csv"), "train")
    both = raised(infer_kinds, frame, target="y", source="m.csv", categorical=["income"], numeric=["income"])
    assert "both --categorical and --numeric" in shown(both, "train")


def test_compress_errors_show_the_compress_flags() -> None:
    assert shown(raised(CompressOptions(sparsity=1.5).validated), "compress").startswith("--sparsity: expected")
    text = shown(raised(CompressOptions(block="2:4", sparsity=0.8).validated), "compress")
    assert text.startswith("--block 2:4 zeroes exactly 2 of every 4") and "leave out --sparsity" in text
    assert shown(raised(Block.parse, "abc"), "compress").startswith("--block: expected")
    text = shown(raised(CompressOptions(epochs=4, end_epoch=6).validated), "compress")
    assert "--end-epoch must be after --begin-epoch (0.0) and at most --epochs (4)" in text
    assert "--qat-epochs must be >= 1" in shown(raised(CompressOptions(qat_epochs=0).validated), "compress")


def test_the_pipeline_shows_a_steps_own_flag() -> None:
    """`epochs` of the compress step is --compress-epochs in `edgefin pipeline`, --epochs in train."""
    exc = raised(CompressOptions(epochs=4, end_epoch=6).validated)
    exc.step = "compress"
    assert "at most --compress-epochs (4)" in shown(exc, "pipeline", "compress")
    assert "--end-epoch must be" in shown(exc, "pipeline", "compress")
    assert shown(UsageError("raise `epochs`"), "pipeline", "train") == "raise --epochs"


def test_switches_show_the_side_that_sets_them() -> None:
    assert shown(UsageError("or use `qat=False`"), "compress") == "or use --no-qat"
    assert shown(UsageError("or `qat=True`"), "compress") == "or --qat"
    assert shown(UsageError("pass `skip_layers=scale`"), "compress") == "pass --skip-layer scale"
    # --no-gate stores gate=False
    assert shown(UsageError("or pass `gate=False` to accept"), "convert") == "or pass --no-gate to accept"


def test_other_library_errors_show_their_commands_flags() -> None:
    from edgefin.bench.profiles import get_profile
    from edgefin.data.augment import augment
    from edgefin.metrics import parse_threshold
    from edgefin.targets.registry import resolve_targets

    assert shown(raised(parse_threshold, "rate:2"), "train").startswith("--threshold rate:R: R is the share")
    assert shown(raised(resolve_targets, "pdp11"), "targets").startswith("--target: unknown target 'pdp11'")
    assert "--profiles" in shown(raised(get_profile, "nope"), "bench")
    frame = pd.DataFrame({"a": [1.0, 2.0]})
    assert shown(raised(augment, frame, pd.Series([0, 1]), method="mixup", schema=None, seed=1), "train").startswith(
        "--augment: expected"
    )


def test_bench_constraint_errors_show_the_bench_flags() -> None:
    from edgefin.bench.recommend import Constraints

    assert shown(raised(Constraints, max_latency_us=-1), "bench").startswith("--max-latency-us: expected a number")
    text = shown(raised(Constraints, latency_percentile="p90"), "bench")
    assert text.startswith("--latency-percentile: expected one of")


def test_converter_gate_error_shows_no_gate() -> None:
    from edgefin_converters.errors import ParityGateError

    exc = ParityGateError(["onnx-int8: flip rate 2% > 1%"])
    assert "pass --no-gate to accept them anyway" in shown(exc, "convert")


def test_unknown_names_and_plain_backticks_are_left_alone() -> None:
    assert shown(UsageError("column `income` and `not_an_option`"), "train") == "column `income` and `not_an_option`"
    assert shown(UsageError("no option here [x]"), "train") == "no option here [x]"


def test_the_cli_prints_flags_end_to_end(tmp_path) -> None:
    """A real command: the library raises with field names, stderr shows flags, brackets intact."""
    runner = CliRunner()
    (tmp_path / "run").mkdir()
    res = runner.invoke(cli, ["compress", str(tmp_path / "run"), "--block", "2:4", "--sparsity", "0.8"])
    assert res.exit_code == 2, res.output
    assert "--block 2:4 zeroes exactly" in res.output and "leave out --sparsity" in res.output
    assert "`" not in res.output
    data = tmp_path / "d.csv"
    data.write_text("a,y\n" + "".join(f"{i},{i % 2}\n" for i in range(40)))
    res = runner.invoke(
        cli,
        [
            "pipeline",
            str(data),
            "--target",
            "y",
            "--compress-epochs",
            "4",
            "--end-epoch",
            "6",
            "--out",
            str(tmp_path / "p"),
        ],
    )
    assert res.exit_code == 2, res.output
    assert "--end-epoch must be after --begin-epoch (0.0) and at most --compress-epochs (4)" in res.output
