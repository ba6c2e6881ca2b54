"""Every flag of the step commands, and the one mapping from flags to the steps' typed options.

Each step has one tuple of :class:`Flag` specs. The single commands (`edgefin train`, `compress`,
`convert`, `bench`) are decorated with them (:func:`apply`), `edgefin pipeline` is generated from the
same specs (:func:`pipeline_params`), and the values of either become a step's ``Options`` through
:func:`train_options`, :func:`compress_options`, :func:`convert_options` and :func:`bench_options`.
A flag's destination is the ``Options`` field it sets; its default is that field's default, so a
default lives in one place (the dataclass). Config files (``--config``) may name an option by its flag
(``skip-layer``, ``max-delta``, ``no-gate``) or by its field (``skip_layers``): :func:`config_keys`.
"""

from __future__ import annotations

import dataclasses
import functools
import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

import click

from ..compress.options import DEFAULT_SPARSITY, CompressOptions
from ..convert import ConvertOptions
from ..errors import UsageError
from ..steps import bench as bench_step
from ..steps import compress as compress_step
from ..steps import report as report_step
from ..steps import train as train_step
from ..steps.train import TrainOptions

if TYPE_CHECKING:
    from ..pipeline import PipelineOptions

F = TypeVar("F", bound=Callable[..., Any])

STEP = "step"  # an option of the step: the single command and the pipeline
COMMAND = "command"  # only the single command (its --out, its --gate)
USER_MODEL = "user-model"  # only for a user's own MODEL.keras: never in the pipeline


@dataclass(frozen=True)
class Flag:
    """One command-line option: its flags, the Options field (or command parameter) it sets, click's settings."""

    flags: str  # "--epochs", "--qat/--no-qat"
    dest: str  # the Options field it sets ("skip_layers" for --skip-layer)
    help: str = ""
    scope: str = STEP
    kw: Mapping[str, Any] = field(default_factory=dict)  # type, default, multiple, is_flag, show_default, ...

    def option(self, defaults: Mapping[str, object]) -> click.Option:
        kw = dict(self.kw)
        if "default" not in kw and self.dest in defaults:
            kw["default"] = defaults[self.dest]
        return click.Option([self.flags, self.dest], help=self.help or None, **kw)


def flag(flags: str, dest: str, help: str = "", scope: str = STEP, **kw: object) -> Flag:
    return Flag(flags, dest, help, scope, kw)


def field_defaults(cls: type) -> dict[str, object]:
    """A dataclass's field defaults by name (fields without one are left out)."""
    out: dict[str, object] = {}
    for f in dataclasses.fields(cls):
        if f.default is not dataclasses.MISSING:
            out[f.name] = f.default
        elif f.default_factory is not dataclasses.MISSING:
            out[f.name] = f.default_factory()
    return out


# ---------------------------------------------------------------- click types
class HiddenSizes(click.ParamType):
    name = "SIZES"

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> tuple[int, ...]:
        from ..train import parse_hidden

        try:
            return parse_hidden(value)
        except ValueError as exc:
            self.fail(str(exc), param, ctx)


class Threshold(click.ParamType):
    name = "max-ks|P|rate:R"

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> str:
        from ..metrics import parse_threshold

        try:
            parse_threshold(value)
        except UsageError as exc:
            self.fail(str(exc).removeprefix("`threshold`: "), param, ctx)
        return str(value)


class Bins(click.ParamType):
    name = "auto|N"

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> int | str:
        from ..data.preprocessing import check_bins

        try:
            return check_bins(value)
        except ValueError as exc:
            self.fail(str(exc), param, ctx)


def _share() -> click.FloatRange:
    return click.FloatRange(0, 1, min_open=True, max_open=True)


# ---------------------------------------------------------------- the specs
TRAIN_DEFAULTS = {**field_defaults(TrainOptions), "hidden": ",".join(map(str, TrainOptions.hidden))}
TRAIN: tuple[Flag, ...] = (
    flag("--target", "target", "Column to predict (two classes).", required=True),
    flag("--positive", "positive", "Target value of the positive (risk) class; default 1 / true."),
    flag("--drop", "drop", "Leave a column out (repeatable).", multiple=True, metavar="COL"),
    flag("--categorical", "categorical", "Treat a column as categorical (repeatable).", multiple=True, metavar="COL"),
    flag("--numeric", "numeric", "Treat a column as numeric (repeatable).", multiple=True, metavar="COL"),
    flag(
        "--protected",
        "protected",
        "A protected attribute (repeatable): never given as a reason code; convert reads it from the run.",
        multiple=True,
        metavar="COL",
    ),
    flag(
        "--na-values", "na_values", "Extra text that means missing in CSV (repeatable).", multiple=True, metavar="TEXT"
    ),
    flag(
        "--test-data",
        "test_data",
        "Evaluate on this file instead of a held-out share of DATA.",
        type=click.Path(dir_okay=False),
    ),
    flag(
        "--validation-data",
        "validation_data",
        "Early-stop and pick the threshold on this file instead of a share of DATA.",
        type=click.Path(dir_okay=False),
    ),
    flag(
        "--test-size",
        "test_size",
        "Share of DATA held out for testing (without --test-data).",
        type=_share(),
        show_default=True,
    ),
    flag(
        "--validation-size",
        "validation_size",
        "Share of DATA for early stopping and the threshold (without --validation-data).",
        type=_share(),
        show_default=True,
    ),
    flag("--seed", "seed", "Seed for the split and the model.", type=int, show_default=True),
    flag("--hidden", "hidden", "Hidden layer sizes.", type=HiddenSizes(), show_default=True),
    flag(
        "--dropout",
        "dropout",
        "Dropout after each hidden layer.",
        type=click.FloatRange(0, 1, max_open=True),
        show_default=True,
    ),
    flag("--l2", "l2", "L2 weight penalty.", type=click.FloatRange(min=0), show_default=True),
    flag(
        "--learning-rate",
        "learning_rate",
        "Adam learning rate.",
        type=click.FloatRange(min=0, min_open=True),
        show_default=True,
    ),
    flag("--batch-size", "batch_size", "Rows per step.", type=click.IntRange(min=1), show_default=True),
    flag("--epochs", "epochs", "At most this many epochs.", type=click.IntRange(min=1), show_default=True),
    flag(
        "--patience",
        "patience",
        "Stop after this many epochs without a better validation AUC (best weights are kept).",
        type=click.IntRange(min=1),
        show_default=True,
    ),
    flag(
        "--class-weight/--no-class-weight",
        "class_weight",
        "Weight classes inversely to their frequency.",
        show_default=True,
    ),
    flag(
        "--linear/--no-linear",
        "linear",
        "A linear path from the inputs to the output, with the logistic regression blended in as validation prefers.",
        show_default=True,
    ),
    flag(
        "--encoding",
        "encoding",
        "How categories become features.",
        type=click.Choice(["onehot", "index"]),
        show_default=True,
    ),
    flag(
        "--bins",
        "bins",
        "Piecewise-linear bins per numeric column, between training quantiles (lets the dense "
        "model learn sharp thresholds, at ~1.6x the scoring time); 0 = standardise only; auto = train both ways "
        "and keep bins only if they win on validation AUC.",
        type=Bins(),
        show_default=True,
    ),
    flag(
        "--threshold",
        "threshold",
        "Decision threshold: max-ks (on validation), a probability like 0.35, or rate:0.2 (flag 20%).",
        type=Threshold(),
        show_default=True,
    ),
    flag(
        "--augment",
        "augment",
        "Oversample the minority class in the raw training split (after preprocessing "
        "is fitted; validation and test rows are never augmented).",
        type=click.Choice(["none", "smote", "jitter", "smote+jitter"]),
        show_default=True,
    ),
    flag("--out", "out", "Run directory to write.", COMMAND, required=True, type=click.Path(file_okay=False)),
)

# how a user's own model reads its data (the compress and convert commands both take them)
USER_COLUMNS: tuple[Flag, ...] = (
    flag(
        "--schema",
        "schema",
        "User model only: an edgefin schema.json (preprocess.json beside it, or --preprocess).",
        USER_MODEL,
        type=click.Path(dir_okay=False),
    ),
    flag(
        "--preprocess",
        "preprocess",
        "User model only: the edgefin preprocess.json that goes with --schema.",
        USER_MODEL,
        type=click.Path(dir_okay=False),
    ),
    flag(
        "--raw-features",
        "raw_features",
        "User model only (without --schema): leave non-numeric columns out; the model takes the numeric ones.",
        USER_MODEL,
        is_flag=True,
    ),
)

COMPRESS_DEFAULTS = {**field_defaults(CompressOptions), **field_defaults(compress_step.Options)}
COMPRESS: tuple[Flag, ...] = (
    flag(
        "--sparsity",
        "sparsity",
        f"Share of each pruned kernel's weights to zero, in (0, 1).  [default: {DEFAULT_SPARSITY}]",
        type=_share(),
    ),
    flag(
        "--block",
        "block",
        "Sparsity pattern: 1x1 (unstructured), RxC blocks such as 1x4, or 2:4 (structured, 50%).",
        show_default=True,
    ),
    flag(
        "--skip-layer",
        "skip_layers",
        "Leave this layer unpruned and unquantised (repeatable). The output layer "
        "is never pruned unless --prune-output.",
        multiple=True,
        metavar="NAME",
    ),
    flag("--prune-output", "prune_output", "Prune the output layer too.", is_flag=True),
    flag(
        "--epochs",
        "epochs",
        "Pruning fine-tuning epochs (the ramp ends at 60% of them unless --end-epoch).",
        type=click.IntRange(min=1),
        show_default=True,
    ),
    flag(
        "--begin-epoch",
        "begin_epoch",
        "Epoch at which pruning starts.",
        type=click.FloatRange(min=0),
        show_default=True,
    ),
    flag(
        "--end-epoch",
        "end_epoch",
        "Epoch at which the target sparsity is reached.",
        type=click.FloatRange(min=0, min_open=True),
    ),
    flag(
        "--begin-step",
        "begin_step",
        "Optimizer step at which pruning starts (overrides --begin-epoch).",
        type=click.IntRange(min=0),
    ),
    flag(
        "--end-step",
        "end_step",
        "Optimizer step at which the target is reached (overrides --end-epoch).",
        type=click.IntRange(min=1),
    ),
    flag(
        "--frequency",
        "frequency",
        "Prune every N optimizer steps.  [default: a quarter epoch]",
        type=click.IntRange(min=1),
    ),
    flag(
        "--learning-rate",
        "learning_rate",
        "Adam learning rate while pruning.",
        type=click.FloatRange(min=0, min_open=True),
        show_default=True,
    ),
    flag(
        "--qat/--no-qat",
        "qat",
        "Quantisation-aware fine-tuning after pruning (PQAT: keeps the zeros).",
        show_default=True,
    ),
    flag("--qat-epochs", "qat_epochs", type=click.IntRange(min=1), show_default=True),
    flag("--qat-learning-rate", "qat_learning_rate", type=click.FloatRange(min=0, min_open=True), show_default=True),
    flag(
        "--cluster",
        "cluster",
        "Cluster each kernel to N distinct values after pruning (0: off); QAT then keeps them (CQAT).",
        type=click.IntRange(min=0, max=256),
        show_default=True,
        metavar="N",
    ),
    flag("--cluster-epochs", "cluster_epochs", type=click.IntRange(min=1), show_default=True),
    flag(
        "--cluster-learning-rate",
        "cluster_learning_rate",
        type=click.FloatRange(min=0, min_open=True),
        show_default=True,
    ),
    flag(
        "--batch-size",
        "batch_size",
        "Fine-tuning batch size.  [default: as the model was trained]",
        type=click.IntRange(min=1),
    ),
    flag(
        "--class-weight/--no-class-weight",
        "class_weight",
        "Weight classes in fine-tuning.  [default: as the model was trained]",
    ),
    flag("--seed", "seed", "Fine-tuning seed.  [default: the run's seed]", type=int),
    flag(
        "--gate", "gate", "Exit with 3 when the quality bar is missed (compress.json is still written).", is_flag=True
    ),
    flag(
        "--data",
        "data",
        "User model only: labelled CSV/Parquet data to split, calibrate and fine-tune with.",
        USER_MODEL,
        type=click.Path(dir_okay=False),
    ),
    flag("--target", "target", "User model only: the column to predict.", USER_MODEL),
    flag("--positive", "positive", "User model only: target value of the positive (risk) class.", USER_MODEL),
    flag("--out", "out", "User model only: the run directory to create.", USER_MODEL, type=click.Path(file_okay=False)),
    *USER_COLUMNS,
)

CONVERT_DEFAULTS = field_defaults(ConvertOptions)
CONVERT: tuple[Flag, ...] = (
    flag("--variants", "variants", "Variants to build, comma-separated.", show_default=True, metavar="all|NAME,NAME"),
    flag(
        "--stage",
        "stage",
        "Model stage of the run to convert (default: the last one: qat, else pruned, else dense).",
        type=click.Choice(["dense", "pruned", "qat"]),
    ),
    flag(
        "--out",
        "out",
        "Folder for the bundles and parity.json (default: RUN_DIR/bundles, or MODEL-bundles/).",
        COMMAND,
        type=click.Path(file_okay=False),
    ),
    flag(
        "--no-gate", "gate", "Write the bundles and exit 0 even if a parity gate fails.", is_flag=True, flag_value=False
    ),
    flag("--opset", "opset", "ONNX opset.", type=click.IntRange(13, 21), show_default=True),
    flag("--int8-io", "int8_io", "Full-int8 TFLite variants take and return int8 tensors too.", is_flag=True),
    flag(
        "--protected",
        "protected",
        "A field never given as a reason code (repeatable; added to those given at train).",
        multiple=True,
        metavar="COL",
    ),
    flag(
        "--reasons",
        "reasons",
        "TOML file of reason texts: a [FIELD] table with higher/lower/missing/category texts.",
        type=click.Path(dir_okay=False),
    ),
    flag(
        "--explain-method",
        "explain_method",
        "The bundles' default reason-code method: auto (stratified, exact for <= 5 differing fields), exact "
        "(all coalitions: slow, exact), paired (fast, exact without 3-way interactions), stratified "
        "(k^2 + k + 1 rows, exact without 5-way interactions), sampled.",
        type=click.Choice(["auto", "exact", "paired", "stratified", "sampled"]),
        show_default=True,
    ),
    flag(
        "--per-channel",
        "per_channel",
        "Static int8 variants quantise weights per output unit (default: per tensor, smaller).",
        is_flag=True,
    ),
    flag(
        "--calibration-rows",
        "calibration_rows",
        "Training rows used to calibrate static int8 quantisation.",
        type=click.IntRange(min=1),
        show_default=True,
    ),
    flag(
        "--no-repair",
        "repair",
        "Do not repair a post-training int8 variant that fails its gate (default: try "
        "per-channel weights, more calibration rows, then keep the fewest sensitive layers in float).",
        is_flag=True,
        flag_value=False,
    ),
    flag(
        "--max-auc-drop",
        "max_auc_drop",
        "Gate for int8/dynamic variants: largest allowed AUC drop.",
        type=click.FloatRange(min=0),
        show_default=True,
    ),
    flag(
        "--max-flip-rate",
        "max_flip_rate",
        "Gate for int8/dynamic variants: largest allowed share of flipped decisions.",
        type=click.FloatRange(0, 1),
        show_default=True,
    ),
    flag(
        "--max-delta",
        "exact_max_delta",
        "Gate for float32 variants: largest allowed |delta p| against the source model.",
        type=click.FloatRange(min=0),
        show_default=True,
    ),
    flag(
        "--max-fp16-delta",
        "fp16_max_delta",
        "Gate for tflite-fp16: largest allowed |delta p| against the source model.",
        type=click.FloatRange(min=0),
        show_default=True,
    ),
    flag(
        "--data",
        "data",
        "User model only: CSV/Parquet data for calibration and parity.",
        USER_MODEL,
        type=click.Path(dir_okay=False),
    ),
    flag("--target", "target", "User model only: the target column of --data.", USER_MODEL),
    flag("--positive", "positive", "User model only: the positive (risk) class of --target.", USER_MODEL),
    *USER_COLUMNS,
    flag(
        "--threshold",
        "threshold",
        "User model only: decision threshold: max-ks (on the validation split), a probability, or rate:R.",
        USER_MODEL,
        default="max-ks",
        show_default=True,
    ),
    flag(
        "--run-dir",
        "run_dir",
        "User model only: the run directory ingest writes (default: MODEL-run beside the model).",
        USER_MODEL,
        type=click.Path(file_okay=False),
    ),
)

# device results merged into the report (bench and report take them alike)
DEVICES: tuple[Flag, ...] = (
    flag(
        "--device",
        "devices",
        "Device results from `edgefin-run bench --output` to merge into the report (repeatable).",
        multiple=True,
        metavar="FILE.json",
        type=click.Path(dir_okay=False),
    ),
    flag(
        "--for-device",
        "for_device",
        "Recommend from this device's figures (a device name in the --device files); budgets apply to them.",
        metavar="NAME",
    ),
)

BENCH_DEFAULTS = field_defaults(bench_step.Options)
BENCH: tuple[Flag, ...] = (
    flag(
        "--profile",
        "profile",
        "Hardware profile: kiosk-1core, teller-2core, unconstrained, or one from --profiles.",
        show_default=True,
    ),
    flag(
        "--profiles",
        "profiles_file",
        "TOML file with [profiles.NAME] tables (cores, threads, memory_mib).",
        type=click.Path(dir_okay=False),
    ),
    flag("--variants", "variants", "Comma-separated bundle names under RUN_DIR/bundles to measure.", show_default=True),
    flag(
        "--max-latency-us", "max_latency_us", "Constraint: single-record latency (at --latency-percentile).", type=float
    ),
    flag("--max-size-kb", "max_size_kb", "Constraint: bundle size in KiB (1,024 bytes).", type=float),
    flag("--max-auc-drop", "max_auc_drop", "Constraint: test AUC below the dense Keras model.", type=float),
    flag(
        "--latency-percentile",
        "latency_percentile",
        "Which latency percentile --max-latency-us limits.",
        type=click.Choice(["p50", "p95", "p99"]),
        show_default=True,
    ),
    flag(
        "--repeat",
        "repeat",
        "Repetition preset: warm-up, timed blocks, throughput time.",
        type=click.Choice(["quick", "default", "thorough"]),
        show_default=True,
    ),
    flag(
        "--keras/--no-keras",
        "keras",
        "Also time the source Keras model (model(x), model.predict) for the ratios.",
        show_default=True,
    ),
    flag(
        "--slice",
        "slices",
        "Report AUC, KS, approval and every variant's flip rate per value (or quantile band) of this "
        "test-split column (repeatable).",
        multiple=True,
        metavar="COL",
    ),
    flag(
        "--explain/--no-explain",
        "explain",
        "Validate the bundles' reason codes against exact Shapley values of the float model; "
        "permutation importance and PDP/ICE plots.",
        show_default=True,
    ),
    *DEVICES,
    flag("--out", "out", "Report folder [default: RUN_DIR/report].", COMMAND, type=click.Path(file_okay=False)),
)

REPORT_DEFAULTS = field_defaults(report_step.Options)
REPORT: tuple[Flag, ...] = (
    flag(
        "--slice",
        "slices",
        "Recompute the slices of this test-split column into report.json before rendering (repeatable).",
        multiple=True,
        metavar="COL",
    ),
    *DEVICES,
)

SPECS: dict[str, tuple[tuple[Flag, ...], Mapping[str, object]]] = {
    "train": (TRAIN, TRAIN_DEFAULTS),
    "compress": (COMPRESS, COMPRESS_DEFAULTS),
    "convert": (CONVERT, CONVERT_DEFAULTS),
    "bench": (BENCH, BENCH_DEFAULTS),
    "report": (REPORT, REPORT_DEFAULTS),
}


def apply(step: str) -> Callable[[F], F]:
    """Decorate a click command with every flag of ``step``, in spec order."""
    flags, defaults = SPECS[step]

    def deco(f: F) -> F:
        params = [fl.option(defaults) for fl in flags]
        f.__click_params__ = getattr(f, "__click_params__", []) + list(reversed(params))  # type: ignore[attr-defined]
        return f

    return deco


# ---------------------------------------------------------------- values -> typed options
def _fields(cls: type, values: Mapping[str, object]) -> dict[str, Any]:
    """The values that set a field of ``cls`` (None = not given: the field's default); lists -> tuples."""
    names = {f.name for f in dataclasses.fields(cls)}
    return {k: tuple(v) if isinstance(v, list) else v for k, v in values.items() if k in names and v is not None}


def train_options(values: Mapping[str, object], data: str | None) -> train_step.Options:
    """The train step's options from the train flags' values and the data file."""
    if values.get("target") is None:
        raise UsageError("training needs --target (the column to predict)")
    return train_step.Options(
        training=TrainOptions(**_fields(TrainOptions, values)), data=None if data is None else str(data)
    )


def compress_options(values: Mapping[str, object]) -> compress_step.Options:
    """The compress step's options (validated: bad values are usage errors) from the compress flags' values."""
    from ..compress.run import make_options

    return compress_step.Options(
        compression=make_options(**_fields(CompressOptions, values)), gate=bool(values.get("gate", False))
    )


def convert_options(values: Mapping[str, object]) -> ConvertOptions:
    """ConvertOptions from the convert flags' values."""
    return ConvertOptions(**_fields(ConvertOptions, values))


def bench_options(values: Mapping[str, object]) -> bench_step.Options:
    """The bench step's options from the bench flags' values."""
    return bench_step.Options(**_fields(bench_step.Options, values))


def user_model_flags(step: str, values: Mapping[str, object]) -> list[str]:
    """The user-model-only flags of ``step`` that were given (not at their defaults)."""
    return [
        fl.flags
        for fl in SPECS[step][0]
        if fl.scope == USER_MODEL and values.get(fl.dest) not in (None, False, fl.kw.get("default"))
    ]


# ---------------------------------------------------------------- option names in library messages
OPTION_REF = re.compile(r"`([a-z][a-z0-9_]*)(?:=([^`\n]*))?`")


def _spelling(p: click.Option, value: str | None) -> str:
    """How the command line says ``field`` (value None) or ``field=value`` with the option ``p``."""
    primary = p.opts[-1] if p.opts else p.name or ""
    if value is None:
        return primary
    if p.is_flag:
        if p.secondary_opts:
            return primary if value == "True" else p.secondary_opts[-1]
        return primary if value == str(p.flag_value) else f"without {primary}"
    return f"{primary} {value}"


def _param_for(field: str, params: Iterable[click.Parameter], step: str | None) -> click.Option | None:
    options = [p for p in params if isinstance(p, click.Option) and p.name]
    for name in ([f"{step}{SEP}{field}"] if step else []) + [field]:
        for p in options:
            if p.name == name:
                return p
    for p in options:  # the pipeline, step unknown: the first step that has the field
        if (p.name or "").partition(SEP)[2] == field:
            return p
    return None


@functools.cache
def _spec_params() -> tuple[click.Option, ...]:
    """Every single command's options (for a name the running command does not have)."""
    return tuple(fl.option(defaults) for flags, defaults in SPECS.values() for fl in flags)


def cli_text(message: str, step: str | None = None, ctx: click.Context | None = None) -> str:
    """A library message with every option named as the running command's flag.

    The library writes `` `sparsity` `` or `` `drop=Id` `` (:func:`edgefin.errors.option`); this shows
    ``--sparsity`` or ``--drop Id`` - ``--compress-epochs`` for the compress step's `` `epochs` `` in
    ``edgefin pipeline`` (``step`` says which step raised it). Names no option has are left as written.
    """
    if "`" not in message:
        return message
    ctx = ctx or click.get_current_context(silent=True)
    command = ctx.command if ctx is not None else None
    params = list(command.params) if command is not None else []

    def spell(m: re.Match[str]) -> str:
        field = m.group(1)
        p = _param_for(field, params, step) or _param_for(field, _spec_params(), None)
        return _spelling(p, m.group(2)) if p is not None else m.group(0)

    return OPTION_REF.sub(spell, message)


# ---------------------------------------------------------------- config files
Keys = dict[str, tuple[str, Callable[[object], object]]]  # config key -> (parameter name, value transform)


def _keys(out: Keys, opts: Iterable[str], name: str, inverted: bool) -> None:
    out.setdefault(name, (name, _same))
    for opt in opts:
        if opt.startswith("--"):
            out.setdefault(opt[2:].replace("-", "_"), (name, _negate if inverted else _same))


def config_keys(params: Iterable[click.Parameter]) -> Keys:
    """Config-file keys (dashes as underscores) of a command's options.

    A key is an option's long flag (``skip_layer``, ``max_delta``, ``no_gate``) or its parameter name
    (``skip_layers``); a one-sided flag that stores False (``--no-gate``) turns ``true`` into False.
    """
    out: Keys = {}
    for p in params:
        if isinstance(p, click.Option) and p.name:
            _keys(out, p.opts, p.name, p.is_flag and not p.secondary_opts and p.flag_value is False)
    return out


def step_keys(step: str, prefix: str = "") -> Keys:
    """Config-file keys of a step's pipeline options (its single command's flags), to ``prefix + dest``."""
    out: Keys = {}
    for fl in SPECS[step][0]:
        if fl.scope == STEP:
            _keys(out, [fl.flags.partition("/")[0]], prefix + fl.dest, fl.kw.get("flag_value", True) is False)
            out.setdefault(fl.dest, (prefix + fl.dest, _same))
    return out


def _same(v: object) -> object:
    return v


def _negate(v: object) -> object:
    return not v if isinstance(v, bool) else v


def config_defaults(keys: Keys, table: Mapping[str, object], where: str, multiple: set[str]) -> dict[str, object]:
    """Click defaults (``ctx.default_map``) from a config table; UsageError naming an unknown key."""
    out: dict[str, object] = {}
    for key, value in table.items():
        k = key.replace("-", "_")
        if k not in keys:
            known = sorted({n.rpartition(SEP)[2] for n, _ in keys.values()})
            raise UsageError(f"{where}: unknown option '{key}' (known: {', '.join(known)})")
        name, transform = keys[k]
        value = transform(value)
        if name in multiple and isinstance(value, str):
            value = [value]  # `drop = "Id"` means one value for a repeatable option
        out[name] = value
    return out


# ---------------------------------------------------------------- the pipeline's options
SEP = "__"
PIPELINE_STEPS = ("train", "compress", "convert", "bench")
# a flag two steps share goes to this step; the other gets the --STEP- prefix
PREFER = {"--max-auc-drop": "bench", "--variants": "convert"}
PIPELINE_OWN = {"--out", "--json", "-q", "--quiet", "--config", "--force", "--no-compress", "-h", "--help"}


def pipeline_params() -> list[click.Option]:
    """The step options of `edgefin pipeline`: every step's flags except command-only and user-model ones,
    under their own names unless taken (then ``--STEP-NAME``); each lands in ``STEP__dest``."""
    taken = set(PIPELINE_OWN)
    out: list[click.Option] = []
    for step in PIPELINE_STEPS:
        flags, defaults = SPECS[step]
        for fl in flags:
            if fl.scope != STEP:
                continue
            out.append(_pipeline_option(step, fl, defaults, taken))
    return out


def _pipeline_option(step: str, fl: Flag, defaults: Mapping[str, object], taken: set[str]) -> click.Option:
    primary, _, secondary = fl.flags.partition("/")
    names = [primary, *([secondary] if secondary else [])]
    if any(n in taken or PREFER.get(n, step) != step for n in names):
        names = [f"--no-{step}-{n[5:]}" if n.startswith("--no-") else f"--{step}-{n[2:]}" for n in names]
    taken.update(names)
    kw = {k: v for k, v in fl.kw.items() if k != "required"}  # the pipeline says what is missing itself
    if "default" not in kw and fl.dest in defaults:
        kw["default"] = defaults[fl.dest]
    return click.Option(["/".join(names), f"{step}{SEP}{fl.dest}"], help=f"[{step}] {fl.help}".strip(), **kw)


def route(values: Mapping[str, object]) -> dict[str, dict[str, object]]:
    """The pipeline command's ``STEP__dest`` values split per step."""
    out: dict[str, dict[str, object]] = {s: {} for s in PIPELINE_STEPS}
    for name, v in values.items():
        step, _, key = name.partition(SEP)
        if key and step in out:
            out[step][key] = v
    return out


def pipeline_options(
    data: str | Path | None, routed: Mapping[str, Mapping[str, object]], *, no_compress: bool = False
) -> PipelineOptions:
    """PipelineOptions from the pipeline command's values, routed per step."""
    from ..pipeline import PipelineOptions, raised_by

    with raised_by("train"):
        train = train_options(routed["train"], None if data is None else str(data))
    with raised_by("compress"):
        compress = None if no_compress else compress_options(routed["compress"])
    with raised_by("convert"):
        convert = convert_options(routed["convert"])
    with raised_by("bench"):
        bench = bench_options(routed["bench"])
    return PipelineOptions(train=train, compress=compress, convert=convert, bench=bench)


__all__ = [
    "Flag",
    "SPECS",
    "apply",
    "train_options",
    "compress_options",
    "convert_options",
    "bench_options",
    "config_keys",
    "config_defaults",
    "pipeline_params",
    "pipeline_options",
    "route",
    "cli_text",
]
