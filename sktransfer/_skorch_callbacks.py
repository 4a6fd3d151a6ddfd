"""The training callbacks of sktransfer's skorch nets, chosen when they initialise.

skorch builds a net's callbacks from ``_default_callbacks`` in ``initialize``.
:class:`CallbacksMixin` lists sktransfer's: validation accuracy on the encoded
labels (single-label classifiers), the step schedule (warm-up, cosine), weight
averaging, early stopping, and the epoch table, which ``verbose=None`` shows in
interactive sessions only.
"""

from __future__ import annotations

import numpy as np
from skorch.callbacks import EarlyStopping, EpochScoring, PrintLog

from ._recipe import StartInterpolation, StepSchedule, WeightAveraging
from ._sample_weight import target_labels
from ._validation import interactive_session

__all__ = ["CallbacksMixin"]


def _encoded_accuracy(net, X, y) -> float:
    """Validation accuracy on the encoded labels skorch sees during training."""
    return float((net.predict_proba(X).argmax(axis=1) == np.asarray(y)).mean())


def _print_line(text: str) -> None:
    print(text)  # not ``print`` itself: skorch prints to ``print`` only if verbose


def _discard(text: str) -> None:
    pass


class CallbacksMixin:
    """skorch's ``_default_callbacks`` for sktransfer's trainable estimators.

    Examples
    --------
    >>> from sktransfer import FineTuneClassifier
    >>> names = [name for name, _ in FineTuneClassifier()._default_callbacks]
    >>> names[-2:]
    ['lr_schedule', 'print_log']
    """

    @property
    def _default_callbacks(self):
        callbacks = [
            (name, callback)
            for name, callback in super()._default_callbacks
            if name not in ("valid_acc", "print_log")
        ]
        if getattr(getattr(self, "_targets", None), "kind", "") == "multiclass":
            scoring = EpochScoring(
                _encoded_accuracy,
                name="valid_acc",
                lower_is_better=False,
                target_extractor=target_labels,
            )
            callbacks.append(("valid_acc", scoring))
        schedule = StepSchedule(cosine=self.schedule == "cosine", warmup=self.warmup)
        callbacks.append(("lr_schedule", schedule))
        if self.weight_averaging == "swa":
            callbacks.append(("weight_averaging", WeightAveraging()))
        elif self.weight_averaging == "wise":
            callbacks.append(("weight_averaging", StartInterpolation()))
        if self.early_stopping:
            stopper = EarlyStopping(
                monitor="valid_loss", patience=self.n_iter_no_change, load_best=True
            )
            callbacks.append(("early_stopping", stopper))
        callbacks.append(("print_log", self._print_log()))
        return callbacks

    def _say(self, text: str) -> None:
        """Print a line of progress where the epoch table would be shown."""
        shown = self.verbose if self.verbose is not None else interactive_session()
        if shown:
            print(text)

    def _print_log(self) -> PrintLog:
        """The epoch table; ``verbose=None``: shown in interactive sessions only."""
        if self.verbose is not None:
            return PrintLog()  # skorch's own: prints when verbose is truthy
        return PrintLog(sink=_print_line if interactive_session() else _discard)
