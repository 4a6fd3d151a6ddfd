"""Model selection on few labels: the defaults unless a candidate is clearly better.

With a few dozen labelled images, each cross-validation fold scores a candidate on
a handful of images, and the candidate with the best mean often wins by noise.
:class:`PreferDefaults` is a ``refit`` rule for scikit-learn's searches: it
refits the candidate that has the estimator's default values, unless another
candidate beats it on the same folds by more than ``n_se`` standard errors of
the per-fold differences (a paired comparison, in the spirit of the
one-standard-error rule).
"""

from __future__ import annotations

import warnings

import numpy as np

__all__ = ["PreferDefaults"]


class PreferDefaults:
    """``refit`` rule for ``GridSearchCV``: the defaults, unless clearly beaten.

    Pass an instance as ``refit=`` to :class:`~sklearn.model_selection.GridSearchCV`
    (or ``RandomizedSearchCV``). Among the searched candidates, the one whose
    values equal the defaults is refitted, unless the candidate with the best
    mean score beats it: the mean of its per-split score differences to the
    default candidate exceeds ``n_se`` times their standard error. The
    comparison is paired (the same folds for both), which removes most of the
    noise that tiny folds put into each mean.

    Parameters
    ----------
    defaults : dict or None, default=None
        The default value of each searched parameter, by its name in the grid.
        None takes them from :class:`~sktransfer.FineTuneClassifier` (for a
        name like ``"clf__freeze"`` the part after the last ``"__"``).
    n_se : float, default=1.0
        How many standard errors of the paired differences the best candidate
        must win by; 0 keeps the best mean, as ``refit=True`` does.
    metric : str, default="score"
        The scorer's name in ``cv_results_`` (``"score"`` for a single scorer).

    Notes
    -----
    When no candidate has the default values (or a default candidate's folds
    failed), the best mean is refitted with a warning. With ``refit`` a
    callable, scikit-learn does not set ``best_score_``; ``best_index_`` and
    ``best_params_`` are set as usual.

    Examples
    --------
    >>> import numpy as np
    >>> from sktransfer import PreferDefaults
    >>> results = {
    ...     "params": [{"freeze": 0}, {"freeze": "all"}],
    ...     "mean_test_score": np.array([0.80, 0.82]),
    ...     "split0_test_score": np.array([0.90, 0.80]),
    ...     "split1_test_score": np.array([0.70, 0.84]),
    ...     "split2_test_score": np.array([0.80, 0.82]),
    ... }
    >>> PreferDefaults()(results)  # +0.02 on average, but not on every fold
    0
    >>> PreferDefaults(n_se=0)(results)
    1

    In a search:

    >>> from sklearn.model_selection import GridSearchCV
    >>> from sktransfer import FineTuneClassifier
    >>> search = GridSearchCV(
    ...     FineTuneClassifier("fmnist_resnet"),
    ...     {"freeze": [0, "all"]},
    ...     refit=PreferDefaults(),
    ... )
    """

    def __init__(self, defaults=None, *, n_se=1.0, metric="score"):
        self.defaults = defaults
        self.n_se = n_se
        self.metric = metric

    def __call__(self, cv_results) -> int:
        """Index of the candidate to refit, from a search's ``cv_results_``."""
        params = list(cv_results["params"])
        means = np.asarray(cv_results[f"mean_test_{self.metric}"], dtype=float)
        best = int(np.nanargmax(means)) if not np.all(np.isnan(means)) else 0
        default = self._default_index(params)
        if default is None or default == best:
            return best if default is None else default
        splits = self._split_scores(cv_results)
        differences = splits[:, best] - splits[:, default]
        differences = differences[~np.isnan(differences)]
        if len(differences) == 0:
            warnings.warn(
                "PreferDefaults: the default candidate has no valid fold score; "
                "refitting the best mean instead.",
                stacklevel=2,
            )
            return best
        if len(differences) == 1:
            return best if differences[0] > 0 else default
        standard_error = differences.std(ddof=1) / np.sqrt(len(differences))
        return best if differences.mean() > self.n_se * standard_error else default

    def _default_index(self, params: list[dict]) -> int | None:
        names = sorted({name for candidate in params for name in candidate})
        defaults = self._defaults(names)
        for index, candidate in enumerate(params):
            if all(_same(candidate.get(n, defaults[n]), defaults[n]) for n in names):
                return index
        shown = ", ".join(f"{n}={defaults[n]!r}" for n in names)
        warnings.warn(
            f"PreferDefaults: no candidate has the default values ({shown}); "
            "refitting the best mean instead. Add the defaults to the grid or "
            "pass defaults={...}.",
            stacklevel=3,
        )
        return None

    def _defaults(self, names: list[str]) -> dict:
        if self.defaults is not None:
            missing = [n for n in names if n not in self.defaults]
            if missing:
                raise ValueError(
                    f"The 'defaults' parameter of PreferDefaults has no value for "
                    f"the searched parameter(s) {missing}. Got {self.defaults!r}; "
                    "give one default value per searched parameter."
                )
            return dict(self.defaults)
        from ._finetune import FineTuneClassifier  # the estimator it is made for

        own = FineTuneClassifier().get_params(deep=False)
        found = {n: own.get(n.rsplit("__", 1)[-1], _MISSING) for n in names}
        missing = [n for n, value in found.items() if value is _MISSING]
        if missing:
            raise ValueError(
                f"PreferDefaults(defaults=None) takes default values from "
                f"FineTuneClassifier, which has no parameter for {missing}. Pass "
                "defaults={name: value, ...} for every searched parameter."
            )
        return found

    def _split_scores(self, cv_results) -> np.ndarray:
        """Scores as (n_splits, n_candidates)."""
        keys = [
            key
            for key in cv_results
            if key.startswith("split") and key.endswith(f"_test_{self.metric}")
        ]
        keys.sort(key=lambda key: int(key[len("split") :].split("_", 1)[0]))
        return np.array([np.asarray(cv_results[k], dtype=float) for k in keys])

    def __repr__(self) -> str:
        return (
            f"PreferDefaults(defaults={self.defaults!r}, n_se={self.n_se!r}, "
            f"metric={self.metric!r})"
        )


_MISSING = object()


def _same(a, b) -> bool:
    # Grid values may be numpy scalars or strings; "all" == 0 must be False.
    if isinstance(a, str) or isinstance(b, str):
        return isinstance(a, str) and isinstance(b, str) and a == b
    try:
        return bool(a == b)
    except (TypeError, ValueError):
        return a is b
