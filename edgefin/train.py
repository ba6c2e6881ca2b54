"""One training step: data file in, complete run directory out, metrics dict back.

read -> target -> kinds -> split -> fit schema + preprocessing (training split) -> quality report
-> encode (through the runtime) -> [augment the raw training split] -> dense model + logistic
baseline -> threshold on validation -> metrics -> write every artefact atomically, run.json last.
With ``bins="auto"`` (the default) the dense model is trained on the plain input and again with
piecewise-linear bins on every numeric column; the validation AUC decides (bins must win by
BINS_MARGIN), and both figures are kept in metrics.json.

With ``linear`` (the default) the model has a linear path from its inputs to the output logit, and
for each input the logistic regression fitted on the same rows is blended into that logit with the
weight (0, 0.25, ... 1) the validation split prefers; weight 1 is the logistic regression itself, so
the model kept is never below it on validation. Every candidate's validation AUC and the choice are
in metrics.json (``model.candidates_validation_auc``, ``model.candidate``).
"""

from __future__ import annotations

import hashlib
import json
import platform
import time
from collections.abc import Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from edgefin_runtime.manifest import PreprocessSpec, Schema
from edgefin_runtime.preprocess import Preprocessor

from . import __version__, atomic
from .data.io import check_frame, file_sha256, read_table, write_parquet
from .data.preprocessing import BINS_MARGIN, DEFAULT_BINS, check_bins, encode_frame, fit_preprocess, make_preprocessor
from .data.quality import quality_report
from .data.schema import (
    TargetSpec,
    fit_schema,
    infer_kinds,
    missing_fields,
    resolve_target,
    schema_to_dict,
    target_vector,
)
from .data.split import split_indices
from .errors import DataError, UsageError
from .metrics import choose_threshold, evaluate, parse_threshold
from .reporter import SILENT, Reporter
from .rundir import SPLITS, RunDir
from .steps.train import TrainOptions

AUGMENT_METHODS = ("none", "smote", "jitter", "smote+jitter")  # what the CLI offers; edgefin.data.augment decides
# artefacts of later steps; a new training run makes them stale, so they are removed
STALE = ("models/pruned.keras", "models/clustered.keras", "models/qat.keras", "compress.json", "bundles", "report")


def train(
    data: str | Path | pd.DataFrame,
    out: str | Path,
    options: TrainOptions | None = None,
    *,
    reporter: Reporter | None = None,
    **overrides: Any,
) -> dict[str, Any]:
    """Train into the run directory ``out`` and return the metrics dict (also in metrics.json).

    ``data`` is a CSV/Parquet path (or a DataFrame, for library use). Options come from ``options``
    and/or keyword overrides, e.g. ``train("credit.csv", "runs/x", target="Status", positive="bad")``.
    """
    if options is None:
        if "target" not in overrides:
            raise UsageError("train() needs target=... (the column to predict)")
        options = TrainOptions(**overrides)
    elif overrides:
        options = replace(options, **overrides)
    opts = normalised(options)
    rep = reporter or SILENT
    method, value = parse_threshold(opts.threshold)
    run = RunDir.at(out)
    started = time.perf_counter()
    d = prepare_data(data, opts, rep, bins=candidates(opts.bins)[0])
    augmented = _augmented(d, opts, rep)
    trials: dict[int, dict[str, Any]] = {}
    best: tuple[float, PreparedData, Any, np.ndarray, np.ndarray, float, Any] | None = None
    for bins in candidates(opts.bins):
        if bins != d.bins:
            binned = with_bins(d, bins, opts)
            if binned.spec == d.spec:  # no numeric column has enough distinct values for bins
                rep.note(f"no numeric column takes {bins} bins; keeping the plain input")
                break
            d = binned
        x_train, y_train = _training_rows(d, augmented, opts)
        rep.note("training the logistic-regression baseline")
        logistic = _fit_logistic(x_train, y_train, opts)
        clf, fit_seconds = _fit(d, x_train, y_train, opts, rep)
        trial: dict[str, Any] = {"dense": clf.best_val_auc_}
        if opts.linear:
            w, aucs = clf.blend_linear(
                logistic.coef_.reshape(-1), float(logistic.intercept_[0]), d.X["validation"], d.ys["validation"]
            )
            trial.update(logistic=aucs[1.0], linear_weight=w, blends={str(k): v for k, v in aucs.items()})
            trial["chosen"] = aucs[w]
        else:
            trial["chosen"] = clf.best_val_auc_
        val = trial["chosen"] if trial["chosen"] is not None else -1.0
        trials[bins] = trial
        rep.note(_describe_trial(bins, trial))
        # a wider, slower input has to earn its place: bins only if they beat the plain input clearly
        if best is None or val > best[0] + (BINS_MARGIN if best[1].bins == 0 else 0.0):
            best = (val, d, clf, x_train, y_train, fit_seconds, logistic)
    assert best is not None
    _, d, clf, x_train, y_train, fit_seconds, logistic = best
    rep.note(f"chose {_describe_choice(opts, d.bins, getattr(clf, 'linear_weight_', None))}")
    X, ys, spec = d.X, d.ys, d.spec
    scores = {s: clf.predict_score(X[s]) for s in SPLITS}
    threshold = choose_threshold(ys["validation"], scores["validation"], method, value)
    baseline = _logistic_baseline(logistic, X, ys)

    metrics: dict[str, Any] = {s: evaluate(ys[s], scores[s], threshold) for s in ("test", "validation", "train")}
    metrics.update(
        {
            "threshold": threshold,
            "threshold_method": method,
            "threshold_value": value,
            "positive_label": d.target.positive_label,
            "negative_label": d.target.negative_label,
            "baseline": {"logistic_regression": baseline},
            "model": {
                "hidden": list(opts.hidden),
                "params": clf.n_params_,
                "n_features": spec.n_features,
                "epochs_run": clf.epochs_run_,
                "best_epoch": clf.best_epoch_,
                "best_val_auc": clf.best_val_auc_,
                "dropout": opts.dropout,
                "l2": opts.l2,
                "learning_rate": opts.learning_rate,
                "batch_size": opts.batch_size,
                "max_epochs": opts.epochs,
                "patience": opts.patience,
                "class_weight": opts.class_weight,
                "linear": opts.linear,
                "linear_weight": getattr(clf, "linear_weight_", None),
                "candidate": _describe_choice(opts, d.bins, getattr(clf, "linear_weight_", None)),
                "encoding": opts.encoding,
                "bins": d.bins,
                "bins_option": opts.bins,
                "bins_validation_auc": {str(k): v["chosen"] for k, v in trials.items()},
                "candidates_validation_auc": {str(k): v for k, v in trials.items()},
                "augment": opts.augment,
                "train_rows": int(len(y_train)),
                "train_seconds": round(fit_seconds, 3),
            },
            "splits": {k: int(len(v)) for k, v in ys.items()},
        }
    )

    # ------------------------------------------------------------ write (run.json last)
    rep.note(f"writing {run.root}")
    _prepare(run, rep)
    atomic.write_json(run.schema_json, schema_to_dict(d.schema))
    atomic.write_json(run.preprocess_json, spec.to_dict())
    atomic.write_json(run.quality_json, d.quality)
    for s in SPLITS:
        write_parquet(run.split_path(s), d.frames[s])
    clf.save(run.model_path("dense"))
    atomic.write_json(run.metrics_json, metrics)
    run.write_record(_run_record(opts, d.files, d.target, started))
    return metrics


def candidates(bins: int | str) -> tuple[int, ...]:
    """The bin counts a run tries: "auto" tries the plain input and DEFAULT_BINS; a number, just it."""
    return (0, DEFAULT_BINS) if bins == "auto" else (int(bins),)


def _augmented(d: PreparedData, opts: TrainOptions, rep: Reporter) -> tuple[pd.DataFrame, np.ndarray] | None:
    """The raw training split augmented as asked (once per run: it does not depend on the encoding)."""
    if opts.augment == "none":
        return None
    rep.note(f"augmenting the training split ({opts.augment})")
    frame, y = _augment(d.frames["train"], d.ys["train"], opts, d.schema)
    return frame, np.asarray(y).astype(np.int64)


def _training_rows(
    d: PreparedData, augmented: tuple[pd.DataFrame, np.ndarray] | None, opts: TrainOptions
) -> tuple[np.ndarray, np.ndarray]:
    """The encoded training split: the augmented raw rows when there are any, encoded with ``d``'s preprocessing."""
    if augmented is None:
        return d.X["train"], d.ys["train"]
    frame, y = augmented
    return encode_frame(frame, d.schema, d.preprocessor, source=f"training split augmented with {opts.augment}"), y


def _fit(
    d: PreparedData,
    x_train: np.ndarray,
    y_train: np.ndarray,
    opts: TrainOptions,
    rep: Reporter,
) -> tuple[Any, float]:
    """Train one dense model with early stopping on the validation split; (model, seconds)."""
    from .model import DenseClassifier

    clf = DenseClassifier(
        hidden=opts.hidden,
        dropout=opts.dropout,
        l2=opts.l2,
        learning_rate=opts.learning_rate,
        batch_size=opts.batch_size,
        epochs=opts.epochs,
        patience=opts.patience,
        class_weight=opts.class_weight,
        linear=opts.linear,
        seed=opts.seed,
    )
    clf._validate_params()
    binned = f", {d.bins} bins per numeric column" if d.bins else ""
    rep.note(
        f"training dense {'-'.join(map(str, opts.hidden))} on {len(y_train)} rows, {d.spec.n_features} features{binned}"
    )
    rep.started("epoch", opts.epochs)
    start = time.perf_counter()
    try:
        clf.fit(
            x_train,
            y_train,
            validation_data=(d.X["validation"], d.ys["validation"]),
            on_epoch=lambda epoch, logs: rep.advanced("epoch", epoch, opts.epochs, epoch_info(logs)),
        )
    finally:
        rep.done("epoch")
    return clf, time.perf_counter() - start


def _describe_trial(bins: int, trial: dict[str, Any]) -> str:
    """One line about a candidate's validation AUC: the dense model, the logistic regression, the mix kept."""
    what = f"{bins} bins" if bins else "plain input"
    dense = trial["dense"]
    if "logistic" not in trial:
        return f"{what}: validation AUC {dense:.4f}"
    return (
        f"{what}: validation AUC dense {dense:.4f}, logistic {trial['logistic']:.4f}, "
        f"kept {trial['chosen']:.4f} (logistic weight {trial['linear_weight']:g})"
    )


def _describe_choice(opts: TrainOptions, bins: int, linear_weight: float | None) -> str:
    """The chosen architecture in words, e.g. '64-32 + linear path (logistic weight 0.25), 16 bins'."""
    arch = "-".join(map(str, opts.hidden))
    if opts.linear:
        arch += f" + linear path (logistic weight {linear_weight:g})"
    return f"{arch}, {f'{bins} bins' if bins else 'plain input'}"


def epoch_info(logs: dict[str, float]) -> str:
    """One line about an epoch for the progress display: loss and validation AUC (best so far)."""
    info = f"loss {logs.get('loss', float('nan')):.4f}"
    if "val_auc" in logs:
        info += f"  val AUC {logs['val_auc']:.4f} (best {logs.get('best_val_auc', logs['val_auc']):.4f})"
    return info


def with_bins(d: PreparedData, bins: int, opts: TrainOptions) -> PreparedData:
    """The same splits and schema with the preprocessing refitted for another bin count."""
    spec = fit_preprocess(
        d.frames["train"],
        d.schema,
        encoding=opts.encoding,  # type: ignore[arg-type]
        bins=bins,
        source=d.sources["train"],
    )
    pre = make_preprocessor(d.schema, spec)
    X = {s: encode_frame(d.frames[s], d.schema, pre, source=d.sources[s]) for s in SPLITS}
    return replace(d, spec=spec, preprocessor=pre, X=X, bins=bins)


@dataclass
class PreparedData:
    """Everything fitted from the data before any model: splits, schema, preprocessing, quality, X."""

    target: TargetSpec
    frames: dict[str, pd.DataFrame]  # raw rows of each split (index = row in its file)
    ys: dict[str, np.ndarray]  # 0/1 per split, 1 = positive (risk) class
    sources: dict[str, str]  # file each split came from (for messages)
    schema: Schema
    spec: PreprocessSpec
    preprocessor: Preprocessor
    quality: dict[str, Any]
    X: dict[str, np.ndarray]  # encoded splits (float32), through the runtime
    files: dict[str, dict[str, Any]]  # data / test_data / validation_data: path, sha256, rows
    bins: int = 0  # piecewise-linear bins per numeric column in ``spec``


def prepare_data(
    data: str | Path | pd.DataFrame, opts: TrainOptions, rep: Reporter | None = None, *, bins: int = 0
) -> PreparedData:
    """Read, check, split, fit schema and preprocessing on the training split, encode every split."""
    rep = rep or SILENT

    # ------------------------------------------------------------ read
    rep.note("reading data")
    frame, src, data_info = _read(data, opts, "data")
    target = resolve_target(frame, opts.target, opts.positive, src)
    kinds = infer_kinds(
        frame, target=opts.target, source=src, categorical=opts.categorical, numeric=opts.numeric, drop=opts.drop
    )
    unknown = [c for c in opts.protected if c not in kinds]
    if unknown:
        from .errors import UsageError

        raise UsageError(f"`protected`: {unknown} are not input columns of {src} (columns: {sorted(kinds)})")
    y_all, has = target_vector(frame, target, src)
    no_target = int((~has).sum())
    frame, y_all = frame[has], y_all[has].astype(np.int64)
    extra: dict[str, tuple[pd.DataFrame, np.ndarray, str, dict[str, Any]]] = {}
    for split, path in (("test", opts.test_data), ("validation", opts.validation_data)):
        if path is not None:
            f, s, info = _read(path, opts, f"{split} data")
            yy, h = target_vector(f, target, s)
            if not h.all():
                rep.warn(f"{int((~h).sum())} rows of {s} have no '{target.name}' value and were left out")
            f, yy = f[h], yy[h].astype(np.int64)
            _check_both_classes(yy, f"{split} data {s}")
            extra[split] = (f, yy, s, info)

    # ------------------------------------------------------------ split
    rep.note("splitting")
    idx = split_indices(
        y_all,
        seed=opts.seed,
        test_size=0.0 if "test" in extra else opts.test_size,
        validation_size=0.0 if "validation" in extra else opts.validation_size,
        source=src,
    )
    frames: dict[str, pd.DataFrame] = {}
    ys: dict[str, np.ndarray] = {}
    sources: dict[str, str] = {}
    for split in SPLITS:
        if split in extra:
            frames[split], ys[split], sources[split], _ = extra[split]
        else:
            rows = getattr(idx, split)
            frames[split], ys[split], sources[split] = frame.iloc[rows], y_all[rows], src
    sizes = {s: int(len(ys[s])) for s in SPLITS}

    # ------------------------------------------------------------ fit schema + preprocessing, quality
    rep.note("fitting schema and preprocessing on the training split")
    allow = missing_fields([frame, *(e[0] for e in extra.values())], kinds)
    schema = fit_schema(frames["train"], kinds, target, source=src, allow_missing=allow)
    spec = fit_preprocess(frames["train"], schema, encoding=opts.encoding, bins=bins, source=src)  # type: ignore[arg-type]
    pre = make_preprocessor(schema, spec)
    quality = quality_report(
        frame, y_all, kinds, target=opts.target, dropped=list(opts.drop), rows_without_target=no_target, splits=sizes
    )
    for w in quality["warnings"]:
        rep.warn(w)
    X = {s: encode_frame(frames[s], schema, pre, source=sources[s]) for s in SPLITS}
    return PreparedData(
        target=target,
        frames=frames,
        ys=ys,
        sources=sources,
        schema=schema,
        spec=spec,
        preprocessor=pre,
        quality=quality,
        X=X,
        files={"data": data_info, **{f"{k}_data": v[3] for k, v in extra.items()}},
        bins=bins,
    )


# ---------------------------------------------------------------- helpers
def parse_hidden(value: object) -> tuple[int, ...]:
    """Hidden layer sizes from "64,32", 64 or [64, 32]; ValueError when they are not positive integers."""
    if isinstance(value, (list, tuple)):
        parts = list(value)
    elif isinstance(value, int):
        parts = [value]
    else:
        parts = [p for p in str(value).replace(" ", "").split(",") if p]
    try:
        sizes = tuple(int(p) for p in parts)
    except (TypeError, ValueError):
        raise ValueError(f"expected layer sizes like 64,32; got {value!r}") from None
    if not sizes or any(s < 1 for s in sizes):
        raise ValueError(f"expected one or more positive layer sizes like 64,32; got {value!r}")
    return sizes


def normalised(o: TrainOptions) -> TrainOptions:
    """Accept the spellings a config file or a caller may use; reject impossible combinations early."""

    def tup(v: Sequence[Any] | str | None) -> tuple[Any, ...]:
        if v is None:
            return ()
        if isinstance(v, str):
            return tuple(p.strip() for p in v.split(",") if p.strip())
        return tuple(v)

    try:
        hidden = parse_hidden(o.hidden)
    except ValueError as exc:
        raise UsageError(f"`hidden`: {exc}") from None
    if o.encoding not in ("onehot", "index"):
        raise UsageError(f"`encoding`: expected onehot or index, got {o.encoding!r}")
    try:
        bins = check_bins(o.bins)
    except ValueError as exc:
        raise UsageError(f"`bins`: {exc}") from None
    if o.augment != "none":
        from .data.augment import METHODS

        if o.augment not in METHODS:
            raise UsageError(f"`augment`: expected one of {', '.join(METHODS)}, got {o.augment!r}")
    for name, share, given in (
        ("test", o.test_size, o.test_data),
        ("validation", o.validation_size, o.validation_data),
    ):
        if given is None and not 0.0 < share < 1.0:
            raise UsageError(f"`{name}_size`: expected a share in (0, 1), got {share}; or pass `{name}_data=FILE`")
    if o.test_data is None and o.validation_data is None and o.test_size + o.validation_size >= 0.9:
        raise UsageError(
            f"`test_size={o.test_size}` and `validation_size={o.validation_size}` leave "
            f"too little data for training; keep their sum below 0.9"
        )
    return replace(
        o,
        bins=bins,
        drop=tup(o.drop),
        categorical=tup(o.categorical),
        numeric=tup(o.numeric),
        na_values=tuple(o.na_values or ()),
        hidden=hidden,
        threshold=str(o.threshold),
        test_data=str(o.test_data) if o.test_data else None,
        validation_data=str(o.validation_data) if o.validation_data else None,
    )


def _read(data: str | Path | pd.DataFrame, opts: TrainOptions, role: str) -> tuple[pd.DataFrame, str, dict[str, Any]]:
    if isinstance(data, pd.DataFrame):
        frame = check_frame(data, "<DataFrame>", role=role)
        digest = hashlib.sha256(pd.util.hash_pandas_object(frame, index=False).to_numpy().tobytes()).hexdigest()
        return frame, "<DataFrame>", {"path": None, "sha256": digest, "rows": len(frame), "format": "dataframe"}
    frame = read_table(data, na_values=opts.na_values, role=role)
    path = Path(data)
    return (
        frame,
        str(data),
        {
            "path": str(path.resolve()),
            "sha256": file_sha256(path),
            "rows": len(frame),
            "format": "parquet" if str(path).lower().endswith((".parquet", ".pq")) else "csv",
        },
    )


def _check_both_classes(y: np.ndarray, where: str) -> None:
    if y.size == 0 or y.min() == y.max():
        raise DataError(f"{where} has rows of only one class; AUC and the threshold need both classes")


def _augment(frame: pd.DataFrame, y: np.ndarray, opts: TrainOptions, schema: Any) -> tuple[pd.DataFrame, np.ndarray]:
    from .data.augment import augment

    return augment(frame, y, method=opts.augment, schema=schema, seed=opts.seed)


def _fit_logistic(x_train: np.ndarray, y_train: np.ndarray, opts: TrainOptions) -> Any:
    """Logistic regression on the very same encoded features: the bar the dense model must clear
    (and, with the linear path, where it starts)."""
    from sklearn.linear_model import LogisticRegression

    lr = LogisticRegression(max_iter=5000, class_weight="balanced" if opts.class_weight else None)
    return lr.fit(x_train, y_train)


def _logistic_baseline(lr: Any, X: dict[str, np.ndarray], ys: dict[str, np.ndarray]) -> dict[str, Any]:
    """The fitted logistic regression's figures on validation and test."""
    from .metrics import auc, ks

    out: dict[str, Any] = {"model": "sklearn LogisticRegression(C=1.0, lbfgs)"}
    for s in ("validation", "test"):
        p = lr.predict_proba(X[s])[:, 1]
        out[f"{s}_auc"] = auc(ys[s], p)
        out[f"{s}_ks"] = ks(ys[s], p)
    out["test_gini"] = 2 * out["test_auc"] - 1
    return out


def _prepare(run: RunDir, rep: Reporter) -> None:
    """Mark the run incomplete (run.json goes first, comes back last) and drop stale later-step artefacts."""
    run.root.mkdir(parents=True, exist_ok=True)
    if run.run_json.exists():
        run.run_json.unlink()
    removed = []
    for rel in STALE:
        p = run.root / rel
        if p.is_dir():
            import shutil

            shutil.rmtree(p)
            removed.append(rel)
        elif p.exists():
            p.unlink()
            removed.append(rel)
    if removed:
        rep.warn(f"removed artefacts of the previous run that the new model makes stale: {', '.join(removed)}")


def _versions() -> dict[str, str]:
    import sklearn

    from edgefin_runtime import __version__ as rt_version

    out = {
        "python": platform.python_version(),
        "edgefin": __version__,
        "edgefin_runtime": rt_version,
        "numpy": np.__version__,
        "pandas": pd.__version__,
        "scikit_learn": sklearn.__version__,
    }
    from .tfcompat import keras, tf

    out["tensorflow"] = tf.__version__
    out["tf_keras"] = getattr(keras, "__version__", "")
    return out


def _run_record(
    opts: TrainOptions, files: dict[str, dict[str, Any]], target: TargetSpec, started: float
) -> dict[str, Any]:
    fingerprint = hashlib.sha256(
        json.dumps(
            {"options": opts.to_dict(), "data": {k: v["sha256"] for k, v in files.items()}}, sort_keys=True
        ).encode()
    ).hexdigest()
    return {
        "edgefin_version": __version__,
        "created_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "data": files["data"],
        "test_data": files.get("test_data"),
        "validation_data": files.get("validation_data"),
        "data_sha256": files["data"]["sha256"],
        "target": target.name,
        "positive_label": target.positive_label,
        "negative_label": target.negative_label,
        "seed": opts.seed,
        "options": opts.to_dict(),
        "versions": _versions(),
        "steps": {"train": {"fingerprint": fingerprint, "seconds": round(time.perf_counter() - started, 3)}},
    }


__all__ = ["TrainOptions", "PreparedData", "prepare_data", "train", "AUGMENT_METHODS"]
