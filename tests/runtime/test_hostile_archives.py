"""Hostile archives: every kind is rejected by read_bundle and by load() with a typed, clear error,
before any engine sees the model bytes, without extracting anything and without inflating bombs."""

from __future__ import annotations

import os
import tracemalloc

import pytest
from hostile_archives import cases

import edgefin_runtime
from edgefin_runtime import backends
from edgefin_runtime.bundle import MAX_BUNDLE_BYTES, read_bundle
from edgefin_runtime.errors import BundleError, BundleFormatError

CASES = {c.kind: c for c in cases()}


def test_catalogue_has_at_least_20_kinds():
    assert len(CASES) >= 20


@pytest.mark.parametrize("kind", list(CASES))
def test_hostile_archive_rejected_with_clear_error(kind, monkeypatch):
    case = CASES[kind]
    data = case.build()

    def no_engine(*_a, **_k):
        raise AssertionError(f"{kind}: the engine was reached with hostile model bytes")

    monkeypatch.setattr(edgefin_runtime.predictor, "create_engine", no_engine)
    for attempt in (lambda: read_bundle(data), lambda: edgefin_runtime.load(data)):
        with pytest.raises(case.error) as info:
            attempt()
        assert isinstance(info.value, BundleError)
        assert case.fragment.lower() in str(info.value).lower(), str(info.value)
        assert "bundle" in str(info.value) or "manifest" in str(info.value)  # says where


@pytest.mark.parametrize(
    "kind",
    [
        "compression bomb (honest sizes)",
        "compression bomb (lying sizes)",
        "huge declared size",
        "zip64 extra field",
        "oversized manifest",
    ],
)
def test_bombs_are_refused_without_allocating(kind):
    data = CASES[kind].build()
    tracemalloc.start()
    try:
        with pytest.raises(BundleFormatError):
            read_bundle(data)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < 2 * 1024 * 1024 + len(data) // 8, f"{kind}: peak {peak} bytes while refusing"


def test_files_that_are_not_regular_or_too_big(tmp_path):
    with pytest.raises(BundleFormatError, match="not a regular file"):
        read_bundle(tmp_path)
    fifo = tmp_path / "pipe.efb"
    os.mkfifo(fifo)
    with pytest.raises(BundleFormatError, match="not a regular file"):
        read_bundle(fifo)  # never blocks on a reader-less FIFO
    big = tmp_path / "big.efb"
    with open(big, "wb") as fh:
        fh.truncate(MAX_BUNDLE_BYTES + 1)  # sparse: costs no disk
    with pytest.raises(BundleFormatError, match="exceeds"):
        read_bundle(big)
    with pytest.raises(BundleFormatError, match="not found"):
        read_bundle(tmp_path / "missing.efb")
    link = tmp_path / "link.efb"
    link.symlink_to(tmp_path / "missing.efb")
    with pytest.raises(BundleFormatError, match="not found"):
        read_bundle(link)


def test_nothing_is_written_to_disk(tmp_path, monkeypatch):
    """Bundles are read in memory: hostile member names never become paths."""
    monkeypatch.chdir(tmp_path)
    for case in CASES.values():
        with pytest.raises(BundleError):
            read_bundle(case.build())
    assert list(tmp_path.iterdir()) == []


def test_backends_module_is_untouched_by_rejections():
    # A sanity check that the monkeypatch above targets the name load() really calls.
    assert edgefin_runtime.predictor.create_engine is backends.create_engine
