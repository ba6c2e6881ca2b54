"""The one fine-tuning loop that pruning, clustering and QAT share.

Adam on binary cross-entropy (class-weighted like the dense model was), the exact validation AUC
after every epoch, and the weights of the best epoch kept, but only among epochs at or after
``select_from`` (for pruning: once the target sparsity is reached, so the kept model has it).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from ..errors import ModelError
from ..tftypes import KerasCallback, KerasModel

EpochHook = Callable[[str, int, int, dict[str, float]], None]  # stage, epoch, total, logs


@dataclass(frozen=True)
class FitData:
    """Training rows (already augmented if the dense model's were) and validation rows, encoded."""

    x_train: np.ndarray
    y_train: np.ndarray
    x_val: np.ndarray
    y_val: np.ndarray
    batch_size: int = 64
    class_weight: bool = True

    def steps_per_epoch(self) -> int:
        return int(np.ceil(len(self.y_train) / self.batch_size))

    def weights(self) -> dict[int, float] | None:
        if not self.class_weight:
            return None
        n, pos = self.y_train.size, int(self.y_train.sum())
        if pos == 0 or pos == n:
            return None
        return {0: n / (2.0 * (n - pos)), 1: n / (2.0 * pos)}


def fine_tune(
    model: KerasModel,
    data: FitData,
    *,
    stage: str,
    epochs: int,
    learning_rate: float,
    seed: int,
    select_from: int = 0,
    callbacks: Sequence[KerasCallback] = (),
    on_epoch: EpochHook | None = None,
) -> dict[str, Any]:
    """Compile and fit ``model`` in place; keep the best epoch >= ``select_from`` (1-based) on validation AUC."""
    from sklearn.metrics import roc_auc_score

    from ..tfcompat import keras, seed_everything

    seed_everything(seed)
    model.compile(optimizer=keras.optimizers.Adam(learning_rate), loss="binary_crossentropy")
    xv, yv = data.x_val, data.y_val

    class _Best(keras.callbacks.Callback):
        def __init__(self) -> None:
            super().__init__()
            self.best, self.best_epoch, self.best_weights = -np.inf, 0, None
            self.history: list[float] = []

        def on_epoch_end(self, epoch: int, logs: dict[str, float] | None = None) -> None:
            logs = logs if logs is not None else {}
            p = self.model.predict(xv, batch_size=8192, verbose=0).reshape(-1)
            auc = float(roc_auc_score(yv, p)) if np.isfinite(p).all() else float("nan")
            logs["val_auc"] = auc
            self.history.append(auc)
            if epoch + 1 >= select_from and np.isfinite(auc) and auc > self.best:
                self.best, self.best_epoch = auc, epoch + 1
                self.best_weights = self.model.get_weights()
            if on_epoch is not None:
                on_epoch(stage, epoch + 1, epochs, {k: float(v) for k, v in logs.items()})

    best = _Best()
    try:
        hist = model.fit(
            data.x_train,
            data.y_train.astype(np.float32),
            batch_size=data.batch_size,
            epochs=epochs,
            shuffle=True,
            class_weight=data.weights(),
            verbose=0,
            callbacks=[keras.callbacks.TerminateOnNaN(), *callbacks, best],
        )
    except (ValueError, RuntimeError) as exc:
        raise ModelError(f"{stage} fine-tuning failed: {str(exc).strip().splitlines()[0]}") from None
    losses = hist.history.get("loss", [])
    if not losses or not np.all(np.isfinite(losses)) or best.best_weights is None:
        raise ModelError(
            f"{stage} fine-tuning diverged (the loss or the validation scores became NaN); "
            f"lower the {stage} learning rate"
        )
    model.set_weights(best.best_weights)
    return {
        "epochs": epochs,
        "best_epoch": best.best_epoch,
        "best_val_auc": best.best,
        "val_auc_per_epoch": [round(a, 6) for a in best.history],
        "selected_from_epoch": max(1, select_from),
        "learning_rate": learning_rate,
        "final_loss": float(losses[-1]),
    }
