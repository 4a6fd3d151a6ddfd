"""How the estimators train: data, the probe start, the split.

:func:`plan_training` decides, for one call of ``fit``/``partial_fit``, what the
network is trained on: raw inputs, or the outputs of the frozen stages computed
once (the frozen-output cache); which rows are held out for early stopping; and
whether the linear head starts from (or, when everything is frozen, *is*) the
exact probe on the frozen embeddings (logistic or ridge regression, as the
estimator's targets say: :mod:`sktransfer._targets`). The estimator keeps only
the skorch glue; everything here is plain functions of its parameters.
"""

from __future__ import annotations

import math
import warnings
from dataclasses import dataclass

import numpy as np
import torch
from sklearn.exceptions import ConvergenceWarning
from sklearn.model_selection import train_test_split
from skorch import NeuralNet
from torch.utils.data import Dataset, Subset

from ._adaptation import Domains
from ._cache import FrozenOutputs, as_cache, frozen_outputs, outputs_dataset
from ._inputs import SourceDataset, collate_samples
from ._probe import PROBE_MAX_ITER
from ._recipe import (
    auto_epochs,
    epoch_rows,
    feature_spread,
    planned_steps,
    probed_head_lr,
    recalibrate_batchnorm,
    refits_bn_stats,
)
from ._sample_weight import WeightedRows
from .backbones._resolve import is_own_module
from .exceptions import CacheTooLargeError

__all__ = [
    "TrainingPlan",
    "plan_training",
    "run_training",
    "starts_from_probe",
    "seed_of",
]


@dataclass
class TrainingPlan:
    """What one training call runs on.

    Attributes
    ----------
    train : Dataset
        Rows trained on: raw inputs, or frozen-stage outputs when ``start > 0``.
    valid : Dataset or None
        Rows held out for early stopping.
    start : int
        Stage the training inputs enter at (the number of cached stages).
    outputs : FrozenOutputs or None
        The cached frozen-stage outputs, when used.
    done : bool
        True when the probe already is the optimum (frozen backbone, linear
        head): no epochs need to run.
    """

    train: Dataset
    valid: Dataset | None
    start: int
    outputs: FrozenOutputs | None
    done: bool = False
    data: Dataset | None = None
    labels: np.ndarray | None = None
    probe_features: np.ndarray | None = None
    probe_rows: np.ndarray | None = None


def seed_of(random_state) -> int | None:
    """An int seed from a ``random_state`` parameter (None stays None)."""
    if random_state is None:
        return None
    if isinstance(random_state, np.random.RandomState):
        return int(random_state.randint(2**31 - 1))
    return int(random_state)


def plan_training(
    clf,
    source,
    y_encoded: np.ndarray,
    *,
    probe: bool,
    domains: Domains | None = None,
    sample_weight: np.ndarray | None = None,
    held: np.ndarray | None = None,
) -> TrainingPlan:
    """Prepare the data of one training call of the classifier ``clf``.

    With ``probe=True`` (a fresh fit), a pretrained backbone and a linear head,
    the head is first set to the logistic-regression optimum on the frozen
    embeddings of the training rows. ``domains`` (domain adaptation) says which
    rows are unlabelled target rows (``y_encoded`` -1): they are trained on,
    next to the source rows, only when ``clf.adaptation`` is set.
    ``sample_weight`` (checked, one per row) weighs the rows in the probe and in
    the loss (:mod:`sktransfer._sample_weight`). ``held`` rows (``freeze="auto"``)
    are left out of training and of the probe; they may join training later.
    """
    module = clf.module_
    labelled = np.ones(len(y_encoded), bool) if domains is None else domains.source
    train_index, valid_index = _split(clf, y_encoded, np.flatnonzero(labelled))
    if held is not None:
        train_index = np.setdiff1d(train_index, held)
    adapting = domains is not None and domains.has_target and clf._adaptation()
    clf._target_rows_ = None
    if adapting:
        # Every target row is trained on (aligned), none is held out.
        train_index = np.concatenate([train_index, np.flatnonzero(domains.target)])
        clf._target_rows_ = domains.target[train_index]
    raw = SourceDataset(source, y_encoded, size=module.preprocessing.loading_size)
    if probe and refits_bn_stats(clf):
        # Before the cache and the probe: both run the stages in eval mode.
        recalibrate_batchnorm(
            module,
            Subset(raw, train_index),
            start=0,
            batch_size=max(clf.batch_size, 64),
            frozen=True,
        )
    outputs = None
    cache_stop = module.cacheable_stop()
    if clf.cache_frozen and cache_stop > 0 and module.augment is None:
        outputs = _frozen_outputs(clf, source, cache_stop)
    data = raw if outputs is None else outputs_dataset(outputs.values, y_encoded)
    if sample_weight is not None:
        data = WeightedRows(data, sample_weight)
    start = cache_stop if outputs is not None else 0
    plan = TrainingPlan(
        train=Subset(data, train_index),
        valid=Subset(data, valid_index) if valid_index is not None else None,
        start=start,
        outputs=outputs,
        data=data,
        labels=y_encoded,
    )
    if probe and starts_from_probe(clf):
        weights = None if sample_weight is None else sample_weight[train_index]
        _fit_probe(clf, plan, y_encoded[train_index], weights)
        # Head-only with a linear head is convex: the probe is the optimum.
        plan.done = not _trains_backbone(module)
    return plan


def _probe_advice(clf, features: np.ndarray) -> str:
    """What a user can do when the probe's solver stops before converging."""
    spread = feature_spread(features)
    then = (
        "training goes on from where it stopped"
        if _trains_backbone(clf.module_)
        else "with all stages frozen it is the fitted head"
    )
    own = (
        " If the backbone is a module of your own, set image_mean and image_std "
        "to the normalisation it was pretrained with: inputs scaled otherwise "
        "can blow its embeddings up."
        if is_own_module(clf.backbone)
        else ""
    )
    return (
        f"{type(clf).__name__}: the logistic regression that starts the head "
        f"(probe_C={clf.probe_C!r}) stopped without converging (its Newton-CG "
        f"solver stalled, or ran {PROBE_MAX_ITER} iterations) on embeddings of "
        "mean standard deviation "
        f"{spread:.3g}; {then}. A smaller probe_C (a stronger L2 penalty) "
        f"converges faster.{own}"
    )


def starts_from_probe(clf) -> bool:
    """Whether a fresh fit of ``clf`` starts its head at the probe's solution."""
    head_init = clf.head_init
    if head_init == "auto":
        # Measured (benchmarks/recipe_ablation.py): a probed head on the final
        # embedding holds the trained stages back; on mid-level taps it helps.
        # Label sets always probe: there a random head stays on the labels'
        # frequencies (:attr:`LabelSetTargets.random_head_plateaus`).
        final = getattr(clf, "_head_on_final_", True)
        targets = getattr(clf, "_targets", None)
        plateaus = getattr(targets, "random_head_plateaus", False)
        head_init = (
            "probe"
            if not _trains_backbone(clf.module_) or not final or plateaus
            else "random"
        )
    return head_init == "probe" and clf._pretrained() and not clf.head_hidden


def _trains_backbone(module) -> bool:
    # Stages without parameters (pooling) have nothing to train.
    return any(p.requires_grad for p in module.backbone.parameters())


def run_training(
    clf,
    source,
    y_encoded,
    *,
    probe: bool,
    domains: Domains | None = None,
    sample_weight: np.ndarray | None = None,
    held: np.ndarray | None = None,
    judge=None,
) -> TrainingPlan:
    """One ``fit``/``partial_fit`` of ``clf``: plan, train the steps, finish.

    Sets ``used_cache_``, ``cache_nbytes_``, ``cache_hit_`` and ``n_epochs_``
    (``max_epochs`` resolved; 0 when the probe already is the optimum).
    ``held`` rows start outside training; ``judge(plan, n_epochs)`` makes the
    callback that may add them (``freeze="auto"``): epochs and the schedule
    are planned as if every row trained after its decision epoch.
    """
    plan = plan_training(
        clf,
        source,
        y_encoded,
        probe=probe,
        domains=domains,
        sample_weight=sample_weight,
        held=held,
    )
    n_held = 0 if held is None else len(held)
    clf.used_cache_ = plan.outputs is not None
    clf.cache_nbytes_ = plan.outputs.nbytes if plan.outputs else 0
    clf.cache_hit_ = bool(plan.outputs and plan.outputs.from_disk)
    clf.n_epochs_ = (
        auto_epochs(epoch_rows(clf, plan.train) + n_held, clf.batch_size)
        if clf.max_epochs == "auto"
        else int(clf.max_epochs)
    )
    if plan.done:
        clf.n_epochs_ = 0
        clf._target_rows_ = None
        return plan
    callback = None if judge is None else judge(plan, clf.n_epochs_)
    clf._planned_steps_ = clf._restart_step_ = None
    if callback is not None:
        clf._planned_steps_ = _steps_with_judge(clf, plan, n_held, callback)
        clf._restart_step_ = callback.decide_epoch * math.ceil(
            len(plan.train) / clf.batch_size
        )
        clf.callbacks_.append(("freeze_auto", callback))
    clf._valid_dataset_ = plan.valid
    clf.module_.start_stage = plan.start
    clf.module_.freeze_batchnorm = _freezes_batchnorm(clf)
    clf._adaptation_step_ = 0  # DANN's reversal strength follows progress
    clf._adaptation_total_ = planned_steps(clf, plan.train)
    try:
        NeuralNet.partial_fit(clf, plan.train, None, epochs=clf.n_epochs_)
    finally:
        clf.module_.start_stage = 0
        clf._valid_dataset_ = None
        clf._target_rows_ = None
        clf._planned_steps_ = clf._restart_step_ = None
        if callback is not None:
            clf.callbacks_.remove(("freeze_auto", callback))
    if clf.recalibrate_bn and clf.n_epochs_ > 0:
        recalibrate_batchnorm(
            clf.module_,
            plan.train,
            start=plan.start,
            batch_size=max(clf.batch_size, 64),
        )
    return plan


def _steps_with_judge(clf, plan, n_held: int, callback) -> int:
    """Optimiser steps of a run whose held-out rows join after the decision."""
    before = callback.decide_epoch * math.ceil(len(plan.train) / clf.batch_size)
    after_rows = len(plan.train) + n_held
    after = (clf.n_epochs_ - callback.decide_epoch) * math.ceil(
        after_rows / clf.batch_size
    )
    return max(1, before + after)


def _split(clf, y_encoded, indices):
    """Training and validation rows among the labelled ``indices``."""
    if not clf.early_stopping:
        return indices, None
    labels = clf._targets.strata(y_encoded[indices])
    stratify = labels if labels is not None and np.bincount(labels).min() >= 2 else None
    return train_test_split(
        indices,
        test_size=clf.validation_fraction,
        stratify=stratify,
        random_state=seed_of(clf.random_state),
    )


def _frozen_outputs(clf, source, stop: int) -> FrozenOutputs | None:
    """Outputs of the first ``stop`` (frozen) stages for every input, computed once."""
    try:
        return frozen_outputs(
            clf.module_,
            source,
            stop,
            cache=as_cache(clf.cache),
            dtype=clf.cache_dtype,
            max_bytes=clf.cache_max_bytes,
            batch_size=max(clf.batch_size, 64),
        )
    except CacheTooLargeError as exc:
        if clf.cache is not None:
            raise
        warnings.warn(f"{exc} Training without the cache instead.", stacklevel=4)
        return None


@torch.inference_mode()
def _fit_probe(clf, plan: TrainingPlan, labels: np.ndarray, weights) -> None:
    """Set the linear head to the exact probe on the frozen embeddings."""
    module = clf.module_
    module.eval()
    # Target rows of domain adaptation carry -1: not embedded at all.
    labelled = np.flatnonzero(clf._targets.labelled(labels))
    rows = Subset(plan.train, labelled)
    loader = torch.utils.data.DataLoader(
        rows, batch_size=max(clf.batch_size, 64), collate_fn=collate_samples
    )
    embeddings = [module.features(batch, start=plan.start).cpu() for batch, _ in loader]
    features = torch.cat(embeddings).numpy()
    plan.probe_features = features
    plan.probe_rows = np.asarray(plan.train.indices)[labelled]
    labels = labels[labelled]
    weights = None if weights is None else weights[labelled]
    converged = clf._targets.fit_probe(module.head[-1], features, labels, clf, weights)
    if not converged:
        warnings.warn(_probe_advice(clf, features), ConvergenceWarning, stacklevel=2)
    # The head's group comes first (SkorchGlue.initialize_optimizer).
    clf.optimizer_.param_groups[0]["lr"] = probed_head_lr(clf.lr, features)


def _freezes_batchnorm(clf) -> bool:
    """``freeze_batchnorm`` with "auto" made concrete: what the backbone asks."""
    if clf.freeze_batchnorm != "auto":
        return bool(clf.freeze_batchnorm)
    backbone = clf.module_.backbone
    return bool(backbone.keep_batchnorm_stats) and clf._pretrained()
