"""Atomic bundle writing, golden-vector selection and manifest assembly (no TensorFlow needed)."""

from __future__ import annotations

import json

import numpy as np
import pytest

from edgefin_converters import bundle_writer as bw
from edgefin_runtime.manifest import FieldSpec, Schema


class Crash(RuntimeError):
    pass


def _crash(_path):
    raise Crash("power cut")


def test_write_bundle_is_atomic(tmp_path, monkeypatch):
    path = tmp_path / "bundles" / "tflite-int8.efb"
    bw.write_bundle(path, b"old bundle")
    monkeypatch.setattr(bw, "_before_replace", _crash)
    with pytest.raises(Crash):
        bw.write_bundle(path, b"new bundle, never complete")
    assert path.read_bytes() == b"old bundle"  # the previous bundle is untouched
    assert sorted(p.name for p in path.parent.iterdir()) == ["tflite-int8.efb"]  # no temp file left


def test_interrupted_first_write_leaves_nothing(tmp_path, monkeypatch):
    monkeypatch.setattr(bw, "_before_replace", _crash)
    with pytest.raises(Crash):
        bw.write_bundle(tmp_path / "onnx-fp32.efb", b"x" * 1000)
    assert list(tmp_path.iterdir()) == []


SCHEMA = Schema(fields=(FieldSpec("income", "numeric", allow_missing=True),
                        FieldSpec("age", "numeric"),
                        FieldSpec("region", "categorical", allow_missing=True, categories=("n", "s"))),
                target="default", positive_label="yes", negative_label="no")


def _columns(n=50):
    rng = np.random.default_rng(0)
    income = rng.normal(100, 10, n)
    income[[3, 17]] = np.nan
    region = np.array(["n", "s"] * (n // 2), dtype=object)
    region[9] = None
    return {"income": income, "age": np.arange(n, dtype=np.int64) + 20, "region": region}


def test_golden_selection_covers_missing_values_and_the_score_range():
    cols = _columns()
    scores = np.linspace(0.01, 0.99, 50)
    usable = np.ones(50, dtype=bool)
    usable[17] = False  # a rejected row is never a golden vector
    idx = bw.select_golden(cols, SCHEMA, scores, usable, threshold=0.5)
    assert len(idx) == bw.GOLDEN_COUNT == len(set(idx))
    assert 17 not in idx
    assert 3 in idx and 9 in idx  # a missing income and a missing region
    assert 0 in idx and 49 in idx  # lowest and highest score
    assert any(scores[i] < 0.5 for i in idx) and any(scores[i] >= 0.5 for i in idx)
    assert idx == bw.select_golden(cols, SCHEMA, scores, usable, threshold=0.5)  # deterministic


def test_golden_records_are_strict_json_with_none_for_missing():
    cols = _columns()
    rec3 = bw.golden_record(cols, SCHEMA, 3)
    rec9 = bw.golden_record(cols, SCHEMA, 9)
    assert rec3["income"] is None and isinstance(rec3["age"], int) and rec3["region"] == "s"
    assert rec9["region"] is None and isinstance(rec9["income"], float)
    json.dumps([rec3, rec9], allow_nan=False)


def test_producer_names_the_libraries():
    p = bw.producer({"edgefin": "9.9"})
    assert p["tool"] == "edgefin-converters" and p["edgefin"] == "9.9"
    for lib in ("tensorflow", "tf2onnx", "onnxruntime", "ai-edge-litert", "numpy", "edgefin-runtime"):
        assert lib in p["libraries"]


def test_json_safe_turns_numpy_and_nan_into_plain_json():
    out = bw._json_safe({"a": np.float32(0.5), "b": np.int64(3), "c": float("nan"), "d": np.array([1, 2]),
                         "e": (np.bool_(True),)})
    assert out == {"a": 0.5, "b": 3, "c": None, "d": [1, 2], "e": [True]}
    json.dumps(out, allow_nan=False)
