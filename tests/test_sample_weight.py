"""``fit(X, y, sample_weight=...)``: the probe, fine-tuning, the cache, routing."""

from __future__ import annotations

import numpy as np
import pytest
import sklearn
import torch
from sklearn.model_selection import cross_validate
from torch import nn

from sktransfer._sample_weight import weighted_cross_entropy


@pytest.fixture(scope="module")
def weights(few_digits):
    _, y = few_digits
    return np.random.RandomState(0).randint(0, 4, size=len(y)).astype(float)


def test_integer_weights_equal_repeated_rows_in_the_probe(
    make_classifier, few_digits, weights
):
    X, y = few_digits
    weighted = make_classifier(freeze="all").fit(X, y, sample_weight=weights)
    repeats = weights.astype(int)
    repeated = make_classifier(freeze="all").fit(
        np.repeat(X, repeats, axis=0), np.repeat(y, repeats)
    )
    unweighted = make_classifier(freeze="all").fit(X, y)
    proba = weighted.predict_proba(X)
    # Both are the optimum of one convex problem (solver tolerance 1e-6).
    np.testing.assert_allclose(proba, repeated.predict_proba(X), atol=2e-3)
    assert np.abs(proba - unweighted.predict_proba(X)).max() > 0.05


def test_zero_weights_equal_dropped_rows_in_the_probe(make_classifier, few_digits):
    X, y = few_digits
    keep = np.arange(len(y)) % 3 != 0
    weighted = make_classifier(freeze="all").fit(X, y, sample_weight=keep * 1.0)
    dropped = make_classifier(freeze="all").fit(X[keep], y[keep])
    np.testing.assert_allclose(
        weighted.predict_proba(X), dropped.predict_proba(X), atol=2e-3
    )


def test_a_batch_loss_is_the_weighted_mean_with_class_weights():
    logits = torch.tensor([[2.0, 0.0], [0.0, 1.0], [1.0, 1.0]])
    labels = torch.tensor([0, 1, 0])
    rows = nn.functional.cross_entropy(logits, labels, reduction="none")
    weights = torch.tensor([1.0, 0.0, 2.0])
    plain = nn.CrossEntropyLoss()
    expected = (rows[0] + 2 * rows[2]) / 3
    torch.testing.assert_close(
        weighted_cross_entropy(plain, logits, labels, weights), expected
    )
    # Class weights multiply in, as in torch's own weighted mean.
    classes = nn.CrossEntropyLoss(weight=torch.tensor([0.5, 3.0]))
    ones = torch.ones(3)
    torch.testing.assert_close(
        weighted_cross_entropy(classes, logits, labels, ones), classes(logits, labels)
    )
    zero = weighted_cross_entropy(plain, logits, labels, torch.zeros(3))
    assert zero.item() == 0.0


@pytest.mark.parametrize("freeze", [0, 3])
def test_fine_tuning_weighs_the_loss(make_classifier, few_digits, freeze):
    X, y = few_digits
    plain = make_classifier(freeze=freeze).fit(X, y)
    # One weight for every row changes nothing: the loss is a weighted mean.
    scaled = make_classifier(freeze=freeze).fit(X, y, sample_weight=np.full(100, 2.5))
    # (Up to rounding, which Adam's normalised steps carry along.)
    np.testing.assert_allclose(
        scaled.predict_proba(X), plain.predict_proba(X), atol=1e-3
    )
    # Rows of class 0 weighing nothing: class 0 gets no pull towards itself.
    no_zeros = make_classifier(freeze=freeze).fit(X, y, sample_weight=(y != 0) * 1.0)
    assert no_zeros.used_cache_ == (freeze > 0)
    zeros = y == 0
    assert (
        no_zeros.predict_proba(X[zeros])[:, 0].mean()
        < plain.predict_proba(X[zeros])[:, 0].mean() - 0.02
    )


def test_early_stopping_and_partial_fit_take_weights(make_classifier, few_digits):
    X, y = few_digits
    clf = make_classifier(early_stopping=True, validation_fraction=0.2)
    clf.fit(X, y, sample_weight=np.linspace(0.5, 2.0, len(y)))
    assert np.isfinite(clf.history[:, "valid_loss"]).all()
    assert 0.0 <= clf.history[-1, "valid_acc"] <= 1.0
    before = clf.predict_proba(X)
    clf.partial_fit(X, y, sample_weight=(y != 0) * 1.0)
    assert not np.allclose(before, clf.predict_proba(X))


@pytest.mark.parametrize("freeze", [0, "all"])
def test_unused_fit_parameters_are_refused_before_any_work(
    make_classifier, few_digits, freeze
):
    X, y = few_digits
    clf = make_classifier(freeze=freeze)
    with pytest.raises(TypeError, match="unexpected fit parameter.*'epochs'"):
        clf.fit(X, y, epochs=3)
    assert not clf.initialized_
    with pytest.raises(TypeError, match="'weights'"):
        clf.partial_fit(X, y, weights=np.ones(len(y)))
    assert not clf.initialized_


@pytest.mark.parametrize(
    ("sample_weight", "message"),
    [
        (-np.ones(100), "Negative values"),
        (np.ones(5), r"sample_weight.shape == \(5,\), expected \(100,\)"),
        (np.zeros(100), "at least one non-zero"),
        (np.full(100, np.nan), "NaN"),
    ],
)
def test_bad_weights_are_refused_before_any_work(
    make_classifier, few_digits, sample_weight, message
):
    X, y = few_digits
    clf = make_classifier()
    with pytest.raises(ValueError, match=message):
        clf.fit(X, y, sample_weight=sample_weight)
    assert not clf.initialized_


def test_weights_are_routed_by_metadata_routing(make_classifier, few_digits, weights):
    X, y = few_digits
    clf = make_classifier(freeze="all")
    with sklearn.config_context(enable_metadata_routing=True):
        clf.set_fit_request(sample_weight=True).set_score_request(sample_weight=True)
        routed = cross_validate(clf, X, y, cv=2, params={"sample_weight": weights})
        plain = cross_validate(make_classifier(freeze="all"), X, y, cv=2)
    assert not np.allclose(routed["test_score"], plain["test_score"])


def test_weights_of_unlabelled_target_rows_alone_are_refused(
    make_classifier, few_digits
):
    X, y = few_digits
    y = np.where(np.arange(len(y)) < 50, y, -1)  # rows 50+: target rows
    weights = (np.arange(len(y)) >= 50) * 1.0
    with pytest.raises(ValueError, match="every labelled row a weight of 0"):
        make_classifier(adaptation="coral").fit(X, y, sample_weight=weights)
