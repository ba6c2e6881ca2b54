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
import re  # noqa: E402
import sys  # noqa: E402
import tempfile  # noqa: E402
from typing import Any  # noqa: E402

# TensorFlow's native code prints start-up notices (no CUDA driver, oneDNN) straight to fd 2 before
# its logging is configured, so no environment variable silences them. Capture fd 2 while importing
# and pass through every line that is not one of those known notices.
_NOISE = re.compile(
    r"absl::InitializeLog|cudart_stub|cuda_(dnn|fft|blas|driver)|port\.cc:\d+\] oneDNN|"
    r"computation_placer|Unable to register cu|TF-TRT Warning|cpu_feature_guard|"
    r"To enable the following instructions|rebuild TensorFlow"
)


def _import_quietly() -> tuple[Any, Any]:
    sys.stderr.flush()
    saved = os.dup(2)
    with tempfile.TemporaryFile() as cap:
        os.dup2(cap.fileno(), 2)
        try:
            import tensorflow
            import tf_keras
        finally:
            os.dup2(saved, 2)
            os.close(saved)
            cap.seek(0)
            for line in cap.read().decode("utf-8", "replace").splitlines():
                if line.strip() and not _NOISE.search(line):
                    print(line, file=sys.stderr)
    return tensorflow, tf_keras


tf, keras = _import_quietly()

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
