"""Domain adaptation with skada's conventions: extractor pipelines, Deep CORAL, DANN."""

from __future__ import annotations

import numpy as np
import pytest
import sklearn
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import GridSearchCV

from sktransfer import (
    PretrainedFeatureExtractor,
    load_model,
    resolve_backbone,
    save_model,
)
from sktransfer._adaptation import DomainBatches, coral_loss, resolve_domains
from sktransfer.datasets import blend_with_photos

skada = pytest.importorskip("skada")


@pytest.fixture(scope="module")
def shifted_digits(digits):
    """Source: 120 digits; target: 120 other digits blended into photo crops."""
    X, y = digits
    X_source, y_source = X[:120], y[:120]
    X_target = blend_with_photos(X[120:240], random_state=0)
    # One colour layout for both domains: the source as grey RGB.
    X_source = np.repeat((X_source * 255).astype(np.uint8)[..., None], 3, axis=3)
    X_all = np.concatenate([X_source, X_target])
    y_masked = np.concatenate([y_source, np.full(120, -1)])
    domain = np.concatenate([np.ones(120, int), -np.ones(120, int)])
    return X_all, y_masked, domain, y[120:240]


def test_extractor_runs_inside_a_skada_pipeline(shifted_digits):
    from skada import CORALAdapter, make_da_pipeline

    X, y, domain, y_target = shifted_digits
    # layer=None: the final pooled embedding keeps CORAL's covariances small.
    pipe = make_da_pipeline(
        PretrainedFeatureExtractor("fmnist_resnet", device="cpu", layer=None),
        CORALAdapter(),
        LogisticRegression(max_iter=2000),
    )
    pipe.fit(X, y.copy(), sample_domain=domain)
    extractor, coral, classifier = (step.base_estimator_ for _, step in pipe.steps)
    # sample_domain reached CORAL: it saw both domains, each with its own mean.
    features = extractor.transform(X)
    np.testing.assert_allclose(
        coral.mean_source_, features[domain > 0].mean(axis=0), rtol=1e-4, atol=1e-5
    )
    np.testing.assert_allclose(
        coral.mean_target_, features[domain < 0].mean(axis=0), rtol=1e-4, atol=1e-5
    )
    # The classifier learnt from the labelled source rows only (-1 is no class).
    assert list(classifier.classes_) == list(range(10))
    target = domain < 0
    predicted = pipe.predict(X[target], sample_domain=domain[target])
    assert predicted.shape == (120,)
    assert set(predicted) <= set(range(10))


@pytest.mark.parametrize("adaptation", ["coral", "dann"])
def test_no_target_rows_gives_exactly_the_plain_fit(
    make_classifier, few_digits, adaptation
):
    X, y = few_digits
    for layer in (None, "auto"):  # "auto" keeps its place without target rows
        plain = make_classifier(layer=layer).fit(X, y)
        adapted = make_classifier(adaptation=adaptation, layer=layer).fit(X, y)
        assert adapted.layer_ == plain.layer_
        np.testing.assert_array_equal(plain.predict_proba(X), adapted.predict_proba(X))


def test_sample_domain_is_inferred_from_masked_labels(make_classifier, shifted_digits):
    X, y, domain, _ = shifted_digits
    explicit = make_classifier(adaptation="coral", max_epochs=1)
    explicit.fit(X, y, sample_domain=domain)
    inferred = make_classifier(adaptation="coral", max_epochs=1).fit(X, y)
    np.testing.assert_allclose(
        explicit.predict_proba(X[:20]), inferred.predict_proba(X[:20]), atol=1e-6
    )
    assert list(inferred.classes_) == list(range(10))  # -1 is not a class


def test_without_adaptation_target_rows_are_left_out(make_classifier, shifted_digits):
    X, y, domain, _ = shifted_digits
    source = domain > 0
    with_target = make_classifier(max_epochs=1).fit(X, y, sample_domain=domain)
    source_only = make_classifier(max_epochs=1).fit(X[source], y[source])
    np.testing.assert_array_equal(
        with_target.predict_proba(X[:20]), source_only.predict_proba(X[:20])
    )


@pytest.mark.parametrize("adaptation", ["coral", "dann"])
def test_adaptation_changes_the_fit_and_keeps_the_frozen_cache(
    make_classifier, shifted_digits, adaptation
):
    X, y, domain, _ = shifted_digits
    plain = make_classifier(freeze=2, max_epochs=1).fit(X, y, sample_domain=domain)
    adapted = make_classifier(freeze=2, max_epochs=1, adaptation=adaptation)
    adapted.fit(X, y, sample_domain=domain)
    assert adapted.used_cache_ and plain.used_cache_
    assert not np.allclose(plain.predict_proba(X[:20]), adapted.predict_proba(X[:20]))
    # An epoch is one pass over the source rows, with or without adaptation.
    assert len(adapted.history[-1]["batches"]) == len(plain.history[-1]["batches"])
    # Predictions need no domain; skada's scorers pass one anyway.
    np.testing.assert_array_equal(
        adapted.predict(X[:5]), adapted.predict(X[:5], sample_domain=domain[:5])
    )


def test_batches_hold_both_domains_and_cover_the_source_once():
    target = np.array([False] * 10 + [True] * 3)
    batches = list(DomainBatches(target, batch_size=4))
    assert len(batches) == 3
    source_seen = [i for batch in batches for i in batch if i < 10]
    assert sorted(source_seen) == list(range(10))
    n_sources = [sum(i < 10 for i in batch) for batch in batches]
    # Evenly cut, as plain training batches are: no leftover batch of 2.
    assert sorted(n_sources) == [3, 3, 4]
    for batch, n_source in zip(batches, n_sources, strict=True):
        assert sum(i >= 10 for i in batch) == n_source  # as many target rows


def test_coral_loss_is_zero_for_equal_covariances_and_grows_with_shift():
    import torch

    x = torch.randn(256, 4)
    assert float(coral_loss(x, x + 5.0)) == pytest.approx(0.0, abs=1e-6)
    assert float(coral_loss(x, 2 * x)) > float(coral_loss(x, 1.1 * x)) > 0


@pytest.mark.parametrize(
    ("y", "domain", "message"),
    [
        ([0, 1, 2, 3], [1, 1, -1, -1], "labels on 2 target rows"),
        ([0, 1, -1, -1], [1, 1, 1, -1], "marks as source"),
        ([-1, -1], None, "labelled source rows"),
        ([0, 1, -1], [1, -1], "one integer domain id per row"),
    ],
)
def test_bad_domains_are_refused_with_the_reason(y, domain, message):
    with pytest.raises(ValueError, match=message):
        resolve_domains(np.asarray(y), domain, "coral")


def test_bad_domains_are_refused_before_training(make_classifier, few_digits):
    X, y = few_digits
    clf = make_classifier(adaptation="coral")
    with pytest.raises(ValueError, match="target rows"):
        clf.fit(X, y, sample_domain=np.where(np.arange(len(y)) < 50, 1, -1))
    assert not hasattr(clf, "history_") or not clf.history_


def test_adaptation_of_a_convex_head_is_explained(make_classifier, shifted_digits):
    X, y, domain, _ = shifted_digits
    clf = make_classifier(freeze="all", adaptation="coral")
    with pytest.raises(ValueError, match="convex logistic regression"):
        clf.fit(X, y, sample_domain=domain)
    # A hidden head layer gives the alignment something to train.
    make_classifier(
        freeze="all", adaptation="coral", head_hidden=(32,), max_epochs=1
    ).fit(X, y, sample_domain=domain)


def test_adaptation_weight_is_chosen_by_grid_search_with_a_skada_scorer(
    make_classifier, shifted_digits
):
    from skada.metrics import PredictionEntropyScorer
    from skada.model_selection import SourceTargetShuffleSplit

    X, y, domain, _ = shifted_digits
    with sklearn.config_context(enable_metadata_routing=True):
        clf = make_classifier(adaptation="coral", max_epochs=1, freeze=3)
        clf.set_fit_request(sample_domain=True)
        search = GridSearchCV(
            clf,
            {"adaptation_weight": [0.1, 10.0]},
            scoring=PredictionEntropyScorer(),
            cv=SourceTargetShuffleSplit(n_splits=2, random_state=0),
            error_score="raise",
        )
        search.fit(X, y, sample_domain=domain)
    assert search.best_params_["adaptation_weight"] in (0.1, 10.0)
    assert np.isfinite(search.cv_results_["mean_test_score"]).all()


def test_an_adapted_model_saves_and_loads_without_the_domain_classifier(
    make_classifier, shifted_digits, tmp_path
):
    from sktransfer import load_model, save_model

    X, y, domain, _ = shifted_digits
    clf = make_classifier(adaptation="dann", freeze=3, max_epochs=1)
    clf.fit(X, y, sample_domain=domain)
    save_model(clf, tmp_path / "model")
    loaded = load_model(tmp_path / "model")
    assert loaded.adaptation == "dann"
    np.testing.assert_allclose(
        loaded.predict_proba(X[:10]), clf.predict_proba(X[:10]), atol=1e-6
    )


def test_auto_layer_is_mid_and_the_final_embedding_with_adaptation(
    make_classifier, shifted_digits, tmp_path
):
    X, y, domain, _ = shifted_digits
    plain = make_classifier(layer="auto", max_epochs=1).fit(
        X[domain > 0], y[domain > 0]
    )
    assert plain.module_.taps == [3, 4]  # "mid": layer2 + layer3
    assert plain.layer == "auto"  # the parameter is left as given
    adapted = make_classifier(layer="auto", adaptation="coral", max_epochs=1)
    adapted.fit(X, y, sample_domain=domain)
    n_stages = resolve_backbone("fmnist_resnet", None).n_stages
    assert adapted.module_.taps == [n_stages]
    assert adapted.module_.backbone.n_stages == n_stages  # nothing dropped
    assert (plain.layer_, adapted.layer_) == (["layer2", "layer3"], "pool")
    # What "auto" chose is saved with the model.
    save_model(adapted, tmp_path / "adapted")
    restored = load_model(tmp_path / "adapted")
    assert restored.module_.taps == [n_stages]
    np.testing.assert_allclose(
        restored.predict_proba(X[:20]), adapted.predict_proba(X[:20]), atol=1e-6
    )


def test_no_final_head_while_adapting(make_classifier, shifted_digits):
    # Adaptation aligns one head's features: "auto" adds no final head to an
    # adapting fit (even on mid-level taps), and True is refused before training.
    X, y, domain, _ = shifted_digits
    adapted = make_classifier(layer="mid", adaptation="coral", max_epochs=1)
    adapted.fit(X, y, sample_domain=domain)
    assert not adapted.final_head_ and adapted.module_.final_head is None
    plain = make_classifier(layer="mid", adaptation="coral", max_epochs=0)
    plain.fit(X[domain > 0], y[domain > 0])  # no target rows: nothing to adapt
    assert plain.final_head_
    refused = make_classifier(layer="mid", adaptation="coral", final_head=True)
    with pytest.raises(ValueError, match="final_head=True cannot be combined"):
        refused.fit(X, y, sample_domain=domain)


def test_sample_weight_weighs_source_rows_and_not_target_rows(
    make_classifier, shifted_digits
):
    X, y, domain, _ = shifted_digits
    source = domain > 0
    fit = lambda weights: make_classifier(  # noqa: E731
        freeze=2, max_epochs=1, adaptation="coral"
    ).fit(X, y, sample_domain=domain, sample_weight=weights)
    ones = fit(np.ones(len(y)))
    target_zero = fit(np.where(source, 1.0, 0.0))
    np.testing.assert_allclose(
        ones.predict_proba(X[:20]), target_zero.predict_proba(X[:20]), atol=1e-6
    )
    source_half = fit(np.where(source & (y < 5), 0.0, 1.0))
    assert not np.allclose(
        ones.predict_proba(X[:20]), source_half.predict_proba(X[:20]), atol=1e-3
    )
