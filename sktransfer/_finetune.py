"""FineTuneClassifier: a pretrained backbone plus a new head, trained with skorch."""

from __future__ import annotations

from numbers import Real

import numpy as np
import torch
from skorch import NeuralNetClassifier
from torch import nn

from ._adaptation import ADAPTATIONS
from ._estimator_docs import document
from ._labels import check_labels
from ._skorch_glue import SkorchGlue
from ._targets import ClassTargets, LabelSetTargets
from ._transfer_net import TransferNet
from ._validation import Interval, StrOptions

__all__ = ["FineTuneClassifier"]


@document
class FineTuneClassifier(SkorchGlue, NeuralNetClassifier):
    """Fine-tune a pretrained backbone with a new head, as a scikit-learn classifier.

    Built on skorch's ``NeuralNetClassifier``, so skorch's callbacks, history and
    parameter routing (``optimizer__weight_decay``, ``callbacks__...``) work.
    Text backbones (``"all-minilm-l6-v2"``, ``"hf:/path/to/folder"``) take
    lists of strings; their stages (embeddings, layer1 ... layerN, pool) are
    frozen and cached the same way. ``y`` is one label per row, or a 0/1
    indicator matrix for multi-label classification (one sigmoid per label,
    binary cross-entropy; the probe is one logistic regression per label).
    :class:`FineTuneRegressor` is its twin for numeric targets.

    Parameters
    ----------
    {parameters: backbone; weights; freeze; layer; pooling; head_hidden; head_dropout;
                 head_init; final_head; probe_C; image_size; image_shape;
                 image_mean, image_std; max_length; sample_rate; lr; backbone_lr;
                 weight_decay; max_epochs; batch_size; schedule; warmup; layer_decay;
                 label_smoothing; weight_averaging; tta; freeze_batchnorm; bn_stats;
                 recalibrate_bn; augment; early_stopping; validation_fraction;
                 n_iter_no_change; class_weight; cache_frozen; cache; cache_dtype;
                 cache_max_bytes; adaptation; adaptation_weight; device; autocast;
                 random_state; verbose; optimizer; callbacks; warm_start; **kwargs}

    Attributes
    ----------
    {attributes: classes_; image_size_; layer_; final_head_; module_; n_frozen_;
                 freeze_; freeze_scores_; n_epochs_; device_; history_; used_cache_;
                 cache_nbytes_; cache_hit_}

    Examples
    --------
    >>> from sklearn.datasets import load_digits
    >>> from sktransfer import FineTuneClassifier
    >>> X, y = load_digits(return_X_y=True)
    >>> X = X.reshape(-1, 8, 8) / 16.0
    >>> clf = FineTuneClassifier("fmnist_resnet", freeze=3, max_epochs=3,
    ...                          device="cpu", random_state=0)
    >>> clf.fit(X[:200], y[:200]).score(X[200:400], y[200:400]) > 0.6
    True
    >>> clf.n_frozen_, clf.used_cache_
    (3, True)
    >>> clf.predict_proba(X[:2]).sum(axis=1).round(3)
    array([1., 1.], dtype=float32)

    Several labels per row (a multi-label indicator matrix):

    >>> Y = np.stack([y % 2, y >= 5], axis=1).astype(int)
    >>> multi = FineTuneClassifier("fmnist_resnet", freeze="all", device="cpu")
    >>> multi.fit(X[:200], Y[:200]).predict(X[200:203]).shape
    (3, 2)
    """

    _parameter_constraints: dict = {
        **SkorchGlue._parameter_constraints,
        "probe_C": [Interval(Real, 0, None, closed="neither"), StrOptions({"auto"})],
        "label_smoothing": [Interval(Real, 0, 1, closed="left")],
        "class_weight": [dict, StrOptions({"balanced", "auto"}), None],
        "adaptation": [StrOptions(set(ADAPTATIONS)), None],
        "adaptation_weight": [Interval(Real, 0, None, closed="left")],
    }

    def __init__(
        self,
        backbone="efficientnet_lite0",
        *,
        weights="DEFAULT",
        freeze="auto",
        layer="auto",
        pooling="grid",
        head_hidden=(),
        head_dropout=0.0,
        head_init="auto",
        final_head="auto",
        probe_C="auto",
        image_size=None,
        image_shape=None,
        image_mean=None,
        image_std=None,
        max_length=None,
        sample_rate=16000,
        lr=3e-3,
        backbone_lr=None,
        weight_decay=1e-2,
        max_epochs="auto",
        batch_size=32,
        schedule="cosine",
        warmup=0.1,
        layer_decay=None,
        label_smoothing=0.0,
        weight_averaging=None,
        freeze_batchnorm="auto",
        bn_stats="auto",
        recalibrate_bn=False,
        tta=False,
        augment="auto",
        early_stopping=False,
        validation_fraction=0.1,
        n_iter_no_change=5,
        class_weight="auto",
        cache_frozen=True,
        cache=None,
        cache_dtype="float32",
        cache_max_bytes=4 * 2**30,
        device="auto",
        autocast=False,
        adaptation=None,
        adaptation_weight=1.0,
        random_state=None,
        verbose=None,
        optimizer=torch.optim.AdamW,
        callbacks=None,
        warm_start=False,
        **kwargs,
    ):
        kwargs.setdefault("module", TransferNet)
        kwargs.setdefault("criterion", nn.CrossEntropyLoss)
        kwargs.setdefault("train_split", None)
        super().__init__(
            optimizer=optimizer,
            lr=lr,
            max_epochs=max_epochs,
            batch_size=batch_size,
            callbacks=callbacks,
            warm_start=warm_start,
            verbose=verbose,
            device=device,
            **kwargs,
        )
        self.backbone = backbone
        self.weights = weights
        self.freeze = freeze
        self.layer = layer
        self.pooling = pooling
        self.head_hidden = head_hidden
        self.head_dropout = head_dropout
        self.head_init = head_init
        self.final_head = final_head
        self.probe_C = probe_C
        self.image_size = image_size
        self.image_shape = image_shape
        self.image_mean = image_mean
        self.image_std = image_std
        self.max_length = max_length
        self.sample_rate = sample_rate
        self.backbone_lr = backbone_lr
        self.weight_decay = weight_decay
        self.schedule = schedule
        self.warmup = warmup
        self.layer_decay = layer_decay
        self.label_smoothing = label_smoothing
        self.weight_averaging = weight_averaging
        self.freeze_batchnorm = freeze_batchnorm
        self.bn_stats = bn_stats
        self.recalibrate_bn = recalibrate_bn
        self.tta = tta
        self.augment = augment
        self.early_stopping = early_stopping
        self.validation_fraction = validation_fraction
        self.n_iter_no_change = n_iter_no_change
        self.class_weight = class_weight
        self.cache_frozen = cache_frozen
        self.cache = cache
        self.cache_dtype = cache_dtype
        self.cache_max_bytes = cache_max_bytes
        self.autocast = autocast
        self.adaptation = adaptation
        self.adaptation_weight = adaptation_weight
        self.random_state = random_state

    # ------------------------------------------------------------- estimator
    def fit(self, X, y, sample_weight=None, sample_domain=None, **fit_params):
        """Fit the head (and the unfrozen stages) on inputs ``X``, labels ``y``.

        Parameters
        ----------
        X : array-like of images, list of paths or PIL images, or list of str
            See :func:`sktransfer.as_image_source`; file paths are streamed.
            Text backbones take a list, tuple, 1-D array or Series of ``str``.
        y : array-like of shape (n_samples,) or (n_samples, n_labels)
            Labels of any hashable type (strings too); -1 on unlabelled target
            rows of domain adaptation. A 2-D 0/1 indicator matrix (as
            ``MultiLabelBinarizer`` makes) trains one sigmoid per label; every
            label must be on in some rows and off in others.
        sample_weight : array-like of shape (n_samples,), default=None
            How much each row counts: its loss is multiplied by its weight in
            the probe (an integer weight equals repeating the row), in every
            training step (each batch's loss is the weighted mean, so a weight
            of 0 drops the row) and in the validation loss early stopping
            watches. Unlabelled target rows of domain adaptation are aligned
            unweighted. Combines with ``class_weight`` by multiplication.
        sample_domain : array-like of int of shape (n_samples,), default=None
            skada's domain ids: non-negative for source rows, negative for
            target rows (whose ``y`` must be -1). Only needed for domain
            adaptation (``adaptation``); with ``adaptation`` set and no
            ``sample_domain``, rows labelled -1 are the target rows.
        **fit_params : dict
            Refused with a ``TypeError``: training options are constructor
            parameters.

        Returns
        -------
        self : FineTuneClassifier
        """
        return self._fit(X, y, sample_weight, sample_domain, fit_params)

    def partial_fit(
        self,
        X,
        y=None,
        classes=None,
        sample_weight=None,
        sample_domain=None,
        **fit_params,
    ):
        """Train ``max_epochs`` more epochs on ``X, y`` without re-initialising.

        The first call behaves like ``fit``; later calls keep the model, the
        optimiser state and ``classes_`` (labels outside ``classes_`` are
        rejected). ``sample_weight`` and ``sample_domain`` are as in
        :meth:`fit`.
        """
        return self._partial_fit(X, y, sample_weight, sample_domain, fit_params)

    def predict_proba(self, X, sample_domain=None) -> np.ndarray:
        """Class probabilities, shape (n_samples, n_classes), rows sum to 1.

        For multi-label ``y``, each label's probability, shape
        (n_samples, n_labels). ``sample_domain`` is accepted (skada's scorers
        pass it) and ignored: predictions need no domain information.
        """
        outputs = self._outputs(X)  # NotFittedError before fit
        return self._targets.proba(outputs)

    def predict(self, X, sample_domain=None) -> np.ndarray:
        """Predicted labels, of the same type as the labels given to ``fit``.

        For multi-label ``y``, the 0/1 indicator matrix: a label is on where
        its probability is above 0.5. ``sample_domain`` is accepted for
        skada's pipelines and ignored.
        """
        outputs = self._outputs(X)  # NotFittedError before fit
        return self._targets.predict(outputs)

    @property
    def classes_(self) -> np.ndarray:
        targets = getattr(self, "_targets", None)
        if targets is None:
            raise AttributeError("classes_ is set by fit; call fit first.")
        return targets.classes

    def _check_targets(self, y, n_samples: int) -> np.ndarray:
        return check_labels(y, n_samples, estimator=type(self).__name__)

    def _new_targets(self, y: np.ndarray):
        if y.ndim == 1:
            return ClassTargets.fit(y)
        targets = LabelSetTargets.fit(y)
        targets.set_class_weight(self.class_weight, y)
        return targets

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.classifier_tags.multi_label = True
        return tags
