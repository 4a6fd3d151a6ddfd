"""Models saved by earlier versions keep loading, with the same outputs.

``tests/data/saved_before_runtime`` was written by ``save_model`` before the
backbone runtime existed (commit a9062a3), with the outputs those models gave.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from sktransfer import load_model

SAVED = Path(__file__).parent / "data" / "saved_before_runtime"


@pytest.fixture(scope="module")
def inputs(digits):
    X, _ = digits
    return X[100:110]


def test_a_classifier_saved_before_the_runtime_loads_and_predicts_the_same(
    inputs, assert_close_elsewhere
):
    clf = load_model(SAVED / "classifier")
    expected = np.load(SAVED / "classifier_proba.npy")
    # Saved on another machine: float32 rounding differs there (tests/conftest.py).
    assert_close_elsewhere(clf.predict_proba(inputs), expected)
    assert clf.n_frozen_ == 2 and clf.class_weight == "balanced"
    assert clf.criterion_.weight is not None


def test_an_extractor_saved_before_the_runtime_loads_and_embeds_the_same(
    inputs, assert_close_elsewhere
):
    extractor = load_model(SAVED / "extractor")
    expected = np.load(SAVED / "extractor_out.npy")
    assert_close_elsewhere(extractor.transform(inputs), expected)
    assert extractor.layer_ == "layer3" and extractor.pooling == "avgmax"
