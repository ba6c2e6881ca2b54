"""Read a trained run's data artefacts back: schema, preprocessing, splits, encoded matrices.

compress, convert and bench reuse these so that every step encodes data exactly as training did
(through the runtime's :class:`~edgefin_runtime.preprocess.Preprocessor`).
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from edgefin_runtime.errors import ManifestError
from edgefin_runtime.manifest import PreprocessSpec, Schema
from edgefin_runtime.preprocess import Preprocessor

from ..errors import RunDirError
from ..rundir import SPLITS, RunDir
from .preprocessing import encode_frame, make_preprocessor
from .schema import TargetSpec, target_vector


def run_schema(run: RunDir) -> Schema:
    """The input schema the run's model was trained on (data/schema.json)."""
    d = run.read_json(run.schema_json, "train")
    try:
        return Schema.from_dict(d, "schema")
    except ManifestError as exc:
        raise RunDirError(
            f"run directory {run.root}: data/schema.json is invalid ({exc}); re-run 'edgefin train'"
        ) from None


def run_spec(run: RunDir) -> PreprocessSpec:
    """The preprocessing spec fitted on the run's training split (data/preprocess.json)."""
    d = run.read_json(run.preprocess_json, "train")
    try:
        return PreprocessSpec.from_dict(d, "preprocessing")
    except ManifestError as exc:
        raise RunDirError(
            f"run directory {run.root}: data/preprocess.json is invalid ({exc}); re-run 'edgefin train'"
        ) from None


def run_preprocessor(run: RunDir) -> Preprocessor:
    """The runtime preprocessor with the training policy (impute; unseen categories to OOV)."""
    return make_preprocessor(run_schema(run), run_spec(run))


def load_split(run: RunDir, split: str) -> tuple[pd.DataFrame, np.ndarray]:
    """Raw rows of a split as read (target column included) and y (1 = positive/risk class)."""
    if split not in SPLITS:
        raise RunDirError(f"unknown split {split!r}; expected one of {SPLITS}")
    path = run.require(run.split_path(split), "train")
    try:
        frame = pd.read_parquet(path)
    except Exception as exc:
        raise RunDirError(
            f"run directory {run.root}: data/{split}.parquet is unreadable "
            f"({type(exc).__name__}); re-run 'edgefin train'"
        ) from None
    schema = run_schema(run)
    target = TargetSpec(schema.target, schema.positive_label, schema.negative_label)
    y, present = target_vector(frame, target, f"{run.root}/data/{split}.parquet")
    if not present.all():
        frame, y = frame[present], y[present]
    return frame, y.astype(np.int64)


def encode(run: RunDir, frame: pd.DataFrame, *, source: str = "data") -> np.ndarray:
    """Encode raw rows to the model's float32 matrix exactly as training did."""
    schema = run_schema(run)
    return encode_frame(frame, schema, make_preprocessor(schema, run_spec(run)), source=source)


def encoded_split(run: RunDir, split: str) -> tuple[np.ndarray, np.ndarray]:
    """(X float32, y) of one split: the usual input for evaluating a model of the run."""
    frame, y = load_split(run, split)
    return encode(run, frame, source=f"{run.root}/data/{split}.parquet"), y
