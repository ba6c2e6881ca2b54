"""Pruning: the target sparsity is really reached on the stripped kernels, patterns hold, options are checked."""

from __future__ import annotations

import numpy as np
import pytest

from edgefin.compress.options import Block, CompressOptions
from edgefin.compress.prune import prune, schedule
from edgefin.compress.sparsity import measure
from edgefin.errors import UsageError
from tests.edgefin.compress_helpers import dense_model, fit_data


@pytest.fixture(scope="module")
def data():
    return fit_data()


@pytest.fixture(scope="module")
def trained(data):
    return dense_model(train_on=data)


def kernel(model, name):
    return model.get_layer(name).kernel.numpy()


def test_reaches_target_sparsity_on_stripped_kernels(data, trained):
    before = [w.copy() for w in trained.get_weights()]
    pruned, details = prune(trained, data, CompressOptions(sparsity=0.8, epochs=5), seed=1)
    from edgefin.tfmot_compat import PruneLowMagnitude

    assert not any(isinstance(layer, PruneLowMagnitude) for layer in pruned.layers)  # stripped
    for name in ("dense_1", "dense_2"):
        assert np.mean(kernel(pruned, name) == 0) >= 0.79
    assert np.mean(kernel(pruned, "score") == 0) == 0  # the output layer is kept dense by default
    assert details["pruned_layers"] == ["dense_1", "dense_2"] and "score" in details["skipped_layers"]
    rep = measure(pruned)
    assert [r["layer"] for r in rep["layers"]] == ["dense_1", "dense_2", "score"]
    assert rep["layers"][0]["kernel_sparsity"] >= 0.79 and rep["kernel_zeros"] > 0
    assert rep["nonzero_params"] < rep["params"] == trained.count_params()
    # the source model is never modified (TFMOT wraps layers in place; we wrap a copy)
    assert all(np.array_equal(a, b) for a, b in zip(before, trained.get_weights()))
    # the kept model scores sensibly (selected on validation AUC after the target was reached)
    from sklearn.metrics import roc_auc_score

    assert roc_auc_score(data.y_val, pruned.predict(data.x_val, verbose=0).ravel()) > 0.7
    assert details["fine_tune"]["best_epoch"] >= details["schedule"]["target_reached_in_epoch"]


def test_prune_output_and_skip_layer(data, trained):
    pruned, details = prune(
        trained, data, CompressOptions(sparsity=0.5, epochs=3, prune_output=True, skip_layers=("dense_1",)), seed=1
    )
    assert np.mean(kernel(pruned, "dense_1") == 0) == 0
    assert np.mean(kernel(pruned, "dense_2") == 0) >= 0.49
    assert np.mean(kernel(pruned, "score") == 0) >= 0.49
    assert details["pruned_layers"] == ["dense_2", "score"]


def test_two_four_structured_sparsity(data, trained):
    from edgefin.tfmot_compat import is_pruned_m_by_n

    pruned, details = prune(trained, data, CompressOptions(block="2:4", epochs=2), seed=1)
    assert details["target_sparsity"] == 0.5
    from edgefin.tfcompat import tf

    k = kernel(pruned, "dense_2")  # (32, 16): 2 zeros in every 4 consecutive input weights of each unit
    assert bool(is_pruned_m_by_n(tf.constant(k), (2, 4)))  # TFMOT's own checker of the 2:4 pattern
    assert np.mean(k == 0) == pytest.approx(0.5)
    assert (k.T.reshape(16, 8, 4) == 0).sum(axis=2).min() >= 2  # and by hand: groups of 4 inputs per unit


def test_block_sparsity_zeroes_whole_blocks(data, trained):
    pruned, _ = prune(trained, data, CompressOptions(sparsity=0.75, block="1x4", epochs=4), seed=1)
    k = kernel(pruned, "dense_2")  # (32, 16) -> blocks of 1 row x 4 columns
    blocks = (k.reshape(32, 4, 4) == 0).all(axis=2)
    assert np.mean(k == 0) >= 0.74
    assert np.mean(blocks) * 1.0 == pytest.approx(np.mean(k == 0))  # every zero sits in an all-zero block


@pytest.mark.parametrize("bad", [0, 0.0, 1, 1.0, -0.2, 1.5, "x"])
def test_sparsity_outside_open_interval_is_usage_error(bad):
    with pytest.raises(UsageError, match="`sparsity`"):
        CompressOptions(sparsity=bad).validated()


def test_options_defaults_and_errors():
    o = CompressOptions().validated()
    assert o.sparsity == 0.8 and o.block == "1x1" and o.qat
    assert CompressOptions(block="2:4").validated().sparsity == 0.5
    with pytest.raises(UsageError, match="2:4"):
        CompressOptions(block="2:4", sparsity=0.8).validated()
    for bad in ("3x", "0x4", "4:2", "abc"):
        with pytest.raises(UsageError, match="`block"):
            Block.parse(bad)
    with pytest.raises(UsageError, match="`end_epoch`"):
        CompressOptions(epochs=4, end_epoch=6).validated()
    with pytest.raises(UsageError, match="`cluster`"):
        CompressOptions(cluster=1).validated()


def test_schedule_lands_on_a_pruning_step_and_fits_the_epochs():
    s = schedule(CompressOptions(epochs=10).validated(), steps_per_epoch=42)
    assert (s.end_step - s.begin_step) % s.frequency == 0
    assert s.end_step < 10 * 42 and s.select_from == -(-s.end_step // 42)
    with pytest.raises(UsageError, match="`epochs`"):
        schedule(CompressOptions(epochs=3, end_step=500).validated(), steps_per_epoch=42)
