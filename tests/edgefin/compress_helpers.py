"""Tiny models, data and runs for the compression tests (seconds, not minutes)."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from edgefin.compress.finetune import FitData


def xy(n: int = 600, k: int = 12, seed: int = 0, share: float = 0.3) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, k)).astype(np.float32)
    logit = 1.5 * X[:, 0] - X[:, 1] + 0.8 * X[:, 2] * X[:, 3] + 0.5 * X[:, 4]
    y = (logit + rng.logistic(size=n) * 0.5 > np.quantile(logit, 1 - share)).astype(np.int64)
    return X, y


def fit_data(k: int = 12, batch_size: int = 32) -> FitData:
    X, y = xy(600, k, seed=0)
    Xv, yv = xy(300, k, seed=1)
    return FitData(X, y, Xv, yv, batch_size=batch_size, class_weight=True)


def dense_model(k: int = 12, hidden: tuple[int, ...] = (32, 16), *, train_on: FitData | None = None, seed: int = 0):
    """A functional tf_keras MLP like DenseClassifier's (input 'features', sigmoid output 'score')."""
    from edgefin.tfcompat import keras, seed_everything

    seed_everything(seed)
    inp = keras.Input((k,), name="features")
    x = inp
    for i, h in enumerate(hidden):
        x = keras.layers.Dense(h, activation="relu", name=f"dense_{i + 1}")(x)
    out = keras.layers.Dense(1, activation="sigmoid", name="score")(x)
    model = keras.Model(inp, out)
    if train_on is not None:
        model.compile(keras.optimizers.Adam(1e-2), "binary_crossentropy")
        model.fit(train_on.x_train, train_on.y_train.astype(np.float32), epochs=5, batch_size=32, verbose=0)
    return model


def tiny_run(root: Path, *, augment: str = "none", seed: int = 42) -> Path:
    """A real edgefin run (train step) on 600 synthetic loan rows with a 16-8 model."""
    from edgefin.train import train
    from tests.fixtures.tabular import loans

    train(
        loans(600, seed=3),
        root,
        target="default",
        positive="yes",
        hidden=(16, 8),
        epochs=8,
        patience=8,
        learning_rate=0.01,
        seed=seed,
        augment=augment,
    )
    return root
