"""Check a run's bundles on other CPUs: x86-64 levels under qemu-x86_64, ARM64 in an emulated root.

``run_targets(RUN_DIR, "native,x86-64-v2,x86-64-v3,arm64")`` writes RUN_DIR/bundles/targets.json;
the CLI is ``edgefin targets``. Nothing here imports TensorFlow except scoring the test split with
the source Keras model on the host.
"""

from .registry import DEFAULT_TARGETS, TARGETS, Target, get_target, resolve_targets
from .run import TargetsResult, check_bundles, run_targets

__all__ = [
    "DEFAULT_TARGETS",
    "TARGETS",
    "Target",
    "TargetsResult",
    "check_bundles",
    "get_target",
    "resolve_targets",
    "run_targets",
]
