"""FineTuneClassifier: freezing, heads, labels, training options, sklearn contract."""

from __future__ import annotations

import pickle

import numpy as np
import pytest
import torch
from sklearn.base import clone
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import GridSearchCV, cross_val_score

from sktransfer import FineTuneClassifier, resolve_backbone


def _snapshot(module):
    return {k: v.detach().clone() for k, v in module.state_dict().items()}


@pytest.mark.parametrize("cache_frozen", [True, False])
def test_frozen_weights_and_batchnorm_statistics_do_not_change(
    few_digits, cache_frozen, make_classifier
):
    X, y = few_digits
    clf = make_classifier(freeze=3, cache_frozen=cache_frozen, lr=1e-2)
    reference = _snapshot(resolve_backbone("fmnist_resnet", "DEFAULT"))
    clf.fit(X, y)
    after = clf.module_.backbone.state_dict()
    frozen = [k for k in reference if k.split(".")[1] in ("stem", "layer1", "layer2")]
    trainable = [k for k in reference if k.split(".")[1] in ("layer3", "layer4")]
    assert any("running_mean" in k for k in frozen)
    for key in frozen:
        assert torch.equal(after[key], reference[key]), key
    changed = [k for k in trainable if not torch.equal(after[k], reference[k])]
    assert len(changed) > len(trainable) // 2
    assert clf.used_cache_ is cache_frozen


def test_optimizer_holds_only_trainable_parameters(few_digits, make_classifier):
    X, y = few_digits
    clf = make_classifier(freeze=4, max_epochs=1).fit(X, y)
    in_optimizer = {id(p) for g in clf.optimizer_.param_groups for p in g["params"]}
    trainable = {id(p) for p in clf.module_.parameters() if p.requires_grad}
    frozen = {id(p) for p in clf.module_.parameters() if not p.requires_grad}
    assert in_optimizer == trainable and frozen and not in_optimizer & frozen
    head, backbone = (g["initial_lr"] for g in clf.optimizer_.param_groups)
    assert head == backbone == 3e-3  # one rate unless the backbone recommends one


def test_freeze_out_of_range_names_the_valid_range(few_digits, make_classifier):
    X, y = few_digits
    with pytest.raises(
        ValueError, match=r"freeze=7 is out of range.*\[0, 6\] or 'all'"
    ):
        make_classifier(freeze=7).fit(X, y)
    with pytest.raises(ValueError, match="'freeze' parameter"):
        make_classifier(freeze="some").fit(X, y)


def test_head_only_training_reaches_the_logistic_regression_optimum(
    digits, make_classifier, make_extractor
):
    X, y = digits
    train, test = slice(0, 100), slice(100, 600)
    clf = make_classifier(freeze="all").fit(X[train], y[train])
    extractor = make_extractor(layer=None).fit(X)  # what the head sees
    # The probe solves in float64, as sklearn does for float64 input.
    lr = LogisticRegression(tol=1e-6, max_iter=5000).fit(
        extractor.transform(X[train]).astype(np.float64), y[train]
    )
    expected = lr.predict_proba(extractor.transform(X[test]).astype(np.float64))
    np.testing.assert_allclose(clf.predict_proba(X[test]), expected, atol=2e-3)
    assert len(clf.history_) == 0  # convex: solved exactly, no epochs needed


def test_string_labels_round_trip_and_probabilities_sum_to_one(
    few_digits, make_classifier
):
    X, y = few_digits
    names = np.array(
        ["zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine"]
    )[y]
    clf = make_classifier(freeze=5).fit(X, names)
    assert list(clf.classes_) == sorted(set(names))
    assert set(clf.predict(X)) <= set(names)
    proba = clf.predict_proba(X)
    assert proba.shape == (100, 10)
    np.testing.assert_allclose(proba.sum(axis=1), 1.0, rtol=1e-5)
    assert clf.score(X, names) > 0.8


def test_binary_classification(few_digits, make_classifier):
    X, y = few_digits
    mask = y < 2
    labels = np.where(y[mask] == 0, "a", "b")
    clf = make_classifier(freeze="all").fit(X[mask], labels)
    assert clf.predict_proba(X[mask]).shape == (20, 2)
    assert clf.score(X[mask], labels) == 1.0


def test_pickled_model_gives_identical_probabilities(few_digits, make_classifier):
    X, y = few_digits
    clf = make_classifier(freeze=4).fit(X, y)
    restored = pickle.loads(pickle.dumps(clf))
    np.testing.assert_array_equal(restored.predict_proba(X), clf.predict_proba(X))
    assert restored.device == "cpu"


def test_random_state_makes_fits_repeatable(few_digits, make_classifier):
    X, y = few_digits
    a = (
        make_classifier(freeze=2, head_hidden=(16,), head_dropout=0.2)
        .fit(X, y)
        .predict_proba(X)
    )
    b = (
        make_classifier(freeze=2, head_hidden=(16,), head_dropout=0.2)
        .fit(X, y)
        .predict_proba(X)
    )
    np.testing.assert_array_equal(a, b)


def test_cached_and_uncached_training_give_the_same_model(few_digits, make_classifier):
    X, y = few_digits
    params = {"freeze": 4, "head_hidden": (32,), "max_epochs": 3}
    cached = make_classifier(cache_frozen=True, **params).fit(X, y)
    uncached = make_classifier(cache_frozen=False, **params).fit(X, y)
    assert cached.used_cache_ and not uncached.used_cache_
    np.testing.assert_allclose(
        cached.predict_proba(X), uncached.predict_proba(X), atol=1e-4
    )


def test_clone_grid_search_and_cross_val_score(few_digits, make_classifier):
    X, y = few_digits
    clf = make_classifier(max_epochs=1)
    copy = clone(clf)
    assert copy.get_params()["freeze"] == 0 and not hasattr(copy, "module_")
    grid = GridSearchCV(clf, {"freeze": [4, "all"]}, cv=2, error_score="raise")
    grid.fit(X, y)
    assert grid.best_params_["freeze"] in (4, "all")
    assert grid.best_estimator_.score(X, y) > 0.5
    scores = cross_val_score(make_classifier(freeze="all"), X, y, cv=2)
    assert scores.mean() > 0.5


def test_final_head_averages_a_mid_level_and_a_final_head(few_digits, make_classifier):
    # The default head on mid-level stages gets a second head on the final
    # embedding, trained in the same network; predictions average the two.
    X, y = few_digits
    labels = np.array([f"digit {v}" for v in y])
    clf = make_classifier(layer="auto", max_epochs=1).fit(X, labels)
    net = clf.module_
    assert clf.final_head_ and net.final_head is not None
    assert clf.layer_ == ["layer2", "layer3"]
    # The stages after the taps stay, for the final head.
    assert net.backbone.stage_names[-2:] == ["layer4", "pool"]
    net.eval()
    with torch.no_grad():
        batch = torch.as_tensor(X[:8]).unsqueeze(1)  # (B, 1, 8, 8)
        mid = net.head(net.features(batch)).softmax(-1)
        final = net.final_head(net.embed(batch, pooling="avg")).softmax(-1)
    np.testing.assert_allclose(
        clf.predict_proba(X[:8]), ((mid + final) / 2).numpy(), atol=1e-5
    )
    assert list(clf.classes_) == sorted(set(labels))
    assert clf.score(X, labels) > 0.5
    # The final head and the stages only it sees learn at the head's rate.
    head, tail, *stages = clf.optimizer_.param_groups
    tail_ids = {id(p) for p in tail["params"]}
    assert {id(p) for p in net.final_head.parameters()} <= tail_ids
    assert {id(p) for p in net.backbone.stages.layer4.parameters()} <= tail_ids
    assert tail["initial_lr"] == clf.lr and all(
        g["initial_lr"] == clf.lr / 3 for g in stages
    )


def test_training_loss_sums_both_heads_cross_entropies(few_digits, make_classifier):
    X, y = few_digits
    clf = make_classifier(layer="auto", max_epochs=0).fit(X, y)
    logits = torch.randn(6, 2, 10)
    target = torch.arange(6)
    expected = sum(
        torch.nn.functional.cross_entropy(logits[:, i], target) for i in range(2)
    )
    torch.testing.assert_close(clf.get_loss(logits, target), expected)


@pytest.mark.parametrize(
    "params, expected",
    [
        ({"layer": "auto"}, True),
        ({"layer": "auto", "final_head": False}, False),
        ({"layer": "auto", "freeze": "all"}, False),  # nothing after the taps trains
        ({"layer": None}, False),  # the head already sees the final embedding
        ({"layer": "layer2", "freeze": 3, "final_head": True}, True),
    ],
)
def test_when_the_final_head_is_added(few_digits, make_classifier, params, expected):
    X, y = few_digits
    clf = make_classifier(max_epochs=0, **params).fit(X, y)
    assert clf.final_head_ is expected
    assert (clf.module_.final_head is not None) is expected
    kept = clf.module_.backbone.n_stages
    assert kept == 6 if expected else kept == clf.module_.taps[-1]


def test_final_head_on_the_final_embedding_is_refused(few_digits, make_classifier):
    X, y = few_digits
    clf = make_classifier(layer=None, final_head=True)
    with pytest.raises(ValueError, match="final_head=True.*layer=None"):
        clf.fit(X, y)


def test_nested_skorch_parameters_are_routed(few_digits, make_classifier):
    X, y = few_digits
    clf = make_classifier(freeze=4, max_epochs=1).set_params(
        optimizer__betas=(0.8, 0.95)
    )
    clf.fit(X, y)
    assert all(g["betas"] == (0.8, 0.95) for g in clf.optimizer_.param_groups)
    assert clf.get_params()["optimizer__betas"] == (0.8, 0.95)


def test_early_stopping_uses_a_validation_split(few_digits, make_classifier):
    X, y = few_digits
    clf = make_classifier(
        freeze=4, max_epochs=4, early_stopping=True, validation_fraction=0.2
    )
    clf.fit(X, y)
    assert "valid_loss" in clf.history_[-1] and "valid_acc" in clf.history_[-1]


def test_augmentation_trains_on_images_not_cache(few_digits, make_classifier):
    X, y = few_digits
    clf = make_classifier(freeze=4, augment="crop", max_epochs=1).fit(X, y)
    assert not clf.used_cache_
    assert clf.predict(X).shape == (100,)


def test_warm_start_and_partial_fit_continue_training(few_digits, make_classifier):
    X, y = few_digits
    clf = make_classifier(freeze=4, max_epochs=1, warm_start=True).fit(X, y)
    first = clf.module_.head[-1].weight.detach().clone()
    clf.fit(X, y)
    clf.partial_fit(X, y)
    assert len(clf.history_) == 3
    assert not torch.equal(first, clf.module_.head[-1].weight)
    with pytest.raises(ValueError, match="not seen in the first fit"):
        clf.partial_fit(X[:2], np.array([11, 12]))


def test_class_weight_reaches_the_loss(few_digits, make_classifier):
    X, y = few_digits
    clf = make_classifier(freeze=4, max_epochs=1, class_weight={0: 5.0}).fit(X, y)
    weight = clf.criterion_.weight
    assert weight[0] == 5.0 and weight[1] == 1.0
    # class_weight="auto", the default, leaves single labels unweighted.
    default = make_classifier(freeze=4, max_epochs=1).fit(X, y)
    assert default.class_weight == "auto" and default.criterion_.weight is None


@pytest.mark.parametrize(
    "make_y, match",
    [
        (lambda y: y[:-1], "different lengths"),
        (lambda y: np.zeros_like(y), "single class"),
        (lambda y: y.astype(float) + 0.5, "Unknown label type"),
    ],
)
def test_bad_labels_are_explained(few_digits, make_y, match, make_classifier):
    X, y = few_digits
    with pytest.raises(ValueError, match=match):
        make_classifier().fit(X, make_y(y))


def test_predict_before_fit_raises_not_fitted(few_digits, make_classifier):
    from sklearn.exceptions import NotFittedError

    with pytest.raises(NotFittedError):
        make_classifier().predict(few_digits[0])


def test_custom_module_backbone_is_cloned_pickled_and_left_untouched(few_digits):
    from torch import nn

    X, y = few_digits
    module = nn.Sequential(nn.Conv2d(1, 4, 3), nn.ReLU(), nn.AdaptiveAvgPool2d(1))
    before = {k: v.clone() for k, v in module.state_dict().items()}
    clf = FineTuneClassifier(
        module, weights=None, freeze=0, image_size=12, max_epochs=2, device="cpu"
    )
    fitted = clone(clf).fit(X, y)
    for key, value in module.state_dict().items():
        assert torch.equal(value, before[key])
    restored = pickle.loads(pickle.dumps(fitted))
    np.testing.assert_array_equal(restored.predict_proba(X), fitted.predict_proba(X))
