"""The modality-neutral input interface: sources, modalities, batches, datasets.

An :class:`InputSource` wraps what a user passed (image arrays or files today,
strings later) once it has been validated, and decodes it one batch at a time
with :meth:`InputSource.load`. A :class:`Modality` turns raw user input into a
source; modalities are registered by name (:func:`register_modality`) and looked
up with :func:`get_modality`. :func:`iter_batches` and :class:`SourceDataset` work
on any source, so estimators never branch on what the inputs are.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Iterator, Sequence
from typing import Any

import numpy as np
import torch

__all__ = [
    "collate_samples",
    "InputSource",
    "Modality",
    "SourceDataset",
    "get_modality",
    "iter_batches",
    "register_modality",
]


class InputSource(ABC):
    """A validated collection of samples, decoded one batch at a time.

    Subclasses wrap the user's data without copying or decoding it; memory is
    bounded by the batch size passed to :meth:`load`.

    Attributes
    ----------
    kind : str
        What backs the source, e.g. ``"array"``, ``"paths"`` or ``"pil"`` for
        images. :func:`iter_batches` decodes ``"paths"`` sources in worker
        processes when asked to.
    """

    kind: str = ""

    @abstractmethod
    def __len__(self) -> int: ...

    @abstractmethod
    def load(
        self, indices: slice | Sequence[int], size: tuple[int, int] | None = None
    ) -> Any:
        """Return samples ``indices`` as one raw batch.

        Parameters
        ----------
        indices : slice or sequence of int
            Positions of the samples, in the order wanted.
        size : tuple of (int, int) or None, default=None
            A size hint ``(H, W)`` for modalities that have one (images);
            others ignore it.

        Returns
        -------
        batch : object
            For images a float32 ``(B, C, H, W)`` tensor in [0, 1]; for text a
            list of ``B`` strings. Indexing ``batch[k]`` gives sample ``k``.
        """

    @abstractmethod
    def fingerprint(self) -> str:
        """Hex digest that changes when the samples change (a cache key)."""

    def inference_order(self) -> np.ndarray | None:
        """Positions in the order inference should compute them, or None.

        None (the default) means the stored order. Text sources return the
        longest texts first, so that each batch needs little padding; callers
        write every output back at its own position.
        """
        return None


class Modality(ABC):
    """Turns one kind of user input into an :class:`InputSource`.

    Attributes
    ----------
    name : str
        Registry key, e.g. ``"image"``.
    """

    name: str = ""

    @abstractmethod
    def as_source(self, X: Any, *, argument: str = "X", **options) -> InputSource:
        """Validate ``X`` cheaply and wrap it in a source; decode nothing.

        Parameters
        ----------
        X : object
            What the user passed; a source of this modality is returned as is.
        argument : str, default="X"
            Name of ``X`` in error messages.
        **options
            Modality-specific options (e.g. ``image_shape`` for images).

        Returns
        -------
        source : InputSource
        """

    def declare_input(self, input_tags, **options) -> None:
        """Set scikit-learn's ``input_tags`` for estimators taking this input.

        ``options`` are the same modality options as :meth:`as_source`'s.
        """

    def __repr__(self) -> str:
        return f"{type(self).__name__}(name={self.name!r})"


_MODALITIES: dict[str, Modality] = {}


def register_modality(modality: Modality) -> Modality:
    """Add ``modality`` to the registry under ``modality.name``; names are unique.

    Parameters
    ----------
    modality : Modality
        An instance; its ``name`` must not be registered yet.

    Returns
    -------
    modality : Modality
        The argument, unchanged.

    Examples
    --------
    >>> from sktransfer._inputs import ImageModality, register_modality
    >>> register_modality(ImageModality())
    Traceback (most recent call last):
    ...
    ValueError: A modality named 'image' is already registered...
    """
    if not isinstance(modality, Modality):
        raise TypeError(
            f"register_modality takes a Modality instance; got "
            f"{type(modality).__name__}. Subclass Modality and pass an instance."
        )
    if modality.name in _MODALITIES:
        raise ValueError(
            f"A modality named {modality.name!r} is already registered; choose "
            "another name."
        )
    _MODALITIES[modality.name] = modality
    return modality


def get_modality(name: str) -> Modality:
    """Return the modality registered under ``name`` or list the known names.

    Examples
    --------
    >>> import numpy as np
    >>> from sktransfer._inputs import get_modality
    >>> len(get_modality("image").as_source(np.zeros((2, 8, 8))))
    2
    """
    if isinstance(name, str) and name in _MODALITIES:
        return _MODALITIES[name]
    known = ", ".join(repr(key) for key in sorted(_MODALITIES))
    raise ValueError(f"Unknown modality {name!r}; known modalities: {known}.")


class _BatchDataset(torch.utils.data.Dataset):
    """Item ``k`` is the whole ``k``-th batch, so workers decode batches."""

    def __init__(self, source: InputSource, batch_size: int, size):
        self.source, self.batch_size, self.size = source, batch_size, size

    def __len__(self) -> int:
        return -(-len(self.source) // self.batch_size)

    def __getitem__(self, k: int):
        start = k * self.batch_size
        return self.source.load(slice(start, start + self.batch_size), self.size)


def iter_batches(
    source: InputSource,
    batch_size: int,
    *,
    size: tuple[int, int] | None = None,
    num_workers: int = 0,
    order: Sequence[int] | None = None,
) -> Iterator[Any]:
    """Yield consecutive batches of ``source``, in order, as its ``load`` makes them.

    Parameters
    ----------
    source : InputSource
        Samples, e.g. from :func:`as_image_source`.
    batch_size : int
        Samples per batch; the last batch may be smaller.
    size : tuple of (int, int) or None, default=None
        ``(H, W)`` passed to :meth:`InputSource.load`.
    num_workers : int, default=0
        For file paths, processes that decode upcoming batches while the caller
        computes. Other sources (arrays, PIL images) are always converted in
        this process.
    order : sequence of int or None, default=None
        Positions to visit, e.g. :meth:`InputSource.inference_order`; batch
        ``k`` holds samples ``order[k * batch_size : (k + 1) * batch_size]``.
        None visits them in stored order.

    Yields
    ------
    batch : object
        What :meth:`InputSource.load` returns; for images a float32
        ``(B, C, H, W)`` tensor with values in [0, 1].

    Examples
    --------
    >>> import numpy as np
    >>> from sktransfer._inputs import as_image_source, iter_batches
    >>> source = as_image_source(np.full((5, 4, 4), 255, dtype=np.uint8))
    >>> [tuple(b.shape) for b in iter_batches(source, 2)]
    [(2, 1, 4, 4), (2, 1, 4, 4), (1, 1, 4, 4)]
    """
    for name, value, low in [
        ("batch_size", batch_size, 1),
        ("num_workers", num_workers, 0),
    ]:
        integer = isinstance(value, (int, np.integer)) and not isinstance(value, bool)
        if not integer or value < low:
            raise ValueError(f"{name} must be an integer >= {low}; got {value!r}.")
    batch_size = int(batch_size)
    # Not a generator function, so bad arguments fail at the call, not on next().
    if num_workers > 0 and source.kind == "paths" and order is None:
        batches = _BatchDataset(source, batch_size, size)
        loader = torch.utils.data.DataLoader(
            batches, batch_size=None, num_workers=int(num_workers)
        )
        return iter(loader)
    starts = range(0, len(source), batch_size)
    if order is not None:
        return (
            source.load(order[start : start + batch_size], size) for start in starts
        )
    return (source.load(slice(start, start + batch_size), size) for start in starts)


class SourceDataset(torch.utils.data.Dataset):
    """Per-sample ``(item, target)`` view of any :class:`InputSource`, e.g. for skorch.

    Parameters
    ----------
    source : InputSource
        The samples; item ``i`` is ``source.load([i], size)[0]``.
    y : array-like of shape (n_samples,) or None, default=None
        Targets, indexed by position (also for pandas); a dummy ``0`` is
        returned when None.
    size : tuple of (int, int) or None, default=None
        ``(H, W)`` passed to :meth:`InputSource.load`.
    transform : callable or None, default=None
        Applied to the one-sample batch holding the item; returns a batch.

    Examples
    --------
    >>> import numpy as np
    >>> from sktransfer._inputs import SourceDataset, get_modality
    >>> source = get_modality("image").as_source(np.zeros((3, 8, 8)))
    >>> item, target = SourceDataset(source, y=np.array([0, 1, 1]))[2]
    >>> tuple(item.shape), int(target)
    ((1, 8, 8), 1)
    """

    # What a sample is called in messages, and what a y of the wrong length raises.
    _sample_name = "sample"
    _input_error: type[Exception] = ValueError

    def __init__(self, source: InputSource, y=None, size=None, transform=None):
        if not isinstance(source, InputSource):
            raise TypeError(
                f"source must be an InputSource, got {type(source).__name__}; wrap "
                "your data with get_modality(name).as_source(X) first."
            )
        self.source = source
        if hasattr(y, "iloc"):  # positional, not label-based, indexing
            y = y.to_numpy()
        if y is not None and len(y) != len(self.source):
            raise self._input_error(
                f"y has {len(y)} entries but there are {len(self.source)} "
                f"{self._sample_name}s; pass one target per {self._sample_name}."
            )
        self.y, self.size, self.transform = y, size, transform

    def __len__(self) -> int:
        return len(self.source)

    def __getitem__(self, i: int):
        batch = self.source.load([i], self.size)
        if self.transform is not None:
            batch = self.transform(batch)
        return batch[0], (0 if self.y is None else self.y[i])


def collate_samples(items: list) -> Any:
    """``torch``'s ``default_collate``, except that strings and 1-D audio clips
    become object arrays.

    A batch of texts is then one 1-D array of ``str``, which skorch counts as
    ``B`` samples (it reads a plain list of strings as nested data).

    Examples
    --------
    >>> from sktransfer._inputs import collate_samples
    >>> texts, targets = collate_samples([("good", 1), ("bad", 0)])
    >>> texts.tolist(), targets.tolist()
    (['good', 'bad'], [1, 0])
    """
    if items and all(_is_clip(item[0]) for item in items):
        # Audio clips of different lengths cannot be stacked: the backbone's
        # preprocessing pads each batch.
        clips = np.empty(len(items), dtype=object)
        clips[:] = [item[0] for item in items]
        targets = torch.utils.data.default_collate([item[1] for item in items])
        return clips, targets
    batch = torch.utils.data.default_collate(items)
    return _strings_as_array(batch)


def _is_clip(sample) -> bool:
    return isinstance(sample, np.ndarray) and sample.ndim == 1


def _strings_as_array(batch):
    if (
        isinstance(batch, tuple | list)
        and batch
        and all(isinstance(v, str) for v in batch)
    ):
        array = np.empty(len(batch), dtype=object)
        array[:] = batch
        return array
    if isinstance(batch, tuple | list):
        return type(batch)(_strings_as_array(part) for part in batch)
    return batch
