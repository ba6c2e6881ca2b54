"""Small models of every format a user brings, made here, and the data they were trained on.

Columns on very different scales (a, b in tens, c in hundreds, d around 1) with gaps in b, so that
the models need their own preprocessing (Normalization / BatchNormalization) and the bundles need the
median fill. Every model is trained for a few epochs only: the tests check conversion, not skill.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

COLUMNS = ["a", "b", "c", "d"]
EPOCHS = 25


@pytest.fixture(scope="session")
def user_data(tmp_path_factory):
    rng = np.random.default_rng(11)
    n = 1200
    x = rng.normal(size=(n, 4)) * [1.0, 10.0, 100.0, 0.1] + [0.0, 5.0, 50.0, 1.0]
    logit = 1.5 * x[:, 0] + 0.15 * (x[:, 1] - 5) - 0.01 * (x[:, 2] - 50) + 4 * (x[:, 3] - 1)
    y = (logit + rng.logistic(size=n) * 0.7 > 0.3).astype(int)
    frame = pd.DataFrame(x, columns=COLUMNS)
    frame.loc[rng.random(n) < 0.04, "b"] = np.nan
    frame["label"] = y
    path = tmp_path_factory.mktemp("ingest") / "loans.csv"
    frame.to_csv(path, index=False)
    return path, frame


def training_matrix(frame: pd.DataFrame) -> tuple[np.ndarray, np.ndarray]:
    """What the user trained on: their own gap filling (the median), raw scales."""
    x = frame[COLUMNS].fillna(frame[COLUMNS].median()).to_numpy("float32")
    return x, frame["label"].to_numpy("float32")


def keras3_sequential(frame: pd.DataFrame):
    import keras

    keras.utils.set_random_seed(0)
    x, y = training_matrix(frame)
    norm = keras.layers.Normalization(name="norm")
    norm.adapt(x)
    model = keras.Sequential(
        [
            keras.Input((4,)),
            norm,
            keras.layers.Dense(16, activation="relu", name="h1"),
            keras.layers.Dropout(0.1),
            keras.layers.Dense(1, activation="sigmoid", name="p"),
        ]
    )
    model.compile("adam", "binary_crossentropy")
    model.fit(x, y, epochs=EPOCHS, verbose=0, batch_size=64)
    return model


def keras3_functional(frame: pd.DataFrame, *, extra=None):
    """Functional Keras 3: Normalization, two Dense branches joined by Concatenate, BatchNormalization;
    ``extra`` (a Keras 3 layer) goes after the join (e.g. one edgefin cannot rebuild in tf_keras)."""
    import keras

    keras.utils.set_random_seed(1)
    x, y = training_matrix(frame)
    inp = keras.Input((4,), name="features")
    norm = keras.layers.Normalization(name="norm")
    norm.adapt(x)
    h = norm(inp)
    a = keras.layers.Dense(8, activation="relu", name="left")(h)
    b = keras.layers.Dense(8, activation="tanh", name="right")(h)
    h = keras.layers.Concatenate(name="join")([a, b])
    h = keras.layers.BatchNormalization(name="bn")(h)
    if extra is not None:
        h = extra(h)
    out = keras.layers.Dense(1, activation="sigmoid", name="p")(h)
    model = keras.Model(inp, out)
    model.compile("adam", "binary_crossentropy")
    model.fit(x, y, epochs=EPOCHS, verbose=0, batch_size=64)
    return model


def tf_keras_bn_dropout(frame: pd.DataFrame):
    """tf_keras functional: BatchNormalization on the raw input, Dense, Dropout."""
    from edgefin.tfcompat import keras, seed_everything

    seed_everything(2)
    x, y = training_matrix(frame)
    inp = keras.Input((4,), name="x")
    h = keras.layers.BatchNormalization(name="bn_in")(inp)
    h = keras.layers.Dense(16, activation="relu", name="h1")(h)
    h = keras.layers.Dropout(0.2, name="drop")(h)
    h = keras.layers.BatchNormalization(name="bn_h")(h)
    model = keras.Model(inp, keras.layers.Dense(1, activation="sigmoid", name="p")(h))
    model.compile(optimizer="adam", loss="binary_crossentropy")
    model.fit(x, y, epochs=EPOCHS, verbose=0, batch_size=64)
    return model


@pytest.fixture(scope="session")
def models(user_data, tmp_path_factory):
    """Every format, saved as a user would: {name: path}."""
    import keras

    _, frame = user_data
    d = tmp_path_factory.mktemp("models")
    out = {}
    keras3_sequential(frame).save(d / "k3_seq.keras")
    out["keras3-sequential"] = d / "k3_seq.keras"
    keras3_functional(frame).save(d / "k3_fn.keras")
    out["keras3-functional"] = d / "k3_fn.keras"
    tk = tf_keras_bn_dropout(frame)
    tk.save(d / "tfk.keras")
    out["tf_keras-keras"] = d / "tfk.keras"
    tk.save(d / "tfk.h5", save_format="h5")
    out["tf_keras-h5"] = d / "tfk.h5"
    tk.save(d / "tfk_savedmodel", save_format="tf")
    out["tf_keras-savedmodel"] = d / "tfk_savedmodel"
    # an ONNX model, converted from a small tf_keras model by tf2onnx, named as its user named it
    import tensorflow as tf
    import tf2onnx

    proto, _ = tf2onnx.convert.from_keras(tk, input_signature=[tf.TensorSpec((None, 4), tf.float32, name="x")])
    (d / "scorer.onnx").write_bytes(proto.SerializeToString())
    out["onnx"] = d / "scorer.onnx"
    assert keras.__version__.startswith("3.")
    return out


def own_scores(kind: str, path, x: np.ndarray) -> np.ndarray:
    """The user's own scores, by the user's own framework (not through edgefin)."""
    if kind.startswith("keras3"):
        import keras

        return np.asarray(keras.saving.load_model(path, compile=False).predict(x, verbose=0)).ravel()
    if kind == "onnx":
        import onnxruntime as ort

        s = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
        return np.asarray(s.run(None, {s.get_inputs()[0].name: x})[0]).ravel()
    if kind == "tf_keras-savedmodel":
        import tensorflow as tf

        fn = tf.saved_model.load(str(path)).signatures["serving_default"]
        arg = next(iter(fn.structured_input_signature[1]))
        return np.asarray(next(iter(fn(**{arg: tf.constant(x)}).values()))).ravel()
    from edgefin.tfcompat import keras

    return np.asarray(keras.models.load_model(path, compile=False)(x, training=False)).ravel()


@pytest.fixture(scope="session")
def own():
    """The user's own scoring function (own_scores), for the test modules."""
    return own_scores


@pytest.fixture(scope="session")
def keras3_unmappable(user_data, tmp_path_factory):
    """A Keras 3 functional model with a LayerNormalization, which edgefin does not rebuild in tf_keras."""
    import keras

    _, frame = user_data
    path = tmp_path_factory.mktemp("models") / "k3_layernorm.keras"
    keras3_functional(frame, extra=keras.layers.LayerNormalization(name="ln")).save(path)
    return path
