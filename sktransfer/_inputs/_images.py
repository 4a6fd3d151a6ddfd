"""The image modality: the image source interface and the input dispatcher.

Every image input (array, tensor, file paths, PIL images) is wrapped in an
:class:`ImageSource`, validated cheaply up front and decoded lazily:
:meth:`ImageSource.load` returns one float32 ``(B, C, H, W)`` batch in
``[0, 1]``, so memory is bounded by the batch size and user data is never copied
whole or modified. :func:`as_image_source` picks the source for what it is given
(arrays in ``_image_arrays``, files and PIL images in ``_image_files``), and
:class:`ImageModality` registers it as the ``"image"`` modality.
"""

from __future__ import annotations

import os
from abc import abstractmethod
from collections.abc import Sequence
from typing import Any

import numpy as np
import torch
from PIL import Image

from ..exceptions import ImageInputError
from ._source import InputSource, Modality, SourceDataset, register_modality

__all__ = [
    "ImageSource",
    "ImageModality",
    "ImageDataset",
    "as_image_source",
    "source_image_size",
]


def source_image_size(source: object) -> tuple[int, int] | None:
    """``(height, width)`` shared by every image of ``source``, when known.

    Known for arrays; None for files and PIL images (sizes known once decoded)
    and for sources of other modalities.
    """
    shape = getattr(source, "image_shape", None)
    return (int(shape[-2]), int(shape[-1])) if shape else None


class ImageSource(InputSource):
    """A validated collection of images, decoded one batch at a time.

    Attributes
    ----------
    kind : {"array", "paths", "pil"}
        What backs the source.
    image_shape : tuple of int or None
        ``(C, H, W)`` of every image for arrays; None for files and PIL images,
        whose sizes are only known once decoded.
    """

    image_shape: tuple[int, int, int] | None = None

    @abstractmethod
    def load(
        self, indices: slice | Sequence[int], size: tuple[int, int] | None = None
    ) -> torch.Tensor:
        """Return images ``indices`` as a float32 ``(B, C, H, W)`` tensor in [0, 1].

        ``size=(H, W)`` resizes decoded files and PIL images that differ from it
        (bilinear); arrays are returned as stored and the caller resizes batches.
        With ``size=None``, images whose size differs from the first image of the
        batch are resized to it.
        """


def as_image_source(
    X: Any, *, argument: str = "X", image_shape: tuple[int, ...] | None = None
) -> ImageSource:
    """Validate ``X`` cheaply and wrap it in an :class:`ImageSource`.

    Parameters
    ----------
    X : array-like, tensor, sequence of paths or PIL images, or ImageSource
        A numeric array or tensor ``(n, H, W)``, ``(n, H, W, C)`` or
        ``(n, C, H, W)`` with ``C`` in {1, 3, 4} and dtype uint8, uint16, bool or
        float (taken to be in [0, 1]); a 2-D ``(n, F)`` array with
        ``image_shape``; a list, tuple, array or pandas Series of file paths; a
        list of PIL images; or a list of same-shaped arrays (stacked). An
        ImageSource is returned unchanged.
    argument : str, default="X"
        Name of ``X`` in error messages.
    image_shape : tuple of int or None, default=None
        Shape of one image for 2-D input; one axis may be -1 and is then
        inferred, as in ``numpy.reshape`` (``(1, -1)`` reads each row of any
        width as a 1-pixel-high image).
        ``(H, W)``, ``(C, H, W)`` or ``(H, W, C)`` of one row of a 2-D array;
        ignored for other inputs.

    Returns
    -------
    source : ImageSource
        Nothing is decoded or copied yet; see :meth:`ImageSource.load`.

    Raises
    ------
    ImageInputError
        For empty input, a wrong number of dimensions, channels not in {1, 3, 4},
        NaN or inf, unsupported dtypes, mixed or ragged sequences and missing
        files. Files that exist but cannot be decoded fail in ``load``. A list
        of arrays of different shapes is refused (stack them at one size, or
        pass files or PIL images, which are resized to a common size).

    Warns
    -----
    PixelRangeWarning
        For arrays whose values look scaled for another pixel range: floats
        outside [0, 1] (0-16, 0-255, or normalised with a mean and std), and
        integers that stop at 1 or at 16 (read as 0-255). The message says how
        to rescale.

    Notes
    -----
    A 4-D array is channels-last when its last axis has 1, 3 or 4 entries, else
    channels-first, so an ambiguous ``(n, 3, 4, 4)`` is read as channels-last.
    Arrays come back from ``load`` at their stored size whatever ``size`` says:
    resize the batch tensors instead. Tensors on an accelerator are copied to
    host memory once.

    Examples
    --------
    >>> import numpy as np
    >>> from sktransfer._inputs import as_image_source
    >>> source = as_image_source(np.zeros((5, 8, 8, 3), dtype=np.uint8))
    >>> source.kind, len(source), source.image_shape
    ('array', 5, (3, 8, 8))
    >>> source.load(slice(0, 2)).shape
    torch.Size([2, 3, 8, 8])
    >>> as_image_source(np.zeros((5, 64)), image_shape=(8, 8)).image_shape
    (1, 8, 8)
    """
    # Imported here: those modules subclass ImageSource, defined above.
    from ._image_arrays import _LAYOUTS, _array_source, _tensor_to_numpy
    from ._image_files import _sequence_source

    if isinstance(X, ImageSource):
        return X
    if isinstance(X, (str, os.PathLike, Image.Image)):
        what = "PIL image" if isinstance(X, Image.Image) else f"path {os.fspath(X)!r}"
        hint = ""
        if not isinstance(X, Image.Image) and os.path.isdir(X):
            hint = " For a folder of class subfolders, call list_image_folder first."
        raise ImageInputError(
            f"{argument} is a single {what}; pass a list, e.g. [{argument}].{hint}"
        )
    if hasattr(X, "iloc") and hasattr(X, "to_numpy"):  # pandas Series/DataFrame
        X = X.to_numpy()
    X = _tensor_to_numpy(X)
    if not isinstance(X, list | tuple | np.ndarray) and hasattr(X, "__array__"):
        X = np.asarray(X)  # array-likes such as xarray or memmap wrappers
    if (isinstance(X, (list, tuple)) or getattr(X, "ndim", 0)) and len(X) == 0:
        raise ImageInputError(f"{argument} contains 0 samples; pass at least one.")
    if isinstance(X, (list, tuple)):
        return _sequence_source(list(X), argument, image_shape)
    if (
        isinstance(X, np.ndarray)
        and X.dtype.kind == "O"
        and X.ndim >= 2
        and X.size
        and not isinstance(X.flat[0], str | os.PathLike | Image.Image)
    ):
        X = X.astype(np.float64)  # numbers stored as objects (TypeError otherwise)
    if isinstance(X, np.ndarray) and X.dtype.kind in "OUS":
        if X.ndim == 2 and X.shape[1] == 1:  # a one-column DataFrame
            X = X[:, 0]
        if X.ndim != 1:
            raise ImageInputError(
                f"{argument} is an array of {X.dtype} with shape {X.shape}; pass a "
                "1-D sequence of file paths or PIL images, or a numeric array."
            )
        return _sequence_source(X.tolist(), argument, image_shape)
    if isinstance(X, np.ndarray):
        return _array_source(X, argument, image_shape)
    raise ImageInputError(
        f"{argument} of type {type(X).__name__} is not supported. Pass a numeric "
        f"array of shape {_LAYOUTS}, a list of file paths or a list of PIL images."
    )


class ImageModality(Modality):
    """The ``"image"`` modality: arrays, tensors, file paths and PIL images.

    Examples
    --------
    >>> import numpy as np
    >>> from sktransfer._inputs import get_modality
    >>> source = get_modality("image").as_source(np.zeros((2, 3, 8, 8)))
    >>> source.kind, source.image_shape
    ('array', (3, 8, 8))
    """

    name = "image"

    def as_source(
        self,
        X: Any,
        *,
        argument: str = "X",
        image_shape: tuple[int, ...] | None = None,
        sample_rate: int | None = None,
    ) -> ImageSource:
        """Wrap ``X`` with :func:`as_image_source` (same arguments and errors).

        ``sample_rate`` is for audio and ignored here.
        """
        return as_image_source(X, argument=argument, image_shape=image_shape)

    def declare_input(self, input_tags, *, image_shape=None, **options) -> None:
        input_tags.two_d_array = image_shape is not None
        input_tags.three_d_array = True


register_modality(ImageModality())


class ImageDataset(SourceDataset):
    """Per-sample ``(image, target)`` view of an image source, e.g. for skorch.

    Parameters
    ----------
    source : ImageSource or anything :func:`as_image_source` accepts
        The images.
    y : array-like of shape (n_samples,) or None, default=None
        Targets; a dummy ``0`` is returned when None.
    size : tuple of (int, int) or None, default=None
        ``(H, W)`` passed to :meth:`ImageSource.load`.
    transform : callable or None, default=None
        Applied to the ``(1, C, H, W)`` batch holding the image; returns a batch.

    Examples
    --------
    >>> import numpy as np
    >>> from sktransfer._inputs import ImageDataset
    >>> dataset = ImageDataset(np.zeros((3, 8, 8)), y=np.array([0, 1, 1]))
    >>> image, target = dataset[1]
    >>> tuple(image.shape), int(target), len(dataset)
    ((1, 8, 8), 1, 3)
    """

    _sample_name = "image"
    _input_error = ImageInputError

    def __init__(self, source, y=None, size=None, transform=None):
        super().__init__(as_image_source(source), y, size, transform)
