"""PreferDefaults: a refit rule that keeps the defaults unless clearly beaten."""

from __future__ import annotations

import pickle

import numpy as np
import pytest
from sklearn.base import clone
from sklearn.model_selection import GridSearchCV, StratifiedKFold

from sktransfer import PreferDefaults


def _results(scores_by_candidate, params):
    """cv_results_ of candidates with the given per-split scores."""
    scores = np.array(scores_by_candidate, dtype=float).T  # (splits, candidates)
    results = {"params": params, "mean_test_score": scores.mean(axis=0)}
    for split, row in enumerate(scores):
        results[f"split{split}_test_score"] = row
    return results


FREEZE = [{"freeze": 0}, {"freeze": "all"}]


def test_a_win_within_the_noise_of_the_folds_keeps_the_defaults():
    # "all" is better on average (0.84 vs 0.80) but loses on one fold of three.
    results = _results([[0.9, 0.7, 0.8], [0.8, 0.9, 0.82]], FREEZE)
    assert results["mean_test_score"].argmax() == 1
    assert PreferDefaults()(results) == 0
    assert PreferDefaults(n_se=0)(results) == 1  # the plain best mean


def test_a_win_on_every_fold_switches():
    results = _results([[0.80, 0.70, 0.75], [0.86, 0.77, 0.80]], FREEZE)
    assert PreferDefaults()(results) == 1


def test_the_default_candidate_is_found_wherever_it_is_in_the_grid():
    params = [{"freeze": "all"}, {"freeze": 2}, {"freeze": 0}]
    results = _results([[0.7, 0.9], [0.6, 0.6], [0.8, 0.79]], params)
    assert PreferDefaults()(results) == 2


def test_pipeline_names_and_given_defaults():
    params = [{"clf__freeze": 0}, {"clf__freeze": "all"}]
    results = _results([[0.8, 0.8, 0.8], [0.81, 0.79, 0.82]], params)
    assert PreferDefaults()(results) == 0
    given = PreferDefaults(defaults={"clf__freeze": "all"})
    assert given(_results([[0.9, 0.7, 0.8], [0.8, 0.8, 0.8]], params)) == 1


def test_no_default_candidate_warns_and_refits_the_best_mean():
    params = [{"freeze": 2}, {"freeze": "all"}]
    results = _results([[0.7, 0.7], [0.8, 0.8]], params)
    with pytest.warns(UserWarning, match="no candidate has the default values"):
        assert PreferDefaults()(results) == 1


def test_unknown_defaults_are_named_in_the_error():
    params = [{"clf__C": 1.0}, {"clf__C": 10.0}]
    results = _results([[0.7, 0.7], [0.8, 0.8]], params)
    with pytest.raises(ValueError, match=r"no parameter for \['clf__C'\]"):
        PreferDefaults()(results)
    with pytest.raises(ValueError, match=r"no value for the searched parameter"):
        PreferDefaults(defaults={"freeze": 0})(results)


def test_refits_the_chosen_candidate_in_a_real_search(few_digits, make_classifier):
    X, y = few_digits
    rule = PreferDefaults()
    search = GridSearchCV(
        make_classifier(max_epochs=1),
        {"freeze": [0, "all"]},
        cv=StratifiedKFold(2, shuffle=True, random_state=0),
        refit=rule,
    )
    search.fit(X, y)
    assert search.best_index_ == rule(search.cv_results_)
    assert search.best_params_ == search.cv_results_["params"][search.best_index_]
    assert search.best_estimator_.freeze == search.best_params_["freeze"]
    assert search.predict(X).shape == y.shape
    restored = pickle.loads(pickle.dumps(clone(search)))
    assert isinstance(restored.refit, PreferDefaults)
