"""Which modality an input looks like, so that errors can name the right backbone.

The estimators read ``X`` with the modality of their backbone, and the default
backbone reads images. A user who passes sentences or sound clips without naming
a backbone otherwise gets an image error ("files do not exist", "needs 3 or 4
dimensions") that does not say what to change. :func:`modality_hint` adds that
sentence to the error when ``X`` plainly holds another kind of input. The
guess only ever adds a hint to an error; it never decides how ``X`` is read.
"""

from __future__ import annotations

import os
from typing import Any

import numpy as np

from ._image_folder import _EXTENSIONS as IMAGE_SUFFIXES

__all__ = ["guess_modality", "modality_hint"]

AUDIO_SUFFIXES = (".wav", ".flac", ".ogg", ".mp3", ".opus", ".aiff", ".aif", ".au")
# Rows at least this long are read as sound clips (half a second at 16 kHz),
# not flattened images (a 64 x 64 image has 4096 pixels).
AUDIO_MIN_SAMPLES = 8000
# How many items of a sequence the guess looks at.
SAMPLE_ITEMS = 20
EXAMPLE_BACKBONES = {
    "image": "'efficientnet_lite0'",
    "text": "'all-minilm-l6-v2'",
    "audio": "'keyword_cnn' (words) or 'voice_encoder' (speakers)",
}
_READS = {"image": "images", "text": "text", "audio": "audio"}


def _guess_strings(items: list) -> str | None:
    suffixes = [os.path.splitext(os.fspath(item))[1].lower() for item in items]
    if any(suffix in AUDIO_SUFFIXES for suffix in suffixes):
        return "audio"
    if any(suffix in IMAGE_SUFFIXES for suffix in suffixes):
        return "image"
    if any(os.path.exists(item) for item in items):
        return None
    return "text" if all(isinstance(item, str) for item in items) else None


def _is_clip(item: Any) -> bool:
    return isinstance(item, np.ndarray) and item.ndim == 1 and item.dtype.kind in "fiu"


def guess_modality(X: Any) -> str | None:
    """``"image"``, ``"text"`` or ``"audio"`` when ``X`` plainly holds that, else None.

    Strings are text unless they name files (audio and image suffixes say
    which); 1-D arrays of different lengths, or of at least
    ``AUDIO_MIN_SAMPLES`` values, are sound clips; arrays of 3 or 4
    dimensions are images.

    Examples
    --------
    >>> import numpy as np
    >>> from sktransfer._inputs._guess import guess_modality
    >>> guess_modality(["a cat on a mat", "a dog"])
    'text'
    >>> guess_modality([np.zeros(12000), np.zeros(9000)])
    'audio'
    >>> guess_modality(np.zeros((4, 28, 28))), guess_modality(np.zeros((4, 784)))
    ('image', None)
    """
    if hasattr(X, "iloc") and hasattr(X, "to_numpy"):  # pandas Series/DataFrame
        X = X.to_numpy()
    if isinstance(X, np.ndarray) and X.dtype.kind in "fiub":
        if X.ndim in (3, 4):
            return "image"
        if X.ndim == 2 and X.shape[1] >= AUDIO_MIN_SAMPLES:
            return "audio"
        return None
    if isinstance(X, np.ndarray) and X.ndim == 1:
        X = X.tolist()
    if not isinstance(X, list | tuple) or not X:
        return None
    items = list(X[:SAMPLE_ITEMS])
    if all(isinstance(item, str | os.PathLike) for item in items):
        return _guess_strings(items)
    if all(_is_clip(item) for item in items):
        lengths = {len(item) for item in items}
        if len(lengths) > 1 or min(lengths) >= AUDIO_MIN_SAMPLES:
            return "audio"
    return None


def modality_hint(X: Any, backbone: Any, modality: str) -> str:
    """A sentence naming backbones for what ``X`` looks like, or ``""``.

    Empty when ``X`` looks like ``modality`` (the backbone's) or like nothing
    in particular.

    Examples
    --------
    >>> from sktransfer._inputs._guess import modality_hint
    >>> hint = modality_hint(["a cat on a mat"], "efficientnet_lite0", "image")
    >>> print(hint)  # doctest: +NORMALIZE_WHITESPACE
    X looks like text, but backbone='efficientnet_lite0' reads images. Pass a text
    backbone, e.g. 'all-minilm-l6-v2' (list_backbones(modality='text') lists them).
    """
    guessed = guess_modality(X)
    if guessed is None or guessed == modality:
        return ""
    if guessed == "image" and modality == "audio" and isinstance(X, np.ndarray):
        return ""  # maybe spectrograms: the audio error says to pass waveforms
    name = repr(backbone) if isinstance(backbone, str) else "your network"
    article = "an" if guessed[0] in "aeiou" else "a"
    return (
        f"X looks like {_READS[guessed]}, but backbone={name} reads "
        f"{_READS[modality]}. Pass {article} {guessed} backbone, e.g. "
        f"{EXAMPLE_BACKBONES[guessed]} (list_backbones(modality={guessed!r}) lists "
        "them)."
    )
