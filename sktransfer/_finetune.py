"""FineTuneClassifier: a pretrained backbone plus a new head, trained with skorch."""

from __future__ import annotations

import contextlib
import inspect
import os
import warnings
from numbers import Integral, Real

import joblib
import numpy as np
import torch
from sklearn.exceptions import NotFittedError
from sklearn.model_selection import train_test_split
from sklearn.utils import compute_class_weight
from sklearn.utils._param_validation import validate_parameter_constraints
from skorch import NeuralNet, NeuralNetClassifier
from skorch.callbacks import EarlyStopping, EpochScoring, LRScheduler
from torch import nn
from torch.utils.data import Dataset, Subset, TensorDataset

from ._cache import CacheTooLargeError, FrozenOutputs, as_memory, frozen_outputs
from ._inputs import ImageDataset, as_image_source
from ._labels import check_labels, encode_labels, fit_classes
from ._probe import fit_linear_probe
from ._transfer_net import BatchAugment, TransferNet, build_head
from ._validation import Interval, StrOptions, check_width, resolve_device
from .backbones import pool_features, resolve_backbone
from .backbones._resolve import check_backbone_argument

__all__ = ["FineTuneClassifier"]


def _positive_int(value) -> bool:
    return isinstance(value, Integral) and value > 0


def _encoded_accuracy(net, X, y) -> float:
    """Validation accuracy on the encoded labels skorch sees during training."""
    return float((net.predict_proba(X).argmax(axis=1) == np.asarray(y)).mean())


class _LRScheduler(LRScheduler):
    """skorch's LRScheduler, minus the live scheduler in pickles.

    The torch scheduler holds the optimiser, so pickling it copied the optimiser
    and every trained parameter a second time, outside skorch's device mapping: a
    model fitted on a GPU could not be unpickled without one. It is rebuilt in
    ``on_train_begin``, as skorch-dev/skorch#1150 (after skorch 1.4.0) does.
    """

    def __getstate__(self):
        state = self.__dict__.copy()
        state["lr_scheduler_"] = None
        return state


class FineTuneClassifier(NeuralNetClassifier):
    """Fine-tune a pretrained backbone with a new head, as a scikit-learn classifier.

    Built on skorch's ``NeuralNetClassifier``, so skorch's callbacks, history and
    parameter routing (``optimizer__weight_decay``, ``callbacks__...``) work.

    Parameters
    ----------
    backbone : str, torch.nn.Module or list of (str, nn.Module), default="resnet18"
        A registered name (:func:`sktransfer.list_backbones`), any module, or
        explicit named stages.
    weights : None, "DEFAULT", str or path, default="DEFAULT"
        Pretrained weights (see :class:`PretrainedFeatureExtractor`); None trains
        from scratch.
    freeze : int or "all", default="all"
        Number of backbone stages, counted from the input, that are frozen: their
        parameters get no gradient, are left out of the optimiser and their
        BatchNorm statistics never change. 0 fine-tunes everything; "all" trains
        the head only.
    head_hidden : tuple of int, default=()
        Widths of hidden ReLU layers of the new head; () is a linear head.
    head_dropout : float, default=0.0
        Dropout before each layer of the head.
    head_init : {"probe", "random"}, default="probe"
        "probe" starts a linear head from the exact L2-regularised logistic
        regression on the frozen pretrained embeddings (linear probing, then
        fine-tuning). With ``freeze="all"`` and a linear head this convex
        solution *is* the fit and no epochs run. Ignored with ``weights=None``
        and for heads with hidden layers, which start from random weights.
    probe_C : float, default=1.0
        Inverse L2 strength of that logistic regression (as in scikit-learn).
    image_size : int, (int, int) or None, default=None
        Resize images straight to this size instead of the weights' recipe.
    image_shape : tuple or None, default=None
        Shape of one image, to accept 2-D arrays of flattened images.
    lr : float, default=3e-3
        Learning rate of the head (AdamW by default).
    backbone_lr : float or None, default=None
        Learning rate of the unfrozen backbone stages. None uses ``lr / 3`` for
        pretrained weights (and custom modules) and ``lr`` when training from
        scratch (``weights=None`` with a registered name). Measured on
        Fashion-MNIST 5-9 with 10 and 50 labels per class, ``lr / 10`` left the
        backbone nearly unchanged in short fine-tuning runs (0.826 vs 0.872).
    weight_decay : float, default=1e-2
        Decoupled weight decay of AdamW.
    max_epochs : int, default=10
        Epochs of gradient training.
    batch_size : int, default=32
        Images per training and prediction batch.
    schedule : {"cosine"} or None, default="cosine"
        Learning-rate schedule over ``max_epochs``; None keeps it constant.
    augment : bool or {"crop", "flip"}, default=False
        Training-time augmentation: True for random resized crops and horizontal
        flips, "crop" or "flip" for one of them. Leave it off for inputs where
        flips change the meaning (digits, text).
    early_stopping : bool, default=False
        Hold out ``validation_fraction`` of the training data (stratified), stop
        when the validation loss has not improved for ``n_iter_no_change``
        epochs and keep the best epoch's weights.
    validation_fraction : float, default=0.1
        Share of the training data held out for early stopping.
    n_iter_no_change : int, default=5
        Patience of early stopping, in epochs.
    class_weight : dict, "balanced" or None, default=None
        Weights of the classes in the loss and in the probe, as in scikit-learn.
    cache_frozen : bool, default=True
        Compute the outputs of the frozen stages once per training image and
        train the rest on them, instead of recomputing them every epoch. Used
        when at least one stage is frozen and augmentation is off; the trained
        model is the same.
    cache : str, path or joblib.Memory, default=None
        Also keep those frozen-stage outputs on disk, keyed by the frozen
        parameters, preprocessing and image content, so that other candidates and
        folds of a grid search, later fits and :class:`PretrainedFeatureExtractor`
        reuse them. Safe with process-based parallel workers on one host.
    cache_dtype : {"float32", "float16"}, default="float32"
        Storage type of cached outputs; float16 halves memory and disk at the
        cost of rounding (the model is then no longer bit-identical).
    cache_max_bytes : int or None, default=4 GiB
        Memory budget of the cached outputs. Above it, fitting with ``cache`` set
        raises an error saying what it would need; without ``cache`` it warns and
        recomputes the frozen stages every epoch instead.
    device : str, default="auto"
        "auto" (CUDA, then MPS, then CPU, resolved in ``fit``), "cpu", "cuda",
        "cuda:N" or "mps".
    autocast : bool, default=False
        Mixed precision (bfloat16) on GPU.
    random_state : int or None, default=None
        Seed for initialisation, shuffling, augmentation and the validation
        split; makes CPU runs repeatable without touching the global RNG.
    verbose : int, default=0
        1 prints skorch's per-epoch table.
    optimizer : torch optimizer class, default=torch.optim.AdamW
        Further arguments via ``optimizer__name=value``.
    callbacks : list of (str, Callback) or None, default=None
        Extra skorch callbacks.
    warm_start : bool, default=False
        When True, ``fit`` continues training the current model instead of
        starting over (skorch's semantics); so does :meth:`partial_fit`.
    **kwargs
        Other skorch parameters (``iterator_train__num_workers=2`` ...).

    Attributes
    ----------
    classes_ : ndarray of shape (n_classes,)
        The labels seen in ``fit``, in sorted order.
    module_ : TransferNet
        The trained network: preprocessing, backbone stages and head.
    n_frozen_ : int
        Number of frozen stages.
    device_ : torch.device
        Device the model lives on.
    history_ : skorch.History
        Per-epoch losses and timings.
    used_cache_ : bool
        Whether the last fit trained on cached frozen-stage outputs.
    cache_nbytes_ : int
        Size of those cached outputs (0 when not used).
    cache_hit_ : bool
        Whether they were read from the ``cache`` directory rather than computed.

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
    """

    _parameter_constraints: dict = {
        "backbone": "no_validation",
        "weights": [str, os.PathLike, None],
        "freeze": [Interval(Integral, 0, None, closed="left"), StrOptions({"all"})],
        "head_hidden": [tuple, list],
        "head_dropout": [Interval(Real, 0, 1, closed="left")],
        "head_init": [StrOptions({"probe", "random"})],
        "probe_C": [Interval(Real, 0, None, closed="neither")],
        "image_size": [Interval(Integral, 1, None, closed="left"), tuple, list, None],
        "image_shape": [tuple, list, None],
        "lr": [Interval(Real, 0, None, closed="neither")],
        "backbone_lr": [Interval(Real, 0, None, closed="left"), None],
        "weight_decay": [Interval(Real, 0, None, closed="left")],
        "max_epochs": [Interval(Integral, 0, None, closed="left")],
        "batch_size": [Interval(Integral, 1, None, closed="left")],
        "schedule": [StrOptions({"cosine"}), None],
        "augment": ["boolean", StrOptions({"crop", "flip"})],
        "early_stopping": ["boolean"],
        "validation_fraction": [Interval(Real, 0, 1, closed="neither")],
        "n_iter_no_change": [Interval(Integral, 1, None, closed="left")],
        "class_weight": [dict, StrOptions({"balanced"}), None],
        "cache_frozen": ["boolean"],
        "cache": [str, os.PathLike, joblib.Memory, None],
        "cache_dtype": [StrOptions({"float32", "float16"})],
        "cache_max_bytes": [Interval(Integral, 0, None, closed="left"), None],
        "device": [str, torch.device],
        "autocast": ["boolean"],
        "random_state": ["random_state"],
    }

    def __init__(
        self,
        backbone="resnet18",
        *,
        weights="DEFAULT",
        freeze="all",
        head_hidden=(),
        head_dropout=0.0,
        head_init="probe",
        probe_C=1.0,
        image_size=None,
        image_shape=None,
        lr=3e-3,
        backbone_lr=None,
        weight_decay=1e-2,
        max_epochs=10,
        batch_size=32,
        schedule="cosine",
        augment=False,
        early_stopping=False,
        validation_fraction=0.1,
        n_iter_no_change=5,
        class_weight=None,
        cache_frozen=True,
        cache=None,
        cache_dtype="float32",
        cache_max_bytes=4 * 2**30,
        device="auto",
        autocast=False,
        random_state=None,
        verbose=0,
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
        self.head_hidden = head_hidden
        self.head_dropout = head_dropout
        self.head_init = head_init
        self.probe_C = probe_C
        self.image_size = image_size
        self.image_shape = image_shape
        self.backbone_lr = backbone_lr
        self.weight_decay = weight_decay
        self.schedule = schedule
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
        self.random_state = random_state

    # ------------------------------------------------------------------ skorch
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
        if self.schedule == "cosine":
            schedule = _LRScheduler(
                torch.optim.lr_scheduler.CosineAnnealingLR,
                T_max=self.max_epochs if _positive_int(self.max_epochs) else 1,
            )
            callbacks.insert(-1, ("lr_schedule", schedule))
        if self.early_stopping:
            stopper = EarlyStopping(
                monitor="valid_loss", patience=self.n_iter_no_change, load_best=True
            )
            callbacks.insert(-1, ("early_stopping", stopper))
        return callbacks

    def initialize_module(self):
        # fit resolves the backbone first (to check `freeze` before any work);
        # skorch re-initialisations from set_params resolve it again here.
        pending = getattr(self, "_pending_backbone_", ())
        self._pending_backbone_ = ()
        backbone = (
            pending[0]
            if pending
            else resolve_backbone(
                self.backbone, self.weights, image_size=self.image_size
            )
        )
        n_frozen = self._check_freeze(backbone)
        head = build_head(
            backbone.embedding_dim,
            tuple(self.head_hidden),
            float(self.head_dropout),
            len(self.classes_),
        )
        self.module_ = TransferNet(backbone, head, n_frozen, self._augmenter())
        self.n_frozen_ = n_frozen
        return self

    def initialize_criterion(self):
        weight = None
        if self.class_weight is not None:
            encoded = np.arange(len(self.classes_))
            values = (
                compute_class_weight(
                    self.class_weight, classes=encoded, y=self._y_encoded_
                )
                if self.class_weight == "balanced"
                else np.array(
                    [self.class_weight.get(label, 1.0) for label in self.classes_]
                )
            )
            weight = torch.as_tensor(values, dtype=torch.float32)
        self.criterion_ = nn.CrossEntropyLoss(weight=weight)
        return self

    def initialize_optimizer(self, triggered_directly=None):
        head_params, backbone_params = [], []
        for name, parameter in self.module_.named_parameters():
            if not parameter.requires_grad:
                continue  # frozen: not handed to the optimiser at all
            (head_params if name.startswith("head.") else backbone_params).append(
                parameter
            )
        groups = [{"params": head_params, "lr": self.lr}]
        if backbone_params:
            groups.append({"params": backbone_params, "lr": self._backbone_lr()})
        _, kwargs = self.get_params_for_optimizer("optimizer", [])
        kwargs.pop("lr", None)
        if self.optimizer is torch.optim.AdamW:
            kwargs.setdefault("weight_decay", self.weight_decay)
        self.optimizer_ = self.optimizer(groups, **kwargs)
        return self

    def _pretrained(self) -> bool:
        # A user's module arrives with its own (presumably trained) parameters.
        return self.weights is not None or not isinstance(self.backbone, str)

    def _backbone_lr(self) -> float:
        if self.backbone_lr is not None:
            return float(self.backbone_lr)
        return self.lr / 3 if self._pretrained() else self.lr

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

    def infer(self, x, **fit_params):
        device = torch.device(self.device) if self.device != "auto" else None
        if self.autocast and device is not None and device.type == "cuda":
            with torch.autocast("cuda", dtype=torch.bfloat16):
                return super().infer(x, **fit_params).float()
        return super().infer(x, **fit_params)

    # ------------------------------------------------------------- estimator
    def fit(self, X, y, **fit_params):
        """Fit the head (and the unfrozen stages) on images ``X``, labels ``y``.

        Parameters
        ----------
        X : array-like of images, list of paths or list of PIL images
            See :func:`sktransfer.as_image_source`; file paths are streamed.
        y : array-like of shape (n_samples,)
            Labels of any hashable type (strings too).

        Returns
        -------
        self : FineTuneClassifier
        """
        continuing = self.warm_start and getattr(self, "initialized_", False)
        self._check_parameters()
        source = as_image_source(X, argument="X", image_shape=self.image_shape)
        y_encoded = self._encode_labels(y, len(source), refit=not continuing)
        device = resolve_device(self.device)
        check_width(self, X, reset=not continuing)
        with self._seeded(), self._on_device(device):
            if not continuing:
                backbone = resolve_backbone(
                    self.backbone, self.weights, image_size=self.image_size
                )
                self._check_freeze(backbone)
                # A tuple: skorch forbids storing modules outside initialize().
                self._pending_backbone_ = (backbone,)
                self.initialize()
            self._train(source, y_encoded, probe=not continuing, **fit_params)
        return self

    def partial_fit(self, X, y=None, classes=None, **fit_params):
        """Train ``max_epochs`` more epochs on ``X, y`` without re-initialising.

        The first call behaves like ``fit``; later calls keep the model, the
        optimiser state and ``classes_`` (labels outside ``classes_`` are
        rejected).
        """
        if not getattr(self, "initialized_", False):
            return self.fit(X, y, **fit_params)
        check_width(self, X, reset=False)
        source = as_image_source(X, argument="X", image_shape=self.image_shape)
        y_encoded = self._encode_labels(y, len(source), refit=False)
        with self._seeded(), self._on_device(self.device_):
            self._train(source, y_encoded, probe=False, **fit_params)
        return self

    def _train(self, source, y_encoded, *, probe: bool, **fit_params) -> None:
        module = self.module_
        train_index, valid_index = self._split(y_encoded)
        cached = self.cache_frozen and self.n_frozen_ > 0 and not self.augment
        self.cache_nbytes_, self.cache_hit_ = 0, False
        if cached:
            outputs = self._frozen_outputs(source)
            cached = outputs is not None
        if cached:
            self.cache_nbytes_, self.cache_hit_ = outputs.nbytes, outputs.from_disk
            data = TensorDataset(outputs.values, torch.as_tensor(y_encoded))
        else:
            size = module.backbone.preprocessing.loading_size
            data = ImageDataset(source, y_encoded, size=size)
        self.used_cache_ = bool(cached)
        train_data = Subset(data, train_index)
        self._valid_dataset_ = (
            Subset(data, valid_index) if valid_index is not None else None
        )
        linear_head = not self.head_hidden
        if probe and self.head_init == "probe" and self._pretrained() and linear_head:
            self._fit_probe(data, train_index, cached)
            if self.n_frozen_ == module.backbone.n_stages:
                # Head-only with a linear head is convex: the probe is the optimum.
                self._valid_dataset_ = None
                return
        module.start_stage = self.n_frozen_ if cached else 0
        try:
            NeuralNet.partial_fit(self, train_data, None, **fit_params)
        finally:
            module.start_stage = 0
            self._valid_dataset_ = None

    def _frozen_outputs(self, source) -> FrozenOutputs | None:
        """Outputs of the frozen stages for every image, computed once."""
        try:
            return frozen_outputs(
                self.module_.backbone,
                source,
                self.n_frozen_,
                memory=as_memory(self.cache),
                dtype=self.cache_dtype,
                max_bytes=self.cache_max_bytes,
                batch_size=max(self.batch_size, 64),
                device=self.device_,
            )
        except CacheTooLargeError as exc:
            if self.cache is not None:
                raise
            warnings.warn(f"{exc} Training without the cache instead.", stacklevel=3)
            return None

    @torch.inference_mode()
    def _fit_probe(self, data, train_index, cached: bool) -> None:
        """Set the linear head to the logistic-regression optimum on embeddings."""
        module = self.module_
        module.eval()
        embeddings = []
        loader = torch.utils.data.DataLoader(
            Subset(data, train_index), batch_size=max(self.batch_size, 64)
        )
        for batch, _ in loader:
            batch = batch.to(self.device_)
            if cached:
                out = module.backbone(batch.float(), start=self.n_frozen_)
                embeddings.append(pool_features(out, "avg").cpu())
            else:
                embeddings.append(module.embed(batch).cpu())
        features = torch.cat(embeddings).double().numpy()
        labels = np.asarray(self._y_encoded_)[train_index]
        fit_linear_probe(
            module.head[-1],
            features,
            labels,
            C=self.probe_C,
            class_weight=self._probe_class_weight(),
        )

    def _probe_class_weight(self):
        if isinstance(self.class_weight, dict):
            return {
                index: self.class_weight.get(label, 1.0)
                for index, label in enumerate(self.classes_)
            }
        return self.class_weight

    def _split(self, y_encoded):
        indices = np.arange(len(y_encoded))
        if not self.early_stopping:
            return indices, None
        stratify = y_encoded if np.bincount(y_encoded).min() >= 2 else None
        return train_test_split(
            indices,
            test_size=self.validation_fraction,
            stratify=stratify,
            random_state=self._seed(),
        )

    def _augmenter(self):
        if not self.augment:
            return None
        return BatchAugment(
            crop=self.augment in (True, "crop"), flip=self.augment in (True, "flip")
        )

    def _check_parameters(self) -> None:
        validate_parameter_constraints(
            self._parameter_constraints,
            {key: getattr(self, key) for key in self._parameter_constraints},
            caller_name=type(self).__name__,
        )
        check_backbone_argument(self.backbone, self.weights)

    def _check_freeze(self, backbone) -> int:
        n_stages = backbone.n_stages
        if self.freeze == "all":
            return n_stages
        if self.freeze > n_stages:
            raise ValueError(
                f"freeze={self.freeze} is out of range for backbone "
                f"{backbone.name!r}, which has {n_stages} stages "
                f"{backbone.stage_names}; use an int in [0, {n_stages}] or 'all'."
            )
        return int(self.freeze)

    def _encode_labels(self, y, n_samples: int, *, refit: bool) -> np.ndarray:
        y = check_labels(y, n_samples, estimator=type(self).__name__)
        if refit:
            self.classes_inferred_ = fit_classes(y)
        self._y_encoded_ = encode_labels(y, self.classes_)
        return self._y_encoded_

    def _seed(self):
        if self.random_state is None:
            return None
        if isinstance(self.random_state, np.random.RandomState):
            return int(self.random_state.randint(2**31 - 1))
        return int(self.random_state)

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

    @contextlib.contextmanager
    def _on_device(self, device: torch.device):
        """Let skorch see the resolved device while keeping the 'auto' param."""
        self.device_ = device
        requested = self.device
        self.device = str(device)
        try:
            yield
        finally:
            self.device = requested

    # ------------------------------------------------------------- inference
    def _inference_dataset(self, X):
        if isinstance(X, Dataset):
            return X
        if not getattr(self, "initialized_", False):
            raise NotFittedError(
                f"This {type(self).__name__} instance is not fitted yet. Call "
                "'fit' with appropriate arguments before using this estimator."
            )
        check_width(self, X, reset=False)
        source = as_image_source(X, argument="X", image_shape=self.image_shape)
        size = self.module_.backbone.preprocessing.loading_size
        return ImageDataset(source, None, size=size)

    def predict_proba(self, X) -> np.ndarray:
        """Class probabilities, shape (n_samples, n_classes), rows sum to 1."""
        dataset = self._inference_dataset(X)
        with self._on_device(self.device_):
            return super().predict_proba(dataset)

    def predict(self, X) -> np.ndarray:
        """Predicted labels, of the same type as the labels given to ``fit``."""
        proba = self.predict_proba(X)
        return self.classes_[proba.argmax(axis=1)]

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

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.input_tags.two_d_array = self.image_shape is not None
        tags.input_tags.three_d_array = True
        tags.non_deterministic = self.random_state is None
        return tags
