"""Accuracy repair of post-training int8 variants (edgefin_converters.repair) on a real failing case.

The case: a tiny tf_keras model on rows where one input column has rare, huge values (1% of rows at
200-400 where the others are ~N(0, 1): a balance column with a few extreme accounts). MinMax
calibration then gives the int8 input one scale for all columns wide enough for the outliers, and
the informative columns lose their resolution: about 14% of decisions flip. Per-channel weights and
more calibration rows do not help (the damage is in the activations); keeping the first layers in
float does, and repair finds that from training rows alone.
"""

from __future__ import annotations

import json

import numpy as np
import pytest

from edgefin_converters import ExportOptions, Source, Sources, export_variants
from edgefin_converters import repair as repair_mod

from tests.converters.util import manifest_of

INT8 = ("tflite-int8-ptq", "onnx-int8")
N_ROWS, TRAIN_SHARE, K = 3000, 0.7, 4


def _case(seed: int = 0):
    """The source model, raw training columns, raw test columns and test labels."""
    import tf_keras as keras

    rng = np.random.default_rng(seed)
    x = rng.normal(size=(N_ROWS, K)).astype(np.float32)
    tail = rng.random(N_ROWS) < 0.01
    x[tail, 3] = rng.uniform(200, 400, int(tail.sum()))
    logit = 1.5 * x[:, 0] - 1.0 * x[:, 1] + 0.7 * x[:, 2] * x[:, 0]
    y = (logit + rng.logistic(size=N_ROWS) * 0.6 > 0.5).astype(np.int64)
    keras.utils.set_random_seed(seed)
    model = keras.Sequential(
        [
            keras.Input((K,)),
            keras.layers.Dense(16, activation="relu", kernel_regularizer=keras.regularizers.l2(0.01)),
            keras.layers.Dense(8, activation="relu"),
            keras.layers.Dense(1, activation="sigmoid"),
        ]
    )
    model.compile(optimizer=keras.optimizers.Adam(0.01), loss="binary_crossentropy")
    cut = int(N_ROWS * TRAIN_SHARE)
    model.fit(x[:cut], y[:cut], epochs=8, batch_size=64, verbose=0)
    return model, x[:cut], x[cut:], y[cut:]


def _data(train: np.ndarray, test: np.ndarray, y_test: np.ndarray):
    from edgefin_converters import ConversionData
    from edgefin_runtime.manifest import FieldSpec, NumericStep, PreprocessSpec, Schema

    names = [f"f{i}" for i in range(K)]
    schema = Schema(
        fields=tuple(
            FieldSpec(name=c, kind="numeric", allow_missing=False, min=None, max=None, missing_share=0.0) for c in names
        ),
        target="y",
        positive_label="1",
        negative_label="0",
    )
    spec = PreprocessSpec(steps=tuple(NumericStep(field=c, fill=0.0, mean=0.0, scale=1.0) for c in names))

    def cols(m: np.ndarray) -> dict[str, np.ndarray]:
        return {c: m[:, i].astype(np.float64) for i, c in enumerate(names)}

    return ConversionData(
        schema=schema, preprocessing=spec, train=cols(train), test=cols(test), y_test=y_test, threshold=0.5
    )


@pytest.fixture(scope="module")
def case():
    return _case()


class Heard:
    """A progress object that keeps what export_variants told it."""

    def __init__(self) -> None:
        self.events: list[tuple] = []

    def started(self, variant, index, total):
        self.events.append(("started", variant))

    def repairing(self, variant, attempt):
        self.events.append(("repairing", variant, attempt))

    def done(self, result):
        self.events.append(("done", result.name))


def _export(case, variants, *, repair: bool, test=None, progress=None):
    model, train, x_test, y_test = case
    if test is not None:
        x_test, y_test = test
    return export_variants(
        Sources(float=Source(model=model, stage="user")),
        _data(train, x_test, y_test),
        variants,
        ExportOptions(repair=repair),
        progress=progress,
    )


@pytest.fixture(scope="module")
def unrepaired(case):
    return {r.name: r for r in _export(case, INT8, repair=False).results}


@pytest.fixture(scope="module")
def repaired(case):
    heard = Heard()
    res = _export(case, ("tflite-fp32", *INT8), repair=True, progress=heard)
    return res, {r.name: r for r in res.results}, heard


@pytest.mark.parametrize("name", INT8)
def test_without_repair_the_int8_variant_fails_its_gate(unrepaired, name):
    r = unrepaired[name]
    assert not r.passed and r.repair is None
    assert r.parity.flip_rate > 0.05  # far beyond the 1% gate: the case is a real failure
    assert "repair" not in manifest_of(r.bundle)["producer"]


@pytest.mark.parametrize("name", INT8)
def test_repair_keeps_the_fewest_layers_in_float_and_passes(repaired, unrepaired, name):
    import edgefin_runtime

    res, by_name, _ = repaired
    r = by_name[name]
    assert r.passed and r.parity.flip_rate <= 0.01 and -r.parity.auc_delta <= 0.005
    rec = r.repair
    assert rec["passed"] is True and rec["kept_float"]
    layers = {c["layer"] for c in rec["sensitivity"][0]["candidates"]}
    assert len(layers) == 3 and set(rec["kept_float"]) < layers  # at least one layer is still int8
    assert rec["kept_float"][0].endswith("/dense")  # the layer that sees the outlier column comes first
    steps = [a["step"] for a in rec["attempts"]]
    assert steps[0] == "original" and rec["attempts"][0]["flip_rate"] == unrepaired[name].parity.flip_rate
    assert steps[-1] == "keep-float" and rec["attempts"][-1]["passed"] is True
    assert all(a["passed"] is not True for a in rec["attempts"][:-1])
    assert "training rows" in rec["ranked_on"] and "held-out" in rec["stopping_criterion"]
    if any(a["step"] == "per-channel" and a["note"] for a in rec["attempts"]):  # the build fixes per-channel
        assert rec["per_channel"] is None
    # the manifest and parity.json say what was kept; the bundle loads (self-test) with float I/O
    m = manifest_of(r.bundle)
    assert m["producer"]["repair"] == json.loads(json.dumps(rec))
    assert m["producer"]["conversion"]["keep_float"] == rec["kept_float_nodes"]
    assert m["parity"]["passed"] is True
    assert res.parity_report()["variants"][name]["repair"]["kept_float"] == rec["kept_float"]
    assert m["model"]["inputs"][0]["dtype"] == "float32"
    assert m["producer"]["conversion"]["quantization"]["int8_weight_tensors"]  # still quantised
    edgefin_runtime.load(r.bundle)
    assert r.size < unrepaired[name].size * 3


def test_a_passing_variant_is_left_alone(repaired):
    _, by_name, _ = repaired
    assert by_name["tflite-fp32"].passed and by_name["tflite-fp32"].repair is None
    assert "repair" not in manifest_of(by_name["tflite-fp32"].bundle)["producer"]


def test_sensitivity_is_ranked_on_training_rows_never_the_test_rows(case, repaired, monkeypatch):
    """Every matrix the ranking scores comes from the training rows; and with other test rows the
    ranking is identical (only where the search stops may differ)."""
    model, train, x_test, y_test = case
    seen: list[np.ndarray] = []
    score, predict = repair_mod._score, repair_mod.predict
    monkeypatch.setattr(repair_mod, "_score", lambda v, b, x: (seen.append(np.array(x)), score(v, b, x))[1])
    monkeypatch.setattr(repair_mod, "predict", lambda m, x: (seen.append(np.array(x)), predict(m, x))[1])
    rng = np.random.default_rng(5)
    other = rng.permutation(len(x_test))[: len(x_test) // 2]
    res = _export(case, ("tflite-int8-ptq",), repair=True, test=(x_test[other] * 1.5, y_test[other]))
    assert seen
    train_rows = {r.tobytes() for r in train.astype(np.float32)}
    test_rows = {r.tobytes() for r in x_test.astype(np.float32)} | {
        r.tobytes() for r in (x_test[other] * 1.5).astype(np.float32)
    }
    for x in seen:
        rows = {r.tobytes() for r in np.asarray(x, dtype=np.float32)}
        assert rows <= train_rows and not rows & test_rows
    first = repaired[1]["tflite-int8-ptq"].repair
    again = res.results[0].repair
    assert again["sensitivity"][0] == first["sensitivity"][0]
    assert again["ranked_on"] == first["ranked_on"]


def test_selective_tflite_quantisation_is_deterministic_and_checks_node_names(case):
    from edgefin_converters.errors import ModelInputError
    from edgefin_converters.tflite import calibrate_tflite, describe_tflite, quantisable_layers, to_tflite_int8

    model, train, _, _ = case
    rows = train[:200]
    layers = quantisable_layers(calibrate_tflite(model, rows))
    assert [name for name, _ in layers] == ["sequential/dense", "sequential/dense_1", "sequential/dense_2"]
    assert any("Logistic" in n or "StatefulPartitionedCall" in n for n in layers[-1][1])  # the sigmoid too
    first = to_tflite_int8(model, rows, keep_float=layers[0][1])
    assert first == to_tflite_int8(model, rows, keep_float=layers[0][1])
    assert first != to_tflite_int8(model, rows)
    io8 = describe_tflite(to_tflite_int8(model, rows, int8_io=True, keep_float=layers[0][1]))
    assert io8.inputs[0].dtype == io8.outputs[0].dtype == "int8"  # --int8-io survives selective quantisation
    with pytest.raises(ModelInputError, match="keep_float names.*no/such/node"):
        to_tflite_int8(model, rows, keep_float=("no/such/node",))


def test_repair_note_and_record_when_nothing_passes():
    from edgefin.convert import _repair_note

    rec = repair_mod.RepairRecord(variant="onnx-int8", ranking_rows=1000)
    rec.attempts.append(
        repair_mod.Attempt(
            step="per-channel",
            per_channel=True,
            calibration_rows=500,
            kept_float=(),
            passed=False,
            auc_delta=-0.01,
            flip_rate=0.02,
        )
    )
    d = rec.to_dict()
    assert d["passed"] is False and d["kept_float"] == [] and len(d["attempts"]) == 1
    assert "none passed" in _repair_note(d, "onnx-int8")
    ok = {
        **d,
        "passed": True,
        "per_channel": False,
        "calibration_rows": 500,
        "kept_float": ["m/dense"],
        "attempts": [{"auc_delta": -0.001, "flip_rate": 0.004}],
    }
    note = _repair_note(ok, "onnx-int8")
    assert "repaired" in note and "m/dense" in note and "0.40%" in note and "training rows" in note
    assert "per-tensor weights" in note
    assert "weights" not in _repair_note({**ok, "per_channel": None}, "onnx-int8")


def test_cli_no_repair_flag_and_config_keys_reach_convert_options(tmp_path, monkeypatch):
    from click.testing import CliRunner

    import edgefin.steps.convert as step
    from edgefin.cli.main import cli
    from edgefin.errors import UsageError

    seen = []

    def fake(path, opts, reporter=None):
        seen.append(opts.repair)
        raise UsageError("stop here")

    monkeypatch.setattr(step, "run", fake)
    off, no = tmp_path / "off.toml", tmp_path / "no.toml"
    off.write_text("[convert]\nrepair = false\n")
    no.write_text("[convert]\nno_repair = true\n")
    for args in ([], ["--no-repair"], ["--config", off], ["--config", no]):
        res = CliRunner().invoke(cli, ["convert", str(tmp_path), *map(str, args)])
        assert res.exit_code == 2 and "stop here" in res.output + res.stderr, res.output
    assert seen == [True, False, False, False]


def test_every_repair_attempt_is_reported_as_it_happens(repaired):
    """The progress object hears each attempt between the variant's start and its result, in the order
    the record keeps them; the toolkit prints each as one line."""
    from edgefin.steps.convert import repair_text

    _, by_name, heard = repaired
    assert not [e for e in heard.events if e[0] == "repairing" and e[1] == "tflite-fp32"]  # passed: no repair
    for name in INT8:
        start = heard.events.index(("started", name))
        end = heard.events.index(("done", name))
        attempts = [e[2] for e in heard.events[start:end] if e[0] == "repairing"]
        assert [a.to_dict() for a in attempts] == by_name[name].repair["attempts"]
        assert all(e[1] == name for e in heard.events[start + 1 : end])
        lines = [repair_text(a) for a in attempts]
        assert lines[0].startswith("original (") and "-> fails (AUC " in lines[0]
        assert lines[-1].startswith("keep-float (") and "-> passes (AUC " in lines[-1] and "float: " in lines[-1]
