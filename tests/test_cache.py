"""Frozen-stage outputs: computed once, shared across fits, bounded, safe."""

from __future__ import annotations

import json
import os
import pickle
import re
import shutil
import threading
import warnings
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import joblib
import numpy as np
import pytest
import torch
from sklearn.model_selection import GridSearchCV
from skorch.callbacks import Callback

from sktransfer import FrozenOutputCache
from sktransfer.exceptions import CacheTooLargeError


def _entries(cache_dir) -> int:
    """Number of stored entries in a cache directory."""
    return len(FrozenOutputCache(cache_dir).entries())


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


@pytest.mark.slow
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


def test_a_path_a_joblib_memory_and_a_frozen_output_cache_share_one_store(
    few_digits, tmp_path, make_classifier
):
    X, y = few_digits
    first = make_classifier(freeze=4, cache=joblib.Memory(tmp_path, verbose=0))
    assert not first.fit(X, y).cache_hit_
    for cache in (FrozenOutputCache(tmp_path), str(tmp_path)):
        again = make_classifier(freeze=4, cache=cache).fit(X, y)
        assert again.cache_hit_
        np.testing.assert_array_equal(again.predict_proba(X), first.predict_proba(X))
    # The pickle-free format only: joblib's own store is neither read nor written.
    assert _entries(tmp_path) == 1 and not (tmp_path / "joblib").exists()


class _Plant:
    """Unpickling this creates the file ``marker``: what a planted pickle can do."""

    def __init__(self, marker):
        self.marker = Path(marker)

    def __reduce__(self):
        return (Path.touch, (self.marker,))


def _plant(where: str, entry: Path, payload: bytes, marker: Path) -> Path:
    """Put the malicious ``payload`` where ``entry``'s files are; return the path
    that the warning should name."""
    if where == "entry":  # a pickle under the entry's own name
        shutil.rmtree(entry)
        entry.write_bytes(payload)
        return entry
    if where == "sidecar":
        (entry / "meta.json").write_bytes(payload)
        return entry / "meta.json"
    if where == "array":  # an .npy of dtype object: np.load(allow_pickle=True) runs it
        np.save(entry / "0.npy", np.array([_Plant(marker)]), allow_pickle=True)
        return entry / "0.npy"
    # where == "extra": joblib's file name, inside an entry and where joblib kept it
    legacy = entry.parent / "joblib" / "sktransfer" / "_cache" / "_compute" / "x"
    legacy.mkdir(parents=True)
    (legacy / "output.pkl").write_bytes(payload)
    (entry / "output.pkl").write_bytes(payload)
    return entry / "output.pkl"


@pytest.mark.parametrize("where", ["entry", "sidecar", "array", "extra"])
def test_planted_pickles_are_never_loaded_and_the_outputs_are_recomputed(
    few_digits, tmp_path, make_extractor, where
):
    X, _ = few_digits
    marker = tmp_path / "pwned"
    payload = pickle.dumps(_Plant(marker))
    pickle.loads(pickle.dumps(_Plant(tmp_path / "armed")))
    assert (tmp_path / "armed").exists()  # the payload works when unpickled
    cache = tmp_path / "cache"
    extractor = make_extractor(layer=None, cache=cache).fit(X)
    expected = make_extractor(layer=None).fit(X).transform(X)
    extractor.transform(X)
    (entry,) = FrozenOutputCache(cache).entries()
    ignored = _plant(where, Path(entry.path), payload, marker)
    with pytest.warns(UserWarning, match=re.escape(str(ignored))):
        recomputed = extractor.transform(X)
    assert not marker.exists()
    np.testing.assert_allclose(recomputed, expected, rtol=1e-5, atol=1e-6)
    # Replaced by a valid entry, which is read back without warnings.
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        np.testing.assert_array_equal(extractor.transform(X), recomputed)
    assert _entries(cache) == 1 and not marker.exists()


@pytest.mark.parametrize(
    "damage, reason",
    [("truncated", r"0\.npy.*truncated"), ("format", r"meta\.json.*format version 99")],
    ids=["truncated", "format"],
)
def test_a_truncated_array_or_another_format_is_ignored_and_recomputed(
    few_digits, tmp_path, make_extractor, damage, reason
):
    X, _ = few_digits
    extractor = make_extractor(layer="layer2", cache=tmp_path).fit(X)
    first = extractor.transform(X)
    entry = Path(FrozenOutputCache(tmp_path).entries()[0].path)
    if damage == "truncated":
        array = entry / "0.npy"
        array.write_bytes(array.read_bytes()[:-100])
    else:
        meta = json.loads((entry / "meta.json").read_text())
        (entry / "meta.json").write_text(json.dumps({**meta, "format_version": 99}))
    with pytest.warns(UserWarning, match=reason):
        np.testing.assert_array_equal(extractor.transform(X), first)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        np.testing.assert_array_equal(extractor.transform(X), first)


def test_concurrent_writers_of_one_entry_leave_one_valid_entry(tmp_path):
    cache = FrozenOutputCache(tmp_path)
    key = {"stops": [3], "test": "concurrent writers"}
    arrays = {"3": np.arange(100 * 2000, dtype=np.float32).reshape(100, 2000)}
    start = threading.Barrier(4)

    def write_then_read(_):
        start.wait()
        cache._write(key, arrays)
        return cache._read(key)

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        for _ in range(5):
            cache.clear()
            with ThreadPoolExecutor(4) as pool:
                for read in pool.map(write_then_read, range(4)):
                    np.testing.assert_array_equal(read["3"], arrays["3"])
            # One entry, no temporaries left behind.
            assert len(os.listdir(tmp_path)) == 1 and _entries(tmp_path) == 1
    assert not caught


def test_eviction_keeps_the_directory_under_max_bytes_and_the_newest_entry(
    digits, tmp_path, make_extractor
):
    X, _ = digits
    parts = [X[i : i + 10] for i in range(0, 40, 10)]
    probe = FrozenOutputCache(tmp_path / "probe")
    make_extractor(layer=None, cache=probe).fit(parts[0]).transform(parts[0])
    one = probe.size()  # every part's entry takes this much
    cache = FrozenOutputCache(tmp_path / "cache", max_bytes=int(2.5 * one))
    extractor = make_extractor(layer=None, cache=cache).fit(parts[0])
    paths = {}
    for i in [0, 1, 0, 2, 3]:  # reading part 0 again makes it recently used
        before = {entry.path for entry in cache.entries()}
        extractor.transform(parts[i])
        after = {entry.path for entry in cache.entries()}
        paths.setdefault(i, (after - before).pop() if after - before else None)
        assert cache.size() <= cache.max_bytes and paths[i] in after
    # Part 1 went first (least recently used), then part 0.
    assert {entry.path for entry in cache.entries()} == {paths[2], paths[3]}
    # The entry just written stays, even alone over the bound.
    tight = FrozenOutputCache(tmp_path / "cache", max_bytes=0)
    make_extractor(layer=None, cache=tight).fit(X).transform(parts[1])
    assert len(tight.entries()) == 1 and tight.size() > 0


def test_clear_empties_the_cache_and_leaves_other_files_alone(
    few_digits, tmp_path, make_extractor
):
    X, _ = few_digits
    (tmp_path / "notes.txt").write_text("mine")
    (tmp_path / "joblib").mkdir()
    (tmp_path / f".tmp-{'0' * 64}-crashed").mkdir()  # a writer that died
    extractor = make_extractor(layer=None, cache=tmp_path).fit(X)
    extractor.transform(X[:10])
    extractor.transform(X[10:20])
    cache = FrozenOutputCache(tmp_path)
    entries = cache.entries()
    assert len(entries) == 2 and cache.size() == sum(e.nbytes for e in entries) > 0
    assert all(entry.key["stops"] == [6] for entry in entries)
    cache.clear()
    assert cache.entries() == [] and cache.size() == 0
    assert sorted(os.listdir(tmp_path)) == ["joblib", "notes.txt"]


def test_extractor_computes_all_taps_in_one_pass_stored_as_one_entry(
    few_digits, tmp_path, make_extractor
):
    X, _ = few_digits
    extractor = make_extractor(layer="mid", batch_size=50, cache=tmp_path).fit(X)
    assert len(extractor.taps_) == 2
    calls = []
    stem = extractor.backbone_.stages[0]
    hook = stem.register_forward_hook(lambda *args: calls.append(1))
    try:
        cached = extractor.transform(X)
        assert len(calls) == 2  # once per batch of 50, not once per tap
        again = extractor.transform(X)
        assert len(calls) == 2  # read from disk
    finally:
        hook.remove()
    assert _entries(tmp_path) == 1
    plain = make_extractor(layer="mid", batch_size=50).fit(X).transform(X)
    np.testing.assert_allclose(cached, plain, rtol=1e-5, atol=1e-6)
    np.testing.assert_array_equal(again, cached)
