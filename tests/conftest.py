"""Shared fixtures: seeding, small real data, estimator factories (shipped backbone)."""

from __future__ import annotations

import functools

import numpy as np
import pytest
import torch
from sklearn.datasets import load_digits

from sktransfer import FineTuneClassifier, PretrainedFeatureExtractor

# Small-test defaults: the shipped backbone (offline, 1.2 MB) on the CPU; the
# classifier is also seeded and trains for 2 epochs. Its head sees the final
# embedding (layer=None), so that tests can spell out freeze depths over all
# six stages (stem, layer1-4, pool); tests/test_taps.py covers the default
# head on mid-level stages.
EXTRACTOR_DEFAULTS = {"backbone": "fmnist_resnet", "device": "cpu"}
CLASSIFIER_DEFAULTS = {
    **EXTRACTOR_DEFAULTS,
    "random_state": 0,
    "max_epochs": 2,
    "layer": None,
    # Most tests are about fine-tuning itself; freeze="auto" has its own.
    "freeze": 0,
}


@pytest.fixture(autouse=True)
def _seed():
    torch.manual_seed(0)
    np.random.seed(0)


@pytest.fixture(scope="session")
def digits():
    """scikit-learn's 8x8 digits as (n, 8, 8) float images in [0, 1]."""
    bunch = load_digits()
    return (bunch.images / 16.0).astype(np.float32), bunch.target


@pytest.fixture(scope="session")
def few_digits(digits):
    """10 images of each digit class: 100 images, for quick fits."""
    X, y = digits
    index = np.concatenate([np.flatnonzero(y == c)[:10] for c in range(10)])
    return X[index], y[index]


@pytest.fixture(scope="session")
def make_extractor():
    """``make_extractor(**params)``: a PretrainedFeatureExtractor with
    ``EXTRACTOR_DEFAULTS``; keyword arguments override them.

    A ``functools.partial`` of the class, so it pickles (worker processes).
    """
    return functools.partial(PretrainedFeatureExtractor, **EXTRACTOR_DEFAULTS)


@pytest.fixture(scope="session")
def make_classifier():
    """``make_classifier(**params)``: a FineTuneClassifier with
    ``CLASSIFIER_DEFAULTS``; keyword arguments override them.

    A ``functools.partial`` of the class, so it pickles (worker processes).
    """
    return functools.partial(FineTuneClassifier, **CLASSIFIER_DEFAULTS)


# Outputs computed on another machine (files in tests/data, another library's
# kernels) differ from ours in the last bits of float32: other CPUs pick other
# instruction sets, oneDNN kernels and summation orders. A summation's rounding
# error scales with the size of its terms, so the tolerance is relative to the
# largest magnitude in the expected array (1e-5 is ~80 float32 ulps), never a
# fixed absolute one. Comparisons between two computations in this process may
# stay tight.
CROSS_CPU_RTOL = 1e-5


def assert_close_across_cpus(actual, expected, rtol=CROSS_CPU_RTOL):
    """Assert ``actual`` equals ``expected`` (computed elsewhere) up to float32
    rounding on another CPU: ``|actual - expected| <= rtol * max|expected|``."""
    expected = np.asarray(expected)
    scale = float(np.abs(expected).max()) if expected.size else 0.0
    np.testing.assert_allclose(actual, expected, rtol=rtol, atol=rtol * scale)


@pytest.fixture(scope="session")
def assert_close_elsewhere():
    """``assert_close_across_cpus``, for tests comparing with outputs computed
    on another machine or by another library."""
    return assert_close_across_cpus
