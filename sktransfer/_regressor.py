"""FineTuneRegressor: a pretrained backbone plus a new head for numeric targets."""

from __future__ import annotations

from numbers import Real

import numpy as np
import torch
from sklearn.utils._available_if import available_if
from skorch import NeuralNetRegressor
from torch import nn

from ._estimator_docs import document
from ._labels import check_numeric_targets
from ._skorch_glue import SkorchGlue
from ._targets import NumericTargets
from ._transfer_net import TransferNet
from ._validation import Interval, StrOptions

__all__ = ["FineTuneRegressor"]


@document
class FineTuneRegressor(SkorchGlue, NeuralNetRegressor):
    """Fine-tune a pretrained backbone with a new head, as a scikit-learn regressor.

    The regression twin of :class:`FineTuneClassifier`: the same backbones
    (images, text, audio), freezing, stages, heads, step budget, frozen-output
    cache, devices and persistence, trained by the same code. Targets of
    shape ``(n,)`` or ``(n, n_outputs)`` are standardised inside ``fit`` (each
    output to mean 0 and standard deviation 1) and restored in ``predict``, so
    the defaults work whatever their units. ``freeze="all"`` is ridge
    regression on the frozen embeddings, solved exactly; it also starts the
    head of fine-tuning. ``score`` is R^2. Several outputs share one network:
    no ``MultiOutputRegressor`` is needed (it would fit one network per output).
    Domain adaptation is for classifiers only.

    Parameters
    ----------
    {parameters: backbone; weights; freeze; layer; pooling; head_hidden; head_dropout;
                 head_init; final_head; probe_alpha; loss; huber_delta; image_size;
                 image_shape; image_mean, image_std; max_length; sample_rate; lr;
                 backbone_lr; weight_decay; max_epochs; batch_size; schedule; warmup;
                 layer_decay; weight_averaging; tta; freeze_batchnorm; bn_stats;
                 recalibrate_bn; augment; early_stopping; validation_fraction;
                 n_iter_no_change; cache_frozen; cache; cache_dtype; cache_max_bytes;
                 device; autocast; random_state; verbose; optimizer; callbacks;
                 warm_start; **kwargs}

    Attributes
    ----------
    {attributes: n_outputs_; target_mean_, target_scale_; image_size_; layer_;
                 final_head_; module_; n_frozen_; freeze_; freeze_scores_; n_epochs_;
                 device_; history_; used_cache_; cache_nbytes_; cache_hit_}

    Examples
    --------
    >>> from sklearn.datasets import load_digits
    >>> from sktransfer import FineTuneRegressor
    >>> X, y = load_digits(return_X_y=True)
    >>> X = X.reshape(-1, 8, 8) / 16.0
    >>> ink = X.mean(axis=(1, 2)) * 100  # how much of each image is ink, in %
    >>> reg = FineTuneRegressor("fmnist_resnet", freeze="all", device="cpu")
    >>> reg.fit(X[:300], ink[:300]).score(X[300:600], ink[300:600]) > 0.5
    True
    >>> reg.predict(X[:2]).shape, reg.n_outputs_
    ((2,), 1)
    """

    _parameter_constraints: dict = {
        **SkorchGlue._parameter_constraints,
        "probe_alpha": [Interval(Real, 0, None, closed="left"), StrOptions({"auto"})],
        "loss": [StrOptions({"squared_error", "huber"})],
        "huber_delta": [Interval(Real, 0, None, closed="neither")],
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
        probe_alpha="auto",
        loss="squared_error",
        huber_delta=1.0,
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
        weight_averaging=None,
        freeze_batchnorm="auto",
        bn_stats="auto",
        recalibrate_bn=False,
        tta=False,
        augment="auto",
        early_stopping=False,
        validation_fraction=0.1,
        n_iter_no_change=5,
        cache_frozen=True,
        cache=None,
        cache_dtype="float32",
        cache_max_bytes=4 * 2**30,
        device="auto",
        autocast=False,
        random_state=None,
        verbose=None,
        optimizer=torch.optim.AdamW,
        callbacks=None,
        warm_start=False,
        **kwargs,
    ):
        kwargs.setdefault("module", TransferNet)
        kwargs.setdefault("criterion", nn.MSELoss)
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
        self.probe_alpha = probe_alpha
        self.loss = loss
        self.huber_delta = huber_delta
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
        self.weight_averaging = weight_averaging
        self.freeze_batchnorm = freeze_batchnorm
        self.bn_stats = bn_stats
        self.recalibrate_bn = recalibrate_bn
        self.tta = tta
        self.augment = augment
        self.early_stopping = early_stopping
        self.validation_fraction = validation_fraction
        self.n_iter_no_change = n_iter_no_change
        self.cache_frozen = cache_frozen
        self.cache = cache
        self.cache_dtype = cache_dtype
        self.cache_max_bytes = cache_max_bytes
        self.autocast = autocast
        self.random_state = random_state

    # ------------------------------------------------------------- estimator
    def fit(self, X, y, sample_weight=None, **fit_params):
        """Fit the head (and the unfrozen stages) on inputs ``X``, targets ``y``.

        Parameters
        ----------
        X : array-like of images, list of paths or PIL images, list of str, or clips
            As for :meth:`FineTuneClassifier.fit`.
        y : array-like of shape (n_samples,) or (n_samples, n_outputs)
            Finite numbers.
        sample_weight : array-like of shape (n_samples,), default=None
            How much each row counts, in the ridge probe (as scikit-learn's
            ``Ridge``), in every training step and in the validation loss.
        **fit_params : dict
            Refused with a ``TypeError``: training options are constructor
            parameters.

        Returns
        -------
        self : FineTuneRegressor
        """
        return self._fit(X, y, sample_weight, None, fit_params)

    def partial_fit(self, X, y=None, classes=None, sample_weight=None, **fit_params):
        """Train ``max_epochs`` more epochs on ``X, y`` without re-initialising.

        The first call behaves like ``fit``; later calls keep the model, the
        optimiser state and the target standardisation of the first call.
        ``classes`` is ignored (skorch's signature, whose metadata routing
        expects it).
        """
        return self._partial_fit(X, y, sample_weight, None, fit_params)

    @available_if(lambda self: False)
    def predict_proba(self, X):  # skorch's NeuralNet has it; a regressor does not
        raise AttributeError("FineTuneRegressor has no predict_proba.")

    def predict(self, X) -> np.ndarray:
        """Predicted targets, shape ``(n_samples,)`` or ``(n_samples, n_outputs)``.

        The shape of ``y`` in ``fit``.
        """
        outputs = self._outputs(X)  # NotFittedError before fit
        return self._targets.predict(outputs)

    @property
    def n_outputs_(self) -> int:
        return self._fitted_targets().n_outputs

    @property
    def target_mean_(self) -> np.ndarray:
        return self._fitted_targets().mean

    @property
    def target_scale_(self) -> np.ndarray:
        return self._fitted_targets().scale

    def _fitted_targets(self) -> NumericTargets:
        targets = getattr(self, "_targets", None)
        if targets is None:
            raise AttributeError("This attribute is set by fit; call fit first.")
        return targets

    def _check_targets(self, y, n_samples: int) -> np.ndarray:
        return check_numeric_targets(y, n_samples, estimator=type(self).__name__)

    def _new_targets(self, y: np.ndarray) -> NumericTargets:
        return NumericTargets.fit(y, single=self._single_output)

    def _encode_labels(self, y, n_samples: int, *, refit: bool, sample_domain=None):
        if refit:
            self._single_output = np.asarray(y).ndim == 1
        return super()._encode_labels(
            y, n_samples, refit=refit, sample_domain=sample_domain
        )

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.target_tags.multi_output = True
        tags.target_tags.single_output = True
        return tags
