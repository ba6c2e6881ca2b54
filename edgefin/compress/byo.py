"""Bring your own model: turn a user's ``.keras`` file plus labelled data into a run directory.

The data go through the same data layer as ``edgefin train`` (schema, stratified split,
preprocessing fitted on the training split), the model becomes ``models/dense.keras`` and is
evaluated like a trained one (threshold at max KS on validation), so ``compress_run`` and every
later step treat it exactly like a run that edgefin trained. With ``raw_features`` the model takes
the data's numeric columns as they are (in file order; missing values filled with the training
median), for models trained outside edgefin's preprocessing.
"""

from __future__ import annotations

import hashlib
import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from .. import __version__, atomic
from ..data.io import write_parquet
from ..errors import ModelError, UsageError
from ..rundir import SPLITS, RunDir

IMPORT_STEP = "import"


def import_model(
    model_path: str | Path,
    data: str | Path,
    out: str | Path,
    *,
    target: str,
    positive: str | None = None,
    raw_features: bool = False,
    encoding: str = "onehot",
    drop: tuple[str, ...] = (),
    seed: int = 42,
    threshold: str = "max-ks",
    test_size: float = 0.2,
    validation_size: float = 0.2,
) -> tuple[RunDir, bool]:
    """Build (or reuse) the run directory ``out`` for a user's model; returns (run, reused)."""
    from edgefin_runtime.manifest import NumericStep, PreprocessSpec

    from ..data import (
        encode_frame,
        fit_preprocess,
        fit_schema,
        infer_kinds,
        make_preprocessor,
        quality_report,
        read_table,
        resolve_target,
        schema_to_dict,
        split_indices,
        target_vector,
    )
    from ..data.io import file_sha256
    from ..data.schema import missing_fields
    from ..keras_io import load_model, save_model
    from ..metrics import choose_threshold, evaluate, parse_threshold
    from .support import check_model, predict

    model_path, data_path, rd = Path(model_path), Path(data), RunDir.at(out)
    if model_path.suffix != ".keras" or not model_path.is_file():
        raise UsageError(
            f"{model_path}: expected a Keras model file MODEL.keras (saved with tf_keras "
            f"model.save('model.keras')) or an edgefin run directory"
        )
    options = {
        "model": str(model_path.resolve()),
        "model_sha256": file_sha256(model_path),
        "data": str(data_path.resolve()),
        "data_sha256": file_sha256(data_path) if data_path.is_file() else None,
        "target": target,
        "positive": positive,
        "raw_features": bool(raw_features),
        "encoding": encoding,
        "drop": list(drop),
        "seed": int(seed),
        "threshold": str(threshold),
        "test_size": test_size,
        "validation_size": validation_size,
    }
    fingerprint = hashlib.sha256(json.dumps(options, sort_keys=True).encode()).hexdigest()
    if rd.run_json.exists():
        rec = rd.read_json(rd.run_json, "compress")
        if (
            rec.get("steps", {}).get(IMPORT_STEP, {}).get("fingerprint") == fingerprint
            and rd.model_path("dense").exists()
        ):
            return rd, True
    if rd.root.exists() and any(rd.root.iterdir()):
        raise UsageError(
            f"--out {rd.root} already holds something else (another run, or an import of another "
            f"model/data/options); choose a new --out directory or remove it"
        )

    try:
        model = load_model(model_path)
    except ModelError as exc:
        raise UsageError(str(exc)) from None
    check_model(model, label=str(model_path))
    width = int(model.inputs[0].shape[1])

    method, value = parse_threshold(threshold)
    src = str(data_path)
    frame = read_table(data_path, role="data")
    tspec = resolve_target(frame, target, positive, src)
    kinds = infer_kinds(frame, target=target, source=src, drop=drop)
    if raw_features:
        kinds = {k: v for k, v in kinds.items() if v == "numeric"}
        if not kinds:
            raise UsageError(f"--raw-features: {src} has no numeric feature columns")
    y_all, has = target_vector(frame, tspec, src)
    frame, y_all = frame[has], y_all[has].astype(np.int64)
    idx = split_indices(y_all, seed=seed, test_size=test_size, validation_size=validation_size, source=src)
    frames = {s: frame.iloc[getattr(idx, s)] for s in SPLITS}
    ys = {s: y_all[getattr(idx, s)] for s in SPLITS}
    schema = fit_schema(frames["train"], kinds, tspec, source=src, allow_missing=missing_fields([frame], kinds))
    if raw_features:
        steps = []
        for f in schema.fields:
            col = pd.to_numeric(frames["train"][f.name], errors="coerce").to_numpy(dtype=np.float64)
            seen = col[~np.isnan(col)]
            steps.append(
                NumericStep(field=f.name, fill=float(np.median(seen)) if seen.size else 0.0, mean=0.0, scale=1.0)
            )
        spec = PreprocessSpec(steps=tuple(steps))
    else:
        spec = fit_preprocess(frames["train"], schema, encoding=encoding, source=src)  # type: ignore[arg-type]
    if spec.n_features != width:
        how = (
            f"its {spec.n_features} numeric columns ({', '.join(f.name for f in schema.fields)})"
            if raw_features
            else f"edgefin's preprocessing ({encoding} encoding) gives {spec.n_features} features"
        )
        fix = (
            "Drop columns the model does not take with --drop, or leave out --raw-features if the model "
            "was trained on edgefin's encoded features"
            if raw_features
            else "Pass --raw-features if the model takes the numeric columns as they are, --drop columns it does "
            "not use, or try --encoding index"
        )
        raise UsageError(f"{model_path} takes {width} input features but {src}: {how}. {fix}")
    pre = make_preprocessor(schema, spec)
    X = {s: encode_frame(frames[s], schema, pre, source=src) for s in SPLITS}
    scores = {s: predict(model, X[s]) for s in SPLITS}
    thr = choose_threshold(ys["validation"], scores["validation"], method, value)
    metrics: dict[str, Any] = {s: evaluate(ys[s], scores[s], thr) for s in ("test", "validation", "train")}
    metrics.update(
        {
            "threshold": thr,
            "threshold_method": method,
            "threshold_value": value,
            "positive_label": tspec.positive_label,
            "negative_label": tspec.negative_label,
            "model": {
                "source": str(model_path),
                "params": int(model.count_params()),
                "n_features": width,
                "imported": True,
                "raw_features": bool(raw_features),
            },
            "splits": {s: int(len(ys[s])) for s in SPLITS},
        }
    )

    rd.root.mkdir(parents=True, exist_ok=True)
    atomic.write_json(rd.schema_json, schema_to_dict(schema))
    atomic.write_json(rd.preprocess_json, spec.to_dict())
    atomic.write_json(
        rd.quality_json,
        quality_report(frame, y_all, kinds, target=target, dropped=list(drop), splits=metrics["splits"]),
    )
    for s in SPLITS:
        write_parquet(rd.split_path(s), frames[s])
    save_model(model, rd.model_path("dense"))
    atomic.write_json(rd.metrics_json, metrics)
    atomic.write_json(
        rd.run_json,
        {
            "edgefin_version": __version__,
            "created_at": datetime.now(UTC).isoformat(timespec="seconds"),
            "data": {"path": options["data"], "sha256": options["data_sha256"], "rows": int(len(frame))},
            "data_sha256": options["data_sha256"],
            "target": target,
            "positive_label": tspec.positive_label,
            "negative_label": tspec.negative_label,
            "seed": int(seed),
            # fine-tuning defaults for a model edgefin did not train: no class weights (keeps its calibration)
            "options": {**options, "augment": "none", "class_weight": False, "batch_size": 64},
            "steps": {IMPORT_STEP: {"fingerprint": fingerprint}},
        },
    )
    return rd, False
