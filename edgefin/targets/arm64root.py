"""The emulated ARM64 target: a Debian bookworm arm64 root, built once and cached.

Layout (``cache_dir()``, default ``~/.cache/edgefin/targets``, or ``$EDGEFIN_TARGETS_CACHE``)::

    arm64-bookworm/      the root: python3.11 from Debian + numpy, onnxruntime, ai-edge-litert from
                         aarch64 wheels in /opt/edgefin/site-packages; /usr/bin/qemu-aarch64-static
    READY                JSON written last: what was installed (the root is usable only when it exists)
    README.md            how to run Python in the root
    arm64-bookworm.log   the build's log

No binfmt_misc is needed (containers rarely have it): ``debootstrap --foreign`` downloads and
unpacks the required packages, the remaining ones (python3.11 and its libraries) are unpacked with
``dpkg-deb -x``; nothing is configured, since Python needs no maintainer script. Programs run as
``chroot ROOT /usr/bin/qemu-aarch64-static -cpu cortex-a72 PROGRAM``: the chroot keeps the host's
/sys and /proc out (ONNX Runtime's cpuinfo probe segfaults under emulation when it reads the host's
x86 /sys), and qemu runs the one aarch64 process directly. Building and running need root (chroot).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path

from .. import atomic
from .errors import TargetBuildError, TargetUnavailableError

ROOT_NAME = "arm64-bookworm"
SUITE = "bookworm"
DEFAULT_MIRROR = "http://deb.debian.org/debian"
#: the emulated core: ARMv8.0-A with NEON (ASIMD), no dot-product or SVE - a common branch-box SoC
CPU = "cortex-a72"
QEMU = "qemu-aarch64-static"
PYTHON = "/usr/bin/python3.11"
SITE = "/opt/edgefin/site-packages"
#: Debian packages on top of debootstrap's minimal base (dependencies are resolved by debootstrap)
DEBS = ("python3.11", "libstdc++6")
#: engines and numpy, pinned to the versions of the host's environment so both sides run the same code
WHEELS = ("numpy", "onnxruntime", "ai-edge-litert")
#: wheel platform tags tried for the aarch64 wheels
WHEEL_PLATFORM = "aarch64-manylinux_2_28"

Log = Callable[[str], None]


def cache_dir() -> Path:
    """Where built target environments are cached."""
    return Path(os.environ.get("EDGEFIN_TARGETS_CACHE", "~/.cache/edgefin/targets")).expanduser()


def root_dir() -> Path:
    return cache_dir() / ROOT_NAME


def ready_file() -> Path:
    return cache_dir() / "READY"


@dataclass(frozen=True)
class RootInfo:
    """A finished root and what is installed in it (the content of READY)."""

    root: Path
    cpu: str
    python: str
    wheels: dict[str, str]
    built_at: str


def pins() -> dict[str, str | None]:
    """The host environment's version of each wheel (None when not installed here: take the newest)."""
    out: dict[str, str | None] = {}
    for name in WHEELS:
        try:
            out[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            out[name] = None
    return out


def read_ready() -> RootInfo | None:
    """The cached root's READY record, or None when there is no finished root."""
    try:
        d = json.loads(ready_file().read_text(encoding="utf-8"))
        info = RootInfo(
            root=Path(d["root"]),
            cpu=str(d["cpu"]),
            python=str(d["python"]),
            wheels={str(k): str(v) for k, v in d["wheels"].items()},
            built_at=str(d["built_at"]),
        )
    except (OSError, ValueError, KeyError, TypeError, AttributeError):
        return None
    return info if (info.root / PYTHON.lstrip("/")).exists() else None


def require_root_user(what: str) -> None:
    if os.geteuid() != 0:
        raise TargetUnavailableError(
            f"{what} needs root (debootstrap and chroot); run it as root, e.g. "
            f"'sudo make targets', or leave the arm64 target out"
        )


def python_command(
    root: Path,
    args: list[str],
    *,
    extra_path: list[str] = (),  # type: ignore[assignment]
    cpu: str = CPU,
) -> tuple[list[str], dict[str, str]]:
    """argv and environment that run the root's Python under qemu inside a chroot.

    ``args`` and ``extra_path`` are paths as seen inside the root.
    """
    chroot = shutil.which("chroot") or "/usr/sbin/chroot"  # resolved on the host's PATH, not the root's
    argv = [chroot, str(root), f"/usr/bin/{QEMU}", "-cpu", cpu, PYTHON, *args]
    env = {
        "PATH": "/usr/bin:/bin",
        "HOME": "/root",
        "LANG": "C.UTF-8",
        "PYTHONDONTWRITEBYTECODE": "1",
        "PYTHONPATH": ":".join([*extra_path, SITE]),
        "OMP_NUM_THREADS": "1",
    }
    return argv, env


def ensure_root(*, log: Log | None = None, rebuild: bool = False) -> RootInfo:
    """Return the cached root, building it (minutes, network) or refreshing its wheels when needed."""
    say = log or (lambda _m: None)
    require_root_user("the arm64 target")
    _require_tools()
    info = read_ready()
    want = pins()
    if info is not None and not rebuild:
        if all(v is None or info.wheels.get(k) == v for k, v in want.items()):
            return info
        say(f"arm64 root: wheels differ from this environment ({info.wheels} vs {want}); reinstalling them")
        ready_file().unlink(missing_ok=True)
        _install_wheels(info.root, want, say)
        return _finish(info.root, say)
    return build_root(log=say)


def build_root(*, log: Log | None = None) -> RootInfo:
    """Build the root from scratch into a staging folder, smoke-test it, then move it into place."""
    say = log or (lambda _m: None)
    require_root_user("building the arm64 root")
    _require_tools()
    base = cache_dir()
    base.mkdir(parents=True, exist_ok=True)
    ready_file().unlink(missing_ok=True)
    final = root_dir()
    stage = base / f"{ROOT_NAME}.partial"
    for old in (stage, final):
        if old.exists():
            shutil.rmtree(old)
    mirror = os.environ.get("EDGEFIN_DEBIAN_MIRROR", DEFAULT_MIRROR)
    t0 = time.perf_counter()
    say(f"arm64 root: debootstrap --foreign {SUITE} arm64 from {mirror} (downloads ~40 MB once)")
    _run(
        [
            "debootstrap",
            "--foreign",
            "--arch=arm64",
            "--variant=minbase",
            f"--include={','.join(DEBS)}",
            f"--cache-dir={base / 'debs'}",
            SUITE,
            str(stage),
            mirror,
        ],
        "debootstrap --foreign",
        hint=f"is Debian's mirror {mirror} reachable from here? (set EDGEFIN_DEBIAN_MIRROR to use another)",
    )
    say("arm64 root: unpacking the remaining packages (dpkg-deb -x; no binfmt_misc needed)")
    _unpack_all(stage)
    shutil.copy2(shutil.which(QEMU) or QEMU, stage / "usr" / "bin" / QEMU)
    _run(["chroot", str(stage), f"/usr/bin/{QEMU}", "/sbin/ldconfig"], "ldconfig in the root")
    _install_wheels(stage, pins(), say)
    os.replace(stage, final)
    say(f"arm64 root: built in {time.perf_counter() - t0:.0f} s")
    return _finish(final, say)


# ---------------------------------------------------------------- steps
def _require_tools() -> None:
    missing = [t for t in ("debootstrap", QEMU, "dpkg-deb", "chroot") if shutil.which(t) is None]
    if missing:
        raise TargetUnavailableError(
            f"the arm64 target needs {', '.join(missing)}, not found on PATH; install "
            f"them with 'apt-get install debootstrap qemu-user-static' (as root), or "
            f"run 'make targets'"
        )


def _unpack_all(root: Path) -> None:
    """Unpack every package debootstrap downloaded (the first stage unpacked only the required ones)."""
    listing = root / "debootstrap" / "debpaths"
    try:
        lines = listing.read_text(encoding="utf-8").split("\n")
    except OSError as exc:
        raise TargetBuildError(f"debootstrap left no package list at {listing} ({exc}); see {_log_path()}") from None
    debs = [line.split(" ", 1)[1] for line in lines if " " in line]
    if not any("python3.11_" in d for d in debs):
        raise TargetBuildError(f"debootstrap did not download python3.11 (package list {listing}); see {_log_path()}")
    for deb in debs:
        _run(["dpkg-deb", "-x", str(root / deb.lstrip("/")), str(root)], f"dpkg-deb -x {Path(deb).name}")


def _installer() -> list[str]:
    uv = shutil.which("uv") or str(Path(__file__).resolve().parents[2] / ".tools" / "bin" / "uv")
    if Path(uv).exists():
        return [
            uv,
            "pip",
            "install",
            "--quiet",
            "--python-platform",
            WHEEL_PLATFORM,
            "--python-version",
            "3.11",
            "--only-binary",
            ":all:",
        ]
    py = shutil.which("python3") or sys.executable
    return [
        py,
        "-m",
        "pip",
        "install",
        "--quiet",
        "--disable-pip-version-check",
        "--platform",
        "manylinux_2_28_aarch64",
        "--platform",
        "manylinux2014_aarch64",
        "--implementation",
        "cp",
        "--python-version",
        "3.11",
        "--only-binary=:all:",
    ]


def _install_wheels(root: Path, want: dict[str, str | None], say: Log) -> None:
    site = root / SITE.lstrip("/")
    if site.exists():
        shutil.rmtree(site)
    site.mkdir(parents=True)
    specs = [f"{k}=={v}" if v else k for k, v in want.items()]
    say(f"arm64 root: installing aarch64 wheels {' '.join(specs)}")
    _run(
        [*_installer(), "--target", str(site), *specs],
        "installing aarch64 wheels",
        hint="is the package index reachable, and are there aarch64 wheels of these versions for Python 3.11?",
    )


_SMOKE = """
import json, os, platform, sys
import numpy, onnxruntime, ai_edge_litert.interpreter
from numpy._core._multiarray_umath import __cpu_features__ as f
print(json.dumps({"machine": platform.machine(), "python": platform.python_version(),
                  "numpy": numpy.__version__, "onnxruntime": onnxruntime.__version__,
                  "host_sys_visible": os.path.exists("/sys/devices/system/cpu"),
                  "cpu_features": sorted(k for k, v in f.items() if v)}))
"""


def _finish(root: Path, say: Log) -> RootInfo:
    """Smoke-test the root (imports under the emulated core, host /sys invisible), then write READY."""
    argv, env = python_command(root, ["-c", _SMOKE])
    out = _run(argv, "smoke test of the arm64 root (import numpy, onnxruntime, ai_edge_litert)", env=env)
    try:
        smoke = json.loads(out.strip().splitlines()[-1])
    except (ValueError, IndexError):
        raise TargetBuildError(f"the arm64 root's smoke test printed no result; see {_log_path()}") from None
    if smoke.get("machine") != "aarch64" or smoke.get("host_sys_visible"):
        raise TargetBuildError(f"the arm64 root's smoke test is wrong: {smoke}")
    want = pins()
    wheels = {
        "numpy": smoke["numpy"],
        "onnxruntime": smoke["onnxruntime"],
        "ai-edge-litert": want.get("ai-edge-litert") or "unpinned",
    }
    info = RootInfo(
        root=root,
        cpu=CPU,
        python=smoke["python"],
        wheels=wheels,
        built_at=time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
    )
    atomic.write_text(cache_dir() / "README.md", _readme(info, smoke))
    atomic.write_json(
        ready_file(),
        {
            "root": str(root),
            "cpu": CPU,
            "python": info.python,
            "wheels": wheels,
            "built_at": info.built_at,
            "cpu_features": smoke["cpu_features"],
            "qemu": f"/usr/bin/{QEMU}",
            "site_packages": SITE,
        },
    )
    say(f"arm64 root ready: {root} (Python {info.python}, {CPU}: {', '.join(smoke['cpu_features'])})")
    return info


def _readme(info: RootInfo, smoke: dict) -> str:
    argv, env = python_command(info.root, ["/tmp/yourscript.py"])
    envs = " ".join(f"{k}={v}" for k, v in env.items())
    return f"""# Emulated ARM64 root for `edgefin targets`

Built by `edgefin/targets/arm64root.py` (`make targets`) on {info.built_at}: Debian {SUITE} arm64,
Python {info.python}, wheels {info.wheels}, emulated core `{info.cpu}` (CPU features seen by numpy:
{", ".join(smoke["cpu_features"])}). Treat it as read-only; `READY` (JSON) exists only when it is complete.

Run Python in it (as root; the chroot keeps the host's /sys and /proc out, which ONNX Runtime's
CPU probe needs under emulation; no binfmt_misc is used):

    env -i {envs} \\
        {" ".join(argv)}

Files must be inside the root to be seen: copy them to a folder of your own under
`{info.root}/tmp/` and remove it afterwards. Add that folder (as seen inside the root, e.g.
`/tmp/mine/runtime`) to PYTHONPATH before `{SITE}`. `cpuinfo` warnings about
/sys/devices/system/cpu on stderr are expected. Time measured here is emulation time, not device time.
"""


def _log_path() -> Path:
    return cache_dir() / f"{ROOT_NAME}.log"


def _run(argv: list[str], step: str, *, env: dict[str, str] | None = None, hint: str = "") -> str:
    """Run one build step, append its output to the build log, raise TargetBuildError naming the step."""
    log = _log_path()
    log.parent.mkdir(parents=True, exist_ok=True)
    try:
        proc = subprocess.run(argv, capture_output=True, text=True, env=env, timeout=3600, check=False)
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise TargetBuildError(f"arm64 root: {step} could not run ({exc})") from None
    with open(log, "a", encoding="utf-8") as fh:
        fh.write(f"$ {' '.join(argv)}\n{proc.stdout}{proc.stderr}[exit {proc.returncode}]\n")
    if proc.returncode != 0:
        tail = " | ".join((proc.stderr or proc.stdout).strip().splitlines()[-3:])
        raise TargetBuildError(
            f"arm64 root: {step} failed (exit {proc.returncode}): {tail[:400]}"
            f"{'; ' + hint if hint else ''}; full log: {log}"
        )
    return proc.stdout
