"""edgefin.keras_io: the one way the toolkit saves and loads Keras models (atomic, typed errors naming the file)."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from edgefin import atomic
from edgefin.errors import ModelError
from edgefin.keras_io import load_model, save_model

REPO = Path(__file__).resolve().parents[2]


def small_model():
    from edgefin.tfcompat import keras

    inp = keras.Input((3,), name="features")
    out = keras.layers.Dense(1, activation="sigmoid", name="score")(keras.layers.Dense(4, name="h")(inp))
    model = keras.Model(inp, out)
    model.compile(optimizer="adam", loss="binary_crossentropy")
    model.fit(np.ones((8, 3), np.float32), np.ones(8, np.float32), epochs=1, verbose=0)  # optimizer state exists
    return model


def test_round_trip_without_optimizer_state_and_no_temp_files(tmp_path):
    model = small_model()
    optimizer = model.optimizer
    path = save_model(model, tmp_path / "m" / "model.keras")
    assert model.optimizer is optimizer  # the caller's model keeps its optimizer
    assert sorted(p.name for p in path.parent.iterdir()) == ["model.keras"]
    back = load_model(path)
    x = np.arange(6, dtype=np.float32).reshape(2, 3)
    np.testing.assert_array_equal(back.predict(x, verbose=0), model.predict(x, verbose=0))
    assert back.optimizer is None  # loaded uncompiled, and the file holds no optimizer variables
    import zipfile

    with zipfile.ZipFile(path) as zf:
        assert not any("optimizer" in name for name in _h5_names(zf))


def _h5_names(zf):
    import io

    import h5py

    names: list[str] = []
    with h5py.File(io.BytesIO(zf.read("model.weights.h5")), "r") as h5:
        h5.visit(names.append)
    return names


def test_a_failed_write_keeps_the_old_file(tmp_path, monkeypatch):
    model = small_model()
    path = save_model(model, tmp_path / "model.keras")
    before = path.read_bytes()

    def crash(_):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(atomic, "_before_replace", crash)
    with pytest.raises(ModelError, match=r"cannot write model file .*model\.keras.*No space left"):
        save_model(model, path)
    assert path.read_bytes() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["model.keras"]


def test_save_refuses_another_suffix(tmp_path):
    with pytest.raises(ModelError, match=r"model path .*model\.h5 must end in \.keras"):
        save_model(small_model(), tmp_path / "model.h5")
    assert list(tmp_path.iterdir()) == []


def test_load_errors_name_the_file(tmp_path):
    with pytest.raises(ModelError, match=r"model file .*missing\.keras not found"):
        load_model(tmp_path / "missing.keras")
    (tmp_path / "dir.keras").mkdir()
    with pytest.raises(ModelError, match=r"dir\.keras is a directory"):
        load_model(tmp_path / "dir.keras")
    (tmp_path / "junk.keras").write_bytes(b"not a zip")
    with pytest.raises(ModelError, match=r"cannot load Keras model .*junk\.keras: .*damaged"):
        load_model(tmp_path / "junk.keras")


def test_a_lambda_layer_is_named_with_the_fix(tmp_path):
    from edgefin.tfcompat import keras

    inp = keras.Input((3,), name="features")
    out = keras.layers.Dense(1, activation="sigmoid")(keras.layers.Lambda(lambda t: t * 2.0)(inp))
    path = save_model(keras.Model(inp, out), tmp_path / "lam.keras")
    with pytest.raises(ModelError, match=r"lam\.keras: it holds a Lambda layer.*Replace the Lambda"):
        load_model(path)


def test_a_plain_model_loads_without_importing_tfmot(tmp_path):
    """TFMOT is imported only for files that hold its layers (the benchmark worker's cold start)."""
    path = save_model(small_model(), tmp_path / "dense.keras")
    code = (
        "import sys; from edgefin.keras_io import load_model; load_model(sys.argv[1]); "
        "print('tensorflow_model_optimization' in sys.modules)"
    )
    out = subprocess.run([sys.executable, "-c", code, str(path)], capture_output=True, text=True, cwd=REPO, timeout=300)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "False"


def test_nothing_else_in_the_toolkit_saves_or_loads_keras_models():
    """Source audit: keras' model.save / load_model are called in edgefin/keras_io.py only (tf_keras), and
    in edgefin/ingest/keras3.py for a user's Keras 3 files (another library: its own load and atomic save)."""
    offenders = []
    for path in sorted((REPO / "edgefin").rglob("*.py")):
        if path.name == "keras_io.py" and path.parent.name == "edgefin":
            continue
        if path.name == "keras3.py" and path.parent.name == "ingest":
            continue
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute):
                f = node.func
                receiver = f.value.id if isinstance(f.value, ast.Name) else getattr(f.value, "attr", "")
                if (f.attr in ("save", "save_weights", "load_weights") and receiver not in ("clf", "keras3")) or (
                    f.attr == "load_model" and receiver == "models"
                ):
                    offenders.append(f"{path.relative_to(REPO)}:{node.lineno}")
    assert offenders == []
