"""Faults while writing: an interrupted write leaves the old file or the new one, never a partial one.

Faults are injected at every step of every atomic writer the project has (the toolkit's
edgefin.atomic, the converters' bundle writer, the runtime CLI's output): creating the temporary
file, writing (half written, then a full disk), fsync, the moment before the rename, the rename.
A real kill -9 at random moments of a rewrite loop checks the same property without mocks, and a
source audit checks that nothing in the packages writes files another way.
"""

from __future__ import annotations

import ast
import errno
import os
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from edgefin import atomic

REPO = Path(__file__).resolve().parents[2]
OLD, NEW = b"old contents\n" * 100, b"NEW CONTENTS, LONGER\n" * 5000


# ---------------------------------------------------------------- the writers under test
def _converters_write(path: Path, data: bytes) -> None:
    from edgefin_converters import bundle_writer

    bundle_writer.write_bundle(path, data)


def _runtime_cli_write(path: Path, data: bytes) -> None:
    from edgefin_runtime.cli_io import open_output

    with open_output(str(path)) as fh:
        fh.write(data.decode())


WRITERS: dict[str, Callable[[Path, bytes], object]] = {
    "atomic.write_bytes": atomic.write_bytes,
    "atomic.write_text": lambda p, d: atomic.write_text(p, d.decode()),
    "converters.write_bundle": _converters_write,
    "runtime cli output": _runtime_cli_write,
}


def _hook_modules() -> list[object]:
    from edgefin_converters import bundle_writer

    return [atomic, bundle_writer]


class Boom(OSError):
    def __init__(self) -> None:
        super().__init__(errno.ENOSPC, "injected: no space left on device")


def _inject(fault: str, monkeypatch: pytest.MonkeyPatch) -> None:
    if fault == "mkstemp":
        monkeypatch.setattr(tempfile, "mkstemp", lambda *a, **k: (_ for _ in ()).throw(Boom()))
    elif fault == "half-written":
        real_fdopen = os.fdopen

        def fdopen(fd, mode="r", *a, **k):
            fh = real_fdopen(fd, mode, *a, **k)
            real_write = fh.write

            def write(data):
                real_write(data[: len(data) // 2])
                fh.flush()
                raise Boom()

            fh.write = write
            return fh

        monkeypatch.setattr(os, "fdopen", fdopen)
    elif fault == "fsync":
        monkeypatch.setattr(os, "fsync", lambda fd: (_ for _ in ()).throw(Boom()))
    elif fault == "before-rename":
        for mod in _hook_modules():
            monkeypatch.setattr(mod, "_before_replace", lambda p: (_ for _ in ()).throw(Boom()))
    elif fault == "rename":
        monkeypatch.setattr(os, "replace", lambda a, b: (_ for _ in ()).throw(Boom()))
    else:  # pragma: no cover
        raise ValueError(fault)


FAULTS = ("mkstemp", "half-written", "fsync", "before-rename", "rename")


# the runtime CLI writer has no _before_replace hook; its other four steps are covered
CASES = [(w, f) for w in WRITERS for f in FAULTS if not (w == "runtime cli output" and f == "before-rename")]


@pytest.mark.parametrize("writer, fault", CASES)
def test_fault_leaves_old_file_and_no_temp(tmp_path, monkeypatch, writer, fault):
    target = tmp_path / "out" / "file.bin"
    target.parent.mkdir()
    target.write_bytes(OLD)
    _inject(fault, monkeypatch)
    with pytest.raises(Exception) as info:
        WRITERS[writer](target, NEW)
    monkeypatch.undo()
    assert "injected" in str(info.value) or isinstance(info.value, OSError) or "cannot write" in str(info.value)
    assert target.read_bytes() == OLD
    assert [p.name for p in target.parent.iterdir()] == ["file.bin"]  # no temporary file left behind
    WRITERS[writer](target, NEW)  # and the next write works
    assert target.read_bytes() == NEW


@pytest.mark.parametrize("fault", ("mkstemp", "before-rename"))
def test_fault_while_creating_a_new_file_leaves_nothing(tmp_path, monkeypatch, fault):
    _inject(fault, monkeypatch)
    with pytest.raises(OSError):
        atomic.write_json(tmp_path / "metrics.json", {"auc": 0.8})
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("fault", ("before-rename", "rename"))
def test_atomic_dir_keeps_the_old_directory(tmp_path, monkeypatch, fault):
    target = tmp_path / "model"
    with atomic.atomic_dir(target) as d:
        (d / "weights").write_bytes(OLD)
    _inject(fault, monkeypatch)
    with pytest.raises(OSError):
        with atomic.atomic_dir(target) as d:
            (d / "weights").write_bytes(NEW)
    monkeypatch.undo()
    assert (target / "weights").read_bytes() == OLD
    assert sorted(p.name for p in tmp_path.iterdir()) == ["model"]


def test_files_get_normal_permissions_and_keys_stay_private(tmp_path):
    umask = os.umask(0o022)
    os.umask(umask)
    for name, write in WRITERS.items():  # mkstemp alone would leave 0600: unreadable by a service account
        target = tmp_path / name.replace(" ", "_")
        write(target, b"{}")
        assert target.stat().st_mode & 0o777 == 0o666 & ~umask, name
    atomic.write_bytes(tmp_path / "secret.key", b"k", mode=0o600)
    assert (tmp_path / "secret.key").stat().st_mode & 0o777 == 0o600


CHILD = """
import os, sys
sys.path.insert(0, {repo!r})
from edgefin import atomic
a, b = b"A" * 2_000_000, b"B" * 3_000_000
path = sys.argv[1]
print("ready", flush=True)
i = 0
while True:
    atomic.write_bytes(path, a if i % 2 else b)
    i += 1
"""


def test_kill_9_at_random_moments_never_leaves_a_partial_file(tmp_path):
    """No mocks: a child rewrites a file in a loop (2 MB of A / 3 MB of B) and is SIGKILLed at 25
    random moments; each time the file is exactly one of the two versions."""
    import random

    target = tmp_path / "bundle.efb"
    target.write_bytes(b"A" * 2_000_000)
    rng = random.Random(0)
    for _ in range(25):
        proc = subprocess.Popen(
            [sys.executable, "-c", CHILD.format(repo=str(REPO)), str(target)], stdout=subprocess.PIPE
        )
        assert proc.stdout is not None and proc.stdout.readline().strip() == b"ready"
        time.sleep(rng.uniform(0.0, 0.05))
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        data = target.read_bytes()
        assert data in (b"A" * 2_000_000, b"B" * 3_000_000), f"partial file of {len(data)} bytes"
        for stale in tmp_path.glob(".bundle.efb.*.tmp"):  # a killed writer cannot clean up its temp
            stale.unlink()


# ---------------------------------------------------------------- audit: no other way to write files
ALLOWED = {
    # (file, function) pairs that write through a temporary file + rename themselves
    ("runtime/edgefin_runtime/atomic.py", "open_atomic"),  # the one writer; the others call it
    # scratch files inside a tempfile.TemporaryDirectory for ONNX Runtime's quantiser (never a user's file)
    ("converters/edgefin_converters/onnx.py", "to_onnx_dynamic"),
    ("converters/edgefin_converters/onnx.py", "to_onnx_int8"),
    # the ARM64 root's build log: appended to, one step at a time, never a file that holds a result
    ("edgefin/targets/arm64root.py", "_run"),
    # the service's access log: a log appended to line by line, never a file that holds a result
    ("runtime/edgefin_runtime/serve/accesslog.py", "open_log"),
    # `edgefin-run score --engine`: parts and _summary.json go into a staging folder beside the output,
    # renamed into place when complete (cli_scale.run_scaled)
    ("runtime/edgefin_runtime/cli_scale.py", "run_scaled"),
    ("runtime/edgefin_runtime/cli_scale.py", "_score_dask"),
    # DriftMonitor.to_json() returns text (written by open_atomic / sent as a response), not a file
    ("runtime/edgefin_runtime/cli_drift.py", "run"),
    ("runtime/edgefin_runtime/serve/app.py", "drift_counts"),
}
WRITE_METHODS = {"write_text", "write_bytes", "to_csv", "to_parquet", "to_json", "savez", "tofile"}


def _writes(tree: ast.AST) -> Iterator[tuple[int, str, str]]:
    """(line, enclosing function, what) for each call that writes a file directly."""
    stack: list[str] = []

    def visit(node: ast.AST) -> Iterator[tuple[int, str, str]]:
        is_fn = isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef))
        if is_fn:
            stack.append(node.name)  # type: ignore[attr-defined]
        if isinstance(node, ast.Call):
            f = node.func
            name = f.id if isinstance(f, ast.Name) else f.attr if isinstance(f, ast.Attribute) else ""
            mode = None
            if name in ("open", "fdopen"):
                args = [*node.args[1:2], *(k.value for k in node.keywords if k.arg == "mode")]
                mode = next((a.value for a in args if isinstance(a, ast.Constant)), "r")
                if isinstance(mode, str) and any(c in mode for c in "wax+"):
                    yield node.lineno, stack[-1] if stack else "<module>", f"{name}(mode={mode!r})"
            elif name in WRITE_METHODS and isinstance(f, ast.Attribute):
                receiver = f.value.id if isinstance(f.value, ast.Name) else ""
                first = node.args[0] if node.args else None
                to_memory = isinstance(first, ast.Name) and "buf" in first.id.lower()
                if receiver != "atomic" and not to_memory:  # atomic.write_bytes(...) / df.to_parquet(buf)
                    yield node.lineno, stack[-1] if stack else "<module>", f".{name}()"
        for child in ast.iter_child_nodes(node):
            yield from visit(child)
        if is_fn:
            stack.pop()

    yield from visit(tree)


def test_every_file_the_packages_write_goes_through_an_atomic_writer():
    offenders = []
    roots = [REPO / "edgefin", REPO / "converters" / "edgefin_converters", REPO / "runtime" / "edgefin_runtime"]
    for root in roots:
        for path in sorted(root.rglob("*.py")):
            rel = path.relative_to(REPO).as_posix()
            for line, func, what in _writes(ast.parse(path.read_text(encoding="utf-8"))):
                if (rel, func) in ALLOWED:
                    continue
                src = path.read_text(encoding="utf-8").splitlines()[line - 1]
                if "tmp" in src.lower() or "temp" in src.lower():
                    continue  # scratch files inside a temporary directory, never a user's file
                offenders.append(f"{rel}:{line} in {func}: {what}")
    assert not offenders, "write these through edgefin.atomic (or the package's atomic writer):\n" + "\n".join(
        offenders
    )


def test_the_audit_itself_finds_direct_writes():
    src = (
        "def f(p, df):\n    open(p, 'w').write('x')\n    p.write_bytes(b'')\n    df.to_csv(p)\n"
        "    atomic.write_bytes(p, b'')\n    write_text(p, '')\n    df.to_parquet(buf)\n    open(p).read()\n"
    )
    found = [what for _, _, what in _writes(ast.parse(src))]
    assert found == ["open(mode='w')", ".write_bytes()", ".to_csv()"]
