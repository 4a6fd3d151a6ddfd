"""Targets beyond one label: FineTuneRegressor and multi-label FineTuneClassifier."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from sklearn.compose import TransformedTargetRegressor
from sklearn.linear_model import (
    LogisticRegression,
    LogisticRegressionCV,
    Ridge,
    RidgeCV,
)
from sklearn.metrics import f1_score
from sklearn.model_selection import GridSearchCV, StratifiedKFold, cross_val_score
from sklearn.multiclass import OneVsRestClassifier
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import FunctionTransformer
from torch import nn

from sktransfer import (
    FineTuneClassifier,
    FineTuneRegressor,
    PretrainedFeatureExtractor,
    load_model,
    save_model,
)
from sktransfer._probe import PROBE_ALPHAS, PROBE_CS, fit_binary_probes
from sktransfer._targets import LabelSetTargets

FAST = {"backbone": "fmnist_resnet", "device": "cpu", "random_state": 0}
# The head sees the mid-level stages, as the extractor's default layer does.
SAME_FEATURES = {"layer": "mid", "pooling": "grid"}


@pytest.fixture(scope="module")
def images(digits):
    X, y = digits
    X = X[:400]
    ink = X.mean(axis=(1, 2)) * 100  # per cent of the image that is ink
    height = (X.sum(axis=2) > 0.5).sum(axis=1).astype(float)  # rows with ink
    labels = np.stack([y[:400] % 2, y[:400] >= 5], axis=1).astype(int)
    return X, np.stack([ink, height], axis=1), labels


@pytest.fixture(scope="module")
def features(images):
    X, _, _ = images
    extractor = PretrainedFeatureExtractor("fmnist_resnet", device="cpu")
    return extractor.set_params(**SAME_FEATURES).fit_transform(X).astype(np.float64)


# ------------------------------------------------------------ the exact probes
def test_freeze_all_regression_equals_sklearn_ridge(images, features):
    X, Y, _ = images
    reg = FineTuneRegressor(freeze="all", probe_alpha=3.0, **SAME_FEATURES, **FAST)
    reg.fit(X[:300], Y[:300])
    expected = Ridge(alpha=3.0).fit(features[:300], Y[:300]).predict(features[300:])
    np.testing.assert_allclose(reg.predict(X[300:]), expected, rtol=1e-4, atol=1e-4)
    assert reg.n_epochs_ == 0 and reg.n_outputs_ == 2


def test_probe_alpha_auto_is_leave_one_out_ridge(images, features):
    X, Y, _ = images
    reg = FineTuneRegressor(freeze="all", **SAME_FEATURES, **FAST)
    reg.fit(X[:300], Y[:300, 0])
    cv = RidgeCV(alphas=PROBE_ALPHAS).fit(features[:300], Y[:300, 0])
    expected = cv.predict(features[300:])
    np.testing.assert_allclose(reg.predict(X[300:]), expected, rtol=1e-4, atol=1e-4)
    assert reg.predict(X[:3]).shape == (3,)  # the shape y had


def test_targets_in_any_units_give_the_same_model(images):
    X, Y, _ = images
    small = FineTuneRegressor(freeze="all", **FAST).fit(X[:200], Y[:200, 0])
    large = FineTuneRegressor(freeze="all", **FAST).fit(X[:200], 1e4 * Y[:200, 0] - 7)
    np.testing.assert_allclose(
        large.predict(X[300:]), 1e4 * small.predict(X[300:]) - 7, rtol=1e-4
    )
    np.testing.assert_allclose(large.target_scale_, 1e4 * small.target_scale_)


def test_integer_weights_equal_repeated_rows_in_the_ridge_probe(images):
    X, Y, _ = images
    weights = np.random.RandomState(0).randint(0, 3, size=200)
    weighted = FineTuneRegressor(freeze="all", probe_alpha=1.0, **FAST)
    weighted.fit(X[:200], Y[:200], sample_weight=weights)
    repeated = FineTuneRegressor(freeze="all", probe_alpha=1.0, **FAST).fit(
        np.repeat(X[:200], weights, axis=0), np.repeat(Y[:200], weights, axis=0)
    )
    # Standardisation differs (repeated rows move the mean), the ridge does not.
    np.testing.assert_allclose(
        weighted.predict(X[300:]), repeated.predict(X[300:]), rtol=1e-3, atol=1e-3
    )


def test_multilabel_probe_equals_one_vs_rest_logistic_regression(images, features):
    X, _, labels = images
    clf = FineTuneClassifier(
        freeze="all", probe_C=1.0, class_weight=None, **SAME_FEATURES, **FAST
    )
    clf.fit(X[:300], labels[:300])
    ovr = OneVsRestClassifier(LogisticRegression(C=1.0, tol=1e-8, max_iter=5000))
    expected = ovr.fit(features[:300], labels[:300]).predict_proba(features[300:])
    proba = clf.predict_proba(X[300:])
    np.testing.assert_allclose(proba, expected, atol=1e-4)
    np.testing.assert_array_equal(clf.predict(X[300:]), (proba > 0.5).astype(int))
    np.testing.assert_array_equal(clf.classes_, [0, 1])
    assert clf.predict(X[:3]).shape == (3, 2)


@pytest.mark.filterwarnings("ignore::FutureWarning")  # LogisticRegressionCV, 1.9
def test_multilabel_probe_c_auto_is_each_labels_cross_validated_c(images, features):
    X, _, labels = images
    clf = FineTuneClassifier(freeze="all", class_weight=None, **SAME_FEATURES, **FAST)
    clf.fit(X[:300], labels[:300])
    expected = []
    for j in range(labels.shape[1]):
        search = LogisticRegressionCV(
            Cs=PROBE_CS, cv=StratifiedKFold(3), scoring="neg_log_loss"
        ).fit(features[:300], labels[:300, j])
        best = LogisticRegression(C=np.ravel(search.C_)[0], tol=1e-8, max_iter=5000)
        expected.append(best.fit(features[:300], labels[:300, j]))
    proba = np.stack([m.predict_proba(features[300:])[:, 1] for m in expected], 1)
    np.testing.assert_allclose(clf.predict_proba(X[300:]), proba, atol=1e-3)


def test_a_label_with_one_value_in_the_rows_gets_only_its_rate():
    # freeze="auto" may hold out every positive row of a rare label.
    X = np.random.RandomState(0).normal(size=(20, 3))
    Y = np.stack([(X[:, 0] > 0), np.zeros(20)], axis=1).astype(int)
    head = nn.Linear(3, 2)
    assert fit_binary_probes(head, X, Y)
    np.testing.assert_array_equal(head.weight[1].detach().numpy(), 0.0)
    assert float(head.bias.detach()[1]) == pytest.approx(np.log(0.5 / 20.5))


@pytest.mark.parametrize("class_weight", ["balanced", "auto"])
def test_balanced_multilabel_weights_match_one_vs_rest(images, features, class_weight):
    # "auto", the default, is "balanced" for label sets.
    X, _, labels = images
    rare = labels.copy()
    rare[:, 1] = (np.arange(len(rare)) % 7 == 0).astype(int)
    clf = FineTuneClassifier(
        freeze="all", class_weight=class_weight, probe_C=1.0, **SAME_FEATURES, **FAST
    ).fit(X[:300], rare[:300])
    lr = LogisticRegression(class_weight="balanced", tol=1e-8, max_iter=5000)
    expected = OneVsRestClassifier(lr).fit(features[:300], rare[:300])
    np.testing.assert_allclose(
        clf.predict_proba(X[300:]), expected.predict_proba(features[300:]), atol=1e-4
    )


# ------------------------------------------------------------- fine-tuning
def test_fine_tuning_regression_learns_with_a_final_head(images):
    X, Y, _ = images
    reg = FineTuneRegressor(freeze=0, max_epochs=4, **FAST).fit(X[:300], Y[:300, 0])
    assert reg.final_head_  # two heads' outputs are averaged as numbers
    assert reg.score(X[300:], Y[300:, 0]) > 0.8
    losses = reg.history_[:, "train_loss"]
    assert losses[-1] < losses[0]


def test_huber_loss_trains(images):
    X, Y, _ = images
    reg = FineTuneRegressor(freeze=0, loss="huber", max_epochs=2, layer=None, **FAST)
    reg.fit(X[:100], Y[:100, 0])
    assert isinstance(reg.criterion_, nn.HuberLoss)
    assert np.isfinite(reg.predict(X[300:])).all()


def test_fine_tuning_multilabel_learns(images):
    X, _, labels = images
    clf = FineTuneClassifier(freeze=0, max_epochs=4, **FAST).fit(X[:300], labels[:300])
    assert (clf.predict(X[300:]) == labels[300:]).mean() > 0.75
    assert isinstance(clf.criterion_, nn.BCEWithLogitsLoss)


def test_auto_freeze_decides_on_squared_error_and_micro_f1(images):
    X, Y, labels = images
    reg = FineTuneRegressor(max_epochs=2, **FAST).fit(X[:100], Y[:100])
    assert set(reg.freeze_scores_["probe"]) == {"mse"}
    assert reg.freeze_ in (0, "all")
    clf = FineTuneClassifier(max_epochs=2, **FAST).fit(X[:100], labels[:100])
    assert set(clf.freeze_scores_["probe"]) == {"micro_f1", "log_loss"}


def test_label_sets_are_judged_on_weighted_micro_f1_then_log_loss():
    rng = np.random.default_rng(0)
    logits = torch.as_tensor(rng.normal(size=(30, 4)), dtype=torch.float32)
    truth = (rng.random((30, 4)) < 0.4).astype(np.int64)
    weights = rng.uniform(0.5, 2.0, 30)
    targets = LabelSetTargets(4)
    scores = targets.holdout_scores(logits, truth, weights)
    predicted = (logits.numpy() > 0).astype(int)
    expected = f1_score(truth, predicted, average="micro", sample_weight=weights)
    assert scores["micro_f1"] == pytest.approx(expected, abs=1e-4)
    # A calibrated model that predicts too few labels loses to one whose
    # predictions are right more often, whatever their log-losses.
    shy = {"micro_f1": 0.40, "log_loss": 0.15}
    bold = {"micro_f1": 0.55, "log_loss": 0.16}
    assert targets.better(bold, shy) and not targets.better(shy, bold)
    assert targets.better({"micro_f1": 0.4, "log_loss": 0.1}, shy)


# ---------------------------------------------------- scikit-learn interplay
def test_regressor_in_grid_search_cross_validation_and_target_transforms(images):
    X, Y, _ = images
    X, ink = X[:150], Y[:150, 0]
    reg = FineTuneRegressor(freeze="all", **FAST)
    grid = GridSearchCV(
        reg, {"probe_alpha": [0.1, 10.0]}, cv=2, scoring="neg_mean_squared_error"
    ).fit(X, ink)
    assert grid.best_params_["probe_alpha"] in (0.1, 10.0)
    scores = cross_val_score(reg, X, ink, cv=2, scoring="r2")
    assert scores.mean() > 0.5
    logged = TransformedTargetRegressor(reg, func=np.log1p, inverse_func=np.expm1)
    assert logged.fit(X, ink).predict(X[:5]).shape == (5,)


def test_multilabel_in_grid_search_and_cross_validation(images):
    X, _, labels = images
    clf = FineTuneClassifier(freeze="all", **FAST)
    scores = cross_val_score(clf, X[:150], labels[:150], cv=2, scoring="f1_micro")
    assert scores.mean() > 0.6
    grid = GridSearchCV(clf, {"probe_C": [0.1, "auto"]}, cv=2, scoring="f1_macro")
    assert grid.fit(X[:150], labels[:150]).best_params_["probe_C"] in (0.1, "auto")
    assert grid.predict(X[300:305]).shape == (5, 2)


def test_text_regression_in_a_pipeline():
    texts = [f"{'very ' * k}good film" for k in range(8)] + [
        f"{'very ' * k}bad film" for k in range(8)
    ]
    rating = np.array([k / 2 for k in range(8)] + [-k / 2 for k in range(8)])
    model = make_pipeline(
        FunctionTransformer(lambda x: list(x)),
        FineTuneRegressor(
            "all-minilm-l6-v2", freeze="all", max_length=16, device="cpu"
        ),
    )
    model.fit(texts, rating)
    predicted = model.predict(["very very good film", "very very bad film"])
    assert predicted[0] > predicted[1]


def test_fitted_models_save_and_load(images, tmp_path):
    X, Y, labels = images
    # Odd digits, and odd digits from 5 (about 30 %): "balanced" weighs the rare 1s.
    labels = np.stack([labels[:, 0], labels[:, 0] & labels[:, 1]], axis=1)
    reg = FineTuneRegressor(max_epochs=2, freeze=0, **FAST).fit(X[:60], Y[:60, 0])
    clf = FineTuneClassifier(
        max_epochs=2, freeze=0, class_weight="balanced", **FAST
    ).fit(X[:60], labels[:60])
    for model, name in ((reg, "reg"), (clf, "clf")):
        restored = load_model(save_model(model, tmp_path / name))
        np.testing.assert_allclose(restored.predict(X[300:]), model.predict(X[300:]))
    assert load_model(tmp_path / "reg").predict(X[:2]).shape == (2,)
    # Training goes on with the same per-label weights ("balanced" was saved).
    restored = load_model(tmp_path / "clf")
    logits = torch.randn(60, 2, generator=torch.Generator().manual_seed(0))
    y_true = torch.as_tensor(labels[:60])
    balanced = clf.get_loss(logits, y_true)
    assert restored.get_loss(logits, y_true) == pytest.approx(float(balanced))
    unweighted = FineTuneClassifier(
        max_epochs=1, freeze=0, class_weight=None, **FAST
    ).fit(X[:60], labels[:60])
    assert float(unweighted.get_loss(logits, y_true)) != pytest.approx(float(balanced))


# ------------------------------------------------------------------ errors
def test_bad_targets_are_refused_with_the_estimator_to_use(images):
    X, Y, labels = images
    with pytest.raises(ValueError, match="NaN or infinity in 1 rows"):
        FineTuneRegressor(**FAST).fit(X[:4], [1.0, np.nan, 2.0, 3.0])
    with pytest.raises(ValueError, match="For class labels use FineTuneClassifier"):
        FineTuneRegressor(**FAST).fit(X[:4], ["a", "b", "a", "b"])
    with pytest.raises(ValueError, match="use FineTuneRegressor"):
        FineTuneClassifier(**FAST).fit(X[:4], [0.5, 1.5, 2.25, 3.0])
    always = labels[:20].copy()
    always[:, 1] = 1
    with pytest.raises(ValueError, match=r"labels \(columns\) \[1\] are never or"):
        FineTuneClassifier(**FAST).fit(X[:20], always)
    with pytest.raises(ValueError, match="adaptation='coral' needs one class label"):
        FineTuneClassifier(adaptation="coral", **FAST).fit(X[:20], labels[:20])
    with pytest.raises(
        ValueError, match="class_weight must be 'auto', 'balanced' or None"
    ):
        FineTuneClassifier(class_weight={0: 2.0}, **FAST).fit(X[:20], labels[:20])
    assert not hasattr(FineTuneRegressor(), "predict_proba")
