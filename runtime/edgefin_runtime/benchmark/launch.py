"""Spawn one measuring worker (:mod:`.worker`, by path) and always get a result dict back.

The worker runs on this Python (``sys.executable``) unless ``EDGEFIN_BENCH_PYTHON`` gives another
command (split like a shell would): under user-mode emulation without binfmt, a process cannot exec
an emulated binary itself, so the emulated Python is named with its emulator, e.g.
``EDGEFIN_BENCH_PYTHON="/usr/bin/qemu-aarch64-static -cpu cortex-a72 /usr/bin/python3"``.
"""

from __future__ import annotations

import json
import os
import shlex
import subprocess
import sys
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

WORKER = Path(__file__).with_name("worker.py")


def spawn_worker(
    spec: Mapping[str, Any], workdir: Path, name: str, timeout_s: float, *, python: str | None = None
) -> dict[str, Any]:
    """Run one worker process on ``spec``; return its result (status ok / does_not_fit / error / crashed)."""
    from ..atomic import write_bytes

    spec_path = workdir / f"{name}.spec.json"
    out_path = workdir / f"{name}.result.json"
    write_bytes(spec_path, json.dumps({**spec, "out": str(out_path)}).encode("utf-8"))
    if out_path.exists():
        out_path.unlink()
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3", "PYTHONDONTWRITEBYTECODE": "1"}
    env["EDGEFIN_BENCH_SPAWN_NS"] = str(time.time_ns())  # last thing before the spawn: cold start starts here
    try:
        proc = subprocess.run(
            [*(shlex.split(python or os.environ.get("EDGEFIN_BENCH_PYTHON", "")) or [sys.executable]), str(WORKER)]
            + [str(spec_path)],
            env=env,
            capture_output=True,
            timeout=timeout_s,
            check=False,
        )
    except subprocess.TimeoutExpired:
        return {"status": "error", "error": f"timed out after {timeout_s:.0f} s"}
    if out_path.exists():
        try:
            result: dict[str, Any] = json.loads(out_path.read_text(encoding="utf-8"))
            return result
        except ValueError as exc:
            return {"status": "error", "error": f"unreadable worker result ({exc})"}
    tail = proc.stderr.decode("utf-8", "replace").strip().splitlines()[-3:]
    how = f"killed by signal {-proc.returncode}" if proc.returncode < 0 else f"exit code {proc.returncode}"
    return {"status": "crashed", "error": f"worker died without a result ({how}): " + " | ".join(tail)}
