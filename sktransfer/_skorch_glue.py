"""The skorch side of FineTuneClassifier: callbacks, optimiser groups, devices.

:class:`SkorchGlue` adapts skorch's ``NeuralNetClassifier`` to a network that is
a :class:`~sktransfer._runtime.BackboneRuntime`: the runtime places the module
and moves batches, so the public ``device`` parameter (which may be ``"auto"``)
is never rewritten and skorch never moves anything itself. It also defines the
default callbacks (validation accuracy, cosine schedule, early stopping), the
two learning-rate groups (head and backbone), seeding, the repr, and pickling
that keeps the ``device`` parameter as the user set it.
"""

from __future__ import annotations

import contextlib
import inspect

import numpy as np
import torch
from sklearn.exceptions import NotFittedError
from sklearn.utils._param_validation import validate_parameter_constraints
from skorch import NeuralNetClassifier
from skorch.callbacks import EarlyStopping, EpochScoring
from torch import nn
from torch.utils.data import DataLoader, Dataset, Subset

from ._adaptation import (
    MASKED_LABEL,
    DomainBatches,
    Domains,
    coral_loss,
    resolve_domains,
    reversal_strength,
)
from ._inputs import SourceDataset, collate_samples
from ._labels import check_labels, encode_labels, fit_classes
from ._recipe import (
    EvenBatches,
    StartInterpolation,
    StepSchedule,
    WeightAveraging,
    stage_lr_scales,
)
from ._runtime import to_device
from ._training import criterion_weight, seed_of, starts_from_probe
from ._validation import (
    check_normalisation,
    check_width,
    input_modality,
    interactive_session,
    resolve_device,
)
from .backbones import check_backbone_argument
from .backbones._resolve import is_own_module
from .backbones._weights import load_weights_into

__all__ = ["SkorchGlue"]

_CRITERION_WEIGHT = "__criterion__.weight"


def _encoded_accuracy(net, X, y) -> float:
    """Validation accuracy on the encoded labels skorch sees during training."""
    return float((net.predict_proba(X).argmax(axis=1) == np.asarray(y)).mean())


def _trainable(stage: nn.Module) -> list[nn.Parameter]:
    return [p for p in stage.parameters() if p.requires_grad]


class SkorchGlue(NeuralNetClassifier):
    """skorch hooks shared by sktransfer's trainable estimators (not public)."""

    @property
    def _default_callbacks(self):
        callbacks = [
            (name, callback)
            for name, callback in super()._default_callbacks
            if name != "valid_acc"
        ]
        callbacks.insert(
            -1,
            (
                "valid_acc",
                EpochScoring(
                    _encoded_accuracy, name="valid_acc", lower_is_better=False
                ),
            ),
        )
        schedule = StepSchedule(cosine=self.schedule == "cosine", warmup=self.warmup)
        callbacks.insert(-1, ("lr_schedule", schedule))
        if self.weight_averaging == "swa":
            callbacks.insert(-1, ("weight_averaging", WeightAveraging()))
        elif self.weight_averaging == "wise":
            callbacks.insert(-1, ("weight_averaging", StartInterpolation()))
        if self.early_stopping:
            stopper = EarlyStopping(
                monitor="valid_loss", patience=self.n_iter_no_change, load_best=True
            )
            callbacks.insert(-1, ("early_stopping", stopper))
        return callbacks

    # skorch would move module_ and criterion_ to ``device``, which may be
    # "auto"; initialize_module/initialize_criterion place them on device_.
    def _initialize_module(self, reason=None):
        with self._current_init_context("module"):
            self.initialize_module()
            self.module_ = self.torch_compile(self.module_, name="module")
        return self

    def _initialize_criterion(self, reason=None):
        with self._current_init_context("criterion"):
            self.initialize_criterion()
        return self

    def _resolved_device(self) -> torch.device:
        if getattr(self, "device_", None) is None:
            self.device_ = resolve_device(self.device)
        return self.device_

    def initialize_criterion(self):
        weight = criterion_weight(self.class_weight, self.classes_, self._y_encoded_)
        self.criterion_ = nn.CrossEntropyLoss(
            weight=weight, label_smoothing=self.label_smoothing
        ).to(self._resolved_device())
        return self

    def _pretrained(self) -> bool:
        # A user's module arrives with its own (presumably trained) parameters.
        return self.weights is not None or is_own_module(self.backbone)

    def _backbone_lr(self) -> float:
        if self.backbone_lr is not None:
            return float(self.backbone_lr)
        backbone = getattr(self.module_, "backbone", None)
        recommended = getattr(backbone, "finetune_lr", None)
        if recommended is not None and self._pretrained():
            return float(recommended)
        if starts_from_probe(self):
            # The head already fits: the stages below move at a third of its
            # rate (linear probing, then fine-tuning; results/recipe_ablation_taps_lr).
            return self.lr / 3
        # A random head: one rate for both, as good or better than lr / 3
        # (results/recipe_ablation_schedule).
        return self.lr

    def initialize_optimizer(self, triggered_directly=None):
        # The head first, then one group per trainable backbone stage
        # (layer-wise rates) under it.
        module = self.module_
        stages = list(module.backbone.stages)
        final_head = module.final_head
        shared = module.taps[-1] if final_head is not None else len(stages)
        trainable = [
            params
            for params in (_trainable(stage) for stage in stages[:shared])
            if params  # frozen stages are not handed to the optimiser at all
        ]
        # The last trainable stage learns at backbone_lr, earlier ones slower.
        scales = stage_lr_scales(len(trainable), self.layer_decay)
        groups = [{"params": list(module.head.parameters()), "lr": self.lr}]
        if final_head is not None:
            # The stages after the taps feed the final head only: they learn
            # at its rate (a slower one measured no better).
            tail = [p for stage in stages[shared:] for p in _trainable(stage)]
            groups.append({"params": [*final_head.parameters(), *tail], "lr": self.lr})
        discriminator = getattr(self, "domain_discriminator_", None)
        if discriminator is not None:  # DANN's domain classifier learns as the head
            groups.append({"params": list(discriminator.parameters()), "lr": self.lr})
        for params, scale in zip(trainable, scales, strict=True):
            groups.append({"params": params, "lr": self._backbone_lr() * scale})
        _, kwargs = self.get_params_for_optimizer("optimizer", [])
        kwargs.pop("lr", None)
        if self.optimizer is torch.optim.AdamW:
            kwargs.setdefault("weight_decay", self.weight_decay)
        self.optimizer_ = self.optimizer(groups, **kwargs)
        return self

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
            batches = EvenBatches(len(dataset), kwargs.pop("batch_size"))
            return iterator(dataset, batch_sampler=batches, **kwargs)
        return iterator(dataset, **kwargs)

    def _adapting(self) -> bool:
        target = getattr(self, "_target_rows_", None)
        return self.module_.training and target is not None

    def infer(self, x, **fit_params):
        # The module (a BackboneRuntime) moves batches to its own device.
        if self._adapting():
            return self.module_.logits_and_features(x, **fit_params)
        return self.module_(x, **fit_params)

    def get_loss(self, y_pred, y_true, *args, **kwargs):
        if isinstance(y_pred, tuple):  # domain adaptation: (logits, features)
            return self._adaptation_loss(*y_pred, y_true)
        y_true = to_device(torch.as_tensor(y_true), y_pred.device)
        if y_pred.ndim == 3:  # training with a final head: (batch, head, class)
            heads = y_pred.float().unbind(1)
            return sum(self.criterion_(logits, y_true) for logits in heads)
        return self.criterion_(y_pred.float(), y_true)

    def _adaptation_loss(self, logits, features, y_true) -> torch.Tensor:
        """Source cross-entropy plus ``adaptation_weight`` x the alignment term."""
        y_true = to_device(torch.as_tensor(y_true), logits.device)
        source = y_true >= 0
        loss = self.criterion_(logits[source].float(), y_true[source])
        target = ~source
        if source.sum() < 2 or target.sum() < 2:
            return loss  # covariances need two rows of each domain
        if self.adaptation == "coral":
            # On the class scores, as Deep CORAL's paper does (its fc8): it
            # aligned better than the head's input features on both shifts of
            # benchmarks/domain_adaptation.py.
            align = coral_loss(logits[source], logits[target])
        else:
            self._adaptation_step_ = getattr(self, "_adaptation_step_", 0) + 1
            progress = self._adaptation_step_ / self._adaptation_total_
            domain_logits = self.domain_discriminator_(
                features, reversal_strength(progress)
            )
            align = nn.functional.binary_cross_entropy_with_logits(
                domain_logits, target.float()
            )
        return loss + self.adaptation_weight * align

    def load_params(self, *args, **kwargs):
        # skorch maps loaded tensors to ``device``; "auto" is not a torch device,
        # so present the resolved one while skorch loads (skorch itself may
        # reset ``device`` here when that device is missing).
        requested = self.device
        if requested == "auto":
            self.device = str(self._resolved_device())
        try:
            return super().load_params(*args, **kwargs)
        finally:
            if requested == "auto":
                self.device = requested

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

    @contextlib.contextmanager
    def _progress(self):
        """``verbose=None``: skorch's epoch table in interactive sessions only."""
        if self.verbose is not None:
            yield
            return
        # skorch's PrintLog reads ``verbose`` at each epoch's end; the parameter
        # is set back when training ends.
        self.verbose = int(interactive_session())
        try:
            yield
        finally:
            self.verbose = None

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

    def __getstate__(self):
        state = super().__getstate__()
        # skorch maps tensors to state["device"] when unpickling, so it must be
        # a real device: the one fitted on, or the CPU before fit ("auto" is
        # not one, and an unfitted net holds no tensors). The parameter travels
        # apart, unchanged, so an unfitted "auto" is resolved where fit runs.
        fitted_on = state.get("device_")
        state["device"] = str(fitted_on) if fitted_on is not None else "cpu"
        state["_device_param"] = self.device
        return state

    def __setstate__(self, state):
        requested = state.pop("_device_param", state.get("device"))
        super().__setstate__(state)
        if hasattr(self, "device_"):
            self.device_ = torch.device(self.device)
        self.device = requested
