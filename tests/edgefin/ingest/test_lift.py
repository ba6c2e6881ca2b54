"""edgefin.ingest.lift: a leading per-column affine map split off a model, on small hand-made graphs.

The lifted ``(x - mean) / scale`` followed by the rest must compute what the model computes; anything
that is not such a map (a negative factor, the raw input used twice, a non-constant operand) is left in
the model (None)."""

from __future__ import annotations

import numpy as np
import pytest
from onnx import TensorProto, helper, numpy_helper

from edgefin.ingest.lift import lift_keras, lift_onnx

K = 3
X = (np.random.default_rng(0).normal(size=(50, K)) * [1.0, 10.0, 100.0] + [0.0, 5.0, 50.0]).astype(np.float32)


def _onnx(nodes, inits):
    w = numpy_helper.from_array(np.array([[0.5], [-0.2], [0.03]], np.float32), "w")
    nodes = [
        *nodes,
        helper.make_node("MatMul", [nodes[-1].output[0], "w"], ["z"]),
        helper.make_node("Sigmoid", ["z"], ["p"]),
    ]
    graph = helper.make_graph(
        nodes,
        "g",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["n", K])],
        [helper.make_tensor_value_info("p", TensorProto.FLOAT, ["n", 1])],
        [numpy_helper.from_array(np.asarray(v, np.float32), k) for k, v in inits.items()] + [w],
    )
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 15)]).SerializeToString()


def _score(model_bytes, x):
    import onnxruntime as ort

    s = ort.InferenceSession(model_bytes, providers=["CPUExecutionProvider"])
    return s.run(None, {s.get_inputs()[0].name: x})[0].ravel()


def _check_onnx(model_bytes):
    lifted = lift_onnx(model_bytes)
    assert lifted is not None
    z = ((X - lifted.mean) / lifted.scale).astype(np.float32)
    assert np.max(np.abs(_score(model_bytes, X) - _score(lifted.rest, z))) <= 1e-6
    assert len(lifted.rest) < len(model_bytes)
    return lifted


def test_onnx_batchnormalization_node_is_lifted():
    inits = {"g": [1.5, 0.5, 2.0], "b": [0.1, -0.3, 0.0], "m": [0.0, 5.0, 50.0], "v": [1.0, 100.0, 1e4]}
    node = helper.make_node("BatchNormalization", ["x", "g", "b", "m", "v"], ["h"], epsilon=1e-3)
    lifted = _check_onnx(_onnx([node], inits))
    assert lifted.kind == "ONNX BatchNormalization"


def test_onnx_sub_div_and_mul_add_chains_are_lifted():
    sub_div = [helper.make_node("Sub", ["x", "mu"], ["c"]), helper.make_node("Div", ["c", "sd"], ["h"])]
    lifted = _check_onnx(_onnx(sub_div, {"mu": [0.0, 5.0, 50.0], "sd": [[1.0, 10.0, 100.0]]}))
    np.testing.assert_allclose(lifted.scale, [1.0, 10.0, 100.0], rtol=1e-6)
    mul_add = [helper.make_node("Mul", ["a", "x"], ["c"]), helper.make_node("Add", ["c", "b"], ["h"])]
    assert _check_onnx(_onnx(mul_add, {"a": [1.0, 0.1, 0.01], "b": [0.0, -0.5, -0.5]})).kind == "ONNX Mul+Add"


def test_onnx_affine_operands_from_constant_nodes_are_lifted():
    """The operands of Sub/Div (or Mul/Add) as Constant nodes rather than initialisers (what many exporters
    write): lifted the same way, and the Constant nodes go with the chain."""
    mu = numpy_helper.from_array(np.array([0.0, 5.0, 50.0], np.float32), "mu_value")
    sub_div = [
        helper.make_node("Constant", [], ["mu"], value=mu),
        helper.make_node("Constant", [], ["sd"], value_floats=[1.0, 10.0, 100.0]),
        helper.make_node("Sub", ["x", "mu"], ["c"]),
        helper.make_node("Div", ["c", "sd"], ["h"]),
    ]
    lifted = _check_onnx(_onnx(sub_div, {}))
    assert lifted.kind == "ONNX Sub+Div"
    np.testing.assert_allclose(lifted.mean, [0.0, 5.0, 50.0], atol=1e-6)
    np.testing.assert_allclose(lifted.scale, [1.0, 10.0, 100.0], rtol=1e-6)
    import onnx

    assert "Constant" not in [n.op_type for n in onnx.load_from_string(lifted.rest).graph.node]
    scalar = [helper.make_node("Constant", [], ["two"], value_float=2.0), helper.make_node("Mul", ["x", "two"], ["h"])]
    np.testing.assert_allclose(_check_onnx(_onnx(scalar, {})).scale, [0.5, 0.5, 0.5])


@pytest.mark.parametrize(
    "nodes, inits",
    [
        ([helper.make_node("Mul", ["x", "a"], ["h"])], {"a": [1.0, -0.1, 0.01]}),  # a negative factor
        ([helper.make_node("Mul", ["x", "x"], ["h"])], {}),  # not a constant operand
        ([helper.make_node("Relu", ["x"], ["h"])], {}),  # not an affine op
    ],
)
def test_onnx_graphs_without_a_positive_affine_start_are_not_lifted(nodes, inits):
    assert lift_onnx(_onnx(nodes, inits)) is None


def test_onnx_input_used_twice_is_not_lifted():
    nodes = [helper.make_node("Mul", ["x", "a"], ["c"]), helper.make_node("Add", ["c", "x"], ["h"])]
    assert lift_onnx(_onnx(nodes, {"a": [1.0, 0.1, 0.01]})) is None


def _tf_keras_bn(gamma, *, skip=False):
    from edgefin.tfcompat import keras

    inp = keras.Input((K,), name="x")
    h = keras.layers.BatchNormalization(name="bn_in")(inp)
    if skip:
        h = keras.layers.Concatenate()([h, inp])
    out = keras.layers.Dense(1, activation="sigmoid", name="p")(keras.layers.Dense(4, activation="relu")(h))
    model = keras.Model(inp, out)
    model.get_layer("bn_in").set_weights(
        [
            np.asarray(gamma, np.float32),
            np.array([0.1, -0.2, 0.3], np.float32),
            np.array([0, 5, 50], np.float32),
            np.array([1, 100, 1e4], np.float32),
        ]  # fmt: skip
    )
    return model, keras


def test_tf_keras_batchnormalization_on_the_inputs_is_lifted():
    model, keras = _tf_keras_bn([1.2, 0.8, 1.5])
    lifted = lift_keras(model, keras, float(keras.backend.epsilon()))
    assert lifted is not None and (lifted.layer, lifted.kind) == ("bn_in", "BatchNormalization")
    assert "bn_in" not in [layer.name for layer in lifted.rest.layers]
    z = ((X - lifted.mean) / lifted.scale).astype(np.float32)
    ref = np.asarray(model(X, training=False)).ravel()
    assert np.max(np.abs(ref - np.asarray(lifted.rest(z, training=False)).ravel())) <= 1e-6


def test_tf_keras_batchnormalization_not_liftable():
    model, keras = _tf_keras_bn([1.2, -0.8, 1.5])  # a negative gamma: the spec's scale must be positive
    assert lift_keras(model, keras, 1e-7) is None
    model, keras = _tf_keras_bn([1.2, 0.8, 1.5], skip=True)  # the raw input is used again later
    assert lift_keras(model, keras, 1e-7) is None


def test_keras3_batchnormalization_on_the_inputs_is_lifted():
    import keras

    from edgefin.ingest import keras3

    inp = keras.Input((K,), name="x")
    h = keras.layers.BatchNormalization(name="bn_in")(inp)
    model = keras.Model(inp, keras.layers.Dense(1, activation="sigmoid")(keras.layers.Dense(4, activation="relu")(h)))
    model.get_layer("bn_in").set_weights(
        [np.array(w, np.float32) for w in ([1.2, 0.8, 1.5], [0.1, -0.2, 0.3], [0, 5, 50], [1, 100, 1e4])]
    )
    lifted = keras3.lift_leading(model)
    assert lifted is not None and (lifted.layer, lifted.kind) == ("bn_in", "BatchNormalization")
    z = ((X - lifted.mean) / lifted.scale).astype(np.float32)
    ref = np.asarray(model(X, training=False)).ravel()
    assert np.max(np.abs(ref - np.asarray(lifted.rest(z, training=False)).ravel())) <= 1e-6
