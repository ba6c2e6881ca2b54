"""DenseClassifier: tiny models, few epochs. Seeds reproduce, best weights come back, files round-trip."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.metrics import roc_auc_score

from edgefin.errors import ModelError, UsageError
from edgefin.model import DenseClassifier


def data(n=300, seed=0, share=0.3):
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, 5)).astype(np.float32)
    logit = 1.5 * X[:, 0] - X[:, 1] + 0.8 * X[:, 2] * X[:, 3]
    y = (logit + rng.logistic(size=n) > np.quantile(logit, 1 - share)).astype(int)
    return X, y


def tiny(**kw):
    params = dict(hidden=(8,), epochs=4, patience=3, batch_size=32, learning_rate=0.01, seed=1)
    params.update(kw)
    return DenseClassifier(**params)


@pytest.fixture(scope="module")
def fitted():
    X, y = data()
    Xv, yv = data(seed=1)
    return tiny().fit(X, y, validation_data=(Xv, yv)), (X, y), (Xv, yv)


def test_fit_learns_and_exposes_sklearn_style_state(fitted):
    clf, (X, y), (Xv, yv) = fitted
    proba = clf.predict_proba(Xv)
    assert proba.shape == (len(yv), 2)
    np.testing.assert_allclose(proba.sum(axis=1), 1.0, atol=1e-6)
    assert roc_auc_score(yv, proba[:, 1]) > 0.75
    assert clf.model_.inputs[0].name.startswith("features")
    assert clf.model_.get_layer("features") is not None
    assert [layer.units for layer in clf.model_.layers if hasattr(layer, "units")] == [8, 1]
    assert set(clf.history_) >= {"loss", "val_auc"} and len(clf.history_["loss"]) == clf.epochs_run_
    assert clf.n_params_ == 5 * 8 + 8 + (8 + 5) + 1  # the output layer also sees the 5 inputs (linear path)
    assert set(np.unique(clf.predict(Xv))) <= {0, 1}


def test_best_weights_are_restored(fitted):
    clf, _, (Xv, yv) = fitted
    final = roc_auc_score(yv, clf.predict_score(Xv))
    assert final == pytest.approx(clf.best_val_auc_, abs=1e-6)
    assert clf.best_val_auc_ == pytest.approx(max(clf.history_["val_auc"]), abs=1e-9)
    assert clf.history_["val_auc"][clf.best_epoch_ - 1] == clf.best_val_auc_


def test_same_seed_same_model():
    X, y = data(150)
    a = tiny(epochs=2).fit(X, y).predict_score(X)
    b = tiny(epochs=2).fit(X, y).predict_score(X)
    c = tiny(epochs=2, seed=2).fit(X, y).predict_score(X)
    np.testing.assert_array_equal(a, b)
    assert not np.allclose(a, c)


def test_early_stopping_stops_when_validation_does_not_improve():
    X, y = data(200)
    rng = np.random.default_rng(5)
    Xv, yv = data(100, seed=9)[0], rng.integers(0, 2, 100)  # labels unrelated to the features
    clf = tiny(epochs=40, patience=2).fit(X, y, validation_data=(Xv, yv))
    assert clf.epochs_run_ < 40
    assert clf.epochs_run_ - clf.best_epoch_ == 2


def test_class_weights_shift_scores_towards_the_rare_class():
    X, y = data(400, share=0.1)
    weighted = tiny(epochs=5).fit(X, y).predict_score(X).mean()
    plain = tiny(epochs=5, class_weight=False).fit(X, y).predict_score(X).mean()
    assert weighted > plain + 0.1


def test_options_reach_the_graph():
    clf = tiny(hidden=(6, 4), dropout=0.2, l2=0.01)
    model = clf.build(3)
    names = [layer.name for layer in model.layers]
    assert names == ["features", "dense_1", "dropout_1", "dense_2", "dropout_2", "linear_skip", "score"]
    assert model.get_layer("score").kernel.shape == (4 + 3, 1)
    assert [layer.name for layer in tiny(linear=False).build(3).layers][-2:] == ["dense_1", "score"]
    assert model.get_layer("dense_1").kernel_regularizer is not None
    assert float(model.optimizer.learning_rate.numpy()) == pytest.approx(0.01)


def test_save_and_load_round_trip(tmp_path, fitted):
    clf, _, (Xv, _) = fitted
    path = clf.save(tmp_path / "m" / "dense.keras")
    assert sorted(p.name for p in path.parent.iterdir()) == ["dense.keras"]  # no temp files left
    back = DenseClassifier.load(path)
    np.testing.assert_array_equal(back.predict_score(Xv), clf.predict_score(Xv))
    assert back.hidden == (8,) and back.linear
    with pytest.raises(ModelError, match="not found"):
        DenseClassifier.load(tmp_path / "missing.keras")
    (tmp_path / "junk.keras").write_bytes(b"junk")
    with pytest.raises(ModelError, match=r"cannot load Keras model .*junk\.keras"):
        DenseClassifier.load(tmp_path / "junk.keras")


def test_bad_inputs_and_params():
    X, y = data(50)
    with pytest.raises(UsageError, match="dropout"):
        tiny(dropout=1.5).fit(X, y)
    X_nan = X.copy()
    X_nan[3, 2] = np.nan
    with pytest.raises(ModelError, match="row 3, column 2"):
        tiny().fit(X_nan, y)
    with pytest.raises(ModelError, match="both classes"):
        tiny().fit(X, np.zeros(50))
    with pytest.raises(ModelError, match="not fitted"):
        tiny().predict_score(X)
    clf = tiny(epochs=1).fit(X, y)
    with pytest.raises(ModelError, match="expects 5"):
        clf.predict_score(X[:, :3])


def _logistic(X, y):
    from sklearn.linear_model import LogisticRegression

    lr = LogisticRegression(max_iter=2000, class_weight="balanced").fit(X, y)
    return lr, lr.coef_.reshape(-1), float(lr.intercept_[0])


def test_blend_weight_one_is_the_logistic_regression_exactly():
    X, y = data(300)
    Xv, yv = data(200, seed=1)
    lr, coef, intercept = _logistic(X, y)
    clf = tiny(epochs=2).fit(X, y, validation_data=(Xv, yv))
    w, aucs = clf.blend_linear(coef, intercept, Xv, yv, weights=(1.0,))
    assert w == 1.0
    np.testing.assert_allclose(clf.predict_score(Xv), lr.predict_proba(Xv)[:, 1], atol=1e-5)
    assert aucs[1.0] == pytest.approx(roc_auc_score(yv, lr.predict_proba(Xv)[:, 1]), abs=1e-9)


def test_blend_keeps_the_validation_winner_and_its_auc_is_the_models():
    X, y = data(300)
    Xv, yv = data(200, seed=1)
    _, coef, intercept = _logistic(X, y)
    clf = tiny(epochs=3).fit(X, y, validation_data=(Xv, yv))
    dense_only = roc_auc_score(yv, clf.predict_score(Xv))
    w, aucs = clf.blend_linear(coef, intercept, Xv, yv)
    assert list(aucs) == [0.0, 0.25, 0.5, 0.75, 1.0]
    assert aucs[0.0] == pytest.approx(dense_only, abs=1e-4)  # weight 0: the trained model unchanged
    assert aucs[w] == max(aucs.values()) and clf.linear_weight_ == w
    assert roc_auc_score(yv, clf.predict_score(Xv)) == pytest.approx(aucs[w], abs=1e-4)


def test_blend_needs_the_linear_path_and_matching_features():
    X, y = data(100)
    _, coef, intercept = _logistic(X, y)
    with pytest.raises(ModelError, match="linear path"):
        tiny(epochs=1, linear=False).fit(X, y).blend_linear(coef, intercept, X, y)
    with pytest.raises(ModelError, match="4 coefficients, the data 5 features"):
        tiny(epochs=1).fit(X, y).blend_linear(coef[:4], intercept, X, y)
