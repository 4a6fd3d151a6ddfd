"""Docstring text of the parameters that say how the network is trained.

Rates, budget, schedule, weight averaging, early stopping, the frozen-output
cache, domain adaptation, device and skorch's own parameters; put into the estimators'
docstrings by :func:`sktransfer._estimator_docs.document`.
"""

from __future__ import annotations

__all__ = ["PARAMETERS"]

PARAMETERS: dict[str, str] = {}

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

PARAMETERS["weight_averaging"] = """\
    weight_averaging : {"swa", "wise"} or None, default=None
        "swa" averages the trained weights over the last quarter of the
        optimiser steps and uses the average. "wise" averages the trained
        model with the one training started from (pretrained stages and the
        probed head), weights and BatchNorm statistics half and half
        (WiSE-FT), which keeps part of what fine-tuning forgets.
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
