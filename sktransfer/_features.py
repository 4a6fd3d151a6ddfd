"""PretrainedFeatureExtractor: images in, pretrained embedding vectors out."""

from __future__ import annotations

import contextlib
import io
import os
import pickle
import sys
import warnings
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
from skorch.exceptions import DeviceWarning

from ._cache import as_memory, frozen_outputs
from ._inputs import as_image_source, iter_batches
from ._validation import (
    Interval,
    StrOptions,
    check_width,
    in_worker_process,
    limit_threads,
    resolve_device,
)
from .backbones import pool_features, resolve_backbone
from .backbones._resolve import check_backbone_argument

__all__ = ["PretrainedFeatureExtractor"]

# Below this many images a progress bar is more noise than help.
_PROGRESS_MIN_IMAGES = 2000


class PretrainedFeatureExtractor(
    ClassNamePrefixFeaturesOutMixin, TransformerMixin, BaseEstimator
):
    """Embed images with a frozen pretrained backbone, as a scikit-learn transformer.

    ``fit`` loads the backbone once; ``transform`` returns a float32 array
    ``(n_samples, n_features_out_)``. Use it as the first step of a
    :class:`~sklearn.pipeline.Pipeline` in front of any scikit-learn model.

    Parameters
    ----------
    backbone : str, torch.nn.Module or list of (str, nn.Module), default="resnet18"
        A registered name (:func:`sktransfer.list_backbones`), any module (its
        top-level children become its stages) or explicit named stages.
    weights : None, "DEFAULT", str or path, default="DEFAULT"
        Pretrained weights: the backbone's default, a named set (for example
        ``"IMAGENET1K_V1"``), a local ``.pth``/``.safetensors`` state dict, or None
        for random initialisation (a baseline, not useful features).
    layer : None, str or int, default=None
        Stage whose output is the representation: None for the final
        (penultimate-to-classifier) embedding, a stage name such as ``"layer3"``,
        or a stage index (negative counts from the end).
    pooling : {"avg", "max", "avgmax"} or None, default="avg"
        How feature maps of intermediate stages become vectors; None flattens.
    image_size : int, (int, int) or None, default=None
        Resize images straight to this size instead of the weights' own
        resize/crop recipe; useful for small images such as 28x28 or 64x64.
    image_shape : tuple or None, default=None
        Shape of one image, e.g. ``(8, 8)`` or ``(3, 32, 32)``, to accept 2-D
        arrays ``(n_samples, n_pixels)`` of flattened images.
    batch_size : int, default=64
        Images per forward pass; memory use grows with it, not with the dataset.
    device : str, default="auto"
        ``"auto"`` (CUDA, then MPS, then CPU, resolved in ``fit``), ``"cpu"``,
        ``"cuda"``, ``"cuda:N"`` or ``"mps"``.
    autocast : bool, default=False
        Run the backbone under mixed precision on GPU (float16) for speed; the
        output stays float32.
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
    cache : str, path or joblib.Memory, default=None
        Store the stage outputs on disk, keyed by the backbone's parameters,
        preprocessing and image content; shared with
        :class:`FineTuneClassifier` runs whose frozen stages end at ``layer``.

    Attributes
    ----------
    backbone_ : sktransfer.backbones.Backbone
        The loaded backbone, cut after the selected ``layer``, in eval mode.
    preprocessing_ : Preprocessing
        Resize, crop, channel and normalisation recipe applied to every batch.
    layer_ : str
        Name of the stage whose output is returned.
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
    >>> extractor.fit_transform(X[:5]).shape
    (5, 128)
    >>> # Flattened intermediate maps transfer best from clothes to digits.
    >>> extractor = PretrainedFeatureExtractor(
    ...     "fmnist_resnet", layer="layer3", pooling=None, device="cpu")
    >>> model = make_pipeline(extractor, LogisticRegression(max_iter=1000))
    >>> model.fit(X[:200], y[:200]).score(X[200:400], y[200:400]) > 0.85
    True
    """

    _parameter_constraints: dict = {
        "backbone": "no_validation",
        "weights": [str, os.PathLike, None],
        "layer": [str, Integral, None],
        "pooling": [StrOptions({"avg", "max", "avgmax"}), None],
        "image_size": [Interval(Integral, 1, None, closed="left"), tuple, list, None],
        "image_shape": [tuple, list, None],
        "batch_size": [Interval(Integral, 1, None, closed="left")],
        "device": [str, torch.device],
        "autocast": ["boolean"],
        "channels_last": ["boolean"],
        "num_workers": [Interval(Integral, 0, None, closed="left")],
        "n_threads": [Interval(Integral, 1, None, closed="left"), None],
        "progress": ["boolean", None],
        "cache": [str, os.PathLike, joblib.Memory, None],
    }

    def __init__(
        self,
        backbone="resnet18",
        *,
        weights="DEFAULT",
        layer=None,
        pooling="avg",
        image_size=None,
        image_shape=None,
        batch_size=64,
        device="auto",
        autocast=False,
        channels_last=False,
        num_workers=0,
        n_threads=None,
        progress=None,
        cache=None,
    ):
        self.backbone = backbone
        self.weights = weights
        self.layer = layer
        self.pooling = pooling
        self.image_size = image_size
        self.image_shape = image_shape
        self.batch_size = batch_size
        self.device = device
        self.autocast = autocast
        self.channels_last = channels_last
        self.num_workers = num_workers
        self.n_threads = n_threads
        self.progress = progress
        self.cache = cache

    @_fit_context(prefer_skip_nested_validation=True)
    def fit(self, X, y=None):
        """Load the backbone and check ``X``; ``y`` is ignored.

        Parameters
        ----------
        X : array-like of images, list of paths or list of PIL images
            See :func:`sktransfer.as_image_source` for the accepted forms.
        y : None
            Ignored.

        Returns
        -------
        self : PretrainedFeatureExtractor
        """
        # Everything that can be checked without a model is checked first.
        as_image_source(X, argument="X", image_shape=self.image_shape)
        check_backbone_argument(self.backbone, self.weights)
        device = resolve_device(self.device)
        net = resolve_backbone(self.backbone, self.weights, image_size=self.image_size)
        # Later stages are never computed, so drop them.
        net.truncate(self._stage_stop(net))
        self._install(net, device)
        check_width(self, X, reset=True)
        return self

    def _install(self, net, device: torch.device) -> None:
        """Set the fitted state from a backbone already cut after ``layer``."""
        net.eval().requires_grad_(False).to(device)
        if self.channels_last:
            net.to(memory_format=torch.channels_last)
        self.backbone_ = net
        self.preprocessing_ = net.preprocessing
        self.device_ = device
        self.layer_ = net.stage_names[-1]
        prep = net.preprocessing
        probe = torch.zeros(1, prep.in_channels, *prep.crop_size, device=device)
        self.n_features_out_ = int(self._embed(probe).shape[1])

    def _stage_stop(self, net) -> int:
        names = net.stage_names
        if self.layer is None:
            return len(names)
        if isinstance(self.layer, str):
            if self.layer not in names:
                raise ValueError(
                    f"layer={self.layer!r} is not a stage of {net.name!r}; its "
                    f"stages are {names} (or give a stage index)."
                )
            return names.index(self.layer) + 1
        if not -len(names) <= self.layer < len(names):
            raise ValueError(
                f"layer={self.layer} is out of range for {net.name!r}, which has "
                f"{len(names)} stages {names}; use an index in "
                f"[{-len(names)}, {len(names) - 1}] or a stage name."
            )
        return self.layer % len(names) + 1

    @property
    def _n_features_out(self) -> int:
        return self.n_features_out_

    def _embed(self, batch: torch.Tensor) -> torch.Tensor:
        with torch.inference_mode(), self._autocast_context():
            if self.channels_last:
                batch = batch.contiguous(memory_format=torch.channels_last)
            out = self.backbone_(self.preprocessing_(batch))
            return pool_features(out, self.pooling).float()

    def _autocast_context(self):
        if self.autocast and self.device_.type in ("cuda", "mps"):
            return torch.autocast(self.device_.type, dtype=torch.float16)
        return contextlib.nullcontext()

    def transform(self, X) -> np.ndarray:
        """Embed images.

        Parameters
        ----------
        X : array-like of images, list of paths or list of PIL images
            Same forms as in ``fit``.

        Returns
        -------
        embeddings : ndarray of shape (n_samples, n_features_out_), float32
        """
        check_is_fitted(self)
        check_width(self, X, reset=False)
        source = as_image_source(X, argument="X", image_shape=self.image_shape)
        if self.cache is not None:
            outputs = frozen_outputs(
                self.backbone_,
                source,
                self.backbone_.n_stages,
                memory=as_memory(self.cache),
                batch_size=self.batch_size,
                device=self.device_,
            )
            pooled = pool_features(outputs.values, self.pooling)
            return pooled.float().numpy()
        out = np.empty((len(source), self.n_features_out_), dtype=np.float32)
        batches = iter_batches(
            source,
            self.batch_size,
            size=self.preprocessing_.loading_size,
            num_workers=self.num_workers,
        )
        bar = self._progress_bar(len(source))
        start = 0
        with limit_threads(self.n_threads):
            for batch in batches:
                embedded = self._embed(batch.to(self.device_, non_blocking=True))
                out[start : start + len(batch)] = embedded.cpu().numpy()
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

    def __getstate__(self):
        state = super().__getstate__()
        device = state.get("device_")
        if device is not None and device.type != "cpu":
            # Tensors on a GPU unpickle only where that GPU exists; pickle them
            # apart so __setstate__ can load them where they fit (as skorch does).
            modules = {key: state.pop(key) for key in ("backbone_", "preprocessing_")}
            state["_device_modules"] = pickle.dumps(modules)
        return state

    def __setstate__(self, state):
        blob = state.pop("_device_modules", None)
        if blob is not None:
            device = _loadable_device(state["device_"])
            state.update(_MapLocationUnpickler(io.BytesIO(blob), device).load())
            state["device_"] = device
        super().__setstate__(state)

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.input_tags.two_d_array = self.image_shape is not None
        tags.input_tags.three_d_array = True
        tags.input_tags.allow_nan = False
        tags.transformer_tags.preserves_dtype = ["float32"]
        tags.requires_fit = True
        return tags


def _loadable_device(device: torch.device) -> torch.device:
    """``device`` if this machine has it, else the CPU (with a warning)."""
    if device.type == "cuda" and torch.cuda.is_available():
        if (device.index or 0) < torch.cuda.device_count():
            return device
    elif device.type == "mps" and torch.backends.mps.is_available():
        return device
    elif device.type == "cpu":
        return device
    warnings.warn(
        f"This PretrainedFeatureExtractor was fitted on {device}, which this "
        "machine does not have; its backbone is loaded on the CPU instead.",
        DeviceWarning,
        stacklevel=3,
    )
    return torch.device("cpu")


class _MapLocationUnpickler(pickle.Unpickler):
    """Unpickle modules with every tensor loaded onto ``map_location``."""

    def __init__(self, file, map_location: torch.device):
        super().__init__(file)
        self.map_location = map_location

    def find_class(self, module, name):
        # Pickled torch storages are rebuilt by torch.storage._load_from_bytes.
        if (module, name) == ("torch.storage", "_load_from_bytes"):
            return self._load_storage
        return super().find_class(module, name)

    def _load_storage(self, data: bytes):
        return torch.load(
            io.BytesIO(data), map_location=self.map_location, weights_only=True
        )
