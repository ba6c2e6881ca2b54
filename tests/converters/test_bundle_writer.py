"""Atomic bundle writing and manifest assembly (no TensorFlow needed)."""

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


def test_make_manifest_carries_the_acceptance_set():
    from edgefin_runtime.manifest import (
        AcceptanceSet,
        Decision,
        Manifest,
        ModelSpec,
        NumericStep,
        PreprocessSpec,
        TensorSpec,
    )

    schema = Schema(
        fields=(FieldSpec("income", "numeric", min=0.0, max=1000.0),),
        target="default",
        positive_label="yes",
        negative_label="no",
    )
    acc = AcceptanceSet(
        records=({"income": 12.5},),
        scores=(0.25,),
        source_scores=(0.5,),
        source_stage="dense",
        kinds=("spread",),
        seed=3,
    )
    m = bw.make_manifest(
        schema=schema,
        preprocessing=PreprocessSpec((NumericStep("income", 0.0, 0.0, 1.0),)),
        model=ModelSpec(
            "onnx",
            "onnx-fp32",
            "model.onnx",
            (TensorSpec("x", (-1, 1), "float32"),),
            (TensorSpec("y", (-1, 1), "float32"),),
        ),
        decision=Decision(0.5, "yes"),
        acceptance=acc,
    )
    d = json.loads(m.to_json_bytes())
    assert d["acceptance"]["fields"] == ["income"] and d["acceptance"]["records"] == [[12.5]]
    assert d["acceptance"]["seed"] == 3
    assert Manifest.from_dict({**d, "members": {"model.onnx": "0" * 64}}).acceptance == acc


def test_producer_names_the_libraries():
    p = bw.producer({"edgefin": "9.9"})
    assert p["tool"] == "edgefin-converters" and p["edgefin"] == "9.9"
    for lib in ("tensorflow", "tf2onnx", "onnxruntime", "ai-edge-litert", "numpy", "edgefin-runtime"):
        assert lib in p["libraries"]


def test_json_safe_turns_numpy_and_nan_into_plain_json():
    out = bw._json_safe(
        {"a": np.float32(0.5), "b": np.int64(3), "c": float("nan"), "d": np.array([1, 2]), "e": (np.bool_(True),)}
    )
    assert out == {"a": 0.5, "b": 3, "c": None, "d": [1, 2], "e": [True]}
    json.dumps(out, allow_nan=False)
