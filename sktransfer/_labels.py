"""Checking and encoding classification labels for FineTuneClassifier."""

from __future__ import annotations

import warnings

import numpy as np
from sklearn.exceptions import DataConversionWarning
from sklearn.preprocessing import LabelEncoder
from sklearn.utils.multiclass import check_classification_targets

__all__ = ["check_labels", "fit_classes", "encode_labels"]


def check_labels(y, n_samples: int, *, estimator: str) -> np.ndarray:
    """``y`` as a 1-D array of class labels, one per image, or a clear error."""
    if y is None:
        raise ValueError(
            f"{estimator} requires y to be passed, but the target y is None: "
            "fit(X, y) needs one label per image."
        )
    y = np.asarray(y)
    if y.ndim == 2 and y.shape[1] == 1:
        warnings.warn(
            "A column-vector y was passed when a 1d array was expected; it is "
            "flattened with y.ravel().",
            DataConversionWarning,
            stacklevel=4,
        )
        y = y.ravel()
    if y.ndim != 1:
        raise ValueError(f"y must be 1-D (one label per image); got shape {y.shape}.")
    if len(y) != n_samples:
        raise ValueError(
            f"X and y have different lengths: {n_samples} images but {len(y)} "
            "labels. Give exactly one label per image."
        )
    check_classification_targets(y)
    return y


def fit_classes(y: np.ndarray) -> np.ndarray:
    """Sorted distinct labels of ``y``; at least two are needed."""
    classes = LabelEncoder().fit(y).classes_
    if len(classes) < 2:
        raise ValueError(
            f"y has a single class ({classes[0].item()!r}); a classifier needs at "
            "least 2 classes in the training labels, not one class."
        )
    return classes


def encode_labels(y: np.ndarray, classes: np.ndarray) -> np.ndarray:
    """Positions of ``y`` in ``classes``; labels outside ``classes`` are refused."""
    unseen = np.setdiff1d(y, classes)
    if len(unseen):
        raise ValueError(
            f"y contains labels {unseen[:5].tolist()} that were not seen in the first "
            f"fit (classes_ = {classes.tolist()}); call fit to start over with new "
            "classes."
        )
    return np.searchsorted(classes, y).astype(np.int64)
