"""Linear probing: a linear head set to the exact logistic or ridge optimum.

With frozen features, training a linear head is convex. Instead of hoping that a
few epochs of Adam reach the optimum, scikit-learn's ``LogisticRegression`` solves
it and its coefficients are copied into the head.

The features are centred before the solver sees them and the intercept is moved
back afterwards: the intercept is not penalised, so this leaves the optimum
unchanged, while the solver no longer fights the large common offset of
non-negative (ReLU) features. On those, Newton-CG reaches the optimum in about
15 iterations where L-BFGS needed 400-750 (``benchmarks/frozen_probe_speed.py``).
"""

from __future__ import annotations

import warnings

import numpy as np
import torch
from sklearn.exceptions import ConvergenceWarning
from sklearn.linear_model import (
    LogisticRegression,
    LogisticRegressionCV,
    Ridge,
    RidgeCV,
)
from sklearn.model_selection import StratifiedKFold
from torch import nn

__all__ = [
    "PROBE_ALPHAS",
    "PROBE_CS",
    "PROBE_MAX_ITER",
    "fit_binary_probes",
    "fit_linear_probe",
    "fit_ridge_probe",
]

PROBE_MAX_ITER = 1000  # Newton iterations: it needs tens
FLOAT32_MAX_ITER = 50
# probe_alpha="auto": the ridge penalties leave-one-out cross-validation picks
# from (on standardised targets).
PROBE_ALPHAS = np.logspace(-2, 4, 13)
# probe_C="auto" for label sets: the inverse penalties cross-validation picks
# from, per label.
PROBE_CS = np.logspace(-2, 4, 7)


@torch.no_grad()
def fit_linear_probe(
    linear: nn.Linear,
    features: np.ndarray,
    labels: np.ndarray,
    *,
    C: float = 1.0,
    class_weight=None,
    sample_weight: np.ndarray | None = None,
) -> bool:
    """Set ``linear`` (``n_classes`` outputs) to the L2 logistic-regression optimum.

    ``labels`` are encoded classes ``0 .. n_classes - 1``; classes missing from
    ``labels`` keep their current weights. ``sample_weight`` weighs each row's
    loss as in scikit-learn (an integer weight equals repeating the row).
    Returns whether the solver converged within ``PROBE_MAX_ITER`` iterations.
    scikit-learn's warning is not passed on: it advises raising ``max_iter``,
    which the caller's users cannot set, so the caller says what they can do.

    Examples
    --------
    >>> import numpy as np
    >>> import torch
    >>> from torch import nn
    >>> from sktransfer._probe import fit_linear_probe
    >>> X = np.array([[0.0], [1.0], [2.0], [3.0]])
    >>> head = nn.Linear(1, 2)
    >>> fit_linear_probe(head, X, np.array([0, 0, 1, 1]))
    True
    >>> head(torch.tensor([[0.0], [3.0]], dtype=torch.float32)).argmax(1).tolist()
    [0, 1]
    """
    coef, intercept, classes, converged = _logistic(
        features, labels, C, class_weight, sample_weight
    )
    coef = torch.as_tensor(coef, dtype=linear.weight.dtype, device=linear.weight.device)
    intercept = torch.as_tensor(
        intercept, dtype=linear.bias.dtype, device=linear.bias.device
    )
    if linear.out_features == 2:
        # Binary LR gives one logit; [0, z] has the same softmax.
        linear.weight.zero_()
        linear.bias.zero_()
        linear.weight[1] = coef[0]
        linear.bias[1] = intercept[0]
    else:
        present = torch.as_tensor(classes)
        linear.weight[present] = coef
        linear.bias[present] = intercept
    return converged


def _logistic(features, labels, C, class_weight, sample_weight):
    """(coef, intercept, classes, converged) of the L2 logistic regression."""
    features = np.asarray(features)
    centre = np.average(features, axis=0, weights=sample_weight)
    probe = LogisticRegression(
        C=C,
        class_weight=class_weight,
        solver="newton-cg",
        tol=1e-6,
        max_iter=FLOAT32_MAX_ITER,
        warm_start=True,
    )
    # float32 halves the solver's time and reaches the same optimum on features
    # of ordinary scale; where its rounding stalls the solver (huge features),
    # float64 goes on from where it stopped.
    centred = (features - centre).astype(np.float32)
    converged = _solve(probe, centred, labels, sample_weight)
    if not converged:
        probe.max_iter = PROBE_MAX_ITER
        centred = features.astype(np.float64) - centre
        converged = _solve(probe, centred, labels, sample_weight)
    coef = probe.coef_.astype(np.float64)
    intercept = probe.intercept_ - coef @ centre  # back to uncentred features
    return coef, intercept, probe.classes_, converged


@torch.no_grad()
def fit_binary_probes(
    linear: nn.Linear,
    features: np.ndarray,
    indicators: np.ndarray,
    *,
    C: float | str = 1.0,
    class_weight=None,
    sample_weight: np.ndarray | None = None,
) -> bool:
    """Set ``linear`` to one L2 logistic regression per label (one-vs-rest).

    ``indicators`` is the ``(n, n_labels)`` 0/1 matrix; output ``j`` of
    ``linear`` becomes the logit of label ``j``, exactly as scikit-learn's
    ``OneVsRestClassifier(LogisticRegression(C=C))`` fits it. ``C="auto"``
    picks each label's C from :data:`PROBE_CS` by stratified 3-fold
    cross-validation of the log-loss (:func:`cross_validated_C`). A label
    with one value in these rows gets no weights and the log-odds of its
    smoothed rate. Returns whether every solver converged.

    Examples
    --------
    >>> import numpy as np
    >>> from torch import nn
    >>> from sktransfer._probe import fit_binary_probes
    >>> X = np.array([[0.0], [1.0], [2.0], [3.0]])
    >>> Y = np.array([[0, 1], [0, 1], [1, 0], [1, 1]])
    >>> fit_binary_probes(nn.Linear(1, 2), X, Y)
    True
    """
    converged = True
    for j in range(indicators.shape[1]):
        labels = indicators[:, j].astype(np.int64)
        if labels.min() == labels.max():
            # One value in these rows (a rare label all held out by
            # freeze="auto", say): no direction to learn, only the rate,
            # smoothed as if half a row of the other value had been seen.
            rate = (labels.sum() + 0.5) / (len(labels) + 1.0)
            linear.weight[j] = 0.0
            linear.bias[j] = float(np.log(rate / (1 - rate)))
            continue
        label_C = C
        if C == "auto":
            label_C = cross_validated_C(features, labels, class_weight, sample_weight)
        coef, intercept, _, ok = _logistic(
            features, labels, label_C, class_weight, sample_weight
        )
        linear.weight[j] = torch.as_tensor(coef[0]).to(linear.weight)
        linear.bias[j] = float(intercept[0])
        converged = converged and ok
    return converged


def cross_validated_C(features, labels, class_weight=None, sample_weight=None):
    """The C of :data:`PROBE_CS` with the best cross-validated log-loss.

    Stratified folds, three or as many as the rarer value has rows (1.0 when
    it has one). A fixed C means a different penalty for embeddings of each
    scale (unit-norm sentence vectors are tiny per dimension), and a
    one-vs-rest probe, unlike a multinomial one, is read at the 0.5 threshold:
    over-penalised, rare labels were never predicted.

    Examples
    --------
    >>> import numpy as np
    >>> from sktransfer._probe import PROBE_CS, cross_validated_C
    >>> X = np.random.RandomState(0).normal(size=(40, 3)) * 0.01
    >>> y = (X[:, 0] > 0).astype(int)
    >>> float(cross_validated_C(X, y)) in PROBE_CS
    True
    """
    folds = min(3, int(np.bincount(labels, minlength=2).min()))
    if folds < 2:
        return 1.0
    search = LogisticRegressionCV(
        Cs=PROBE_CS,
        cv=StratifiedKFold(folds),
        scoring="neg_log_loss",
        class_weight=class_weight,
        solver="newton-cg",
        max_iter=PROBE_MAX_ITER,
    )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        # scikit-learn 1.9 announces new defaults and attributes; the ones
        # used here (l2, this scoring, the chosen C) are the same in all.
        warnings.simplefilter("ignore", FutureWarning)
        search.fit(features, labels, sample_weight=sample_weight)
    return float(np.ravel(search.C_)[0])


@torch.no_grad()
def fit_ridge_probe(
    linear: nn.Linear,
    features: np.ndarray,
    targets: np.ndarray,
    *,
    alpha: float | str = 1.0,
    sample_weight: np.ndarray | None = None,
) -> float:
    """Set ``linear`` to the ridge regression of ``targets`` on ``features``.

    The same optimum as scikit-learn's ``Ridge(alpha=alpha)`` (intercept not
    penalised). ``alpha="auto"`` picks it from :data:`PROBE_ALPHAS` by exact
    leave-one-out cross-validation (``RidgeCV``'s efficient form), as one fixed
    penalty does not suit embeddings of every width and scale. Returns the
    penalty used.

    Examples
    --------
    >>> import numpy as np
    >>> from torch import nn
    >>> from sktransfer._probe import fit_ridge_probe
    >>> X = np.array([[0.0], [1.0], [2.0], [3.0]])
    >>> head = nn.Linear(1, 1)
    >>> fit_ridge_probe(head, X, 2 * X + 1, alpha=1e-9)
    1e-09
    >>> weight, bias = head.weight.detach(), head.bias.detach()
    >>> round(float(weight[0, 0]), 4), round(float(bias[0]), 4)
    (2.0, 1.0)
    """
    features = np.asarray(features, dtype=np.float64)
    targets = np.asarray(targets, dtype=np.float64).reshape(len(features), -1)
    if alpha == "auto":
        model = RidgeCV(alphas=PROBE_ALPHAS).fit(
            features, targets, sample_weight=sample_weight
        )
        alpha = float(model.alpha_)
    else:
        model = Ridge(alpha=alpha).fit(features, targets, sample_weight=sample_weight)
    coef = np.asarray(model.coef_).reshape(targets.shape[1], -1)
    linear.weight.copy_(torch.as_tensor(coef, dtype=linear.weight.dtype))
    linear.bias.copy_(
        torch.as_tensor(np.ravel(model.intercept_), dtype=linear.bias.dtype)
    )
    return alpha


def _solve(probe, features, labels, sample_weight) -> bool:
    """Fit ``probe``; whether it converged (within max_iter, no failed search)."""
    with warnings.catch_warnings(record=True) as caught:
        # Newton-CG reports a failed line search as a plain UserWarning.
        warnings.simplefilter("always")
        probe.fit(features, labels, sample_weight=sample_weight)
    stalled = any(
        issubclass(w.category, ConvergenceWarning) or "Line Search" in str(w.message)
        for w in caught
    )
    return not stalled and bool(np.all(probe.n_iter_ < probe.max_iter))
