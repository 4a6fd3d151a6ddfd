"""The skorch side of FineTuneClassifier: data, labels, inference and persistence.

:class:`SkorchGlue` adapts skorch's ``NeuralNetClassifier`` to a network that is
a :class:`~sktransfer._runtime.BackboneRuntime`. What it adapts lives in one
module each: the callbacks (:mod:`sktransfer._skorch_callbacks`), the optimiser
groups (:mod:`sktransfer._skorch_optimizer`), the loss
(:mod:`sktransfer._skorch_loss`) and the device (:mod:`sktransfer._skorch_device`).
This class keeps the rest: batches, seeding, label encoding, predictions sorted
for speed, the persistent state, tags and the repr.
"""

from __future__ import annotations

import contextlib
import inspect

import numpy as np
import torch
from sklearn.exceptions import NotFittedError
from sklearn.utils._param_validation import validate_parameter_constraints
from skorch import NeuralNetClassifier
from torch.utils.data import DataLoader, Dataset, Subset

from ._adaptation import MASKED_LABEL, DomainBatches, Domains, resolve_domains
from ._inputs import SourceDataset, collate_samples
from ._labels import check_labels, encode_labels, fit_classes
from ._recipe import EvenBatches
from ._skorch_callbacks import CallbacksMixin
from ._skorch_device import DeviceMixin
from ._skorch_loss import LossMixin
from ._skorch_optimizer import OptimizerMixin
from ._training import seed_of
from ._validation import (
    check_normalisation,
    check_width,
    input_modality,
    resolve_device,
)
from .backbones import check_backbone_argument
from .backbones._weights import load_weights_into

__all__ = ["SkorchGlue"]

_CRITERION_WEIGHT = "__criterion__.weight"


class SkorchGlue(
    CallbacksMixin, OptimizerMixin, LossMixin, DeviceMixin, NeuralNetClassifier
):
    """skorch hooks shared by sktransfer's trainable estimators (not public)."""

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
        """Encoded labels (-1 on target rows) and the rows' domains."""
        y = check_labels(y, n_samples, estimator=type(self).__name__)
        domains = resolve_domains(y, sample_domain, self.adaptation)
        labelled = y[domains.source]
        if refit:
            self.classes_inferred_ = fit_classes(labelled)
        self._y_encoded_ = encode_labels(labelled, self.classes_)
        encoded = np.full(len(y), MASKED_LABEL, dtype=np.int64)
        encoded[domains.source] = self._y_encoded_
        return encoded, domains

    def _seed(self):
        return seed_of(self.random_state)

    def predict_proba(self, X, sample_domain=None) -> np.ndarray:
        """Class probabilities, shape (n_samples, n_classes), rows sum to 1.

        ``sample_domain`` is accepted (skada's scorers pass it) and ignored:
        predictions need no domain information.
        """
        dataset = self._inference_dataset(X)
        source = getattr(dataset, "source", None)
        order = source.inference_order() if source is not None else None
        self.module_.tta = bool(getattr(self, "tta", False))
        try:
            if order is None:
                return super().predict_proba(dataset)
            # Texts run longest first (little padding per batch), rows go back.
            proba = super().predict_proba(Subset(dataset, order))
        finally:
            self.module_.tta = False
        out = np.empty_like(proba)
        out[order] = proba
        return out

    def predict(self, X, sample_domain=None) -> np.ndarray:
        """Predicted labels, of the same type as the labels given to ``fit``.

        ``sample_domain`` is accepted for skada's pipelines and ignored.
        """
        proba = self.predict_proba(X)
        return self.classes_[proba.argmax(axis=1)]

    # Persistence hooks for sktransfer.save_model / load_model.
    def _persistent_state(self) -> tuple[dict, dict]:
        """(config entries, tensors) that describe the fitted state."""
        if not getattr(self, "initialized_", False):
            raise ValueError("save_model needs a fitted estimator; call fit first.")
        size = getattr(self, "image_size_", None)  # chosen for small images
        config = {
            "classes": self.classes_.tolist(),
            "classes_dtype": self.classes_.dtype.str,
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
        classes = np.asarray(config["classes"], dtype=np.dtype(config["classes_dtype"]))
        tensors = dict(tensors)
        weight = tensors.pop(_CRITERION_WEIGHT, None)
        self.classes_inferred_ = classes
        self._y_encoded_ = np.arange(len(classes))
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
