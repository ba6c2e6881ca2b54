"""Start the real service (`python -m edgefin_runtime.cli serve ...`) in a subprocess on a free
loopback port (``--port 0``; the port is read from the service's 'listening' event on stderr)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

pytest.importorskip("uvicorn")
pytest.importorskip("starlette")
httpx = pytest.importorskip("httpx")

REPO = Path(__file__).resolve().parents[3]
TOKEN = "t0ken-for-the-serve-tests-4f9a2c"


class Served:
    """A running `edgefin-run serve` child: its port, an HTTP client, its stderr events."""

    def __init__(self, args: list[str], log_dir: Path, *, startup: float = 120.0) -> None:
        self.err_path = log_dir / f"serve-{time.monotonic_ns()}.stderr"
        self._err = open(self.err_path, "w+b")  # noqa: SIM115 - closed in stop()
        env = {**os.environ, "PYTHONPATH": str(REPO / "runtime")}
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "edgefin_runtime.cli", "serve", *args, "--port", "0"],
            stdout=subprocess.DEVNULL,
            stderr=self._err,
            env=env,
            cwd=REPO,
        )
        deadline = time.monotonic() + startup
        while True:
            started = [e for e in self.events() if e.get("event") == "listening"]
            if started:
                self.started = started[0]
                break
            if self.proc.poll() is not None or time.monotonic() > deadline:
                self.stop()
                absent = [x for x in self.stderr().splitlines() if "which is not installed" in x]
                if absent and os.environ.get("EDGEFIN_TEST_ENGINE"):  # the Python matrix's one-engine venvs
                    pytest.skip(f"[matrix: {os.environ['EDGEFIN_TEST_ENGINE']} only] {absent[0]}")
                pytest.fail(f"serve did not start (exit {self.proc.returncode}):\n{self.stderr()[-3000:]}")
            time.sleep(0.05)
        self.port = int(self.started["port"])
        self.base = f"http://127.0.0.1:{self.port}"
        self.client = httpx.Client(base_url=self.base, timeout=60.0)

    def stderr(self) -> str:
        return self.err_path.read_bytes().decode("utf-8", "replace")

    def events(self, kind: str | None = None) -> list[dict[str, Any]]:
        out = []
        for line in self.stderr().splitlines():
            if line.startswith("{"):
                try:
                    e = json.loads(line)
                except ValueError:
                    continue
                if kind is None or e.get("event") == kind:
                    out.append(e)
        return out

    def get(self, path: str, **kw: Any) -> Any:
        return self.client.get(path, **kw)

    def post(self, path: str, **kw: Any) -> Any:
        return self.client.post(path, **kw)

    def metric(self, name: str, headers: dict[str, str] | None = None, **labels: str) -> float | None:
        """One sample of /metrics (labels must match exactly), or None."""
        return parse_metrics(self.get("/metrics", headers=headers or {}).text).get(
            (name, tuple(sorted(labels.items())))
        )

    def signal(self, sig: int) -> None:
        self.proc.send_signal(sig)

    def stop(self, timeout: float = 30.0) -> int:
        if getattr(self, "client", None) is not None:
            self.client.close()
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self._err.close()
        return self.proc.returncode


def parse_metrics(text: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    """Prometheus text -> {(name, sorted labels): value} (enough of the format for these tests)."""
    out = {}
    for line in text.splitlines():
        if not line or line.startswith("#"):
            continue
        head, _, value = line.rpartition(" ")
        name, _, rest = head.partition("{")
        labels: list[tuple[str, str]] = []
        rest = rest.rstrip("}")
        while rest:
            key, _, rest = rest.partition('="')
            val, _, rest = rest.partition('"')
            labels.append((key, val))
            rest = rest.lstrip(",")
        out[(name, tuple(sorted(labels)))] = float(value)
    return out


@pytest.fixture
def serve(tmp_path: Path) -> Iterator[Any]:
    """serve(*args) starts a service; every one started is stopped at the end of the test."""
    started: list[Served] = []

    def start(*args: str, **kw: Any) -> Served:
        s = Served(list(args), tmp_path, **kw)
        started.append(s)
        return s

    yield start
    for s in started:
        s.stop()


@pytest.fixture
def token_file(tmp_path: Path) -> Path:
    p = tmp_path / "token"
    p.write_text(TOKEN + "\n")
    return p


def auth(token: str = TOKEN) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}
