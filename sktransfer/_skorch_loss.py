"""The loss of sktransfer's skorch nets: the targets' loss, weighted, or adapted.

:class:`LossMixin` builds the criterion its targets ask for
(:mod:`sktransfer._targets`: cross-entropy with class weights and label
smoothing, binary cross-entropy per label, squared error or Huber) and
computes each batch's loss: the plain criterion, the weighted mean when the
rows carry ``sample_weight`` (:mod:`sktransfer._sample_weight`), the sum over
the heads when a final head trains next to the tapped one, and, in domain
adaptation, the source rows' loss plus ``adaptation_weight`` times the
alignment term (Deep CORAL or DANN's domain classifier).
"""

from __future__ import annotations

import torch
from torch import nn

from ._adaptation import coral_loss, reversal_strength
from ._runtime import to_device
from ._sample_weight import split_targets

__all__ = ["LossMixin"]


class LossMixin:
    """skorch's ``initialize_criterion``, ``infer`` and ``get_loss``.

    Examples
    --------
    >>> import numpy as np
    >>> import torch
    >>> from sktransfer import FineTuneClassifier
    >>> X, y = np.random.rand(8, 28, 28), np.arange(8) % 2
    >>> clf = FineTuneClassifier("fmnist_resnet", freeze="all", layer=None,
    ...                          device="cpu").fit(X, y)
    >>> logits = torch.tensor([[2.0, 0.0], [0.0, 2.0]])
    >>> targets = {"y": torch.tensor([0, 1]), "sample_weight": torch.ones(2)}
    >>> bool(clf.get_loss(logits, targets) == clf.get_loss(logits, targets["y"]))
    True
    """

    def initialize_criterion(self):
        self.criterion_ = self._targets.criterion(self).to(self._resolved_device())
        return self

    def _adapting(self) -> bool:
        target = getattr(self, "_target_rows_", None)
        return self.module_.training and target is not None

    def infer(self, x, **fit_params):
        # The module (a BackboneRuntime) moves batches to its own device.
        if self._adapting():
            return self.module_.logits_and_features(x, **fit_params)
        return self.module_(x, **fit_params)

    def get_loss(self, y_pred, y_true, *args, **kwargs):
        labels, weights = split_targets(y_true)
        if isinstance(y_pred, tuple):  # domain adaptation: (logits, features)
            return self._adaptation_loss(*y_pred, labels, weights)
        labels = to_device(labels, y_pred.device)
        if y_pred.ndim == 3:  # training with a final head: (batch, head, output)
            heads = y_pred.float().unbind(1)
            return sum(self._class_loss(logits, labels, weights) for logits in heads)
        return self._class_loss(y_pred.float(), labels, weights)

    def _class_loss(self, outputs, targets, weights) -> torch.Tensor:
        return self._targets.loss(self.criterion_, outputs, targets, weights)

    def _adaptation_loss(self, logits, features, y_true, weights) -> torch.Tensor:
        """Source cross-entropy plus ``adaptation_weight`` x the alignment term."""
        y_true = to_device(y_true, logits.device)
        source = y_true >= 0
        loss = self._class_loss(
            logits[source].float(),
            y_true[source],
            None if weights is None else weights[source.cpu()],
        )
        target = ~source
        if source.sum() < 2 or target.sum() < 2:
            return loss  # covariances need two rows of each domain
        if self.adaptation == "coral":
            # On the class scores, as Deep CORAL's paper does (its fc8): it
            # aligned better than the head's input features on both shifts of
            # benchmarks/domain_adaptation.py.
            align = coral_loss(logits[source], logits[target])
        else:
            self._adaptation_step_ = getattr(self, "_adaptation_step_", 0) + 1
            progress = self._adaptation_step_ / self._adaptation_total_
            domain_logits = self.domain_discriminator_(
                features, reversal_strength(progress)
            )
            align = nn.functional.binary_cross_entropy_with_logits(
                domain_logits, target.float()
            )
        return loss + self.adaptation_weight * align
