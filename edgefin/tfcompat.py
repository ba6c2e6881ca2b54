"""The one door to TensorFlow: Keras 2 (tf_keras) for TFMOT, quiet logs, deterministic ops.

Import TensorFlow only through here (``from edgefin.tfcompat import tf, keras``), and only inside
functions that need it, so ``edgefin --help`` and the runtime never pay for it.
"""

from __future__ import annotations

import os

os.environ.setdefault("TF_USE_LEGACY_KERAS", "1")  # tf.keras -> tf_keras (Keras 2), which TFMOT needs
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
os.environ.setdefault("TF_ENABLE_ONEDNN_OPTS", "0")  # bit-stable CPU results across runs

import logging  # noqa: E402

import tensorflow as tf  # noqa: E402
import tf_keras as keras  # noqa: E402

tf.get_logger().setLevel(logging.ERROR)
logging.getLogger("absl").setLevel(logging.ERROR)


def seed_everything(seed: int) -> None:
    """Make training reproducible on one machine (Python, NumPy and TF seeds; deterministic ops)."""
    keras.utils.set_random_seed(int(seed))
    try:
        tf.config.experimental.enable_op_determinism()
    except Exception:  # pragma: no cover - older TF
        pass


__all__ = ["tf", "keras", "seed_everything"]
