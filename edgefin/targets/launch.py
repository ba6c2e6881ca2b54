"""Run the probe script on one target: natively, under ``qemu-x86_64 -cpu``, or in the ARM64 root."""

from __future__ import annotations

import collections
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .. import atomic
from .errors import ProbeError
from .registry import QEMU_X86, Target

PROBE = Path(__file__).with_name("probe.py")
#: qemu's notes about CPUID bits its TCG cannot offer (pcid, x2apic, ...): noise, not a finding
_NOISE = (
    "TCG doesn't support requested feature",
    "Error in cpuinfo:",
    "onnxruntime warning: cpuinfo_initialize failed",
)


@dataclass
class ProbeRun:
    """One probe process: its parsed output (None when it died first) and how it ended."""

    target: str
    output: dict[str, Any] | None
    returncode: int
    seconds: float
    stderr_tail: list[str] = field(default_factory=list)

    @property
    def died(self) -> str | None:
        """Why the process produced no output ("killed by SIGILL", "exit 1"), or None."""
        if self.output is not None:
            return None
        if self.returncode < 0:
            try:
                name = signal.Signals(-self.returncode).name
            except ValueError:
                name = f"signal {-self.returncode}"
            return f"the probe process was killed by {name}"
        return f"the probe process exited with code {self.returncode} and wrote no result"


def runtime_dir() -> Path:
    """The folder that holds the ``edgefin_runtime`` package (goes on the probe's PYTHONPATH)."""
    import edgefin_runtime

    return Path(edgefin_runtime.__file__).resolve().parent.parent


def run_probe(
    target: Target, job: dict[str, Any], *, on_line: Callable[[str], None] | None = None, timeout: float = 3600.0
) -> ProbeRun:
    """Write ``job`` (see probe.py), run the probe on ``target`` and read its output."""
    if target.kind == "arm64":
        return _run_arm64(target, job, on_line, timeout)
    with tempfile.TemporaryDirectory(prefix="edgefin-targets-") as tmp:
        inp, out = Path(tmp) / "input.json", Path(tmp) / "output.json"
        atomic.write_text(inp, json.dumps(job, allow_nan=False))
        argv = [sys.executable, str(PROBE), str(inp), str(out)]
        if target.kind == "x86":
            argv = [shutil.which(QEMU_X86) or QEMU_X86, "-cpu", str(target.cpu), *argv]
        env = {
            "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
            "HOME": os.environ.get("HOME", "/tmp"),
            "LANG": "C.UTF-8",
            "PYTHONPATH": str(runtime_dir()),
            "PYTHONDONTWRITEBYTECODE": "1",
            "OMP_NUM_THREADS": "1",
        }
        return _execute(target.name, argv, env, out, on_line, timeout)


def _run_arm64(target: Target, job: dict[str, Any], on_line: Callable[[str], None] | None, timeout: float) -> ProbeRun:
    """Stage the runtime, the probe and the bundles in a private folder of the root's /tmp, run, clean up."""
    from . import arm64root

    info = arm64root.read_ready()
    if info is None:
        raise ProbeError("the arm64 root is not built; run 'make targets' (or edgefin targets, which builds it)")
    inner = f"/tmp/edgefin-targets-{uuid.uuid4().hex[:12]}"
    stage = info.root / inner.lstrip("/")
    try:
        (stage / "bundles").mkdir(parents=True)
        shutil.copytree(
            runtime_dir() / "edgefin_runtime",
            stage / "runtime" / "edgefin_runtime",
            ignore=shutil.ignore_patterns("__pycache__"),
        )
        shutil.copy2(PROBE, stage / "probe.py")
        staged = dict(job, bundles=[])
        for i, b in enumerate(job["bundles"]):
            name = f"{i:03d}-{Path(b['path']).name}"
            shutil.copy2(b["path"], stage / "bundles" / name)
            staged["bundles"].append(dict(b, path=f"{inner}/bundles/{name}"))
        atomic.write_text(stage / "input.json", json.dumps(staged, allow_nan=False))
        argv, env = arm64root.python_command(
            info.root,
            [f"{inner}/probe.py", f"{inner}/input.json", f"{inner}/output.json"],
            extra_path=[f"{inner}/runtime"],
            cpu=str(target.cpu),
        )
        return _execute(target.name, argv, env, stage / "output.json", on_line, timeout)
    finally:
        shutil.rmtree(stage, ignore_errors=True)


def _execute(
    name: str, argv: list[str], env: dict[str, str], out: Path, on_line: Callable[[str], None] | None, timeout: float
) -> ProbeRun:
    t0 = time.perf_counter()
    tail: collections.deque[str] = collections.deque(maxlen=20)
    try:
        proc = subprocess.Popen(
            argv,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            text=True,
            errors="replace",
        )
    except OSError as exc:
        raise ProbeError(f"target {name}: cannot start {argv[0]} ({exc})") from None
    timer = threading.Timer(timeout, proc.kill)
    timer.start()
    try:
        assert proc.stderr is not None
        for line in proc.stderr:
            line = line.rstrip("\n")
            if line.startswith("@@probe "):
                if on_line is not None:
                    on_line(line[len("@@probe ") :])
            elif line.strip() and not any(n in line for n in _NOISE):
                tail.append(line)
        code = proc.wait()
    finally:
        timer.cancel()
    seconds = time.perf_counter() - t0
    output = None
    if out.exists():
        try:
            output = json.loads(out.read_text(encoding="utf-8"))
        except ValueError:
            raise ProbeError(f"target {name}: the probe wrote unreadable output {out}") from None
        check_output(output, name)
    return ProbeRun(name, output, code, seconds, list(tail))


def check_output(output: object, target: str) -> dict[str, Any]:
    """Validate the probe's output shape (see probe.py); ProbeError names what is wrong."""
    where = f"target {target}: probe output"
    if not isinstance(output, dict) or output.get("probe") != 1:
        raise ProbeError(f"{where} is not a version-1 probe result")
    bundles = output.get("bundles")
    if not isinstance(bundles, dict):
        raise ProbeError(f"{where} has no 'bundles' object")
    for bname, b in bundles.items():
        if not isinstance(b, dict) or not isinstance(b.get("loaded"), bool) or not isinstance(b.get("sets"), dict):
            raise ProbeError(f"{where}: bundle {bname!r} lacks 'loaded' (bool) or 'sets' (object)")
        for sname, s in b["sets"].items():
            if "error" in s:
                continue
            for path in ("single", "batch"):
                scores = s.get(path)
                if not isinstance(scores, list) or not all(v is None or isinstance(v, (int, float)) for v in scores):
                    raise ProbeError(
                        f"{where}: bundle {bname!r} set {sname!r} has no list of scores for the {path} path"
                    )
    return output
