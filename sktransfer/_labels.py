"""Checking and encoding the targets ``y`` of FineTuneClassifier and FineTuneRegressor.

A classifier takes one label per row, or a 0/1 indicator matrix (multi-label);
a regressor takes numbers, one or several per row. Targets of the wrong kind
are refused with the estimator to use instead.
"""

from __future__ import annotations

import warnings

import numpy as np
from sklearn.exceptions import DataConversionWarning
from sklearn.preprocessing import LabelEncoder
from sklearn.utils.multiclass import check_classification_targets, type_of_target

__all__ = [
    "check_labels",
    "check_numeric_targets",
    "encode_labels",
    "fit_classes",
]


def _check_length(y, n_samples: int, what: str) -> None:
    if len(y) != n_samples:
        raise ValueError(
            f"X and y have different lengths: {n_samples} rows but {len(y)} "
            f"{what}. Give exactly one per row of X."
        )


def _require(y, estimator: str):
    if y is None:
        raise ValueError(
            f"{estimator} requires y to be passed, but the target y is None: "
            "fit(X, y) needs a target per row."
        )


def check_labels(y, n_samples: int, *, estimator: str) -> np.ndarray:
    """``y`` as a 1-D array of class labels (or a 0/1 matrix), or a clear error."""
    _require(y, estimator)
    if hasattr(y, "toarray"):  # a sparse indicator matrix
        y = y.toarray()
    y = np.asarray(y)
    if y.ndim == 2 and y.shape[1] > 1:
        return _check_label_matrix(y, n_samples, estimator)
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
    _check_length(y, n_samples, "labels")
    kind = type_of_target(y)
    if kind in ("continuous", "continuous-multioutput"):
        raise ValueError(
            f"Unknown label type: {kind}. {estimator} predicts classes, and y "
            "holds non-integer numbers; for numeric targets use "
            "FineTuneRegressor."
        )
    check_classification_targets(y)
    return y


def _check_label_matrix(y: np.ndarray, n_samples: int, estimator: str) -> np.ndarray:
    _check_length(y, n_samples, "rows of labels")
    if type_of_target(y) != "multilabel-indicator":
        raise ValueError(
            f"{estimator} takes a 2-D y only as a multi-label indicator matrix "
            f"of 0s and 1s (as MultiLabelBinarizer makes); got {y.shape[1]} "
            f"columns of type {type_of_target(y)!r}. For several numeric "
            "outputs use FineTuneRegressor."
        )
    return y


def check_numeric_targets(y, n_samples: int, *, estimator: str) -> np.ndarray:
    """``y`` as a 2-D float array ``(n_samples, n_outputs)``, or a clear error."""
    _require(y, estimator)
    y = np.asarray(y)
    if y.dtype.kind not in "biuf":
        try:
            y = y.astype(np.float64)
        except (TypeError, ValueError):
            raise ValueError(
                f"{estimator} predicts numbers, and y holds values of type "
                f"{y.dtype} that are not numbers (e.g. {y.ravel()[:3].tolist()}). "
                "For class labels use FineTuneClassifier."
            ) from None
    y = y.astype(np.float64)
    if y.ndim == 1:
        y = y[:, None]
    if y.ndim != 2:
        raise ValueError(f"y must be 1-D or 2-D (rows, outputs); got shape {y.shape}.")
    _check_length(y, n_samples, "targets (or rows of targets)")
    if not np.isfinite(y).all():
        bad = int((~np.isfinite(y)).any(axis=1).sum())
        raise ValueError(
            f"y contains NaN or infinity in {bad} rows. Drop those rows or "
            "impute their targets before fit."
        )
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
