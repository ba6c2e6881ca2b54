"""Atomic writes leave the old file or the new one, never a half-written file."""

from __future__ import annotations

import json

import pytest

from edgefin import atomic


def test_write_json_is_strict_and_replaces(tmp_path):
    p = tmp_path / "a" / "m.json"
    atomic.write_json(p, {"x": 1})
    atomic.write_json(p, {"x": 2})
    assert json.loads(p.read_text()) == {"x": 2}
    with pytest.raises(ValueError):
        atomic.write_json(p, {"x": float("nan")})
    assert json.loads(p.read_text()) == {"x": 2}
    assert [f.name for f in p.parent.iterdir()] == ["m.json"]


def test_crash_before_rename_keeps_old_file_and_no_temp(tmp_path, monkeypatch):
    p = tmp_path / "b.bin"
    atomic.write_bytes(p, b"old")

    def boom(_path):
        raise OSError("disk full")

    monkeypatch.setattr(atomic, "_before_replace", boom)
    with pytest.raises(OSError):
        atomic.write_bytes(p, b"new" * 1000)
    assert p.read_bytes() == b"old"
    assert [f.name for f in tmp_path.iterdir()] == ["b.bin"]


def test_atomic_dir_swaps_whole_directory(tmp_path, monkeypatch):
    target = tmp_path / "model.keras"
    with atomic.atomic_dir(target) as tmp:
        (tmp / "w").write_text("v1")
    assert (target / "w").read_text() == "v1"
    monkeypatch.setattr(atomic, "_before_replace", lambda _p: (_ for _ in ()).throw(OSError("crash")))
    with pytest.raises(OSError):
        with atomic.atomic_dir(target) as tmp:
            (tmp / "w").write_text("v2")
    assert (target / "w").read_text() == "v1"
    assert sorted(f.name for f in tmp_path.iterdir()) == ["model.keras"]
