"""What the network predicts: one class, several labels, or numbers.

The training strategy (frozen-output cache, probe start, step budget,
schedule, ``freeze="auto"``) is the same for every target. What differs is
gathered here, one class per kind of target:

* :class:`ClassTargets`: one label per row (softmax, cross-entropy); the probe
  is a multinomial logistic regression.
* :class:`LabelSetTargets`: several labels per row, a 0/1 indicator matrix
  (one sigmoid per label, binary cross-entropy); the probe is one logistic
  regression per label (one-vs-rest).
* :class:`NumericTargets`: one or more numbers per row, standardised inside
  ``fit`` (squared error or Huber loss); the probe is ridge regression.

Each says how many outputs the head has, how rows are stratified, how a
batch's loss is computed, how the linear head is set to its exact probe, how
held-out rows are scored (``freeze="auto"``) and how outputs become
predictions.
"""

from __future__ import annotations

import numpy as np
import torch
from sklearn.utils import compute_class_weight
from torch import nn

from ._labels import encode_labels, fit_classes
from ._probe import fit_binary_probes, fit_linear_probe, fit_ridge_probe
from ._sample_weight import weighted_cross_entropy, weighted_mean

__all__ = [
    "ClassTargets",
    "LabelSetTargets",
    "NumericTargets",
    "average_outputs",
    "targets_config",
    "targets_from_config",
]


def average_outputs(outputs: torch.Tensor, kind: str, dim: int) -> torch.Tensor:
    """Outputs of several heads or views averaged as predictions, along ``dim``.

    Class scores average as probabilities (returned as log-probabilities,
    which softmax maps back), label scores as sigmoid probabilities (returned
    as logits), numbers as they are.
    """
    if kind == "softmax":
        return outputs.softmax(-1).mean(dim).log()
    if kind == "sigmoid":
        return torch.logit(outputs.sigmoid().mean(dim), eps=1e-7)
    return outputs.mean(dim)


def _weighted_score(values: torch.Tensor, weights) -> float:
    """The (sample-)weighted mean of per-row held-out ``values``, rounded."""
    n = len(values)
    w = torch.ones(n) if weights is None else torch.as_tensor(weights).float()
    return round(float((w / w.sum().clamp_min(1e-12) * values.float()).sum()), 4)


class _EveryRowLabelled:
    """Label sets and numbers: every row has a target, nothing to stratify by."""

    def strata(self, encoded: np.ndarray) -> None:
        return None

    def labelled(self, encoded: np.ndarray) -> np.ndarray:
        return np.ones(len(encoded), dtype=bool)

    def _check_width(self, y: np.ndarray, what: str) -> None:
        if y.shape[1] != self.n_outputs:
            raise ValueError(
                f"y has {y.shape[1]} {what}; the model was fitted with "
                f"{self.n_outputs}. Call fit to start over with new targets."
            )


class ClassTargets:
    """One class per row: encoded labels, -1 on unlabelled target rows."""

    kind = "multiclass"
    output = "softmax"
    random_head_plateaus = False  # softmax ignores a shift shared by all logits

    def __init__(self, classes: np.ndarray):
        self.classes = classes

    @classmethod
    def fit(cls, labelled: np.ndarray) -> ClassTargets:
        return cls(fit_classes(labelled))

    @property
    def n_outputs(self) -> int:
        return len(self.classes)

    def encode(self, y: np.ndarray) -> np.ndarray:
        return encode_labels(y, self.classes)

    def strata(self, encoded: np.ndarray) -> np.ndarray:
        """Labels to stratify splits by."""
        return encoded

    def labelled(self, encoded: np.ndarray) -> np.ndarray:
        return encoded >= 0

    def criterion(self, clf) -> nn.Module:
        weight = criterion_weight(clf.class_weight, self.classes, clf._y_encoded_)
        return nn.CrossEntropyLoss(weight=weight, label_smoothing=clf.label_smoothing)

    def loss(self, criterion, outputs, targets, weights) -> torch.Tensor:
        if weights is None:
            return criterion(outputs, targets)
        return weighted_cross_entropy(criterion, outputs, targets, weights)

    def fit_probe(self, linear, features, targets, clf, weights) -> bool:
        return fit_linear_probe(
            linear,
            features,
            targets,
            C=1.0 if clf.probe_C == "auto" else clf.probe_C,
            class_weight=_encoded_class_weight(clf, self.classes),
            sample_weight=weights,
        )

    def holdout_scores(self, outputs, targets, weights) -> dict:
        """Held-out accuracy and log-loss (mean negative log-likelihood)."""
        log_proba = outputs.float().log_softmax(1)
        labels = torch.as_tensor(targets)
        hit = (log_proba.argmax(1) == labels).float()
        nll = -log_proba.gather(1, labels[:, None])[:, 0]
        return {
            "accuracy": _weighted_score(hit, weights),
            "log_loss": _weighted_score(nll, weights),
        }

    @staticmethod
    def better(scores: dict, than: dict) -> bool:
        """More rows right, or as many at a smaller log-loss.

        A tie in accuracy is common with a few held-out rows; the log-loss
        still orders the two.
        """
        if scores["accuracy"] != than["accuracy"]:
            return scores["accuracy"] > than["accuracy"]
        return scores["log_loss"] < than["log_loss"]

    @staticmethod
    def describe(scores: dict) -> str:
        return f"accuracy {scores['accuracy']:.3f} (log-loss {scores['log_loss']:.3f})"

    def proba(self, outputs: np.ndarray) -> np.ndarray:
        return torch.as_tensor(outputs).float().softmax(-1).numpy()

    def predict(self, outputs: np.ndarray) -> np.ndarray:
        return self.classes[np.asarray(outputs).argmax(axis=1)]


class LabelSetTargets(_EveryRowLabelled):
    """Several labels per row: a 0/1 indicator matrix, one sigmoid per label."""

    kind = "multilabel"
    output = "sigmoid"
    # Fine-tuning from a random head first learns each label's frequency, and
    # with rare labels it stayed there: MiniLM on debtags (freeze=0, 100 to
    # 400 texts) ended with every output at its label's frequency, micro-F1 0.
    # ``head_init="auto"`` starts it from the probe instead.
    random_head_plateaus = True

    def __init__(self, n_labels: int):
        self.classes = np.arange(n_labels)
        # class_weight="balanced": (positive, negative) weight of each label.
        self.label_weights: torch.Tensor | None = None

    @classmethod
    def fit(cls, y: np.ndarray) -> LabelSetTargets:
        positives = y.sum(axis=0)
        constant = np.flatnonzero((positives == 0) | (positives == len(y)))
        if len(constant):
            raise ValueError(
                f"y's labels (columns) {constant[:5].tolist()} are "
                "never or always on in the training rows: nothing tells the "
                "model when they apply. Drop those columns, or add rows where "
                "they differ."
            )
        return cls(y.shape[1])

    @property
    def n_outputs(self) -> int:
        return len(self.classes)

    def encode(self, y: np.ndarray) -> np.ndarray:
        self._check_width(y, "label columns")
        return y.astype(np.float32)

    def criterion(self, clf) -> nn.Module:
        return nn.BCEWithLogitsLoss(reduction="none")

    def loss(self, criterion, outputs, targets, weights) -> torch.Tensor:
        targets = targets.to(outputs.dtype)
        losses = criterion(outputs, targets)
        if self.label_weights is not None:
            # class_weight="balanced" per label: rare values weigh more.
            pos, neg = self.label_weights.to(outputs.device)
            losses = losses * (targets * pos + (1 - targets) * neg)
        return weighted_mean(losses.mean(1), weights)

    def set_class_weight(self, class_weight, y: np.ndarray) -> None:
        """Per-label weights of positives and negatives ("balanced" or None)."""
        self.label_weights = None
        weighting = label_set_class_weight(class_weight)
        if weighting is None:
            return
        if weighting != "balanced":
            raise ValueError(
                "class_weight must be 'auto', 'balanced' or None for multi-label "
                f"y (weights per label of its 0s and 1s); got {class_weight!r}."
            )
        positives = y.sum(axis=0).clip(1, None)
        negatives = (len(y) - y.sum(axis=0)).clip(1, None)
        self.label_weights = torch.as_tensor(
            np.stack([len(y) / (2 * positives), len(y) / (2 * negatives)]),
            dtype=torch.float32,
        )

    def fit_probe(self, linear, features, targets, clf, weights) -> bool:
        return fit_binary_probes(
            linear,
            features,
            targets,
            C=clf.probe_C,
            class_weight=label_set_class_weight(clf.class_weight),
            sample_weight=weights,
        )

    def holdout_scores(self, outputs, targets, weights) -> dict:
        """Held-out micro-F1 of ``predict`` and mean binary cross-entropy.

        Micro-F1 counts the (row-weighted) true positives, false positives
        and false negatives over every label, as scikit-learn's
        ``f1_score(average="micro")`` does.
        """
        outputs, targets = outputs.float(), torch.as_tensor(targets).float()
        bce = nn.functional.binary_cross_entropy_with_logits(
            outputs, targets, reduction="none"
        ).mean(1)
        w = torch.ones(len(targets)) if weights is None else torch.as_tensor(weights)
        w = w.float()[:, None]
        predicted = (outputs > 0).float()
        true_pos = float((w * predicted * targets).sum())
        wrong = float((w * (predicted != targets).float()).sum())
        f1 = 2 * true_pos / (2 * true_pos + wrong) if true_pos else 0.0
        return {"micro_f1": round(f1, 4), "log_loss": _weighted_score(bce, weights)}

    @staticmethod
    def better(scores: dict, than: dict) -> bool:
        """A higher micro-F1, or the same at a smaller log-loss.

        As accuracy for classes: the quality of what ``predict`` returns
        decides. The log-loss alone preferred a calibrated probe that
        predicted too few labels (MiniLM on debtags, 400 texts: 0.150 against
        a fine-tune's 0.152, while the fine-tune's test micro-F1 was 8
        points higher).
        """
        if scores["micro_f1"] != than["micro_f1"]:
            return scores["micro_f1"] > than["micro_f1"]
        return scores["log_loss"] < than["log_loss"]

    @staticmethod
    def describe(scores: dict) -> str:
        return f"micro-F1 {scores['micro_f1']:.3f} (log-loss {scores['log_loss']:.3f})"

    def proba(self, outputs: np.ndarray) -> np.ndarray:
        return torch.as_tensor(outputs).float().sigmoid().numpy()

    def predict(self, outputs: np.ndarray) -> np.ndarray:
        return (np.asarray(outputs) > 0).astype(np.int64)  # probability > 0.5


class NumericTargets(_EveryRowLabelled):
    """Numbers, standardised per output: the network predicts ``(y - mean) / scale``."""

    kind = "regression"
    output = "identity"
    random_head_plateaus = False

    def __init__(self, mean: np.ndarray, scale: np.ndarray, single: bool):
        self.mean = np.asarray(mean, dtype=np.float64)
        self.scale = np.asarray(scale, dtype=np.float64)
        self.single = single

    @classmethod
    def fit(cls, y: np.ndarray, single: bool) -> NumericTargets:
        scale = y.std(axis=0)
        # A constant output is learnt as its mean; scaling it would divide by 0.
        scale = np.where(scale > 0, scale, 1.0)
        return cls(y.mean(axis=0), scale, single)

    @property
    def n_outputs(self) -> int:
        return len(self.mean)

    def encode(self, y: np.ndarray) -> np.ndarray:
        self._check_width(y, "outputs")
        return ((y - self.mean) / self.scale).astype(np.float32)

    def criterion(self, clf) -> nn.Module:
        if clf.loss == "huber":
            return nn.HuberLoss(reduction="none", delta=clf.huber_delta)
        return nn.MSELoss(reduction="none")

    def loss(self, criterion, outputs, targets, weights) -> torch.Tensor:
        losses = criterion(outputs, targets.to(outputs.dtype)).mean(1)
        return weighted_mean(losses, weights)

    def fit_probe(self, linear, features, targets, clf, weights) -> bool:
        fit_ridge_probe(
            linear, features, targets, alpha=clf.probe_alpha, sample_weight=weights
        )
        return True

    def holdout_scores(self, outputs, targets, weights) -> dict:
        """Held-out mean squared error, in standardised units (1 - R^2)."""
        errors = ((outputs.float() - torch.as_tensor(targets).float()) ** 2).mean(1)
        return {"mse": _weighted_score(errors, weights)}

    @staticmethod
    def better(scores: dict, than: dict) -> bool:
        return scores["mse"] < than["mse"]

    @staticmethod
    def describe(scores: dict) -> str:
        return f"standardised squared error {scores['mse']:.3f}"

    def predict(self, outputs: np.ndarray) -> np.ndarray:
        values = np.asarray(outputs, dtype=np.float64) * self.scale + self.mean
        return values[:, 0] if self.single else values


def label_set_class_weight(class_weight):
    """``class_weight`` for label sets: ``"auto"`` is ``"balanced"``.

    Unweighted, a label on in a tenth of the rows is seldom above the 0.5
    threshold of ``predict``, and F1 suffers most on the rarest labels (the
    targets guide, "Class weights for label sets", has the measurements).
    """
    return "balanced" if class_weight == "auto" else class_weight


def criterion_weight(class_weight, classes, y_encoded) -> torch.Tensor | None:
    """Per-class loss weights from a ``class_weight`` parameter.

    ``"auto"`` is no weighting for single labels, as scikit-learn's default.
    """
    if class_weight is None or class_weight == "auto":
        return None
    if class_weight == "balanced":
        encoded = np.arange(len(classes))
        values = compute_class_weight("balanced", classes=encoded, y=y_encoded)
    else:
        values = np.array([class_weight.get(label, 1.0) for label in classes])
    return torch.as_tensor(values, dtype=torch.float32)


def _encoded_class_weight(clf, classes):
    """``class_weight`` keyed by encoded class, as the probe's labels are."""
    if isinstance(clf.class_weight, dict):
        return {i: clf.class_weight.get(c, 1.0) for i, c in enumerate(classes)}
    return None if clf.class_weight == "auto" else clf.class_weight


def targets_config(targets) -> dict:
    """The config entries that describe fitted ``targets`` (for save_model).

    Examples
    --------
    >>> import numpy as np
    >>> from sktransfer._targets import (
    ...     ClassTargets, targets_config, targets_from_config)
    >>> config = targets_config(ClassTargets(np.array(["cat", "dog"])))
    >>> targets_from_config(config).classes.tolist()
    ['cat', 'dog']
    """
    if targets.kind == "regression":
        return {
            "target_kind": targets.kind,
            "target_mean": targets.mean.tolist(),
            "target_scale": targets.scale.tolist(),
            "single_output": targets.single,
        }
    if targets.kind == "multilabel":
        return {"target_kind": targets.kind, "n_labels": targets.n_outputs}
    return {
        "classes": targets.classes.tolist(),
        "classes_dtype": targets.classes.dtype.str,
    }


def targets_from_config(config: dict):
    """The targets :func:`targets_config` described (without fitted weights)."""
    kind = config.get("target_kind", "multiclass")  # absent before regression
    if kind == "regression":
        return NumericTargets(
            config["target_mean"], config["target_scale"], config["single_output"]
        )
    if kind == "multilabel":
        return LabelSetTargets(config["n_labels"])
    classes = np.asarray(config["classes"], dtype=np.dtype(config["classes_dtype"]))
    return ClassTargets(classes)
