"""Per-row importance weights (``fit(X, y, sample_weight=...)``) in training.

scikit-learn passes ``sample_weight`` to say how much each row counts. Here a
row's weight multiplies its loss everywhere the estimator learns from it: in the
probe (scikit-learn's own weighted logistic regression), in every fine-tuning
step, and in the validation loss that early stopping watches. When weights are
given, the training rows carry them as targets ``{"y": label, "sample_weight":
weight}`` (:class:`WeightedRows`), so that they follow each row through the
validation split, the frozen-output cache and shuffled batches; unweighted fits
keep plain label targets.

A batch's loss is the weighted mean ``sum(w_i * l_i) / sum(w_i)`` (class weights
included in ``w_i``, as PyTorch's weighted cross-entropy does): a weight of zero
is the same as leaving the row out of the batch, and scaling every weight by the
same factor changes nothing.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
import torch
from sklearn.utils.validation import _check_sample_weight
from torch import nn
from torch.utils.data import Dataset

__all__ = [
    "WeightedRows",
    "check_fit_params",
    "check_sample_weight",
    "split_targets",
    "target_labels",
    "weighted_cross_entropy",
    "weighted_mean",
]


def check_fit_params(estimator, fit_params: Mapping) -> None:
    """Refuse fit parameters the estimator does not use, before any work.

    skorch hands unknown fit parameters to the network's ``forward``, which
    fails deep inside training; a parameter silently ignored is worse.
    """
    if fit_params:
        names = ", ".join(repr(name) for name in fit_params)
        raise TypeError(
            f"{type(estimator).__name__}.fit got unexpected fit parameter(s) "
            f"{names}. It takes X, y, sample_weight and sample_domain only; pass "
            "training options as constructor parameters (set_params)."
        )


def check_sample_weight(sample_weight, n_samples: int, labelled: np.ndarray):
    """``sample_weight`` as float64 of length ``n_samples``, or None.

    As in scikit-learn, a scalar weighs every row alike. Weights must be finite
    and non-negative, and some labelled row must weigh more than zero
    (``labelled`` marks the rows with a label).
    """
    if sample_weight is None:
        return None
    weights = _check_sample_weight(
        sample_weight,
        np.empty((n_samples, 0)),
        dtype=np.float64,
        ensure_non_negative=True,
    )
    if not np.any(weights[labelled] > 0):
        raise ValueError(
            "sample_weight gives every labelled row a weight of 0: there is "
            "nothing to learn from. Give some rows a positive weight."
        )
    return weights


class WeightedRows(Dataset):
    """``(x, {"y": y, "sample_weight": w})`` rows from a ``(x, y)`` dataset.

    Examples
    --------
    >>> import torch
    >>> from torch.utils.data import TensorDataset
    >>> from sktransfer._sample_weight import WeightedRows
    >>> rows = WeightedRows(TensorDataset(torch.zeros(2, 3), torch.tensor([0, 1])),
    ...                     [1.0, 0.5])
    >>> x, target = rows[1]
    >>> int(target["y"]), float(target["sample_weight"])
    (1, 0.5)
    """

    def __init__(self, dataset: Dataset, sample_weight):
        self.dataset = dataset
        self.sample_weight = torch.as_tensor(
            np.asarray(sample_weight), dtype=torch.float32
        )

    def __len__(self) -> int:
        return len(self.dataset)

    def __getitem__(self, i: int):
        x, y = self.dataset[i]
        return x, {"y": y, "sample_weight": self.sample_weight[i]}


def split_targets(y_true) -> tuple[torch.Tensor, torch.Tensor | None]:
    """Labels and weights (None when unweighted) of a batch's targets."""
    if isinstance(y_true, Mapping):
        return torch.as_tensor(y_true["y"]), torch.as_tensor(y_true["sample_weight"])
    return torch.as_tensor(y_true), None


def target_labels(y_true) -> np.ndarray:
    """The labels of a batch's targets, as numpy (skorch's ``target_extractor``)."""
    labels, _ = split_targets(y_true)
    return labels.detach().cpu().numpy()


def weighted_cross_entropy(
    criterion: nn.CrossEntropyLoss,
    logits: torch.Tensor,
    labels: torch.Tensor,
    weights: torch.Tensor,
) -> torch.Tensor:
    """``criterion``'s loss with each row's loss weighted by ``weights``.

    The criterion's class weights and label smoothing are kept; the result is
    the weighted mean over rows, ``sum(w_i * l_i) / sum(w_i)``, where ``w_i``
    includes the class weight, as the criterion's own mean does.
    """
    class_weight = criterion.weight
    losses = nn.functional.cross_entropy(
        logits,
        labels,
        weight=class_weight,
        label_smoothing=criterion.label_smoothing,
        reduction="none",
    )
    weights = weights.to(losses.device, losses.dtype)
    total = weights if class_weight is None else weights * class_weight[labels]
    # A batch whose rows all weigh 0 contributes nothing (not NaN).
    return (losses * weights).sum() / total.sum().clamp_min(1e-12)


def weighted_mean(losses: torch.Tensor, weights: torch.Tensor | None) -> torch.Tensor:
    """Mean of per-row ``losses``, ``sum(w_i * l_i) / sum(w_i)`` when weighted."""
    if weights is None:
        return losses.mean()
    weights = weights.to(losses.device, losses.dtype)
    # A batch whose rows all weigh 0 contributes nothing (not NaN).
    return (losses * weights).sum() / weights.sum().clamp_min(1e-12)
