"""The target registry: named real CPU models, clear errors for unknown and unavailable targets."""

from __future__ import annotations

import pytest

from edgefin.errors import UsageError
from edgefin.targets import TARGETS, arm64root, get_target, registry, resolve_targets
from edgefin.targets.errors import TargetUnavailableError, UnknownTargetError


def test_every_emulated_target_names_a_real_cpu_model() -> None:
    for t in TARGETS.values():
        if t.kind != "native" and not t.unavailable:
            assert t.cpu and t.cpu != "max", t
    assert get_target("x86-64-v2").cpu == "Nehalem-v1"
    assert get_target("x86-64-v3").cpu == "Haswell-v4"
    assert get_target("arm64").cpu == "cortex-a72"


def test_unknown_target_lists_the_valid_ones() -> None:
    with pytest.raises(UnknownTargetError) as exc:
        resolve_targets("native,riscv64")
    msg = str(exc.value)
    assert "'riscv64'" in msg
    for name in ("native", "x86-64-v2", "x86-64-v3", "arm64"):
        assert name in msg
    assert isinstance(exc.value, UsageError)  # exit code 2


def test_empty_target_list_is_refused() -> None:
    with pytest.raises(UnknownTargetError, match="no target given"):
        resolve_targets(" , ")


def test_avx512_level_is_reported_unavailable_with_the_reason() -> None:
    with pytest.raises(TargetUnavailableError, match="AVX-512"):
        resolve_targets("x86-64-v4")


def test_order_is_kept_and_duplicates_dropped() -> None:
    assert [t.name for t in resolve_targets("x86-64-v3, native,x86-64-v3")] == ["x86-64-v3", "native"]
    assert [t.name for t in resolve_targets(["arm64"])] == ["arm64"]


def test_missing_qemu_says_which_package_to_install(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(registry.shutil, "which", lambda _name: None)
    with pytest.raises(TargetUnavailableError, match="apt-get install qemu-user"):
        registry.check_tools(resolve_targets("x86-64-v2"))
    registry.check_tools(resolve_targets("native"))  # native needs no emulator


def test_arm64_without_root_is_a_clear_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(arm64root.os, "geteuid", lambda: 1000)
    with pytest.raises(TargetUnavailableError, match="needs root"):
        registry.check_tools(resolve_targets("arm64"))


def test_arm64_root_build_without_debootstrap_names_it(monkeypatch: pytest.MonkeyPatch, tmp_path) -> None:
    monkeypatch.setenv("EDGEFIN_TARGETS_CACHE", str(tmp_path))
    monkeypatch.setattr(arm64root.os, "geteuid", lambda: 0)
    real = arm64root.shutil.which
    monkeypatch.setattr(arm64root.shutil, "which", lambda n: None if n == "debootstrap" else real(n))
    with pytest.raises(TargetUnavailableError, match="debootstrap"):
        arm64root.ensure_root()


def test_arm64_root_build_failure_is_typed_and_names_the_step(monkeypatch: pytest.MonkeyPatch, tmp_path) -> None:
    from edgefin.targets.errors import TargetBuildError

    monkeypatch.setenv("EDGEFIN_TARGETS_CACHE", str(tmp_path))
    monkeypatch.setenv("EDGEFIN_DEBIAN_MIRROR", "http://127.0.0.1:9/debian")  # nothing listens there
    monkeypatch.setattr(arm64root.os, "geteuid", lambda: 0)
    monkeypatch.setattr(arm64root, "_require_tools", lambda: None)

    def fake_run(argv, *a, **k):  # debootstrap fails as it does without a mirror
        import subprocess

        return subprocess.CompletedProcess(argv, 1, "", "E: Failed getting release file http://127.0.0.1:9/...")

    monkeypatch.setattr(arm64root.subprocess, "run", fake_run)
    with pytest.raises(TargetBuildError, match="debootstrap --foreign failed.*mirror"):
        arm64root.build_root()
    assert arm64root.read_ready() is None
    assert (tmp_path / "arm64-bookworm.log").is_file()
