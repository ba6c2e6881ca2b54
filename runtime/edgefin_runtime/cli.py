"""``edgefin-run``: inspect, verify and score edgefin bundles on a device.

    edgefin-run info BUNDLE [--json]
    edgefin-run verify BUNDLE [--json] [--backend B] [--require-signature --key PUB]
    edgefin-run score BUNDLE [INPUT] [--input-format csv|jsonl] [--output PATH] [--output-format jsonl|csv]
                      [--strict] [--policy lenient|strict] [--batch-size N] [--key PUB ...]

argparse only (no click): the device install stays numpy + one engine. Exit codes, decided in one
place (:func:`exit_code_for`):

    0  ok
    1  failure: the engine is missing, cannot load the model or failed while scoring; an internal error
    2  usage or input: bad options, unreadable input, a rejected row under --strict, or a bundle that
       is invalid (not a bundle, damaged, tampered, unsigned when a key is required, too new)
    3  self-test failed: the bundle is intact but its model does not reproduce its golden scores on
       this engine, or ``verify`` found its acceptance set outside the gates (a quality gate, like the
       toolkit's exit code 3) - do not deploy it

Exceptions never escape as tracebacks (set EDGEFIN_DEBUG=1 to see one for an internal error).
"""

from __future__ import annotations

import argparse
import contextlib
import importlib
import json
import os
import sys
import time
import traceback
from collections.abc import Iterator, Sequence
from typing import Any

from .errors import BenchResultsError, BundleError, EdgefinRuntimeError, InputError, SelfTestError
from .version import __version__

OK, FAILURE, USAGE, SELF_TEST = 0, 1, 2, 3

# Subcommands that live in their own modules: name -> module (relative to this package). Each module
# defines ``HELP: str``, ``add_arguments(parser, common)`` (``common(parser, engine=True)`` adds BUNDLE,
# --key, --require-signature and, with engine, --backend/--threads) and ``run(args) -> int``. Modules
# must import only argparse-level things at import time: heavy imports belong inside ``run``.
COMMAND_MODULES: dict[str, str] = {"serve": "cli_serve", "drift": "cli_drift", "bench": "cli_bench"}


class StrictStop(Exception):
    """--strict met a rejected row."""

    def __init__(self, row: int, error: InputError) -> None:
        self.row, self.error = row, error
        super().__init__(f"row {row}: {error.reason}")


def exit_code_for(exc: BaseException) -> int:
    """The one mapping from exceptions to exit codes."""
    from .cli_io import UsageProblem

    if isinstance(exc, SelfTestError):
        return SELF_TEST
    if isinstance(exc, (BundleError, InputError, BenchResultsError, UsageProblem, StrictStop)):
        return USAGE
    return FAILURE  # BackendError and anything unexpected


def _parser() -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(
        prog="edgefin-run",
        description="Verify and score edgefin .efb bundles "
        "(no TensorFlow). Exit codes: 0 ok, 1 engine failure, 2 usage/input/invalid "
        "bundle, 3 self-test failed.",
    )
    ap.add_argument("--version", action="version", version=f"edgefin-runtime {__version__}")
    names = ("info", "verify", "score", *COMMAND_MODULES)
    sub = ap.add_subparsers(dest="command", required=True, metavar="{" + ",".join(names) + "}")

    def common(p: argparse.ArgumentParser, engine: bool = True) -> None:
        p.add_argument("bundle", metavar="BUNDLE", help="path to a .efb bundle")
        p.add_argument(
            "--key",
            action="append",
            default=[],
            metavar="PUB",
            help="trusted Ed25519 public key file (repeatable); makes a valid signature mandatory",
        )
        p.add_argument("--require-signature", action="store_true", help="refuse an unsigned bundle (needs --key)")
        if engine:
            p.add_argument(
                "--backend",
                choices=("litert", "litert-ref", "onnx"),
                default=None,
                help="engine override; must be able to run the bundle's model file",
            )
            p.add_argument("--threads", type=_positive, default=1, help="engine threads (default 1)")

    p_info = sub.add_parser("info", help="show what a bundle contains (no engine needed)")
    common(p_info, engine=False)
    p_info.add_argument("--json", action="store_true", help="print the manifest and bundle facts as JSON")

    p_verify = sub.add_parser(
        "verify",
        help="check hashes, versions, the golden self-test and the whole "
        "acceptance set against the build machine's and the source model's scores",
    )
    common(p_verify)
    p_verify.add_argument("--json", action="store_true", help="print the outcome as JSON on stdout")

    p_score = sub.add_parser("score", help="score CSV or JSON Lines records, or Parquet with --engine")
    common(p_score)
    p_score.add_argument("input", nargs="?", default=None, metavar="INPUT", help="input file (default: stdin)")
    p_score.add_argument(
        "--input-format",
        choices=("csv", "jsonl"),
        help="default: from the extension; stdin: JSON Lines if its first line starts with {, else CSV",
    )
    p_score.add_argument("--output", "-o", default=None, help="output file, written atomically (default: stdout)")
    p_score.add_argument(
        "--output-format",
        choices=("jsonl", "csv"),
        default=None,
        help="default: from the --output extension, else jsonl",
    )
    p_score.add_argument("--strict", action="store_true", help="stop at the first rejected row (exit 2)")
    p_score.add_argument(
        "--policy",
        choices=("lenient", "strict"),
        default="lenient",
        help="lenient: ignore unknown fields, unseen categories go to 'other', impute "
        "where allowed; strict: reject all of those",
    )
    p_score.add_argument("--batch-size", type=_positive, default=1024, help="records scored together")
    p_score.add_argument("--quiet", "-q", action="store_true", help="no summary on stderr")
    p_score.add_argument(
        "--reasons",
        action="store_true",
        help="add each record's principal reasons (fields that raised the risk score; needs a bundle with "
        "an explain section)",
    )
    p_score.add_argument(
        "--max-reasons", type=_positive, default=4, help="reasons per record with --reasons (default 4)"
    )
    p_score.add_argument(
        "--engine",
        choices=("local", "dask", "spark"),
        default=None,
        help="score Parquet INPUT (a file, directory or glob) into --output DIR: local (one process, "
        "streamed), dask or spark (default for a Parquet INPUT: local)",
    )
    p_score.add_argument("--workers", type=_positive, default=2, help="--engine dask/spark: local worker processes")
    p_score.add_argument("--cluster", default=None, metavar="ADDRESS", help="a Dask scheduler or Spark master address")
    for name, module_name in COMMAND_MODULES.items():
        module = importlib.import_module(f".{module_name}", __package__)
        module.add_arguments(sub.add_parser(name, help=module.HELP), common)
    return ap


def _positive(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {value}")
    return value


def _load(args: argparse.Namespace, *, policy: str = "lenient", self_test: bool = True) -> Any:
    from .predictor import load

    with _quiet_native_stderr():
        return load(
            args.bundle,
            args.backend,
            policy=policy,
            threads=args.threads,
            trusted_keys=args.key or None,
            require_signature=args.require_signature,
            self_test=self_test,
        )


@contextlib.contextmanager
def _quiet_native_stderr() -> Iterator[None]:
    """Silence native INFO lines (LiteRT prints 'Created TensorFlow Lite XNNPACK delegate' once per
    process) while the engine is built. Engine errors still arrive as typed exceptions; set
    EDGEFIN_DEBUG=1 to see the native output."""
    if os.environ.get("EDGEFIN_DEBUG"):
        yield
        return
    sys.stderr.flush()
    try:
        saved = os.dup(2)
    except OSError:  # pragma: no cover - no fd 2
        yield
        return
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, 2)
    try:
        yield
    finally:
        os.dup2(saved, 2)
        os.close(saved)
        os.close(devnull)


# ---------------------------------------------------------------- commands
def cmd_info(args: argparse.Namespace) -> int:
    from .bundle import read_bundle
    from .predictor import _signature_verifier
    from .render import bundle_facts, info_text

    verify = _signature_verifier(args.key or None, args.require_signature)
    bundle = read_bundle(args.bundle, verify_signature=verify)
    facts = bundle_facts(bundle, args.bundle, signature_checked=verify is not None)
    if args.json:
        print(json.dumps({"bundle": facts, "manifest": bundle.manifest.to_dict()}, indent=1, sort_keys=True))
    else:
        print(info_text(bundle, facts))
    return OK


def cmd_verify(args: argparse.Namespace) -> int:
    """Hashes, versions, the golden self-test, then the whole acceptance set against both references."""
    from .acceptance import check

    predictor = _load(args, self_test=False)
    report = predictor.self_test()
    accepted = check(predictor)
    engine = predictor.engine.describe()
    m = predictor.info.model
    ok = accepted is None or accepted.passed
    if args.json:
        print(
            json.dumps(
                {
                    "ok": ok,
                    "bundle": args.bundle,
                    "sha256": predictor.bundle_sha256,
                    "variant": m.variant,
                    "engine": engine,
                    "self_test": report,
                    "acceptance": accepted.to_dict() if accepted is not None else None,
                    **(
                        {}
                        if ok
                        else {
                            "exit_code": SELF_TEST,
                            "error_type": "SelfTestError",
                            "error": "; ".join(accepted.failures),  # type: ignore[union-attr]
                        }
                    ),
                    "signature_checked": bool(args.key),
                },
                indent=1,
                sort_keys=True,
            )
        )
    else:
        sig = ", signature" if args.key else ""
        print(
            f"{'OK ' if ok else 'FAIL'} {args.bundle}: hashes{sig}, versions and self-test passed "
            f"({report['golden']} golden vectors on {engine['engine']} {engine.get('version', '')}, "
            f"max |delta| {report['max_abs_delta']:.3g}"
            f" <= {report['tolerance']:g}); variant {m.variant}"
        )
        print(_acceptance_text(accepted))
    if not ok:
        print(
            f"edgefin-run verify: SelfTestError: the acceptance set fails on this machine: "
            f"{'; '.join(accepted.failures)} - do not deploy it",  # type: ignore[union-attr]
            file=sys.stderr,
        )
        return SELF_TEST
    return OK


def _acceptance_text(rep: Any) -> str:
    if rep is None:
        return "     acceptance set: none in this bundle (built before acceptance sets); only the self-test ran"
    kinds = ", ".join(f"{n} {k}" for k, n in sorted(rep.kinds.items()))
    lines = [
        f"     acceptance set: {rep.records} synthetic records ({kinds}), threshold {rep.threshold:g}, "
        f"tolerance {rep.tolerance:g}, single-record and batch paths"
    ]
    for v in (rep.build, rep.source):
        name = v.reference + (f" ({rep.source_stage})" if v is rep.source else "")
        lim = v.limits
        limit = (
            f"limit |dp| <= {lim['max_abs_delta']:.3g}, no flip outside the band"
            if v is rep.build
            else f"limit |dp| <= {lim['max_abs_delta']:.3g}, flips <= {lim['flips']}"
        )
        lines.append(
            f"     vs {name:<22} max |dp| {v.max_abs_delta:.3g}, mean |dp| {v.mean_abs_delta:.3g}, "
            f"flips {v.flips}  [{limit}]  {'PASS' if v.passed else 'FAIL'}"
        )
        lines.extend(f"       - {f}" for f in v.failures)
    return "\n".join(lines)


def cmd_score(args: argparse.Namespace) -> int:
    from .cli_io import Writer, detect_format, open_input, open_output, read_rows
    from .cli_scale import is_parquet_input, run_scaled

    if args.engine is not None or is_parquet_input(args.input):
        return run_scaled(args)  # --reasons: a reasons column (JSON) in the Parquet output
    fmt_in = detect_format(args.input, args.input_format)
    fmt_out = args.output_format or ("csv" if (args.output or "").lower().endswith(".csv") else "jsonl")
    t_load = time.perf_counter()
    predictor = _load(args, policy=args.policy)
    t0 = time.perf_counter()
    counts = {"in": 0, "scored": 0, "rejected": 0}
    with open_input(args.input) as fin, open_output(args.output) as fout:
        reasons = args.max_reasons if args.reasons else 0
        if reasons:
            predictor.explainer()  # a bundle without an explain section fails before any output
        writer = Writer(fout, fmt_out, reasons=reasons)
        batch: list[tuple[int, Any]] = []
        for item in read_rows(fin, fmt_in, predictor.schema):
            batch.append(item)
            if len(batch) >= args.batch_size:
                _score_batch(predictor, batch, writer, counts, args.strict, reasons)
                batch = []
        if batch:
            _score_batch(predictor, batch, writer, counts, args.strict, reasons)
    if not args.quiet:
        _summary(counts, time.perf_counter() - t0, t0 - t_load)
    return OK


def _score_batch(
    predictor: Any, batch: list[tuple[int, Any]], writer: Any, counts: dict[str, int], strict: bool, reasons: int = 0
) -> None:
    from .cli_io import result_row

    records = [(row, rec) for row, rec in batch if not isinstance(rec, InputError)]
    recs = [rec for _, rec in records]
    results = iter(
        predictor.score_batch(recs, reasons=True, max_reasons=reasons) if reasons else predictor.score_batch(recs)
    )
    for row, rec in batch:
        outcome: Any = rec if isinstance(rec, InputError) else next(results)
        explanation = getattr(outcome, "explanation", None)
        if not isinstance(outcome, InputError):
            outcome = outcome.score if outcome.ok else outcome.error
        counts["in"] += 1
        if isinstance(outcome, InputError):
            if strict:
                raise StrictStop(row, outcome)
            counts["rejected"] += 1
        else:
            counts["scored"] += 1
        writer.write(result_row(row, outcome, explanation))


def _summary(counts: dict[str, int], seconds: float, load_seconds: float) -> None:
    rate = counts["in"] / seconds if seconds > 0 else 0.0
    print(
        f"edgefin-run score: {counts['in']} rows in, {counts['scored']} scored, {counts['rejected']} rejected "
        f"in {seconds:.3f} s ({rate:,.0f} rows/s; bundle load and self-test {load_seconds:.3f} s)",
        file=sys.stderr,
    )


# ---------------------------------------------------------------- entry point
def main(argv: Sequence[str] | None = None) -> int:
    """Run one command and return its exit code (the console script exits with it)."""
    from .cli_io import UsageProblem

    args = _parser().parse_args(argv)  # argparse itself exits 2 on usage errors
    builtin = {"info": cmd_info, "verify": cmd_verify, "score": cmd_score}
    if args.command in builtin:
        command = builtin[args.command]
    else:
        command = importlib.import_module(f".{COMMAND_MODULES[args.command]}", __package__).run
    try:
        code = command(args)
        sys.stdout.flush()
        return code
    except StrictStop as stop:
        print(
            f"edgefin-run score: stopped at row {stop.row} (--strict): {type(stop.error).__name__}: "
            f"{stop.error.reason}",
            file=sys.stderr,
        )
        return exit_code_for(stop)
    except BrokenPipeError:  # the reader went away (e.g. `| head`): stop quietly
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        return FAILURE
    except KeyboardInterrupt:
        print(f"edgefin-run {args.command}: interrupted", file=sys.stderr)
        return 130
    except Exception as exc:  # noqa: BLE001 - the one place errors become exit codes
        code = exit_code_for(exc)
        known = isinstance(exc, (EdgefinRuntimeError, UsageProblem))
        name = type(exc).__name__ if known else "internal error"
        print(f"edgefin-run {args.command}: {name}: {exc}", file=sys.stderr)
        if not known and os.environ.get("EDGEFIN_DEBUG"):
            traceback.print_exc()
        if getattr(args, "json", False):
            print(
                json.dumps(
                    {"ok": False, "error_type": type(exc).__name__, "error": str(exc), "exit_code": code},
                    sort_keys=True,
                )
            )
        return code


if __name__ == "__main__":
    raise SystemExit(main())
