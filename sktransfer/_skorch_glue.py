"""The skorch side of FineTuneClassifier and FineTuneRegressor.

:class:`SkorchGlue` adapts skorch's ``NeuralNet`` to a network that is
a :class:`~sktransfer._runtime.BackboneRuntime`. What it adapts lives in one
module each: the callbacks (:mod:`sktransfer._skorch_callbacks`), the optimiser
groups (:mod:`sktransfer._skorch_optimizer`), the loss
(:mod:`sktransfer._skorch_loss`) and the device (:mod:`sktransfer._skorch_device`).
This class keeps the rest: the fit flow, batches, seeding, target encoding
(through the estimator's targets, :mod:`sktransfer._targets`), outputs
computed in an order sorted for speed, the persistent state, tags and the repr.
"""

from __future__ import annotations

import contextlib
import inspect
import os
from numbers import Integral, Real

import joblib
import numpy as np
import torch
from sklearn.exceptions import NotFittedError
from sklearn.utils._param_validation import validate_parameter_constraints
from skorch import NeuralNet
from torch.utils.data import DataLoader, Dataset, Subset

from ._adaptation import (
    MASKED_LABEL,
    DomainBatches,
    Domains,
    check_adaptation,
    resolve_domains,
)
from ._auto_freeze import fit_auto_freeze
from ._cache_store import FrozenOutputCache
from ._inputs import SourceDataset, collate_samples, source_image_size
from ._network import build_network
from ._recipe import EvenBatches
from ._sample_weight import check_fit_params, check_sample_weight
from ._skorch_callbacks import CallbacksMixin
from ._skorch_device import DeviceMixin
from ._skorch_loss import LossMixin
from ._skorch_optimizer import OptimizerMixin
from ._targets import targets_config, targets_from_config
from ._training import run_training, seed_of
from ._validation import (
    BACKBONE_CONSTRAINTS,
    Interval,
    StrOptions,
    check_normalisation,
    check_width,
    input_modality,
    input_source,
    resolve_device,
)
from .backbones import check_backbone_argument
from .backbones._weights import load_weights_into

__all__ = ["SkorchGlue"]

_CRITERION_WEIGHT = "__criterion__.weight"
# class_weight="balanced" with label sets: each label's (positive, negative)
# weights, kept so that partial_fit after load_model trains as before.
_LABEL_WEIGHTS = "__targets__.label_weights"

# Constraints of the parameters both trainable estimators take; each extends
# them with its own.
TRAINABLE_CONSTRAINTS: dict = {
    **BACKBONE_CONSTRAINTS,
    "freeze": [
        Interval(Integral, 0, None, closed="left"),
        StrOptions({"all", "auto"}),
    ],
    "head_hidden": [tuple, list],
    "head_dropout": [Interval(Real, 0, 1, closed="left")],
    "head_init": [StrOptions({"auto", "probe", "random"})],
    "final_head": ["boolean", StrOptions({"auto"})],
    "lr": [Interval(Real, 0, None, closed="neither")],
    "backbone_lr": [Interval(Real, 0, None, closed="left"), None],
    "weight_decay": [Interval(Real, 0, None, closed="left")],
    "max_epochs": [
        Interval(Integral, 0, None, closed="left"),
        StrOptions({"auto"}),
    ],
    "schedule": [StrOptions({"cosine"}), None],
    "warmup": [Interval(Real, 0, 1, closed="left")],
    "layer_decay": [Interval(Real, 0, 1, closed="right"), None],
    "weight_averaging": [StrOptions({"swa", "wise"}), None],
    "freeze_batchnorm": ["boolean", StrOptions({"auto"})],
    "bn_stats": [StrOptions({"auto", "pretrained", "refit"})],
    "recalibrate_bn": ["boolean"],
    "tta": ["boolean"],
    "augment": ["boolean", StrOptions({"auto", "crop", "flip"})],
    "early_stopping": ["boolean"],
    "validation_fraction": [Interval(Real, 0, 1, closed="neither")],
    "n_iter_no_change": [Interval(Integral, 1, None, closed="left")],
    "cache_frozen": ["boolean"],
    "cache": [str, os.PathLike, FrozenOutputCache, joblib.Memory, None],
    "cache_dtype": [StrOptions({"float32", "float16"})],
    "cache_max_bytes": [Interval(Integral, 0, None, closed="left"), None],
    "random_state": ["random_state"],
}


class SkorchGlue(CallbacksMixin, OptimizerMixin, LossMixin, DeviceMixin, NeuralNet):
    """skorch hooks shared by sktransfer's trainable estimators (not public).

    A subclass says what its targets are with ``_check_targets`` (``y``
    checked) and ``_new_targets`` (the targets object fitted on them).
    """

    _parameter_constraints: dict = TRAINABLE_CONSTRAINTS

    # ------------------------------------------------------------ the fit flow
    def initialize_module(self):
        # Built from the parameters alone; skorch calls this again when
        # set_params changes a module parameter of a fitted net.
        build_network(self)
        return self

    def _fit(self, X, y, sample_weight, sample_domain, fit_params):
        """``fit``: a fresh model, or more training with ``warm_start``."""
        continuing = self.warm_start and getattr(self, "initialized_", False)
        check_fit_params(self, fit_params)
        self._check_parameters()
        source = self._as_source(X)
        y_encoded, domains = self._encode_labels(
            y, len(source), refit=not continuing, sample_domain=sample_domain
        )
        weights = check_sample_weight(sample_weight, len(source), domains.source)
        if not continuing:
            self._input_size = source_image_size(source)
            self._adapts_this_fit = bool(self._adaptation()) and bool(
                domains is not None and domains.has_target
            )
        self.device_ = resolve_device(self.device)
        check_width(self, X, reset=not continuing)
        with self._seeded():
            if continuing:
                self._check_adaptation()
                self._train(source, y_encoded, domains, weights, probe=False)
            elif self.freeze == "auto":
                fit_auto_freeze(self, source, y_encoded, domains, weights)
            else:
                self._fit_freeze = self.freeze_ = self.freeze
                self.freeze_scores_ = None
                self.initialize()
                self._check_adaptation()
                self._train(source, y_encoded, domains, weights, probe=True)
        return self

    def _partial_fit(self, X, y, sample_weight, sample_domain, fit_params):
        check_fit_params(self, fit_params)
        if not getattr(self, "initialized_", False):
            return self._fit(X, y, sample_weight, sample_domain, {})
        check_width(self, X, reset=False)
        source = self._as_source(X)
        y_encoded, domains = self._encode_labels(
            y, len(source), refit=False, sample_domain=sample_domain
        )
        weights = check_sample_weight(sample_weight, len(source), domains.source)
        with self._seeded():
            self._train(source, y_encoded, domains, weights, probe=False)
        return self

    def _train(self, source, y_encoded, domains, sample_weight, *, probe: bool):
        run_training(
            self,
            source,
            y_encoded,
            probe=probe,
            domains=domains,
            sample_weight=sample_weight,
        )

    def _adaptation(self):
        return getattr(self, "adaptation", None)

    def _check_adaptation(self) -> None:
        backbone = self.module_.backbone
        check_adaptation(
            self._adaptation(),
            all_frozen=not any(p.requires_grad for p in backbone.parameters()),
            linear_head=not self.head_hidden,
        )

    def _as_source(self, X):
        return input_source(self, X)

    def get_iterator(self, dataset, training=False):
        # skorch's, with batches of texts collated into object arrays (which
        # skorch can count) unless the user chose a collate_fn.
        prefix = "iterator_train" if training else "iterator_valid"
        kwargs = self.get_params_for(prefix)
        kwargs.setdefault("collate_fn", collate_samples)
        kwargs.setdefault("batch_size", self.batch_size)
        if kwargs["batch_size"] == -1:
            kwargs["batch_size"] = len(dataset)
        target = getattr(self, "_target_rows_", None)
        if training and target is not None:
            # Domain adaptation: every batch holds source and target rows.
            return torch.utils.data.DataLoader(
                dataset,
                batch_sampler=DomainBatches(target, kwargs["batch_size"]),
                collate_fn=kwargs["collate_fn"],
                num_workers=kwargs.get("num_workers", 0),
            )
        iterator = self.iterator_train if training else self.iterator_valid
        own_order = {"sampler", "batch_sampler", "shuffle", "drop_last"} & set(kwargs)
        if training and iterator is DataLoader and not own_order:
            # Shuffled, evenly sized batches (skorch's default is neither).
            batches = EvenBatches(dataset, kwargs.pop("batch_size"))
            return iterator(dataset, batch_sampler=batches, **kwargs)
        return iterator(dataset, **kwargs)

    def _get_param_names(self):
        # skorch's bookkeeping set is not a hyperparameter.
        return [k for k in super()._get_param_names() if k != "_params_to_validate"]

    def _check_settable_attr(self, name, attr):
        # `backbone` may be a user's nn.Module: a plain parameter here, only
        # copied into module_ by initialize_module.
        if name != "backbone":
            super()._check_settable_attr(name, attr)

    def check_data(self, X, y=None):
        pass  # inputs are checked, and labels encoded, in fit

    def get_split_datasets(self, X, y=None, **fit_params):
        return X, self._valid_dataset_

    @contextlib.contextmanager
    def _seeded(self):
        seed = self._seed()
        if seed is None:
            yield
            return
        devices = (
            list(range(torch.cuda.device_count())) if torch.cuda.is_available() else []
        )
        with torch.random.fork_rng(devices=devices):
            torch.manual_seed(seed)
            yield

    # ----------------------------------------------------- estimator helpers
    def _check_parameters(self) -> None:
        validate_parameter_constraints(
            self._parameter_constraints,
            {key: getattr(self, key) for key in self._parameter_constraints},
            caller_name=type(self).__name__,
        )
        check_backbone_argument(self.backbone, self.weights)
        check_normalisation(self)

    def _encode_labels(
        self, y, n_samples: int, *, refit: bool, sample_domain=None
    ) -> tuple[np.ndarray, Domains]:
        """Encoded targets (labels: -1 on target rows) and the rows' domains."""
        y = self._check_targets(y, n_samples)
        if y.ndim == 1:
            domains = resolve_domains(y, sample_domain, self._adaptation())
        elif self._adaptation() is not None:
            raise ValueError(
                f"adaptation={self._adaptation()!r} needs one class label per "
                f"row; y has shape {y.shape}. Set adaptation=None."
            )
        else:  # several labels or numbers per row: every row is labelled
            everywhere = np.ones(len(y), dtype=bool)
            domains = Domains(source=everywhere, target=~everywhere)
        labelled = y[domains.source]
        if refit:
            self._targets = self._new_targets(labelled)
        self._y_encoded_ = self._targets.encode(labelled)
        if not domains.has_target:
            return self._y_encoded_, domains
        encoded = np.full(len(y), MASKED_LABEL, dtype=np.int64)
        encoded[domains.source] = self._y_encoded_
        return encoded, domains

    def _seed(self):
        return seed_of(self.random_state)

    def _outputs(self, X) -> np.ndarray:
        """The network's outputs for ``X`` (eval mode), one row per input.

        Texts and clips run longest first (little padding per batch); the rows
        go back to the input order.
        """
        dataset = self._inference_dataset(X)
        source = getattr(dataset, "source", None)
        order = source.inference_order() if source is not None else None
        self.module_.tta = bool(getattr(self, "tta", False))
        try:
            rows = dataset if order is None else Subset(dataset, order)
            outputs = [
                (y[0] if isinstance(y, tuple) else y).float().cpu()
                for y in self.forward_iter(rows, training=False)
            ]
        finally:
            self.module_.tta = False
        values = torch.cat(outputs).numpy()
        if order is None:
            return values
        out = np.empty_like(values)
        out[order] = values
        return out

    # Persistence hooks for sktransfer.save_model / load_model.
    def _persistent_state(self) -> tuple[dict, dict]:
        """(config entries, tensors) that describe the fitted state."""
        if not getattr(self, "initialized_", False):
            raise ValueError("save_model needs a fitted estimator; call fit first.")
        size = getattr(self, "image_size_", None)  # chosen for small images
        config = {
            **targets_config(self._targets),
            "image_size_": size and list(size),
            "layer_": getattr(self, "layer_", self.layer),
            # What freeze="auto" chose, and why: the network is built with it.
            "freeze_": getattr(self, "freeze_", self.freeze),
            "freeze_scores_": getattr(self, "freeze_scores_", None),
            # The stages themselves: loading must not depend on what "mid" means.
            "tap_names_": self.module_.backbone.tap_names(self.module_.taps),
            # The stage the final head sits after (None: no final head).
            "final_head_stage": (
                self.module_.backbone.stage_names[-1]
                if self.module_.final_head is not None
                else None
            ),
        }
        tensors = dict(self.module_.state_dict())
        weight = getattr(self.criterion_, "weight", None)
        if weight is not None:
            tensors[_CRITERION_WEIGHT] = weight
        label_weights = getattr(self._targets, "label_weights", None)
        if label_weights is not None:
            tensors[_LABEL_WEIGHTS] = label_weights
        return config, tensors

    def _restore_persistent_state(self, config: dict, tensors: dict) -> None:
        """Become fitted from what :meth:`_persistent_state` returned."""
        size = config.get("image_size_", self.image_size)  # absent before 0.2
        self._restored_size = tuple(size) if isinstance(size, list) else size
        if "layer" not in config.get("params", {}):
            # Saved before the head could see chosen stages: the final embedding.
            self.layer, self.pooling = None, "avg"
        if "layer_" in config:  # what layer="auto" chose at fit time
            self._restored_layer = config["layer_"]
        self._restored_taps = config.get("tap_names_")  # absent in older files
        self.freeze_ = config.get("freeze_", self.freeze)
        self.freeze_scores_ = config.get("freeze_scores_")
        self._restored_final_stage = config.get("final_head_stage")
        self._targets = targets_from_config(config)
        tensors = dict(tensors)
        weight = tensors.pop(_CRITERION_WEIGHT, None)
        label_weights = tensors.pop(_LABEL_WEIGHTS, None)
        if label_weights is not None:
            self._targets.label_weights = label_weights.float()
        if self._targets.kind == "multiclass":
            self._y_encoded_ = np.arange(self._targets.n_outputs)
        self.device_ = resolve_device(self.device)
        # The saved tensors replace the pretrained weights: build the
        # architecture only (no download).
        self._restoring = True
        try:
            self.initialize()
        finally:
            self._restoring = False
        load_weights_into(self.module_, tensors, "the saved model")
        if weight is not None:
            self.criterion_.weight = weight.to(self.device_)
        self.module_.place(self.device_)

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        input_modality(self.backbone).declare_input(
            tags.input_tags, image_shape=self.image_shape
        )
        tags.non_deterministic = self.random_state is None
        return tags

    def _inference_dataset(self, X):
        if isinstance(X, Dataset):
            return X
        if not getattr(self, "initialized_", False):
            raise NotFittedError(
                f"This {type(self).__name__} instance is not fitted yet. Call "
                "'fit' with appropriate arguments before using this estimator."
            )
        check_width(self, X, reset=False)
        size = self.module_.preprocessing.loading_size
        return SourceDataset(self._as_source(X), None, size=size)

    def __repr__(self) -> str:
        # skorch's repr lists its internals; show what the user chose instead.
        signature = inspect.signature(type(self).__init__).parameters
        defaults = {name: p.default for name, p in signature.items()}
        changed = [
            f"{name}={value!r}"
            for name, value in self.get_params(deep=False).items()
            if name in defaults and repr(value) != repr(defaults[name])
        ]
        state = "" if getattr(self, "initialized_", False) else "[unfitted]"
        return f"{type(self).__name__}{state}({', '.join(changed)})"
