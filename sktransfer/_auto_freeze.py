"""``freeze="auto"``: the exact probe or full fine-tuning, chosen inside ``fit``.

Which of the two transfers better depends on the backbone and the data: on
ImageNet's EfficientNet-Lite0 with 10 labels per class the probe (``"all"``)
won, on the shipped Fashion-MNIST backbone and on text fine-tuning won. So
"auto" measures it, at about the cost of one fine-tune:

1. the probe is fitted on all labelled rows (cheap: one frozen pass and a
   convex solve); that is the model if the probe wins;
2. a ``HOLDOUT_FRACTION`` of the rows (stratified for classes: at least one
   per class that has two) is set aside, and a probe fitted on the rest scores them;
3. fine-tuning (``freeze=0``) trains on the rest for ``DECIDE_AT`` of the
   epochs, its learning rates warmed up and annealed to zero over them: a
   finished, shorter fine-tune (scored mid-way through one long schedule, it
   lost to the probe with 250 labels per class where the finished one won);
   it then scores the same held-out rows;
4. if it does not beat the probe there (the targets' held-out score:
   accuracy, then log-loss, for classes; micro-F1, then log-loss, for label
   sets; squared error for numbers, :mod:`sktransfer._targets`), training
   stops and the probe of step 1 is the model; otherwise the held-out rows
   join and a second warm-up and cosine cycle trains on every row for the
   remaining epochs.

The held-out scores and the choice are kept in ``freeze_`` and
``freeze_scores_``; saved models record them.
"""

from __future__ import annotations

import math

import numpy as np
import torch
from skorch.callbacks import Callback
from torch import nn

from ._inputs import collate_samples
from ._training import run_training, seed_of

__all__ = ["DECIDE_AT", "HOLDOUT_FRACTION", "fit_auto_freeze", "resolved_freeze"]

# Share of the labelled rows held out to compare the two (at least one per
# class with two rows or more), and share of the epochs after which the
# fine-tune is scored on them.
HOLDOUT_FRACTION = 0.2
DECIDE_AT = 0.5


# What a fit sets (build_network, initialize, run_training): the probe's are put
# back when it wins, as the trial network replaced them.
_FITTED_STATE = (
    "module_",
    "optimizer_",
    "criterion_",
    "callbacks_",
    "history_",
    "layer_",
    "final_head_",
    "_head_on_final_",
    "image_size_",
    "n_frozen_",
    "n_epochs_",
    "domain_discriminator_",
    "used_cache_",
    "cache_nbytes_",
    "cache_hit_",
)


class _TrialLost(Exception):
    """Raised by :class:`FreezeJudge` to stop a fine-tune the probe beat."""


def resolved_freeze(clf):
    """The freeze depth the network of ``clf`` is built with ("auto" resolved)."""
    if clf.freeze != "auto":
        return clf.freeze
    return getattr(clf, "_fit_freeze", getattr(clf, "freeze_", 0))


def holdout_rows(labels: np.ndarray | None, rows: np.ndarray, seed) -> np.ndarray:
    """Stratified held-out rows among ``rows``: ``HOLDOUT_FRACTION`` per class.

    Classes with a single row keep it for training; the others give at least
    one row. Without ``labels`` (several labels or numbers per row) it is
    ``HOLDOUT_FRACTION`` of all the rows, at least one.

    Examples
    --------
    >>> import numpy as np
    >>> from sktransfer._auto_freeze import holdout_rows
    >>> labels = np.array([0] * 10 + [1] * 2 + [2])
    >>> held = holdout_rows(labels, np.arange(13), seed=0)
    >>> np.bincount(labels[held], minlength=3).tolist()
    [2, 1, 0]
    """
    rng = np.random.default_rng(seed)
    if labels is None:
        count = max(1, round(HOLDOUT_FRACTION * len(rows)))
        return np.sort(rng.choice(rows, size=count, replace=False))
    held = []
    for label in np.unique(labels[rows]):
        members = rows[labels[rows] == label]
        if len(members) < 2:
            continue
        count = max(1, round(HOLDOUT_FRACTION * len(members)))
        held.append(rng.choice(members, size=count, replace=False))
    return np.sort(np.concatenate(held)) if held else np.empty(0, np.int64)


def _probe_scores(clf, features, labels, weights, trial, held) -> dict:
    """A probe fitted on the ``trial`` rows of ``features``, scored on ``held``."""
    targets = clf._targets
    linear = nn.Linear(features.shape[1], targets.n_outputs)
    targets.fit_probe(
        linear,
        features[trial],
        labels[trial],
        clf,
        None if weights is None else weights[trial],
    )
    with torch.no_grad():
        outputs = linear(torch.as_tensor(features[held], dtype=torch.float32))
    return targets.holdout_scores(outputs, labels[held], _rows(weights, held))


def _rows(weights, index):
    return None if weights is None else weights[index]


class FreezeJudge(Callback):
    """Score the fine-tune on held-out rows mid-run; stop it or add the rows.

    Parameters
    ----------
    held : Dataset
        The held-out rows, as the network's training inputs.
    labels, weights : ndarray
        Their encoded targets and sample weights (or None).
    probe : dict
        The probe's scores on them.
    decide_epoch : int
        The epoch (1-based) after which the fine-tune is scored.
    add_rows : callable
        Called when the fine-tune wins: puts the held-out rows in training.
    """

    def __init__(self, held, labels, weights, probe, decide_epoch, add_rows):
        self.held = held
        self.labels = labels
        self.weights = weights
        self.probe = probe
        self.decide_epoch = decide_epoch
        self.add_rows = add_rows

    def score(self, net) -> dict:
        loader = torch.utils.data.DataLoader(
            self.held, batch_size=max(net.batch_size, 64), collate_fn=collate_samples
        )
        module = net.module_
        module.eval()
        try:
            with torch.random.fork_rng(devices=[]), torch.inference_mode():
                outputs = [module(batch).float().cpu() for batch, _ in loader]
        finally:
            module.train()
        scores = net._targets.holdout_scores
        return scores(torch.cat(outputs), self.labels, self.weights)

    def on_epoch_end(self, net, **kwargs):
        if len(net.history) != self.decide_epoch:
            return
        finetune = self.score(net)
        targets = net._targets
        wins = targets.better(finetune, self.probe)
        net.freeze_scores_.update(finetune=finetune, epoch=self.decide_epoch)
        net._say(
            f"freeze='auto': held-out {targets.describe(finetune)} after "
            f"{self.decide_epoch} epochs, against the probe's "
            f"{targets.describe(self.probe)}: "
            + ("fine-tuning goes on with every row" if wins else "the probe wins")
        )
        if not wins:
            raise _TrialLost
        self.add_rows()


def _choice_blocked(clf, y_encoded, domains) -> str | None:
    """Why ``fit`` cannot compare the two (None when it can)."""
    if not clf._pretrained():
        return "weights=None: no pretrained features to probe"
    if clf.head_hidden:
        return "head_hidden: the probe is a linear head"
    if clf.head_init == "random":
        return "head_init='random': no probe to compare with"
    if getattr(clf, "_adapts_this_fit", False):
        return "domain adaptation trains the stages"
    if clf.early_stopping:
        return "early_stopping may end training before the comparison"
    if clf.max_epochs != "auto" and int(clf.max_epochs) < 2:
        return "max_epochs < 2 leaves no epochs after the comparison"
    labelled = y_encoded[clf._targets.labelled(y_encoded)]
    strata = clf._targets.strata(labelled)
    if strata is None:
        if len(labelled) < 5:
            return "fewer than 5 rows: too few to hold one out"
    elif len(strata) == 0 or np.bincount(strata).max() < 2:
        return "no class has two labelled rows to hold one out"
    return None


def fit_auto_freeze(clf, source, y_encoded, domains, sample_weight) -> None:
    """A fresh fit with ``freeze="auto"``: sets ``freeze_`` and its evidence."""
    reason = _choice_blocked(clf, y_encoded, domains)
    if reason is not None:
        clf.freeze_, clf.freeze_scores_ = 0, {"reason": reason}
        _fit_with(clf, 0, source, y_encoded, domains, sample_weight)
        return
    clf.freeze_scores_ = {}
    # 1. The probe on every labelled row: the model if it wins.
    plan = _fit_with(clf, "all", source, y_encoded, domains, sample_weight)
    probe_model = {name: getattr(clf, name) for name in _FITTED_STATE}
    features, rows = plan.probe_features, plan.probe_rows
    # 2. The same probe on the trial rows, scored on the held-out rows.
    strata = clf._targets.strata(y_encoded)
    held = holdout_rows(strata, rows, seed_of(clf.random_state))
    in_held = np.isin(rows, held)
    trial_pos, held_pos = np.flatnonzero(~in_held), np.flatnonzero(in_held)
    weights = None if sample_weight is None else sample_weight[rows]
    probe = _probe_scores(clf, features, y_encoded[rows], weights, trial_pos, held_pos)
    clf.freeze_scores_.update(probe=probe, n_held_out=len(held))
    # 3. Fine-tuning on the trial rows, scored after its own schedule.
    try:
        _fit_with(
            clf,
            0,
            source,
            y_encoded,
            domains,
            sample_weight,
            judge=lambda plan, epochs: _judge(
                clf, plan, held, epochs, probe, sample_weight
            ),
            held=held,
        )
    except _TrialLost:
        for name, value in probe_model.items():
            setattr(clf, name, value)
        clf._fit_freeze = clf.freeze_ = "all"
        return
    clf.freeze_ = 0


def _judge(clf, plan, held, n_epochs, probe, sample_weight) -> FreezeJudge:
    decide_epoch = min(n_epochs, max(1, math.floor(DECIDE_AT * n_epochs)))

    def add_rows():
        plan.train.indices = np.sort(np.concatenate([plan.train.indices, held]))

    return FreezeJudge(
        held=torch.utils.data.Subset(plan.data, held),
        labels=np.asarray(plan.labels)[held],
        weights=_rows(sample_weight, held),
        probe=probe,
        decide_epoch=decide_epoch,
        add_rows=add_rows,
    )


def _fit_with(clf, freeze, source, y_encoded, domains, sample_weight, **trial):
    """Build the network with ``freeze`` and run one fresh training call."""
    clf._fit_freeze = freeze
    clf.initialize()
    clf._check_adaptation()
    return run_training(
        clf,
        source,
        y_encoded,
        probe=True,
        domains=domains,
        sample_weight=sample_weight,
        **trial,
    )
