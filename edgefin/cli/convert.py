"""`edgefin convert` and `edgefin inspect`: thin click commands over edgefin.convert and the runtime."""

from __future__ import annotations

import textwrap
from pathlib import Path
from typing import Any

import click
from rich.markup import escape

from ..convert import ConvertOptions, ConvertResult
from .common import config_option, emit_json, handle_errors, output_options, stderr
from .options import apply, convert_options, user_model_flags
from .reporter import RichReporter


def _epilog() -> str:
    """The examples, with the variant list from the registry and the gates from ConvertOptions' defaults."""
    from edgefin_converters.registry import VARIANT_NAMES

    d = ConvertOptions()

    def delta(x: float) -> str:
        return f"{x:.0e}".replace("e-0", "e-")

    variants = textwrap.fill(
        f"{', '.join(VARIANT_NAMES)} (or all).",
        width=90,
        initial_indent="Variants: ",
        subsequent_indent=" " * len("Variants: "),
        break_on_hyphens=False,
    )

    return f"""\b
Examples:
  edgefin convert runs/credit
  edgefin convert runs/credit --variants tflite-int8,onnx-fp32 --out dist/
  edgefin convert runs/credit --stage pruned --no-gate --json
  edgefin convert model.keras --data loans.csv --target default --positive 1
  edgefin convert model.onnx --data loans.csv --target default --run-dir runs/mine
\b
{variants}
Parity gates: float32 max|dp| <= {delta(d.exact_max_delta)}, fp16 <= {delta(d.fp16_max_delta)}; int8 and dynamic-range variants:
AUC drop <= {d.max_auc_drop:g} and at most {d.max_flip_rate:.0%} flipped decisions. A failed gate still writes every bundle
(marked failed) and parity.json, then exits with code 3; --no-gate accepts them.
"""  # noqa: E501 - click prints this \b block line by line as written


@click.command(epilog=_epilog())
@click.argument("source", metavar="RUN_DIR|MODEL", type=click.Path())
@apply("convert")
@config_option
@output_options
@handle_errors
def convert(
    source: str,
    data: str | None,
    target: str | None,
    positive: str | None,
    schema: str | None,
    preprocess: str | None,
    threshold: str,
    raw_features: bool,
    run_dir: str | None,
    as_json: bool,
    quiet: bool,
    **values: object,
) -> None:
    """Convert a run directory's model (or your own MODEL: Keras 3 or tf_keras .keras, .h5, a SavedModel
    directory, an ONNX file) into TFLite/ONNX variants, check each against its source model on held-out
    data, and write one .efb bundle per variant plus parity.json."""
    from edgefin_converters import ParityGateError

    from ..convert import convert_user_model
    from ..errors import UsageError
    from ..ingest import Options as IngestOptions
    from ..ingest import is_saved_model
    from ..steps import convert as step

    opts = convert_options(values)
    step.check(opts)  # an unknown variant fails before TensorFlow loads
    path = Path(source)
    user = {
        "data": data,
        "target": target,
        "positive": positive,
        "schema": schema,
        "preprocess": preprocess,
        "threshold": threshold,
        "raw_features": raw_features,
        "run_dir": run_dir,
    }
    try:
        with RichReporter(quiet) as reporter:
            if path.is_dir() and not is_saved_model(path):
                given = user_model_flags("convert", user)
                if given:
                    raise UsageError(f"{', '.join(given)} apply to a user model, but {path} is a run directory")
                result = step.run(path, opts, reporter)
            elif path.exists():
                if data is None or target is None:
                    raise UsageError(
                        f"{path} is a model: converting your own model needs --data FILE and "
                        f"--target COLUMN (the data is split for calibration, the threshold and parity)"
                    )
                ingest_opts = IngestOptions(
                    data=data,
                    target=target,
                    positive=positive,
                    schema=schema,
                    preprocess=preprocess,
                    raw_features=raw_features,
                    threshold=threshold,
                )
                result = convert_user_model(
                    path,
                    ingest_opts,
                    run_dir=run_dir,
                    options=opts,
                    progress=step.progress_for(reporter),
                    reporter=reporter,
                )
            else:
                raise UsageError(
                    f"{path} does not exist; pass a run directory (from 'edgefin train') or a model "
                    f"(.keras, .h5, SavedModel directory, .onnx)"
                )
    except ParityGateError as exc:
        if exc.result is not None:
            _render(exc.result, as_json, quiet)
        raise
    _render(result, as_json, quiet)


def _render(result: ConvertResult, as_json: bool, quiet: bool) -> None:
    if not quiet:
        _table(result)
    if as_json:
        emit_json(result.to_dict())


def _kb(n: int) -> str:
    return f"{n / 1024:.1f}K"


def _fmt(v: Any, spec: str) -> str:
    return "-" if v is None else format(v, spec)


def _table(result: ConvertResult) -> None:
    from rich import box
    from rich.table import Table

    rows = result.rows()
    stages = sorted({r["source_stage"] for r in rows})
    mixed = len(stages) > 1  # a QAT run: tflite-int8 from qat, the rest from the float model
    table = Table(
        title=escape(f"edgefin convert -> {result.out_dir} (from the {' / '.join(stages)} model)"),
        title_justify="left",
        box=box.SIMPLE_HEAD,
        pad_edge=False,
        collapse_padding=True,
    )
    cols = (
        [("variant", "left")]
        + ([("from", "left")] if mixed else [])
        + [
            ("size", "right"),
            ("gzip", "right"),
            ("AUC", "right"),
            ("dAUC", "right"),
            ("flips", "right"),
            ("max|dp|", "right"),
            ("parity", "left"),
        ]
    )
    for col, just in cols:
        table.add_column(col, justify=just, no_wrap=True)  # type: ignore[arg-type]
    for r in rows:
        cells = (
            [escape(r["variant"])]
            + ([escape(r["source_stage"])] if mixed else [])
            + [
                _kb(r["size"]),
                _kb(r["gzip_size"]),
                _fmt(r["auc"], ".4f"),
                _fmt(r["auc_delta"], "+.4f"),
                _fmt(r["flip_rate"], ".2%"),
                _fmt(r["max_abs_delta"], ".1e"),
                "[green]pass[/]" if r["passed"] else "[red]FAIL[/]",
            ]
        )
        table.add_row(*cells)
    stderr.print(table)
    for note in result.notes:
        stderr.print(f"[yellow]note:[/] {escape(note)}", soft_wrap=True)
    stderr.print(f"parity report: {result.parity_path}", markup=False)
    if not result.passed and not result.gated:
        stderr.print("[yellow]warning:[/] parity gates failed; bundles were written anyway (--no-gate)")


# ---------------------------------------------------------------- inspect
@click.command()
@click.argument("bundle", metavar="BUNDLE", type=click.Path(dir_okay=False))
@click.option("--no-self-test", is_flag=True, help="Only verify the archive and hashes; do not run the model.")
@click.option(
    "--key",
    "keys",
    multiple=True,
    metavar="PUB",
    type=click.Path(dir_okay=False),
    help="Trusted Ed25519 public key file (repeatable): the bundle's signature must verify against one.",
)
@config_option
@output_options
@handle_errors
def inspect(bundle: str, no_self_test: bool, keys: tuple[str, ...], as_json: bool, quiet: bool) -> None:
    """Verify BUNDLE (structure, member hashes, signature with --key, golden self-test) and show its manifest."""
    from edgefin_converters import quiet_native
    from edgefin_runtime import load
    from edgefin_runtime.bundle import read_bundle

    verify = None
    if keys:
        from edgefin_runtime.signing import verifier

        verify = verifier(list(keys))
    b = read_bundle(bundle, verify_signature=verify)
    self_test = None
    if not no_self_test:
        with quiet_native():  # LiteRT announces its CPU delegate on stderr
            predictor = load(bundle, self_test=False, trusted_keys=list(keys) or None)
        self_test = predictor.self_test()
    if as_json:
        emit_json(
            {
                "bundle": {
                    "path": bundle,
                    "sha256": b.sha256,
                    "size": Path(bundle).stat().st_size,
                    "model_size": len(b.model_bytes),
                    "signed": b.signature is not None,
                },
                "verified": True,
                "self_test": self_test,
                "manifest": b.manifest.to_dict(),
            }
        )
    else:
        click.echo(_inspect_text(b, bundle, self_test, signature_checked=verify is not None))


def _inspect_text(b: Any, path: str, self_test: dict[str, Any] | None, *, signature_checked: bool) -> str:
    """The runtime's description of the bundle (``edgefin_runtime.render.info_text``, as ``edgefin-run info``
    prints it), then what the toolkit adds: the checks just made, parity, conversion, each preprocessing step,
    library versions. Plain text: every string may come from the bundle, so none is read as markup."""
    from edgefin_runtime.render import bundle_facts, info_text

    m = b.manifest
    checks = "archive structure, member hashes" + (", signature" if signature_checked else "")
    if self_test:
        checks += (
            f", golden self-test ({self_test['golden']} vectors, max |delta| {self_test['max_abs_delta']:.2e} "
            f"<= {self_test['tolerance']:g} on {self_test['engine']})"
        )
    else:
        checks += " (self-test skipped)"
    lines = [info_text(b, bundle_facts(b, path, signature_checked=signature_checked)), f"verified   {checks}"]
    p = m.parity
    if p:
        lines.append(
            f"parity vs the {p.get('source_stage', '?')} Keras model: {'passed' if p.get('passed') else 'FAILED'}; "
            f"max |dp| {_num(p.get('max_abs_delta'))}, mean {_num(p.get('mean_abs_delta'))}, AUC delta "
            f"{_num(p.get('auc_delta'))}, flip rate {_num(p.get('flip_rate'))} on {p.get('n')} rows"
        )
        lines.extend(f"  - {f}" for f in p.get("failures", []))
    conv = m.producer.get("conversion", {})
    quant = conv.get("quantization", {}) if isinstance(conv, dict) else {}
    details = [str(conv["description"])] if isinstance(conv, dict) and conv.get("description") else []
    for t, kind in ((m.model.inputs[0], "input"), (m.model.outputs[0], "output")):
        if t.quantization:
            details.append(f"{kind} tensor scale {t.quantization.scale:.6g} zero point {t.quantization.zero_point}")
    for key, label in (
        ("input_quantization", "internal input quantisation"),
        ("output_quantization", "internal output quantisation"),
    ):
        if isinstance(quant.get(key), dict):
            details.append(f"{label}: scale {quant[key].get('scale')}, zero point {quant[key].get('zero_point')}")
    if quant.get("int8_weight_tensors"):
        details.append(f"{len(quant['int8_weight_tensors'])} int8 weight tensors")
    if details:
        lines.append("conversion " + "; ".join(details))
    lines.append(f"preprocess {len(m.preprocessing.steps)} steps -> {m.preprocessing.n_features} features")
    if m.source.get("model_preprocessing"):  # a user's model (edgefin.ingest): where preprocessing lives
        lines.append(f"  model preprocessing: {m.source['model_preprocessing']}")
    width = max((len(s.field) for s in m.preprocessing.steps), default=0)
    for s in m.preprocessing.steps:
        if s.kind == "numeric":
            desc = f"(x - {s.mean:.6g}) / {s.scale:.6g}; missing -> {s.fill:.6g}"
            desc += f" + {s.n_bins} piecewise-linear bins" if s.n_bins else ""
            desc += " + indicator" if s.indicator else ""
        else:
            desc = f"{s.encoding} over {len(s.categories)} categories + other; missing -> {s.fill!r}"
        origin = m.source.get("field_preprocessing")  # a user's model: lifted from it, or identity on the raw column
        desc += f" [{origin[s.field]}]" if isinstance(origin, dict) and origin.get(s.field) else ""
        lines.append(f"  {s.field:<{width}}  {desc}")
    lines.append(
        f"source     data sha256 {str(m.source.get('data_sha256') or '?')[:16]}..., model sha256 "
        f"{str(m.source.get('model_sha256') or '?')[:16]}..."
    )
    if m.source.get("source_format"):
        flavour = f", {m.source['keras_flavour']}" if m.source.get("keras_flavour") else ""
        lines.append(
            f"user model {m.source.get('source_file')} ({m.source['source_format']}{flavour}), sha256 "
            f"{str(m.source.get('source_sha256') or '?')[:16]}..."
        )
    libs = m.producer.get("libraries", {})
    if isinstance(libs, dict) and libs:
        lines.append("libraries  " + ", ".join(f"{k} {v}" for k, v in sorted(libs.items())))
    return "\n".join(lines)


def _num(v: Any) -> str:
    if isinstance(v, float):
        return f"{v:.4g}"
    return "-" if v is None else str(v)
