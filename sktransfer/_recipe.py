"""The small-data training recipe: step budget, schedule, averaging, BatchNorm.

Each piece is a plain function or a skorch callback driven by one parameter of
:class:`~sktransfer.FineTuneClassifier`:

* ``max_epochs="auto"``: :func:`auto_epochs` counts the budget in optimiser
  steps, so a tiny training set still gets enough updates;
* :class:`EvenBatches`: every epoch reshuffles the training rows into batches
  of nearly equal size, so no step trains on a leftover of one or two images;
* ``schedule``/``warmup``: :class:`StepSchedule` sets every group's learning
  rate per optimiser step (linear warm-up, then cosine decay to zero);
* ``layer_decay``: :func:`stage_lr_scales` gives earlier stages smaller rates;
* a head started from the probe: :func:`probed_head_lr` slows it down on
  features of a large spread, where Adam's steps would throw the probe away;
* ``weight_averaging="swa"``: :class:`WeightAveraging` averages the trainable
  weights over the last quarter of the steps; ``"wise"``:
  :class:`StartInterpolation` averages the trained model with the starting one;
* ``recalibrate_bn``: :func:`recalibrate_batchnorm` re-estimates the running
  statistics of the trained BatchNorm layers on the training inputs, which few
  optimiser steps (or averaged weights) leave stale; ``bn_stats="refit"`` does
  it for every BatchNorm layer before training starts.
"""

from __future__ import annotations

import math

import numpy as np
import torch
from skorch.callbacks import Callback
from torch import nn

from ._inputs import collate_samples
from .backbones._resolve import is_own_module

__all__ = [
    "AUTO_MIN_STEPS",
    "EvenBatches",
    "AUTO_MIN_EPOCHS",
    "StepSchedule",
    "StartInterpolation",
    "WeightAveraging",
    "auto_epochs",
    "feature_spread",
    "probed_head_lr",
    "recalibrate_batchnorm",
    "refits_bn_stats",
    "stage_lr_scales",
]

# max_epochs="auto": at least this many optimiser steps, and at least this many
# passes over the data (large sets then train as with max_epochs=10).
AUTO_MIN_STEPS = 100
AUTO_MIN_EPOCHS = 10


def auto_epochs(n_train: int, batch_size: int) -> int:
    """Epochs giving at least ``AUTO_MIN_STEPS`` steps and ``AUTO_MIN_EPOCHS`` epochs.

    Examples
    --------
    >>> from sktransfer._recipe import auto_epochs
    >>> auto_epochs(50, 32), auto_epochs(250, 32), auto_epochs(25_000, 32)
    (50, 13, 10)
    """
    steps_per_epoch = max(1, math.ceil(n_train / batch_size))
    return max(AUTO_MIN_EPOCHS, math.ceil(AUTO_MIN_STEPS / steps_per_epoch))


class EvenBatches(torch.utils.data.Sampler):
    """Shuffled batches of nearly equal size, ``ceil(n / batch_size)`` per epoch.

    skorch's default training loader neither shuffles nor evens out batches:
    33 images at ``batch_size=32`` give a batch of 32 and one of a single image
    in the same order every epoch, and BatchNorm then trains on the statistics
    of that one image. Here each epoch draws a new order (from torch's global
    generator, seeded by ``random_state``) and 33 images make batches of 17
    and 16; the number of steps per epoch is unchanged.

    Examples
    --------
    >>> import torch
    >>> from sktransfer._recipe import EvenBatches
    >>> _ = torch.manual_seed(0)
    >>> [len(batch) for batch in EvenBatches(33, 32)]
    [16, 17]
    >>> sorted(i for batch in EvenBatches(10, 4) for i in batch) == list(range(10))
    True
    """

    def __init__(self, rows, batch_size: int):
        # An int, or the dataset itself: its rows are counted at each epoch,
        # as freeze="auto" adds its held-out rows during training.
        self.rows = rows
        self.batch_size = int(batch_size)

    @property
    def n_rows(self) -> int:
        return int(self.rows) if isinstance(self.rows, int) else len(self.rows)

    def __len__(self) -> int:
        return max(1, math.ceil(self.n_rows / self.batch_size))

    def __iter__(self):
        n_rows = self.n_rows
        order = torch.randperm(n_rows).tolist()
        bounds = np.linspace(0, n_rows, len(self) + 1).round().astype(int)
        for begin, end in zip(bounds[:-1], bounds[1:], strict=True):
            yield order[begin:end]


def stage_lr_scales(n_stages: int, layer_decay: float | None) -> list[float]:
    """Learning-rate factor of each backbone stage; the last stage gets 1.

    Examples
    --------
    >>> from sktransfer._recipe import stage_lr_scales
    >>> stage_lr_scales(3, 0.5)
    [0.25, 0.5, 1.0]
    """
    decay = 1.0 if layer_decay is None else float(layer_decay)
    return [decay ** (n_stages - 1 - index) for index in range(n_stages)]


# A probed head keeps the rate ``lr`` on features whose mean standard deviation
# is at most this; the defaults were measured on such features (0.25-0.35 on the
# Fashion-MNIST and digits backbones of benchmarks/recipe_ablation.py).
PROBED_HEAD_SPREAD = 0.5


def feature_spread(features: np.ndarray) -> float:
    """Mean standard deviation of the features (columns) of ``features``."""
    return float(np.std(features, axis=0).mean())


def probed_head_lr(lr: float, features: np.ndarray) -> float:
    """Learning rate of a linear head that starts from the probe's solution.

    Adam moves every weight by about its rate per step, however small the
    gradient, so each step moves a head's logits by about ``rate x spread`` per
    input feature. After the probe the head already fits; on features with a
    mean standard deviation above ``PROBED_HEAD_SPREAD`` (EfficientNet-Lite0's
    are about 5) the rate shrinks in proportion, so the logits move no more per
    step than on the features the defaults were measured on.

    Examples
    --------
    >>> import numpy as np
    >>> from sktransfer._recipe import probed_head_lr
    >>> features = np.random.default_rng(0).normal(size=(500, 8))
    >>> probed_head_lr(3e-3, 0.2 * features)
    0.003
    >>> round(probed_head_lr(3e-3, 5 * features), 5)
    0.0003
    """
    spread = feature_spread(features)
    if spread <= PROBED_HEAD_SPREAD:
        return lr
    return lr * PROBED_HEAD_SPREAD / spread


def epoch_rows(net, X) -> int:
    """Rows one epoch passes over: all of ``X`` but domain adaptation's target rows."""
    target = getattr(net, "_target_rows_", None)
    return len(X) - (int(target.sum()) if target is not None else 0)


def planned_steps(net, X) -> int:
    """Optimiser steps the run about to start will take: epochs x batches.

    A run whose rows change mid-way (``freeze="auto"``) sets its own count.
    """
    planned = getattr(net, "_planned_steps_", None)
    if planned:
        return planned
    if X is None:
        return max(1, net.n_epochs_)
    return max(1, net.n_epochs_ * math.ceil(epoch_rows(net, X) / net.batch_size))


class StepSchedule(Callback):
    """Per-step learning rates: linear warm-up, then cosine decay (or constant).

    Each parameter group keeps its own peak rate (``initial_lr``); the factor
    is the same for all groups. The planned number of steps is
    ``net.n_epochs_ * ceil(len(X) / batch_size)``, known when training begins.
    ``history_`` records the optimiser ``steps`` done and the head's ``lr`` at
    the end of each epoch.

    Parameters
    ----------
    cosine : bool, default=True
        Decay with a half cosine after the warm-up; False keeps the peak rate.
    warmup : float, default=0.0
        Share of the steps spent warming up linearly from zero.
    """

    def __init__(self, cosine: bool = True, warmup: float = 0.0):
        self.cosine = cosine
        self.warmup = warmup

    def on_train_begin(self, net, X=None, y=None, **kwargs):
        self.total_steps_ = planned_steps(net, X)
        # freeze="auto" runs two cycles: the trial ends annealed, so that it
        # is scored as a finished fine-tune, then all rows train a second one.
        self.restart_step_ = getattr(net, "_restart_step_", None)
        self.step_ = 0
        for group in net.optimizer_.param_groups:
            group.setdefault("initial_lr", group["lr"])

    def factor(self, step: int) -> float:
        """Multiplier of the peak rates at optimiser step ``step`` (0-based)."""
        length, restart = self.total_steps_, getattr(self, "restart_step_", None)
        if restart:
            if step < restart:
                length = restart
            else:
                step, length = step - restart, self.total_steps_ - restart
        warm = int(self.warmup * length)
        if step < warm:
            return (step + 1) / (warm + 1)
        if not self.cosine:
            return 1.0
        progress = (step - warm) / max(1, length - warm)
        return 0.5 * (1.0 + math.cos(math.pi * min(progress, 1.0)))

    def on_batch_begin(self, net, batch=None, training=False, **kwargs):
        if not training:
            return
        factor = self.factor(self.step_)
        for group in net.optimizer_.param_groups:
            group["lr"] = group["initial_lr"] * factor

    def on_batch_end(self, net, batch=None, training=False, **kwargs):
        if training:
            self.step_ += 1

    def on_epoch_end(self, net, **kwargs):
        net.history.record("steps", self.step_)
        net.history.record("lr", net.optimizer_.param_groups[0]["lr"])


class StartInterpolation(Callback):
    """Average the trained weights with those training started from (WiSE-FT).

    Fine-tuning from a good start (pretrained stages, a probed head) can
    forget what the start knew; the average of the two models, weights and
    BatchNorm statistics alike, keeps part of both (Wortsman et al., 2022).

    Parameters
    ----------
    alpha : float, default=0.5
        Share of the trained weights: 1 keeps them, 0 the starting ones.
    """

    def __init__(self, alpha: float = 0.5):
        self.alpha = alpha

    def on_train_begin(self, net, X=None, y=None, **kwargs):
        self.start_ = {
            name: value.detach().clone()
            for name, value in net.module_.state_dict().items()
            if value.is_floating_point()
        }

    def on_train_end(self, net, X=None, y=None, **kwargs):
        start, self.start_ = getattr(self, "start_", None), None  # not pickled
        if not start:
            return
        state = net.module_.state_dict()
        with torch.no_grad():
            for name, value in start.items():
                state[name].lerp_(value, 1.0 - self.alpha)


class WeightAveraging(Callback):
    """Average the trainable weights over the last ``fraction`` of the steps (SWA).

    At the end of training the module takes the averaged weights; BatchNorm
    statistics should then be re-estimated (:func:`recalibrate_batchnorm`).
    """

    def __init__(self, fraction: float = 0.25):
        self.fraction = fraction

    def on_train_begin(self, net, X=None, y=None, **kwargs):
        total = planned_steps(net, X)
        self.start_step_ = int((1.0 - self.fraction) * total)
        self.step_, self.count_, self.average_ = 0, 0, None

    def on_batch_end(self, net, batch=None, training=False, **kwargs):
        if not training:
            return
        self.step_ += 1
        if self.step_ <= self.start_step_:
            return
        params = [p for p in net.module_.parameters() if p.requires_grad]
        with torch.no_grad():
            if self.average_ is None:
                self.average_ = [p.detach().clone() for p in params]
            else:
                weight = 1.0 / (self.count_ + 1)
                for mean, p in zip(self.average_, params, strict=True):
                    mean.lerp_(p.detach(), weight)
        self.count_ += 1

    def on_train_end(self, net, X=None, y=None, **kwargs):
        if self.average_ is None:
            return
        params = [p for p in net.module_.parameters() if p.requires_grad]
        with torch.no_grad():
            for p, mean in zip(params, self.average_, strict=True):
                p.copy_(mean)
        self.average_ = None  # not kept in pickles

    def __getstate__(self):
        state = self.__dict__.copy()
        state["average_"] = None
        return state


@torch.no_grad()
def recalibrate_batchnorm(
    module, dataset, *, start: int, batch_size: int, frozen: bool = False
) -> int:
    """Re-estimate running statistics of BatchNorm layers; return their count.

    Only BatchNorm layers with trainable parameters are reset, unless
    ``frozen``: then every one is. Their statistics become the exact average
    over ``dataset`` (inputs entering at stage ``start``), computed in eval
    mode for everything else, without augmentation.
    """
    layers = [
        m
        for m in module.modules()
        if isinstance(m, nn.modules.batchnorm._BatchNorm)
        and m.track_running_stats
        and (frozen or any(p.requires_grad for p in m.parameters(recurse=False)))
    ]
    if not layers:
        return 0
    was_training = module.training
    module.eval()
    momenta = [m.momentum for m in layers]
    for layer in layers:
        layer.reset_running_stats()
        layer.momentum = None  # cumulative average over all batches
        layer.train()
    try:
        loader = torch.utils.data.DataLoader(
            dataset, batch_size=batch_size, collate_fn=collate_samples
        )
        for batch, _ in loader:
            # Every stage the module kept: the taps and any after them.
            module.run(module.prepare(batch) if start == 0 else batch, start)
    finally:
        for layer, momentum in zip(layers, momenta, strict=True):
            layer.momentum = momentum
        module.train(was_training)
    return len(layers)


def refits_bn_stats(estimator) -> bool:
    """Whether ``estimator`` re-estimates BatchNorm statistics on its inputs first.

    ``bn_stats="auto"`` refits them for a module of the user's own, whose
    pretraining normalised its inputs in a way the library cannot know
    (``benchmarks/results/user_input_scale.json``, in git at ea690e0), unless
    ``image_mean`` or ``image_std`` says how; registered backbones keep theirs.
    """
    if estimator.bn_stats == "auto":
        stated = estimator.image_mean is not None or estimator.image_std is not None
        return is_own_module(estimator.backbone) and not stated
    return estimator.bn_stats == "refit"
