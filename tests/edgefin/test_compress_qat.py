"""QAT: PQAT keeps the pruned zeros (float kernels and int8 kernels), QAT models round-trip as .keras,
clustering keeps few values and CQAT keeps them through QAT."""

from __future__ import annotations

import numpy as np
import pytest

from edgefin.compress.cluster import cluster
from edgefin.compress.options import CompressOptions
from edgefin.compress.prune import prune
from edgefin.compress.qat import quantize_aware, scheme_for
from edgefin.compress.sparsity import measure
from edgefin.compress.support import predict
from edgefin.keras_io import load_model, save_model
from tests.edgefin.compress_helpers import dense_model, fit_data


@pytest.fixture(scope="module")
def data():
    return fit_data()


@pytest.fixture(scope="module")
def trained(data):
    return dense_model(train_on=data)


@pytest.fixture(scope="module")
def pruned(data, trained):
    model, _ = prune(trained, data, CompressOptions(sparsity=0.8, epochs=4), seed=1)
    return model


def qat_kernels(model):
    """The float kernels held inside the QuantizeWrappers, by wrapped layer name."""
    out = {}
    for layer in model.layers:
        for w in layer.weights:
            if w.name.split(":")[0].endswith("kernel") and "kernel_m" not in w.name:
                out[layer.layer.name] = w.numpy()
    return out


def test_pqat_keeps_the_zeros(data, pruned):
    assert scheme_for(pruned, clustered=False) == "pqat"
    qat, details = quantize_aware(pruned, data, scheme="pqat", epochs=2, learning_rate=1e-3, seed=1)
    assert details["scheme_class"] == "Default8BitPrunePreserveQuantizeScheme"
    kernels = qat_kernels(qat)
    for name in ("dense_1", "dense_2"):
        zeros_before = pruned.get_layer(name).kernel.numpy() == 0
        assert np.mean(zeros_before) >= 0.79
        assert (kernels[name][zeros_before] == 0).all()  # every pruned weight is still exactly zero
    rep = measure(qat)
    assert rep["kernel_sparsity"] >= measure(pruned)["kernel_sparsity"]
    assert rep["quantized_kernel_sparsity"] >= rep["kernel_sparsity"]  # int8 kernels: zeros stay zeros
    for row in rep["layers"][:2]:
        assert row["quantized_kernel_sparsity"] >= 0.79


def test_plain_qat_loses_the_zeros_pqat_exists_for(data, pruned):
    """The control: default 8-bit QAT trains the pruned weights back to non-zero."""
    qat, _ = quantize_aware(pruned, data, scheme="default", epochs=2, learning_rate=1e-3, seed=1)
    assert measure(qat)["kernel_sparsity"] < 0.5


def test_qat_model_round_trips_as_keras(tmp_path, data, pruned):
    qat, _ = quantize_aware(pruned, data, scheme="pqat", epochs=1, learning_rate=1e-3, seed=1)
    path = save_model(qat, tmp_path / "qat.keras")
    back = load_model(path)
    np.testing.assert_array_equal(predict(back, data.x_val), predict(qat, data.x_val))
    assert measure(back)["kernel_sparsity"] == measure(qat)["kernel_sparsity"]
    # the patches that make this work are scoped to the save/load calls
    from edgefin.tfmot_compat import QuantizeWrapper

    assert "save_own_variables" not in QuantizeWrapper.__dict__


def test_dense_model_gets_default_qat(data, trained):
    assert scheme_for(trained, clustered=False) == "default"
    qat, details = quantize_aware(trained, data, scheme="default", epochs=1, learning_rate=1e-4, seed=1)
    assert details["scheme"] == "default" and len(qat_kernels(qat)) == 3


def test_cluster_then_cqat_keeps_centroids_and_zeros(data, pruned):
    clustered, details = cluster(pruned, data, clusters=8, epochs=2, learning_rate=1e-4, seed=1)
    assert details["preserve_sparsity"] and details["clustered_layers"] == ["dense_1", "dense_2"]
    for name in ("dense_1", "dense_2"):
        k = clustered.get_layer(name).kernel.numpy()
        assert len(np.unique(k)) <= 8
        assert np.mean(k == 0) >= 0.79  # sparsity-preserving clustering
    qat, qd = quantize_aware(clustered, data, scheme="cqat", epochs=2, learning_rate=1e-4, seed=1)
    assert qd["baked_to"] == "pqat" and qd["bake_max_abs_diff"] <= 1e-4
    for name, k in qat_kernels(qat).items():
        if name != "score":
            assert len(np.unique(k)) <= 8 and np.mean(k == 0) >= 0.79


def test_int8_tflite_of_the_pqat_model_keeps_the_zeros(data, pruned):
    """The zeros survive into the converted int8 weights, not only the Keras kernels."""
    from ai_edge_litert.interpreter import Interpreter

    from edgefin.tfcompat import tf

    qat, _ = quantize_aware(pruned, data, scheme="pqat", epochs=1, learning_rate=1e-3, seed=1)
    conv = tf.lite.TFLiteConverter.from_keras_model(qat)
    conv.optimizations = [tf.lite.Optimize.DEFAULT]
    it = Interpreter(model_content=conv.convert())
    it.allocate_tensors()
    shares = {}
    for d in it.get_tensor_details():
        if d["dtype"] == np.int8 and len(d["shape"]) == 2 and d["shape"][0] > 1:
            shares[tuple(d["shape"])] = float(np.mean(it.get_tensor(d["index"]) == 0))
    assert set(shares) == {(32, 12), (16, 32)}  # TFLite stores Dense kernels as (units, inputs)
    assert min(shares.values()) >= 0.79
