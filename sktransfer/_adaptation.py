"""Unsupervised domain adaptation for FineTuneClassifier, with skada's conventions.

Rows come from a labelled *source* domain and an unlabelled *target* domain.
As in skada (scikit-adaptation), ``sample_domain`` gives each row a domain id:
non-negative for source domains, negative for target domains, and target rows
carry the masked label ``-1``. Without ``sample_domain``, rows labelled ``-1``
are the target rows (skada infers the domains the same way).

Training then draws every batch from both domains (:class:`DomainBatches`) and
adds an alignment term to the source cross-entropy:

* ``"coral"``: Deep CORAL (Sun & Saenko, 2016) on the head's outputs (the class
  scores, the paper's fc8): the squared Frobenius distance between source and
  target covariances over ``4 d**2``, as in skada's ``deepcoral_loss``;
* ``"dann"``: a domain classifier on the features the head's last linear layer
  sees, behind a gradient-reversal layer (Ganin et al., 2016), whose strength
  ramps up as ``2 / (1 + exp(-10 p)) - 1`` over training progress ``p``.

Nothing here runs when there are no target rows: the fit is then exactly the
one without adaptation.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch
from torch import nn

from ._recipe import EvenBatches

__all__ = [
    "MASKED_LABEL",
    "ADAPTATIONS",
    "Domains",
    "resolve_domains",
    "check_adaptation",
    "coral_loss",
    "DomainDiscriminator",
    "reversal_strength",
    "DomainBatches",
]

# skada's masked label of target rows in classification.
MASKED_LABEL = -1
ADAPTATIONS = ("coral", "dann")


@dataclass(frozen=True)
class Domains:
    """Which rows of one ``fit`` call are source and which are target.

    Attributes
    ----------
    source : ndarray of bool
        Rows with labels, trained on with cross-entropy.
    target : ndarray of bool
        Unlabelled rows, only aligned to the source (may be all False).
    """

    source: np.ndarray
    target: np.ndarray

    @property
    def has_target(self) -> bool:
        return bool(self.target.any())


def _is_masked(y: np.ndarray) -> np.ndarray:
    """Rows whose label is skada's mask -1.

    NumPy turns ``["cat", -1]`` into strings, so ``"-1"`` counts in string arrays.
    """
    if y.dtype.kind in "iuf":
        return y == MASKED_LABEL
    if y.dtype.kind in "US":
        return y == y.dtype.type(str(MASKED_LABEL))
    return np.array([_equals_mask(v) for v in y], dtype=bool)


def _equals_mask(value) -> bool:
    if isinstance(value, str):
        return value == str(MASKED_LABEL)
    try:
        return not isinstance(value, bool) and bool(value == MASKED_LABEL)
    except (TypeError, ValueError):
        return False


def resolve_domains(y: np.ndarray, sample_domain, adaptation) -> Domains:
    """Source and target rows from ``y`` and ``sample_domain``, or a clear error.

    * ``sample_domain`` given: negative ids are target rows, which must carry
      the label -1; -1 on a source row is refused (the row would be lost).
    * not given, with an ``adaptation``: rows labelled -1 are the target rows.
    * not given, without ``adaptation``: every row is a labelled source row, so
      -1 stays an ordinary class label (as in any scikit-learn classifier).
    """
    n = len(y)
    masked = _is_masked(y)
    if sample_domain is None:
        target = masked if adaptation is not None else np.zeros(n, dtype=bool)
    else:
        domain = np.asarray(sample_domain)
        if domain.ndim == 0:
            domain = np.full(n, domain.item())
        if domain.shape != (n,) or domain.dtype.kind not in "iub":
            got = f"shape {domain.shape}" if domain.shape != (n,) else domain.dtype
            raise ValueError(
                "sample_domain must hold one integer domain id per row of X "
                f"(non-negative: source, negative: target); got {got} for {n} rows."
            )
        target = domain < 0
        labelled_target = target & ~masked
        if labelled_target.any():
            raise ValueError(
                f"y has labels on {int(labelled_target.sum())} target rows "
                "(negative sample_domain). Target rows are unlabelled in domain "
                "adaptation: set their y to -1, or give them a non-negative "
                "sample_domain if their labels are meant for training."
            )
        unlabelled_source = ~target & masked
        if unlabelled_source.any():
            raise ValueError(
                f"y is -1 (skada's mask for unlabelled rows) on "
                f"{int(unlabelled_source.sum())} rows that sample_domain marks as "
                "source (non-negative). Give these target rows a negative "
                "sample_domain, or their true labels."
            )
    source = ~target
    if not source.any():
        raise ValueError(
            "Every row is a target row (label -1 or negative sample_domain): "
            "domain adaptation needs labelled source rows to learn the classes "
            "from. Add labelled rows with a non-negative sample_domain."
        )
    return Domains(source=source, target=target)


def check_adaptation(adaptation, *, all_frozen: bool, linear_head: bool) -> None:
    """Refuse an adaptation that could not change anything, before training."""
    if adaptation is not None and all_frozen and linear_head:
        raise ValueError(
            f"adaptation={adaptation!r} adapts the network while it trains, but "
            "with freeze='all' and a linear head nothing in it adapts: the "
            "backbone is frozen and the head is a convex logistic regression on "
            "those fixed features, solved exactly. Train some stages (freeze=0 or "
            "a smaller int), add a hidden head layer (head_hidden=(256,)), or "
            "align the frozen features themselves with skada: "
            "make_da_pipeline(PretrainedFeatureExtractor(...), CORALAdapter(), "
            "LogisticRegression())."
        )


def coral_loss(source: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Deep CORAL: ``||cov(source) - cov(target)||_F**2 / (4 d**2)``.

    Examples
    --------
    >>> import torch
    >>> from sktransfer._adaptation import coral_loss
    >>> x = torch.randn(64, 8)
    >>> float(coral_loss(x, x.clone()))
    0.0
    >>> bool(coral_loss(x, 3 * torch.randn(64, 8)) > 0.1)
    True
    """
    source, target = source.float(), target.float()
    dim = source.shape[1]
    cov_source = torch.cov(source.T)
    cov_target = torch.cov(target.T)
    return (cov_source - cov_target).pow(2).sum() / (4 * dim * dim)


class _ReverseGradient(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x, strength):
        ctx.strength = strength
        return x.view_as(x)

    @staticmethod
    def backward(ctx, grad):
        return -ctx.strength * grad, None


class DomainDiscriminator(nn.Module):
    """DANN's domain classifier behind a gradient-reversal layer.

    ``forward(features, strength)`` returns one logit per row (target = 1); the
    gradient reaching ``features`` is multiplied by ``-strength``.
    """

    def __init__(self, in_features: int, hidden: int = 256):
        super().__init__()
        self.net = nn.Sequential(
            nn.Linear(in_features, hidden),
            nn.ReLU(inplace=True),
            nn.Linear(hidden, 1),
        )

    def forward(self, features: torch.Tensor, strength: float) -> torch.Tensor:
        return self.net(_ReverseGradient.apply(features.float(), strength)).squeeze(1)


def reversal_strength(progress: float) -> float:
    """DANN's schedule ``2 / (1 + exp(-10 p)) - 1`` for progress ``p`` in [0, 1].

    Examples
    --------
    >>> from sktransfer._adaptation import reversal_strength
    >>> round(reversal_strength(0.0), 3), round(reversal_strength(1.0), 3)
    (0.0, 1.0)
    """
    return 2.0 / (1.0 + math.exp(-10.0 * min(max(progress, 0.0), 1.0))) - 1.0


class DomainBatches(torch.utils.data.Sampler):
    """Batches of about ``batch_size`` source rows plus as many target rows.

    An epoch is one shuffled pass over the source rows, cut as
    :class:`~sktransfer._recipe.EvenBatches` cuts them, so the number and sizes
    of the steps are what they would be without adaptation; target rows are
    drawn from their own shuffled stream, reshuffled whenever it runs out (a
    small target set is reused, a large one is covered over several epochs).

    Parameters
    ----------
    target : ndarray of bool
        Which positions of the dataset are target rows.
    batch_size : int
    """

    def __init__(self, target: np.ndarray, batch_size: int):
        self.source_rows = np.flatnonzero(~target)
        self.target_rows = np.flatnonzero(target)
        self.batch_size = int(batch_size)
        self._stream: list[int] = []

    def __len__(self) -> int:
        return math.ceil(len(self.source_rows) / self.batch_size)

    def _draw_target(self, n: int) -> list[int]:
        out: list[int] = []
        while len(out) < n:
            if not self._stream:
                order = torch.randperm(len(self.target_rows)).tolist()
                self._stream = [int(self.target_rows[i]) for i in order]
            take = min(n - len(out), len(self._stream))
            out += self._stream[:take]
            del self._stream[:take]
        return out

    def __iter__(self):
        for batch in EvenBatches(len(self.source_rows), self.batch_size):
            chunk = self.source_rows[batch].tolist()
            yield chunk + self._draw_target(len(chunk))
