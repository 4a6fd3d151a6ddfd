"""Shared fixtures: seeding, small real data, the shipped backbone."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from sklearn.datasets import load_digits


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
