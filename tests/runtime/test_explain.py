"""Reason codes on the device: Baseline-Shapley attributions against the bundle's reference applicant."""

from __future__ import annotations

import itertools
import math
import threading
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
from explain_fixtures import with_sections

import edgefin_runtime
from edgefin_runtime.bundle import build_bundle, read_bundle
from edgefin_runtime.errors import ManifestError, MissingFieldError
from edgefin_runtime.explain import ExplainedResult, default_texts, humanise

RECORDS: list[dict[str, Any]] = [
    {"Income": 12.0, "Age": 22, "Home": "rent", "Job": "partime"},
    {"Income": 250.0, "Age": 70, "Home": "owner", "Job": "fixed"},
    {"Income": None, "Age": 40, "Home": "parents", "Job": None},
    {"Income": 80.5, "Age": 33, "Home": "castle", "Job": "freelance"},
    {"Income": 130.0, "Age": 51, "Home": "rent", "Job": "fixed"},
]
VARIANTS = ("tflite-fp32", "tflite-int8", "tflite-int8-io", "onnx-fp32")


@pytest.fixture(scope="module")
def explained(tiny_bundles: dict[str, Path], tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    d = tmp_path_factory.mktemp("explained")
    return {v: with_sections(tiny_bundles[v], d / f"{v}.efb") for v in VARIANTS}


def brute_force_shapley(pred: Any, record: dict[str, Any], reference: dict[str, Any]) -> dict[str, float]:
    """Shapley values by the permutation definition, each coalition scored as a raw record through score()."""
    names = list(pred.schema.names)
    phi = dict.fromkeys(names, 0.0)

    def v(s: frozenset[str]) -> float:
        return pred.score({n: (record.get(n) if n in s else reference[n]) for n in names}).probability

    perms = list(itertools.permutations(names))
    for perm in perms:
        s: frozenset[str] = frozenset()
        for n in perm:
            phi[n] += v(s | {n}) - v(s)
            s = s | {n}
    return {n: p / len(perms) for n, p in phi.items()}


@pytest.mark.parametrize("variant", VARIANTS)
@pytest.mark.parametrize("method", ["exact", "paired", "stratified", "sampled", "auto"])
def test_attributions_sum_to_the_score_change(explained: dict[str, Path], variant: str, method: str) -> None:
    pred = edgefin_runtime.load(str(explained[variant]))
    for rec in RECORDS:
        e = pred.explain(rec, method=method)
        assert e.score == pred.score(rec)  # same probability, decision, label and flags as score()
        total = sum(e.contributions.values())
        assert math.isclose(total, e.score.probability - e.reference_score, abs_tol=1e-9)
        assert set(e.contributions) == set(pred.schema.names)


@pytest.mark.parametrize("variant", ["tflite-fp32", "tflite-int8"])
def test_exact_method_equals_brute_force_shapley(explained: dict[str, Path], variant: str) -> None:
    pred = edgefin_runtime.load(str(explained[variant]))
    reference = pred.info.explain["reference"]["record"]  # type: ignore[index]
    ref_score = pred.score(reference).probability
    for rec in RECORDS:
        e = pred.explain(rec, method="exact")
        assert e.reference_score == ref_score
        want = brute_force_shapley(pred, rec, reference)
        for n, w in want.items():
            assert e.contributions[n] == pytest.approx(w, abs=1e-7), n


@pytest.mark.parametrize("variant", VARIANTS)
@pytest.mark.parametrize("method", ["exact", "paired", "stratified", "sampled"])
def test_one_record_in_place_equals_the_engine_batch(explained: dict[str, Path], variant: str, method: str) -> None:
    """explain(record) fills a fixed-size interpreter in place (LiteRT, float32 I/O); it must give exactly
    what the general path (coalition matrix through engine.run, padded batches) gives, every time."""
    pred = edgefin_runtime.load(str(explained[variant]))
    ex = pred.explainer()
    for rec in RECORDS:
        row, flags = ex._pre.record(rec)
        want = ex._explain_rows([(rec, row, flags)], 4, method)[0]
        assert pred.explain(rec, method=method) == want
        assert pred.explain(rec, method=method) == want  # deterministic: the buffers are refilled
    in_place = [s is not None and s.out is not None for s in ex._local.slots.values()]
    assert in_place and all(in_place) == (variant in ("tflite-fp32", "tflite-int8"))


def test_a_field_equal_to_the_reference_gets_zero_and_is_no_reason(explained: dict[str, Path]) -> None:
    pred = edgefin_runtime.load(str(explained["tflite-fp32"]))
    reference = dict(pred.info.explain["reference"]["record"])  # type: ignore[index]
    e = pred.explain(reference)
    assert e.score.probability == e.reference_score
    assert all(c == 0.0 for c in e.contributions.values()) and e.reasons == ()
    rec = {**reference, "Age": 74}
    e = pred.explain(rec, method="paired")
    assert [n for n, c in e.contributions.items() if c != 0.0] == ["Age"]


def test_reasons_are_the_positive_contributions_in_order(explained: dict[str, Path]) -> None:
    pred = edgefin_runtime.load(str(explained["tflite-int8"]))
    for rec in RECORDS:
        e = pred.explain(rec, max_reasons=4)
        positive = sorted((c, n) for n, c in e.contributions.items() if c > 0)
        assert [r.field for r in e.reasons] == [n for c, n in sorted(positive, key=lambda t: -t[0])][:4]
        assert all(r.contribution > 0 for r in e.reasons)
        assert len(pred.explain(rec, max_reasons=1).reasons) <= 1
        for r in e.reasons:
            value = rec.get(r.field)
            if value is None:
                assert r.direction == "missing"
            elif r.field in ("Home", "Job"):
                assert r.direction == "category" and str(value) in r.text


def test_protected_fields_are_never_a_reason(tiny_bundles: dict[str, Path], tmp_path: Path) -> None:
    path = with_sections(tiny_bundles["tflite-int8"], tmp_path / "p.efb", protected=("Age", "Home"))
    pred = edgefin_runtime.load(str(path))
    seen_contributing = set()
    for rec in RECORDS * 2:
        for method in ("exact", "paired"):
            e = pred.explain(rec, max_reasons=10, method=method)
            assert not {r.field for r in e.reasons} & {"Age", "Home"}
            seen_contributing |= {n for n in ("Age", "Home") if e.contributions[n] > 0}
            total = sum(e.contributions.values())  # still attributed: the sum stays exact
            assert math.isclose(total, e.score.probability - e.reference_score, abs_tol=1e-9)
    assert seen_contributing  # the test means something: a protected field did push some score up


def test_reason_texts_default_and_override(tiny_bundles: dict[str, Path], tmp_path: Path) -> None:
    assert humanise("loan_amount") == "Loan amount" and humanise("LoanAmount") == "Loan amount"
    assert default_texts("Income")["lower"] == "Income is lower than typical"
    texts = {
        "Age": {"lower": "Applicant is young", "higher": "Applicant is older"},
        "Home": {"category": "Home: {value}"},
    }
    path = with_sections(tiny_bundles["tflite-fp32"], tmp_path / "r.efb", reasons=texts)
    pred = edgefin_runtime.load(str(path))
    seen = set()
    for rec in RECORDS:
        for r in pred.explain(rec, max_reasons=4).reasons:
            seen.add(r.text)
            if r.field == "Age":
                assert r.text == ("Applicant is young" if r.direction == "lower" else "Applicant is older")
            if r.field == "Home":
                assert r.text == f"Home: {rec['Home']}"
    assert seen


def test_bad_reason_tables_are_refused(tiny_bundles: dict[str, Path], tmp_path: Path) -> None:
    from edgefin_converters.errors import ModelInputError

    with pytest.raises(ModelInputError, match="'Nope' is not a field"):
        with_sections(tiny_bundles["tflite-fp32"], tmp_path / "x.efb", reasons={"Nope": {"higher": "x"}})
    with pytest.raises(ModelInputError, match="sideways"):
        with_sections(tiny_bundles["tflite-fp32"], tmp_path / "x.efb", reasons={"Age": {"sideways": "x"}})
    with pytest.raises(ModelInputError, match="protected fields"):
        with_sections(tiny_bundles["tflite-fp32"], tmp_path / "x.efb", protected=("Gender",))


def test_score_batch_with_reasons(explained: dict[str, Path]) -> None:
    pred = edgefin_runtime.load(str(explained["tflite-int8"]))
    recs = [*RECORDS, {"Income": 50.0, "Home": "rent"}] * 30  # the Age-less record is rejected (missing field)
    out = pred.score_batch(recs, reasons=True)
    assert len(out) == len(recs) and all(isinstance(r, ExplainedResult) for r in out)
    for i, (rec, r) in enumerate(zip(recs, out)):
        assert r.row == i
        if "Age" not in rec:
            assert not r.ok and isinstance(r.error, MissingFieldError) and r.explanation is None
            continue
        e = pred.explain(rec)
        assert r.ok and r.score == e.score and r.explanation == e
    plain = pred.score_batch(recs)
    assert [r.score for r in plain] == [r.score for r in out]


def test_reasons_identical_across_threads(explained: dict[str, Path]) -> None:
    pred = edgefin_runtime.load(str(explained["tflite-int8"]))
    want = [pred.explain(r) for r in RECORDS]
    got: list[list[Any]] = []
    errors: list[BaseException] = []

    def work() -> None:
        try:
            got.append([pred.explain(r) for _ in range(20) for r in RECORDS][-len(RECORDS) :])
        except BaseException as exc:  # noqa: BLE001 - reported below
            errors.append(exc)

    threads = [threading.Thread(target=work) for _ in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors and len(got) == 6
    assert all(g == want for g in got)


def test_bad_record_raises_like_score(explained: dict[str, Path]) -> None:
    pred = edgefin_runtime.load(str(explained["tflite-fp32"]))
    with pytest.raises(MissingFieldError, match="Age"):
        pred.explain({"Income": 50.0, "Home": "rent"})


def test_bundle_without_explain_section(tiny_bundles: dict[str, Path]) -> None:
    pred = edgefin_runtime.load(str(tiny_bundles["tflite-fp32"]))
    assert pred.info.explain is None and pred.info.drift is None and pred.info.model_card is None
    with pytest.raises(ManifestError, match="no explain section"):
        pred.explain(RECORDS[0])


def test_malformed_explain_section_names_the_key(tiny_bundles: dict[str, Path], tmp_path: Path) -> None:
    b = read_bundle(str(tiny_bundles["tflite-fp32"]))
    bad = {"reference": {"record": {"Income": 1.0}}}
    data, _ = build_bundle(replace(b.manifest, explain=bad), b.model_bytes)
    pred = edgefin_runtime.load(data)
    with pytest.raises(ManifestError, match=r"explain.reference.record: field 'Age' is missing"):
        pred.explain(RECORDS[0])


def test_sections_round_trip_and_model_card(explained: dict[str, Path], tmp_path: Path) -> None:
    b = read_bundle(str(explained["tflite-fp32"]))
    card = {"intended_use": "demo", "metrics": {"auc": 0.8}}
    data, m = build_bundle(replace(b.manifest, model_card=card), b.model_bytes)
    again = read_bundle(data).manifest
    assert again.model_card == card and again.explain == b.manifest.explain and again.drift == b.manifest.drift
    ref = again.explain["reference"]  # type: ignore[index]
    assert ref["rows"] >= 30 and set(ref["record"]) == set(again.schema.names)
