"""The dense binary classifier: a small tf_keras MLP with a scikit-learn-style contract.

``DenseClassifier(hidden=(64, 32)).fit(X, y, validation_data=(Xv, yv))`` trains with Adam and
binary cross-entropy, stops early on the validation AUC (exact, computed with scikit-learn) and
always restores the best epoch's weights. A linear path from the inputs to the output logit
(``linear=True``, the default) lets the model hold a logistic regression exactly:
``blend_linear(coef, intercept, ...)`` mixes one into the trained model's logit with the weight the
validation split prefers (weight 1 is the logistic regression itself), so the model kept is never
worse there than the logistic regression.
Constructor arguments are plain attributes; learned state lives in ``model_``, ``history_``,
``best_epoch_``. TensorFlow is imported lazily.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from .errors import ModelError
from .tftypes import KerasCallback, KerasModel

INPUT_NAME = "features"
OUTPUT_NAME = "score"
#: the layer that joins the last hidden layer and the inputs in front of the output layer
LINEAR_NAME = "linear_skip"
#: weights of the logistic regression in the output logit that :meth:`DenseClassifier.blend_linear`
#: tries (preferred first on a tie: the trained model alone, then the least linear mix)
BLEND_WEIGHTS = (0.0, 0.25, 0.5, 0.75, 1.0)
#: the output layer's L2 penalty when it sees the inputs (None: the hidden layers' ``l2``)
OUTPUT_L2_LINEAR: float | None = None
EpochCallback = Callable[[int, dict[str, float]], None]


class DenseClassifier:
    """Dense ReLU layers, a sigmoid output; early stopping on validation AUC; balanced class weights.

    Defaults (64-32 units, L2 3e-3, no dropout, Adam at 1e-3, batches of 64, patience 20) were
    chosen on the bundled credit data and on synthetic data (benchmarks/baselines.py) against
    logistic regression and gradient boosting; the L2 penalty matters most, as these small
    tabular sets overfit within a few epochs.

    With ``linear`` the output layer sees the inputs beside the last hidden layer (one
    Concatenate, so the device runs the same single FullyConnected output op, only wider).
    """

    def __init__(
        self,
        hidden: Sequence[int] = (64, 32),
        *,
        dropout: float = 0.0,
        l2: float = 3e-3,
        learning_rate: float = 1e-3,
        batch_size: int = 64,
        epochs: int = 200,
        patience: int = 20,
        class_weight: bool = True,
        linear: bool = True,
        seed: int = 42,
        verbose: int = 0,
    ) -> None:
        self.hidden = tuple(int(h) for h in hidden)
        self.dropout = dropout
        self.l2 = l2
        self.learning_rate = learning_rate
        self.batch_size = batch_size
        self.epochs = epochs
        self.patience = patience
        self.class_weight = class_weight
        self.linear = linear
        self.seed = seed
        self.verbose = verbose

    # ------------------------------------------------------------ sklearn-style params
    def get_params(self, deep: bool = True) -> dict[str, Any]:
        return {
            k: getattr(self, k)
            for k in (
                "hidden",
                "dropout",
                "l2",
                "learning_rate",
                "batch_size",
                "epochs",
                "patience",
                "class_weight",
                "linear",
                "seed",
                "verbose",
            )
        }

    def set_params(self, **params: Any) -> DenseClassifier:
        for k, v in params.items():
            if k not in self.get_params():
                raise ValueError(f"unknown parameter {k!r} for DenseClassifier")
            setattr(self, k, tuple(v) if k == "hidden" else v)
        return self

    def _validate_params(self) -> None:
        problems = []
        if not self.hidden or any(h < 1 for h in self.hidden):
            problems.append(f"hidden must be one or more positive layer sizes, got {self.hidden}")
        if not 0.0 <= self.dropout < 1.0:
            problems.append(f"dropout must be in [0, 1), got {self.dropout}")
        if self.l2 < 0:
            problems.append(f"l2 must be >= 0, got {self.l2}")
        if not self.learning_rate > 0:
            problems.append(f"learning_rate must be > 0, got {self.learning_rate}")
        if self.batch_size < 1:
            problems.append(f"batch_size must be >= 1, got {self.batch_size}")
        if self.epochs < 1:
            problems.append(f"epochs must be >= 1, got {self.epochs}")
        if self.patience < 1:
            problems.append(f"patience must be >= 1, got {self.patience}")
        if problems:
            from .errors import UsageError

            raise UsageError("; ".join(problems))

    # ------------------------------------------------------------ building
    def build(self, n_features: int, *, output_l2: float | None = None) -> KerasModel:
        """A fresh, compiled tf_keras model for ``n_features`` inputs (input layer named 'features').

        ``output_l2`` overrides the output layer's L2 penalty (default: ``l2``)."""
        from .tfcompat import keras

        reg = keras.regularizers.L2(self.l2) if self.l2 > 0 else None
        inputs = keras.Input(shape=(n_features,), name=INPUT_NAME, dtype="float32")
        x = inputs
        for i, units in enumerate(self.hidden, start=1):
            x = keras.layers.Dense(units, activation="relu", kernel_regularizer=reg, name=f"dense_{i}")(x)
            if self.dropout > 0:
                x = keras.layers.Dropout(self.dropout, name=f"dropout_{i}")(x)
        if self.linear:
            x = keras.layers.Concatenate(name=LINEAR_NAME)([x, inputs])
        if output_l2 is not None:
            reg = keras.regularizers.L2(output_l2) if output_l2 > 0 else None
        outputs = keras.layers.Dense(1, activation="sigmoid", kernel_regularizer=reg, name=OUTPUT_NAME)(x)
        model = keras.Model(inputs, outputs, name="edgefin_dense")
        model.compile(optimizer=keras.optimizers.Adam(learning_rate=self.learning_rate), loss="binary_crossentropy")
        return model

    # ------------------------------------------------------------ training
    def fit(
        self,
        X: npt.ArrayLike,
        y: npt.ArrayLike,
        *,
        validation_data: tuple[npt.ArrayLike, npt.ArrayLike] | None = None,
        on_epoch: EpochCallback | None = None,
        callbacks: Sequence[KerasCallback] = (),
    ) -> DenseClassifier:
        """Train from scratch. Without validation data there is no early stopping (all epochs run)."""
        self._validate_params()
        X, y = _check_xy(X, y, "training")
        val = None
        if validation_data is not None:
            val = _check_xy(*validation_data, "validation")
            if val[0].shape[1] != X.shape[1]:
                raise ModelError(f"validation data has {val[0].shape[1]} features, training data {X.shape[1]}")
        from .tfcompat import keras, seed_everything

        seed_everything(self.seed)
        model = self.build(X.shape[1], output_l2=OUTPUT_L2_LINEAR)
        monitor = _BestOnValAUC(val, self.patience, on_epoch) if val is not None else _Report(on_epoch)
        weights = None
        if self.class_weight:
            n, pos = y.size, int(y.sum())
            weights = {0: n / (2.0 * (n - pos)), 1: n / (2.0 * pos)}
        try:
            hist = model.fit(
                X,
                y.astype(np.float32),
                batch_size=self.batch_size,
                epochs=self.epochs,
                shuffle=True,
                class_weight=weights,
                verbose=self.verbose,
                callbacks=[keras.callbacks.TerminateOnNaN(), monitor, *callbacks],
            )
        except (ValueError, RuntimeError) as exc:  # TF's errors are long; keep the first line
            raise ModelError(f"training failed: {str(exc).strip().splitlines()[0]}") from exc
        losses = hist.history.get("loss", [])
        if not losses or not np.all(np.isfinite(losses)):
            raise ModelError(
                "training diverged (the loss became NaN or infinite); lower `learning_rate` "
                "or check the data for extreme values"
            )
        self.model_ = model
        self.history_ = {k: [float(v) for v in vals] for k, vals in hist.history.items()}
        self.n_features_in_ = int(X.shape[1])
        self.epochs_run_ = len(losses)
        self.best_epoch_ = monitor.best_epoch if val is not None else self.epochs_run_
        self.best_val_auc_ = monitor.best if val is not None else None
        return self

    # ------------------------------------------------------------ the logistic regression inside
    def blend_linear(
        self,
        coef: np.ndarray,
        intercept: float,
        X_val: npt.ArrayLike,
        y_val: npt.ArrayLike,
        weights: Sequence[float] = BLEND_WEIGHTS,
    ) -> tuple[float, dict[float, float]]:
        """Mix a linear model (a logistic regression on the same features) into the output logit.

        For each weight w the logit becomes ``(1 - w) * this model's + w * the linear model's``,
        which the linear path holds exactly (the output layer's weights are mixed; nothing is added
        to the model). The weight with the best validation AUC is kept (the first on a tie, so list
        the preferred ones first); returns it and every weight's validation AUC. Weight 1 is the
        linear model itself, so with it in ``weights`` the result is never worse on validation.
        """
        model = self._fitted()
        if not self.linear:
            raise ModelError("blend_linear needs the linear path (a model built with linear=True)")
        X_val, y_val = _check_xy(X_val, y_val, "validation")
        coef = np.asarray(coef, dtype=np.float64).reshape(-1)
        if coef.size != X_val.shape[1]:
            raise ModelError(f"the linear model has {coef.size} coefficients, the data {X_val.shape[1]} features")
        from sklearn.metrics import roc_auc_score

        from .tfcompat import keras

        out = model.get_layer(OUTPUT_NAME)
        kernel, bias = (w.astype(np.float64) for w in out.get_weights())
        joined = keras.Model(model.inputs, model.get_layer(LINEAR_NAME).output)
        own = joined.predict(X_val, batch_size=8192, verbose=0).astype(np.float64) @ kernel[:, 0] + bias[0]
        lin = X_val.astype(np.float64) @ coef + float(intercept)
        aucs = {float(w): float(roc_auc_score(y_val, (1.0 - w) * own + w * lin)) for w in weights}
        best = max(aucs, key=lambda w: (aucs[w], -list(aucs).index(w)))
        linear_kernel = np.zeros_like(kernel)
        linear_kernel[kernel.shape[0] - coef.size :, 0] = coef
        out.set_weights(
            [
                ((1.0 - best) * kernel + best * linear_kernel).astype(np.float32),
                ((1.0 - best) * bias + best * float(intercept)).astype(np.float32),
            ]
        )
        self.linear_weight_ = best
        return best, aucs

    # ------------------------------------------------------------ scoring
    def _fitted(self) -> KerasModel:
        model = getattr(self, "model_", None)
        if model is None:
            raise ModelError("this DenseClassifier is not fitted yet; call fit() or load() first")
        return model

    def predict_score(self, X: npt.ArrayLike, batch_size: int = 8192) -> np.ndarray:
        """Probability of the positive class, shape (n,), float32."""
        model = self._fitted()
        X = _check_x(X, "scoring", int(model.inputs[0].shape[-1]))
        if X.shape[0] == 0:
            return np.zeros(0, dtype=np.float32)
        return np.asarray(model.predict(X, batch_size=batch_size, verbose=0), dtype=np.float32).reshape(-1)

    def predict_proba(self, X: npt.ArrayLike) -> np.ndarray:
        """scikit-learn layout: columns are P(negative), P(positive)."""
        p = self.predict_score(X)
        return np.column_stack([1.0 - p, p])

    def predict(self, X: npt.ArrayLike, threshold: float = 0.5) -> np.ndarray:
        return (self.predict_score(X) >= threshold).astype(np.int8)

    @property
    def n_params_(self) -> int:
        return int(self._fitted().count_params())

    # ------------------------------------------------------------ persistence
    def save(self, path: str | os.PathLike[str]) -> Path:
        """Save the model in the native .keras format, atomically (:func:`edgefin.keras_io.save_model`)."""
        from .keras_io import save_model

        return save_model(self._fitted(), path)

    @classmethod
    def load(cls, path: str | os.PathLike[str]) -> DenseClassifier:
        """A classifier around a saved model; hidden sizes are read back from its layers."""
        from .keras_io import load_model

        model = load_model(path)
        hidden = [layer.units for layer in model.layers if getattr(layer, "units", None) and layer.name != OUTPUT_NAME]
        clf = cls(hidden=hidden or (1,), linear=any(layer.name == LINEAR_NAME for layer in model.layers))
        clf.model_ = model
        clf.n_features_in_ = int(model.inputs[0].shape[-1])
        return clf


# ---------------------------------------------------------------- callbacks
def _callback_base() -> type:
    from .tfcompat import keras

    return keras.callbacks.Callback


class _Report:
    """Reports each epoch's logs to ``on_epoch`` (no validation, no early stopping)."""

    def __new__(cls, on_epoch: EpochCallback | None) -> KerasCallback:
        base = _callback_base()

        class Report(base):  # type: ignore[misc, valid-type]
            def on_epoch_end(self, epoch: int, logs: dict[str, float] | None = None) -> None:
                if on_epoch is not None:
                    on_epoch(epoch + 1, {k: float(v) for k, v in (logs or {}).items()})

        return Report()


class _BestOnValAUC:
    """Computes the exact validation AUC after each epoch, stops after ``patience`` epochs without
    improvement, and restores the best weights at the end however training ended."""

    def __new__(
        cls, val: tuple[np.ndarray, np.ndarray], patience: int, on_epoch: EpochCallback | None
    ) -> KerasCallback:
        from sklearn.metrics import roc_auc_score

        base = _callback_base()
        xv, yv = val

        class BestOnValAUC(base):  # type: ignore[misc, valid-type]
            def __init__(self) -> None:
                super().__init__()
                self.best = -np.inf
                self.best_epoch = 0
                self.best_weights: list[np.ndarray] | None = None
                self.wait = 0

            def on_epoch_end(self, epoch: int, logs: dict[str, float] | None = None) -> None:
                logs = logs if logs is not None else {}
                p = self.model.predict(xv, batch_size=8192, verbose=0).reshape(-1)
                auc = float(roc_auc_score(yv, p)) if np.all(np.isfinite(p)) else float("nan")
                logs["val_auc"] = auc
                if auc > self.best + 1e-5:
                    self.best, self.best_epoch, self.wait = auc, epoch + 1, 0
                    self.best_weights = self.model.get_weights()
                else:
                    self.wait += 1
                    if self.wait >= patience or not np.isfinite(auc):
                        self.model.stop_training = True
                if on_epoch is not None:
                    on_epoch(epoch + 1, {**{k: float(v) for k, v in logs.items()}, "best_val_auc": self.best})

            def on_train_end(self, logs: dict[str, float] | None = None) -> None:
                if self.best_weights is not None:
                    self.model.set_weights(self.best_weights)

        return BestOnValAUC()


# ---------------------------------------------------------------- input checks
def _check_x(X: npt.ArrayLike, what: str, n_features: int | None = None) -> np.ndarray:
    X = np.asarray(X, dtype=np.float32)
    if X.ndim != 2:
        raise ModelError(f"{what} features must be a 2-D matrix, got shape {X.shape}")
    if n_features is not None and X.shape[1] != n_features:
        raise ModelError(f"{what} features have {X.shape[1]} columns, the model expects {n_features}")
    if not np.isfinite(X).all():
        bad = np.argwhere(~np.isfinite(X))[0]
        raise ModelError(
            f"{what} features contain NaN or infinity (row {bad[0]}, column {bad[1]}); "
            f"encode data through the preprocessing spec, which imputes missing values"
        )
    return X


def _check_xy(X: npt.ArrayLike, y: npt.ArrayLike, what: str) -> tuple[np.ndarray, np.ndarray]:
    X = _check_x(X, what)
    y = np.asarray(y).reshape(-1)
    if y.shape[0] != X.shape[0]:
        raise ModelError(f"{what}: {X.shape[0]} feature rows but {y.shape[0]} labels")
    if not set(np.unique(y).tolist()) <= {0, 1}:
        raise ModelError(f"{what} labels must be 0/1")
    if y.size == 0 or y.min() == y.max():
        raise ModelError(f"{what} data needs rows of both classes")
    return X, y.astype(np.int8)
