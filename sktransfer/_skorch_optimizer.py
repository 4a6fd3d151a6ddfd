"""The optimiser of sktransfer's skorch nets: one learning-rate group per stage.

:class:`OptimizerMixin` hands skorch an optimiser whose first group is the head
(at ``lr``), then the layers after the taps that feed a final head, DANN's
domain classifier, and one group per trainable backbone stage at
``backbone_lr`` scaled down layer by layer (``layer_decay``). Frozen stages are
never handed to the optimiser.
"""

from __future__ import annotations

import torch
from torch import nn

from ._recipe import stage_lr_scales
from ._training import starts_from_probe
from .backbones._resolve import is_own_module

__all__ = ["OptimizerMixin"]


def _trainable(stage: nn.Module) -> list[nn.Parameter]:
    return [p for p in stage.parameters() if p.requires_grad]


class OptimizerMixin:
    """skorch's ``initialize_optimizer`` with the head and stage groups.

    Examples
    --------
    >>> import numpy as np
    >>> from sktransfer import FineTuneClassifier
    >>> X, y = np.random.rand(8, 28, 28), np.arange(8) % 2
    >>> clf = FineTuneClassifier("fmnist_resnet", freeze=4, layer=None,
    ...                          max_epochs=1, device="cpu").fit(X, y)
    >>> [group["lr"] for group in clf.optimizer_.param_groups][0] == clf.lr
    True
    """

    def _pretrained(self) -> bool:
        # A user's module arrives with its own (presumably trained) parameters.
        return self.weights is not None or is_own_module(self.backbone)

    def _backbone_lr(self) -> float:
        if self.backbone_lr is not None:
            return float(self.backbone_lr)
        backbone = getattr(self.module_, "backbone", None)
        recommended = getattr(backbone, "finetune_lr", None)
        if recommended is not None and self._pretrained():
            return float(recommended)
        if starts_from_probe(self):
            # The head already fits: the stages below move at a third of its
            # rate (linear probing, then fine-tuning; measured in
            # results/recipe_ablation_taps_lr, in git at ea690e0).
            return self.lr / 3
        # A random head: one rate for both, as good or better than lr / 3
        # (results/recipe_ablation_schedule at ea690e0).
        return self.lr

    def initialize_optimizer(self, triggered_directly=None):
        # The head first, then one group per trainable backbone stage
        # (layer-wise rates) under it.
        module = self.module_
        stages = list(module.backbone.stages)
        final_head = module.final_head
        shared = module.taps[-1] if final_head is not None else len(stages)
        trainable = [
            params
            for params in (_trainable(stage) for stage in stages[:shared])
            if params  # frozen stages are not handed to the optimiser at all
        ]
        # The last trainable stage learns at backbone_lr, earlier ones slower.
        scales = stage_lr_scales(len(trainable), self.layer_decay)
        groups = [{"params": list(module.head.parameters()), "lr": self.lr}]
        if final_head is not None:
            # The stages after the taps feed the final head only: they learn
            # at its rate (a slower one measured no better).
            tail = [p for stage in stages[shared:] for p in _trainable(stage)]
            groups.append({"params": [*final_head.parameters(), *tail], "lr": self.lr})
        discriminator = getattr(self, "domain_discriminator_", None)
        if discriminator is not None:  # DANN's domain classifier learns as the head
            groups.append({"params": list(discriminator.parameters()), "lr": self.lr})
        for params, scale in zip(trainable, scales, strict=True):
            groups.append({"params": params, "lr": self._backbone_lr() * scale})
        _, kwargs = self.get_params_for_optimizer("optimizer", [])
        kwargs.pop("lr", None)
        if self.optimizer is torch.optim.AdamW:
            kwargs.setdefault("weight_decay", self.weight_decay)
        self.optimizer_ = self.optimizer(groups, **kwargs)
        return self
