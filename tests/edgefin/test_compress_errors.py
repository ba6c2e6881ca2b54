"""Models TFMOT cannot wrap give one clear UnsupportedLayerError naming the layer and the fix."""

from __future__ import annotations

import pytest

from edgefin.compress.options import CompressOptions
from edgefin.compress.prune import prune
from edgefin.compress.qat import quantize_aware
from edgefin.errors import ModelError, UnsupportedLayerError
from tests.edgefin.compress_helpers import fit_data


@pytest.fixture(scope="module")
def data():
    return fit_data(k=6)


def lambda_model():
    from edgefin.tfcompat import keras

    inp = keras.Input((6,), name="features")
    x = keras.layers.Dense(16, activation="relu", name="hidden")(inp)
    x = keras.layers.Lambda(lambda t: t * 2.0, name="double")(x)
    return keras.Model(inp, keras.layers.Dense(1, activation="sigmoid", name="score")(x))


def custom_layer_model():
    from edgefin.tfcompat import keras

    class Scale(keras.layers.Layer):
        def build(self, shape):
            self.w = self.add_weight(name="w", shape=(shape[-1],), initializer="ones")

        def call(self, x):
            return x * self.w

    inp = keras.Input((6,), name="features")
    x = Scale(name="scale")(inp)
    x = keras.layers.Dense(16, activation="relu", name="hidden")(x)
    return keras.Model(inp, keras.layers.Dense(1, activation="sigmoid", name="score")(x))


def test_custom_layer_with_weights_cannot_be_pruned(data):
    with pytest.raises(UnsupportedLayerError) as err:
        prune(custom_layer_model(), data, CompressOptions(epochs=2), seed=1)
    msg = str(err.value)
    assert "'scale' (Scale)" in msg and "`skip_layers=scale`" in msg
    assert "Traceback" not in msg and len(msg.splitlines()) == 1


def test_skip_layer_leaves_it_alone(data):
    model, details = prune(
        custom_layer_model(), data, CompressOptions(epochs=3, sparsity=0.5, skip_layers=("scale",)), seed=1
    )
    assert details["pruned_layers"] == ["hidden"]
    assert (model.get_layer("scale").get_weights()[0] != 0).all()


def test_lambda_layer_cannot_be_quantised(data):
    model = lambda_model()
    pruned, _ = prune(model, data, CompressOptions(epochs=3, sparsity=0.5), seed=1)  # Lambda: prunable (no weights)
    with pytest.raises(UnsupportedLayerError) as err:
        quantize_aware(pruned, data, scheme="pqat", epochs=1, learning_rate=1e-4, seed=1)
    msg = str(err.value)
    assert "'double' (Lambda)" in msg and "`skip_layers=double`" in msg and "`qat=False`" in msg
    qat, _ = quantize_aware(pruned, data, scheme="pqat", epochs=1, learning_rate=1e-4, seed=1, skip_layers=("double",))
    assert qat.get_layer("double").__class__.__name__ == "Lambda"  # left in float


def test_subclassed_model_is_refused_with_a_fix(data):
    from edgefin.tfcompat import keras

    class MyModel(keras.Model):
        def __init__(self):
            super().__init__()
            self.d = keras.layers.Dense(1, activation="sigmoid")

        def call(self, x):
            return self.d(x)

    m = MyModel()
    m(data.x_train[:2])
    with pytest.raises(UnsupportedLayerError, match="subclassed.*functional API"):
        prune(m, data, CompressOptions(epochs=2), seed=1)


def test_unknown_skip_layer_and_bad_output(data):
    from edgefin.tfcompat import keras

    with pytest.raises(UnsupportedLayerError, match="no such layer.*hidden"):
        prune(lambda_model(), data, CompressOptions(epochs=2, skip_layers=("nope",)), seed=1)
    inp = keras.Input((6,))
    two = keras.Model(inp, keras.layers.Dense(2, activation="softmax")(inp))
    with pytest.raises(ModelError, match=r"\(batch, 1\)"):
        prune(two, data, CompressOptions(epochs=2), seed=1)
