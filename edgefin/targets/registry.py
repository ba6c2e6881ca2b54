"""The CPU targets `edgefin targets` can check a bundle on, each a named, real CPU model (never ``-cpu max``)."""

from __future__ import annotations

import shutil
from dataclasses import dataclass

from .errors import TargetUnavailableError, UnknownTargetError


@dataclass(frozen=True)
class Target:
    """One CPU a bundle is checked on: the host itself, a user-mode emulated x86-64 CPU, or the ARM64 root."""

    name: str
    kind: str  # "native" | "x86" (qemu-x86_64 -cpu CPU, the host's Python) | "arm64" (chroot + qemu-aarch64)
    cpu: str | None  # QEMU's CPU model name
    isa: str  # what the target offers the engines, in words
    #: why the target cannot be checked on any machine with this toolchain (None: it can)
    unavailable: str | None = None

    def to_dict(self) -> dict[str, str | None]:
        return {"name": self.name, "kind": self.kind, "cpu": self.cpu, "isa": self.isa}


TARGETS: dict[str, Target] = {
    t.name: t
    for t in (
        Target("native", "native", None, "this machine's CPU, no emulation (the build machine)"),
        Target("x86-64-v2", "x86", "Nehalem-v1", "x86-64-v2: SSE4.2, POPCNT, no AVX (Atom/Celeron-class kiosks)"),
        Target("x86-64-v3", "x86", "Haswell-v4", "x86-64-v3: AVX2, FMA3, BMI2, no AVX-512"),
        Target(
            "x86-64-v4",
            "x86",
            None,
            "x86-64-v4: AVX-512",
            unavailable="QEMU 7.2's TCG does not emulate AVX-512 (it masks avx512f/bw/dq/vl off any -cpu "
            "model), so this level cannot be checked by emulation; run 'edgefin-run verify BUNDLE' "
            "on an AVX-512 machine instead",
        ),
        Target(
            "arm64",
            "arm64",
            "cortex-a72",
            "ARMv8.0-A (Cortex-A72: NEON/ASIMD, no dot-product, no SVE) in an emulated Debian bookworm root",
        ),
    )
}

DEFAULT_TARGETS = ("native", "x86-64-v2", "x86-64-v3", "arm64")
QEMU_X86 = "qemu-x86_64"


def get_target(name: str) -> Target:
    """The target called ``name``; an unknown name raises UnknownTargetError listing the valid ones."""
    try:
        return TARGETS[name]
    except KeyError:
        raise UnknownTargetError(f"`targets`: unknown target {name!r}; expected one of {', '.join(TARGETS)}") from None


def resolve_targets(spec: str | list[str] | tuple[str, ...]) -> list[Target]:
    """Parse ``native,x86-64-v2`` (or a list) into targets, in order, without duplicates.

    Unknown names and targets that can never run (x86-64-v4) are refused here, before any work.
    """
    names = [s.strip() for s in (spec.split(",") if isinstance(spec, str) else spec) if s and s.strip()]
    if not names:
        raise UnknownTargetError(f"`targets`: no target given; expected one or more of {', '.join(TARGETS)}")
    out: list[Target] = []
    for name in names:
        t = get_target(name)
        if t.unavailable:
            raise TargetUnavailableError(f"target {name} is unavailable: {t.unavailable}")
        if t not in out:
            out.append(t)
    return out


def check_tools(targets: list[Target]) -> None:
    """Fail early, naming the package, when an emulator a target needs is not installed."""
    if any(t.kind == "x86" for t in targets) and shutil.which(QEMU_X86) is None:
        raise TargetUnavailableError(
            f"{QEMU_X86} is not installed, so the x86-64-v2/v3 targets cannot run; "
            f"install it with 'apt-get install qemu-user' (as root), or run "
            f"'make targets'"
        )
    if any(t.kind == "arm64" for t in targets):
        from . import arm64root

        arm64root.require_root_user("the arm64 target")
        if arm64root.read_ready() is None:
            arm64root._require_tools()  # noqa: SLF001 - the same check the build runs, before any work
