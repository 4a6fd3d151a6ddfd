"""Linear probing: a linear head set to the exact logistic-regression optimum.

With frozen features, training a linear head is convex. Instead of hoping that a
few epochs of Adam reach the optimum, scikit-learn's ``LogisticRegression`` solves
it and its coefficients are copied into the head.
"""

from __future__ import annotations

import warnings

import numpy as np
import torch
from sklearn.exceptions import ConvergenceWarning
from sklearn.linear_model import LogisticRegression
from torch import nn

__all__ = ["PROBE_MAX_ITER", "fit_linear_probe"]

PROBE_MAX_ITER = 5000


@torch.no_grad()
def fit_linear_probe(
    linear: nn.Linear,
    features: np.ndarray,
    labels: np.ndarray,
    *,
    C: float = 1.0,
    class_weight=None,
) -> bool:
    """Set ``linear`` (``n_classes`` outputs) to the L2 logistic-regression optimum.

    ``labels`` are encoded classes ``0 .. n_classes - 1``; classes missing from
    ``labels`` keep their current weights. Returns whether the solver converged
    within ``PROBE_MAX_ITER`` iterations. scikit-learn's warning is not passed
    on: it advises raising ``max_iter``, which the caller's users cannot set,
    so the caller says what they can do.

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
    probe = LogisticRegression(
        C=C, class_weight=class_weight, tol=1e-6, max_iter=PROBE_MAX_ITER
    )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        probe.fit(features, labels)
    coef = torch.as_tensor(probe.coef_, dtype=linear.weight.dtype)
    intercept = torch.as_tensor(probe.intercept_, dtype=linear.bias.dtype)
    coef, intercept = coef.to(linear.weight.device), intercept.to(linear.bias.device)
    if linear.out_features == 2:
        # Binary LR gives one logit; [0, z] has the same softmax.
        linear.weight.zero_()
        linear.bias.zero_()
        linear.weight[1] = coef[0]
        linear.bias[1] = intercept[0]
    else:
        present = torch.as_tensor(probe.classes_)
        linear.weight[present] = coef
        linear.bias[present] = intercept
    return bool(np.all(probe.n_iter_ < PROBE_MAX_ITER))
