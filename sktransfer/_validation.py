"""Checks shared by the estimators: devices, threads and parameter constraints."""

from __future__ import annotations

import contextlib
import multiprocessing
import os
import sys
import threading
from collections.abc import Iterator
from numbers import Integral, Real

import numpy as np
import torch
from sklearn.utils._param_validation import Interval, StrOptions

from .exceptions import SkTransferError

__all__ = [
    "BACKBONE_CONSTRAINTS",
    "Interval",
    "StrOptions",
    "resolve_device",
    "limit_threads",
    "in_worker_process",
    "check_width",
    "check_normalisation",
    "input_modality",
    "input_source",
]


# Constraints of the parameters every estimator takes: which backbone, which
# stages, how inputs are read, where it runs. Each estimator extends them.
BACKBONE_CONSTRAINTS: dict = {
    "backbone": "no_validation",
    "weights": [str, os.PathLike, None],
    "layer": [str, Integral, list, tuple, None],
    "pooling": [StrOptions({"grid", "avg", "max", "avgmax", "gem"}), None],
    "image_size": [Interval(Integral, 1, None, closed="left"), tuple, list, None],
    "image_shape": [tuple, list, None],
    "image_mean": [Real, tuple, list, None],
    "image_std": [Real, tuple, list, None],
    "max_length": [Interval(Integral, 1, None, closed="left"), None],
    "sample_rate": [Interval(Integral, 1000, 768_000, closed="both")],
    "batch_size": [Interval(Integral, 1, None, closed="left")],
    "device": [str, torch.device],
    "autocast": ["boolean"],
}


def resolve_device(device: str | torch.device) -> torch.device:
    """Turn the ``device`` parameter into a usable :class:`torch.device`.

    ``"auto"`` picks CUDA, then Apple's MPS, then the CPU, and is resolved when
    ``fit`` runs, so each worker of a distributed search uses its own hardware.

    Examples
    --------
    >>> from sktransfer._validation import resolve_device
    >>> resolve_device("cpu")
    device(type='cpu')
    """
    if device == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda")
        if getattr(torch.backends, "mps", None) and torch.backends.mps.is_available():
            return torch.device("mps")
        return torch.device("cpu")
    try:
        resolved = torch.device(device)
    except (RuntimeError, TypeError) as exc:
        raise ValueError(
            f"The 'device' parameter must be 'auto', 'cpu', 'cuda', 'cuda:N' or "
            f"'mps'; got {device!r} instead."
        ) from exc
    if resolved.type == "cuda":
        if not torch.cuda.is_available():
            raise ValueError(
                f"device={device!r} was requested but no CUDA GPU is available "
                "here. Use device='cpu', or device='auto' to use a GPU only when "
                "there is one."
            )
        if resolved.index is not None and resolved.index >= torch.cuda.device_count():
            raise ValueError(
                f"device={device!r} does not exist: this machine has "
                f"{torch.cuda.device_count()} CUDA device(s)."
            )
    if resolved.type == "mps" and not (
        getattr(torch.backends, "mps", None) and torch.backends.mps.is_available()
    ):
        raise ValueError(
            f"device={device!r} was requested but MPS is not available here. Use "
            "device='cpu' or device='auto'."
        )
    return resolved


@contextlib.contextmanager
def limit_threads(n_threads: int | None) -> Iterator[None]:
    """Run torch with ``n_threads`` intra-op threads inside the block only."""
    if n_threads is None:
        yield
        return
    previous = torch.get_num_threads()
    torch.set_num_threads(n_threads)
    try:
        yield
    finally:
        torch.set_num_threads(previous)


def in_worker_process() -> bool:
    """True inside joblib/loky or multiprocessing workers (no progress bars)."""
    return (
        multiprocessing.current_process().name != "MainProcess"
        or "LOKY_MAX_CPU_COUNT" in os.environ
        and multiprocessing.parent_process() is not None
    )


def interactive_session() -> bool:
    """True in the main thread of a main process writing to a terminal or notebook.

    Decides whether training shows progress by default: never inside joblib,
    loky, multiprocessing or dask workers, worker threads, or when output goes
    to a file or pipe (CI logs, batch jobs).
    """
    if in_worker_process() or threading.current_thread() is not threading.main_thread():
        return False
    if "ipykernel" in sys.modules:  # Jupyter: not a tty, but someone is watching
        return True
    stream = sys.stdout
    return bool(getattr(stream, "isatty", None) and stream.isatty())


def check_width(estimator, X, *, reset: bool) -> None:
    """Record (``reset=True``) or check the row width of 2-D flattened images.

    Mirrors scikit-learn's ``n_features_in_`` contract for estimators given
    ``image_shape``; images of other forms carry their own shape.
    """
    if input_modality(estimator.backbone).name != "image":
        # Clips and texts of any length: the row width is not a contract.
        if reset and hasattr(estimator, "n_features_in_"):
            del estimator.n_features_in_
        return
    shape = getattr(X, "shape", None)
    if shape is None and isinstance(X, list | tuple) and X:
        if all(isinstance(row, list | tuple) for row in X[:1]):
            shape = (len(X), len(X[0])) if np.ndim(X[0]) == 1 else None
    width = int(shape[1]) if shape is not None and len(shape) == 2 else None
    if reset:
        if width is not None:
            estimator.n_features_in_ = width
        elif hasattr(estimator, "n_features_in_"):
            del estimator.n_features_in_
        return
    expected = getattr(estimator, "n_features_in_", None)
    if width is not None and expected is not None and width != expected:
        raise ValueError(
            f"X has {width} features, but {type(estimator).__name__} is expecting "
            f"{expected} features as input (rows of the width seen in fit)."
        )


def input_source(estimator, X):
    """Validate ``X`` for ``estimator``'s backbone and wrap it in a source.

    The modality takes the options that concern it (``image_shape`` for
    images, ``sample_rate`` for audio) and ignores the others.
    """
    from ._inputs import get_modality
    from ._inputs._guess import modality_hint
    from .backbones import backbone_modality

    modality = get_modality(backbone_modality(estimator.backbone))
    try:
        return modality.as_source(
            X,
            argument="X",
            image_shape=estimator.image_shape,
            sample_rate=estimator.sample_rate,
        )
    except SkTransferError as error:
        # Sentences or clips given to an image backbone (the default) get an
        # image error; say which backbones read what X holds.
        hint = modality_hint(X, estimator.backbone, modality.name)
        if not hint:
            raise
        raise type(error)(f"{error} {hint}") from error


def input_modality(backbone):
    """The input :class:`~sktransfer._inputs.Modality` a ``backbone`` takes.

    Falls back to images for a backbone that cannot be resolved (the error is
    raised by ``fit``), so tags and reprs of invalid estimators still work.
    """
    from ._inputs import get_modality
    from .backbones import backbone_modality

    try:
        return get_modality(backbone_modality(backbone))
    except (ValueError, ImportError):
        return get_modality("image")


def check_normalisation(estimator) -> None:
    """Check ``image_mean``/``image_std`` before any model is built.

    Their lengths are checked against the network's channels once it is known
    (:meth:`~sktransfer.backbones.Preprocessing.with_normalisation`).
    """
    from .backbones._preprocessing import normalisation_values

    for name in ("image_mean", "image_std"):
        value = getattr(estimator, name)
        if value is not None:
            normalisation_values(value, name, positive=name == "image_std")
