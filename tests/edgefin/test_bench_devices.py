"""Device results (edgefin-run bench --output) in a run's report: matched by sha256, shown, recommended from."""

from __future__ import annotations

import copy
import hashlib
import json
from pathlib import Path
from typing import Any

import pytest

from edgefin.bench import devices
from edgefin.bench.htmlreport import render_html
from edgefin.bench.report import render_markdown
from edgefin.errors import UsageError


def _lat(p50: float, p99: float) -> dict[str, Any]:
    return {"p50_us": p50, "p95_us": p99, "p99_us": p99, "quantiles_us": [p50] * 101}


def _row(name: str, bundle: Path, auc: float, kib: float, p99: float) -> dict[str, Any]:
    return {
        "name": name,
        "bundle": str(bundle),
        "status": "ok",
        "bundle_bytes": int(kib * 1024),
        "quality": {"auc": auc},
        "parity": {"passed": True},
        "latency": {"runtime": _lat(p99 / 2, p99), "engine": _lat(1.0, 2.0)},
        "throughput": {"runtime_columns": [{"batch": 1024, "records_per_s": 1e6}]},
        "cold_start": {"spawn_to_first_score_ms": 200.0},
        "memory": {"peak_rss_mib": 50.0},
    }


@pytest.fixture
def report(tmp_path: Path) -> dict[str, Any]:
    a, b = tmp_path / "fast.efb", tmp_path / "accurate.efb"
    a.write_bytes(b"bundle a")
    b.write_bytes(b"bundle b")
    return {
        "run_dir": str(tmp_path),
        "constraints": {"max_latency_us": 50.0, "max_size_kb": None, "max_auc_drop": None, "latency_percentile": "p99"},
        "source": {"auc": 0.86},
        "variants": [_row("fast", a, 0.850, 30, 20.0), _row("accurate", b, 0.857, 40, 30.0)],
        "recommendation": {"chosen": "accurate", "summary": "accurate (build machine)"},
    }


def _device(name: str, report: dict[str, Any], p99: dict[str, float], *, wrong: str | None = None) -> dict[str, Any]:
    bundles = []
    for row in report["variants"]:
        digest = hashlib.sha256(Path(row["bundle"]).read_bytes()).hexdigest()
        bundles.append(
            {
                "file": Path(row["bundle"]).name,
                "variant": row["name"],
                "sha256": "0" * 64 if row["name"] == wrong else digest,
                "status": "ok",
                "engine": "litert",
                "latency": {"runtime": _lat(p99[row["name"]] / 2, p99[row["name"]]), "engine": _lat(3.0, 6.0)},
                "throughput": {"runtime_columns": [{"batch": 1024, "records_per_s": 2e5}]},
                "cold_start": {"spawn_to_first_score_ms": 900.0},
                "memory": {"peak_rss_mib": 40.0},
                "acceptance": {"n": 128, "max_abs_diff": 0.0},
            }
        )
    return {
        "schema": "edgefin-device-bench",
        "schema_version": 1,
        "device": {"name": name, "machine": {"cpu_model": "Cortex-A72", "machine": "aarch64"}, "versions": {}},
        "threads": 1,
        "bundles": bundles,
    }


def test_the_recommendation_for_a_device_uses_its_own_latency(report: dict[str, Any]) -> None:
    # on the build machine both fit 50 us and the more accurate one wins; on the slow kiosk only 'fast' fits
    kiosk = _device("kiosk-07", report, {"fast": 45.0, "accurate": 70.0})
    devices.merge(report, [kiosk], for_device="kiosk-07")
    assert report["recommendation"]["chosen"] == "fast"
    assert report["recommendation"]["device"] == "kiosk-07"
    assert report["build_machine_recommendation"]["chosen"] == "accurate"
    (view,) = report["devices"]
    assert view["variants"]["accurate"]["latency"]["runtime"]["p99_us"] == 70.0
    assert view["recommendation"]["verdicts"]["accurate"]["failed"] == ["latency p99 70 us > 50 us"]
    # the build machine's own rows are untouched
    assert report["variants"][1]["latency"]["runtime"]["p99_us"] == 30.0


def test_a_different_bundle_on_the_device_is_shown_but_never_recommended(report: dict[str, Any]) -> None:
    kiosk = _device("kiosk-07", report, {"fast": 45.0, "accurate": 10.0}, wrong="accurate")
    devices.merge(report, [kiosk])
    view = report["devices"][0]
    assert view["variants"]["accurate"]["matches_run"] is False
    assert view["recommendation"]["chosen"] == "fast"
    assert report["recommendation"]["chosen"] == "accurate"  # no --for-device: the build machine's stands


def test_devices_merge_by_name_and_render(report: dict[str, Any]) -> None:
    devices.merge(report, [_device("kiosk-07", report, {"fast": 45.0, "accurate": 70.0})])
    devices.merge(report, [_device("teller-2", report, {"fast": 9.0, "accurate": 12.0})])
    devices.merge(report, [_device("kiosk-07", report, {"fast": 44.0, "accurate": 69.0})])
    assert [d["name"] for d in report["devices"]] == ["kiosk-07", "teller-2"]
    assert report["devices"][0]["variants"]["fast"]["latency"]["runtime"]["p99_us"] == 44.0
    md = devices.render_markdown(report)
    assert "### kiosk-07" in md and "### teller-2" in md and "Cortex-A72" in md
    html = devices.render_html(report)
    assert "<h3>teller-2</h3>" in html
    with pytest.raises(UsageError, match="for_device: no device named 'nope'"):
        devices.merge(report, [], for_device="nope")


def test_the_report_renders_its_devices(report: dict[str, Any]) -> None:
    devices.merge(report, [_device("kiosk-07", report, {"fast": 45.0, "accurate": 70.0})], for_device="kiosk-07")
    report = json.loads(json.dumps(report))  # what report.json holds
    assert "**Recommendation for device kiosk-07:**" in render_markdown(report)
    assert "## Devices" in render_markdown(report)
    assert "Recommendation for device kiosk-07" in render_html(report)


def test_device_files_are_validated_and_names_unique(report: dict[str, Any], tmp_path: Path) -> None:
    doc = _device("kiosk-07", report, {"fast": 45.0, "accurate": 70.0})
    one, two, bad = tmp_path / "1.json", tmp_path / "2.json", tmp_path / "bad.json"
    one.write_text(json.dumps(doc))
    two.write_text(json.dumps(doc))
    broken = copy.deepcopy(doc)
    broken["schema_version"] = 99
    bad.write_text(json.dumps(broken))
    assert devices.load_devices([str(one)])[0]["_source"] == "1.json"
    with pytest.raises(UsageError, match="kiosk-07 appear in more than one file"):
        devices.load_devices([str(one), str(two)])
    with pytest.raises(UsageError, match="schema_version"):
        devices.load_devices([str(bad)])


def test_edgefin_report_merges_device_files(report: dict[str, Any], tmp_path: Path) -> None:
    from click.testing import CliRunner

    from edgefin.cli.main import cli

    (tmp_path / "report").mkdir()
    (tmp_path / "report" / "report.json").write_text(json.dumps(report))
    dev = tmp_path / "kiosk.json"
    dev.write_text(json.dumps(_device("kiosk-07", report, {"fast": 45.0, "accurate": 70.0})))
    res = CliRunner().invoke(cli, ["report", str(tmp_path), "--device", str(dev), "--for-device", "kiosk-07", "-q"])
    assert res.exit_code == 0, res.output
    saved = json.loads((tmp_path / "report" / "report.json").read_text())
    assert saved["recommendation"]["chosen"] == "fast" and saved["devices"][0]["name"] == "kiosk-07"
    assert "## Devices" in (tmp_path / "report" / "report.md").read_text()
    res = CliRunner().invoke(cli, ["report", str(tmp_path), "--for-device", "teller-9", "-q"])
    assert res.exit_code == 2
