"""Frozen-stage outputs: computed once, shared across fits, bounded, safe."""

from __future__ import annotations

import os

import joblib
import numpy as np
import pytest
import torch
from sklearn.model_selection import GridSearchCV
from skorch.callbacks import Callback

from sktransfer.exceptions import CacheTooLargeError


def _entries(cache_dir) -> int:
    """Number of stored results in a joblib cache directory."""
    return sum("output.pkl" in files for _, _, files in os.walk(cache_dir))


def test_second_fit_reads_the_disk_cache_and_trains_the_same_model(
    few_digits, tmp_path, make_classifier
):
    X, y = few_digits
    params = {"freeze": 3, "head_hidden": (16,), "cache": tmp_path}
    first = make_classifier(**params).fit(X, y)
    second = make_classifier(**params).fit(X, y)
    plain = make_classifier(freeze=3, head_hidden=(16,), cache_frozen=False).fit(X, y)
    assert not first.cache_hit_ and second.cache_hit_ and _entries(tmp_path) == 1
    np.testing.assert_allclose(second.predict_proba(X), first.predict_proba(X))
    np.testing.assert_allclose(
        second.predict_proba(X), plain.predict_proba(X), atol=1e-4
    )
    # 32 channels x 14 x 14 float32 per image after layer2.
    assert second.cache_nbytes_ == len(X) * 32 * 14 * 14 * 4


def test_other_hyperparameters_reuse_the_entry_but_other_data_does_not(
    few_digits, tmp_path, make_classifier
):
    X, y = few_digits
    make_classifier(freeze=4, cache=tmp_path).fit(X, y)
    assert (
        make_classifier(freeze=4, cache=tmp_path, lr=1e-2, head_hidden=(8,))
        .fit(X, y)
        .cache_hit_
    )
    changed = X.copy()
    changed[0, 3, 3] += 0.5
    assert not make_classifier(freeze=4, cache=tmp_path).fit(changed, y).cache_hit_
    assert not make_classifier(freeze=3, cache=tmp_path).fit(X, y).cache_hit_
    assert _entries(tmp_path) == 3


def test_extractor_shares_the_cache_with_head_only_training(
    few_digits, tmp_path, make_classifier, make_extractor
):
    X, y = few_digits
    make_classifier(freeze="all", cache=tmp_path).fit(X, y)
    assert _entries(tmp_path) == 1
    # The final embedding: what head-only training cached.
    extractor = make_extractor(layer=None, cache=tmp_path).fit(X)
    cached = extractor.transform(X)
    assert _entries(tmp_path) == 1  # read, not recomputed
    direct = make_extractor(layer=None).fit(X)
    np.testing.assert_allclose(cached, direct.transform(X), rtol=1e-5, atol=1e-6)


def test_float16_storage_halves_the_cache(few_digits, make_classifier):
    X, y = few_digits
    full = make_classifier(freeze=4).fit(X, y)
    half = make_classifier(freeze=4, cache_dtype="float16").fit(X, y)
    assert half.cache_nbytes_ * 2 == full.cache_nbytes_
    np.testing.assert_allclose(half.predict_proba(X), full.predict_proba(X), atol=2e-2)


def test_a_cache_over_budget_is_refused_before_any_work(
    few_digits, tmp_path, make_classifier
):
    X, y = few_digits
    with pytest.raises(CacheTooLargeError, match=r"cache_max_bytes=.*float16"):
        make_classifier(freeze=1, cache=tmp_path, cache_max_bytes=1000).fit(X, y)
    assert _entries(tmp_path) == 0
    with pytest.warns(UserWarning, match="Training without the cache"):
        clf = make_classifier(freeze=1, cache_max_bytes=1000, max_epochs=1).fit(X, y)
    assert not clf.used_cache_


def _fit_and_predict(estimator, X, y):
    # Module-level: joblib's loky workers run it.
    return estimator.fit(X, y).predict_proba(X)


def test_concurrent_workers_writing_the_same_entry_do_not_corrupt_it(
    few_digits, tmp_path, make_classifier
):
    X, y = few_digits
    results = joblib.Parallel(n_jobs=2, backend="loky")(
        joblib.delayed(_fit_and_predict)(
            make_classifier(freeze=4, cache=tmp_path), X, y
        )
        for _ in range(2)
    )
    np.testing.assert_allclose(results[0], results[1], atol=1e-6)
    again = make_classifier(freeze=4, cache=tmp_path).fit(X, y)
    assert again.cache_hit_ and _entries(tmp_path) == 1
    np.testing.assert_allclose(again.predict_proba(X), results[0], atol=1e-6)


class _ThreadProbe(Callback):
    def on_train_begin(self, net, **kwargs):
        self.threads = torch.get_num_threads()


def test_grid_search_with_two_workers_shares_the_cache_without_oversubscription(
    few_digits, tmp_path, make_classifier
):
    X, y = few_digits
    clf = make_classifier(
        freeze=4, cache=tmp_path, max_epochs=1, callbacks=[("probe", _ThreadProbe())]
    )
    grid = GridSearchCV(
        clf, {"head_hidden": [(), (8,)]}, cv=2, n_jobs=2, error_score="raise"
    )
    grid.fit(X, y)
    # One entry per fold plus the refit on all data, whatever the candidates.
    assert _entries(tmp_path) == 3
    # Each of the 2 workers gets its share of the cores, not all of them.
    from sklearn.model_selection import cross_validate

    results = cross_validate(clf, X, y, cv=2, n_jobs=2, return_estimator=True)
    cores = os.cpu_count() or 1
    for estimator in results["estimator"]:
        probe = dict(estimator.callbacks)["probe"]
        assert probe.threads <= max(cores // 2, 1)
