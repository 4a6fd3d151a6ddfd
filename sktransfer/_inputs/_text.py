"""The text modality: strings in, one list of strings per batch out.

:class:`TextModality` validates what users pass (a list, tuple, 1-D numpy array
or pandas Series of ``str``) and wraps it in a :class:`TextSource`. Nothing is
tokenised here: the backbone's preprocessing (a tokenizer) turns each batch into
model input, padded to the longest text of that batch only.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Sequence
from typing import Any

import numpy as np

from ..exceptions import TextInputError
from ._source import InputSource, Modality, register_modality

__all__ = ["TextSource", "TextModality", "as_text_source"]


class TextSource(InputSource):
    """A validated sequence of strings, handed out one batch at a time.

    Parameters
    ----------
    texts : sequence of str
        Already validated; kept by reference, never copied or modified.

    Examples
    --------
    >>> from sktransfer._inputs import as_text_source
    >>> source = as_text_source(["a short one", "a much longer sentence", ""])
    >>> len(source), source.load([1, 0])
    (3, ['a much longer sentence', 'a short one'])
    >>> source.inference_order().tolist()
    [1, 0, 2]
    """

    kind = "text"

    def __init__(self, texts: Sequence[str]):
        self._texts = texts

    def __len__(self) -> int:
        return len(self._texts)

    def load(
        self, indices: slice | Sequence[int], size: tuple[int, int] | None = None
    ) -> list[str]:
        """Return texts ``indices`` as a list of ``str``; ``size`` is ignored."""
        if isinstance(indices, slice):
            return [str(text) for text in self._texts[indices]]
        return [str(self._texts[int(i)]) for i in indices]

    def inference_order(self) -> np.ndarray:
        """Positions from the longest text to the shortest (stable).

        Batches of similar lengths need little padding, so inference computes in
        this order and writes every output back at its own position.
        """
        lengths = np.fromiter((len(t) for t in self._texts), np.int64, len(self))
        return np.argsort(-lengths, kind="stable")

    def fingerprint(self) -> str:
        digest = hashlib.blake2b(f"text|{len(self)}".encode(), digest_size=16)
        for text in self._texts:
            data = str(text).encode("utf-8", "surrogatepass")
            digest.update(len(data).to_bytes(8, "little"))
            digest.update(data)
        return digest.hexdigest()


def _describe(value: Any) -> str:
    if isinstance(value, float) and np.isnan(value):
        return "NaN"
    return f"{type(value).__name__} {value!r}"[:80]


def as_text_source(X: Any, *, argument: str = "X") -> TextSource:
    """Validate ``X`` and wrap it in a :class:`TextSource`.

    Parameters
    ----------
    X : list, tuple, 1-D numpy array or pandas Series of str, or TextSource
        One string per sample. A TextSource is returned unchanged.
    argument : str, default="X"
        Name of ``X`` in error messages.

    Returns
    -------
    source : TextSource

    Raises
    ------
    TextInputError
        For a single string, empty input, a 2-D array or DataFrame, and any
        entry that is not a ``str`` (None, NaN, bytes, numbers ...); the message
        gives the position of the first bad entry.

    Notes
    -----
    Empty strings are valid: they are tokenised to the special tokens alone
    (``[CLS] [SEP]`` for BERT-like models) and get the embedding of an empty
    sentence, as in sentence-transformers.

    Examples
    --------
    >>> from sktransfer._inputs import as_text_source
    >>> as_text_source([b"bytes"])
    Traceback (most recent call last):
    ...
    sktransfer.exceptions.TextInputError: X[0] is bytes b'bytes', not str...
    """
    if isinstance(X, TextSource):
        return X
    if isinstance(X, (str, bytes, os.PathLike)):
        raise TextInputError(
            f"{argument} is a single {type(X).__name__}; pass a list of strings, "
            f"e.g. [{argument}]."
        )
    if hasattr(X, "iloc") and hasattr(X, "to_numpy"):  # pandas Series/DataFrame
        X = X.to_numpy()
    if isinstance(X, np.ndarray):
        if X.ndim != 1:
            raise TextInputError(
                f"{argument} is an array of shape {X.shape}; text input must be "
                "1-D, one string per sample. Select one column (df['text'], not "
                "df[['text']]) or flatten it."
            )
        if X.dtype.kind not in "OU":
            raise TextInputError(
                f"{argument} is a numeric array of dtype {X.dtype}; this backbone "
                "takes text: pass a list or 1-D array of str."
            )
    elif not isinstance(X, (list, tuple)):
        raise TextInputError(
            f"{argument} of type {type(X).__name__} is not supported; pass a list, "
            "tuple, 1-D numpy array or pandas Series of str."
        )
    if len(X) == 0:
        raise TextInputError(f"{argument} contains 0 texts; pass at least one.")
    if not (isinstance(X, np.ndarray) and X.dtype.kind == "U"):
        for position, value in enumerate(X):
            if isinstance(value, str):
                continue
            hint = "decode it first, e.g. value.decode('utf-8')"
            if value is None or (isinstance(value, float) and np.isnan(value)):
                hint = "drop or fill missing texts first, e.g. with ''"
            elif not isinstance(value, bytes):
                hint = "convert entries to str, or pass one string per sample"
            raise TextInputError(
                f"{argument}[{position}] is {_describe(value)}, not str; {hint}."
            )
    return TextSource(X)


class TextModality(Modality):
    """The ``"text"`` modality: sequences of strings.

    Examples
    --------
    >>> from sktransfer._inputs import get_modality
    >>> source = get_modality("text").as_source(("good", "bad"))
    >>> source.kind, len(source)
    ('text', 2)
    """

    name = "text"

    def as_source(
        self,
        X: Any,
        *,
        argument: str = "X",
        image_shape: tuple[int, ...] | None = None,
        sample_rate: int | None = None,
    ) -> TextSource:
        """Wrap ``X`` with :func:`as_text_source`; ``image_shape`` must be None.

        ``sample_rate`` is for audio and ignored here.
        """
        if image_shape is not None:
            raise ValueError(
                f"image_shape={image_shape!r} applies to image backbones; this "
                "backbone takes text. Leave image_shape=None."
            )
        return as_text_source(X, argument=argument)

    def declare_input(self, input_tags, **options) -> None:
        input_tags.string = True
        input_tags.two_d_array = False
        input_tags.three_d_array = False


register_modality(TextModality())
