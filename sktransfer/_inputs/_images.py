"""Turn what users hold (arrays, tensors, file paths, PIL images) into image batches.

Every input is wrapped in an :class:`ImageSource`, validated cheaply up front and
decoded lazily: :meth:`ImageSource.load` returns one float32 ``(B, C, H, W)`` batch
in ``[0, 1]``, so memory is bounded by the batch size and user data is never
copied whole or modified.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
from abc import ABC, abstractmethod
from collections.abc import Iterator, Sequence
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image

from ..exceptions import ImageInputError

__all__ = ["ImageSource", "ArrayImageSource", "PathImageSource", "PILImageSource"]
__all__ += ["ImageDataset", "as_image_source", "iter_batches", "list_image_folder"]

_CHANNELS = (1, 3, 4)
_SCALES = {"u1": 255.0, "u2": 65535.0, "b1": 1.0, "f2": 1.0, "f4": 1.0, "f8": 1.0}
_CHUNK = 1 << 24  # elements per chunk: bounds the temporaries of checks and hashing
_BILINEAR = getattr(Image, "Resampling", Image).BILINEAR
_LAYOUTS = (
    "(n_samples, height, width), (n_samples, height, width, channels) or "
    "(n_samples, channels, height, width) with channels in {1, 3, 4}"
)
_EXTENSIONS = (".jpg", ".jpeg", ".png", ".bmp", ".gif", ".tif", ".tiff", ".webp")


class ImageSource(ABC):
    """A validated collection of images, decoded one batch at a time.

    Attributes
    ----------
    kind : {"array", "paths", "pil"}
        What backs the source.
    image_shape : tuple of int or None
        ``(C, H, W)`` of every image for arrays; None for files and PIL images,
        whose sizes are only known once decoded.
    """

    kind: str = ""
    image_shape: tuple[int, int, int] | None = None

    @abstractmethod
    def __len__(self) -> int: ...

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

    @abstractmethod
    def fingerprint(self) -> str:
        """Hex digest that changes when the images change (a cache key)."""


class ArrayImageSource(ImageSource):
    """Images held in one numpy array, sliced (and reshaped) per batch."""

    kind = "array"

    def __init__(
        self, data: np.ndarray, sample_shape: tuple, layout: str, scale: float = 0
    ):
        # ``data`` is the user's array (maybe 2-D), kept as is: no up-front copy.
        self._data, self._sample_shape, self._layout = data, sample_shape, layout
        self._scale = scale or _SCALES[data.dtype.str[1:]]
        if layout == "NHW":
            self.image_shape = (1, *sample_shape)
        elif layout == "NHWC":
            self.image_shape = (sample_shape[2], *sample_shape[:2])
        else:
            self.image_shape = tuple(sample_shape)

    def __len__(self) -> int:
        return len(self._data)

    def load(self, indices, size=None) -> torch.Tensor:
        if not isinstance(indices, slice):
            indices = np.asarray(indices, dtype=np.intp).reshape(-1)
        batch = self._data[indices]
        batch = batch.reshape((len(batch), *self._sample_shape))
        if self._layout == "NHW":
            batch = batch[:, None]
        elif self._layout == "NHWC":
            batch = batch.transpose(0, 3, 1, 2)
        # np.array copies, so the tensor never aliases (or lets anyone edit) X.
        out = np.array(batch, dtype=np.float32, order="C")
        if self._scale != 1.0:
            out /= self._scale
        return torch.from_numpy(out)

    def fingerprint(self) -> str:
        head = f"array|{self._data.shape}|{self._data.dtype}|{self._sample_shape}"
        digest = hashlib.blake2b(head.encode(), digest_size=16)
        for chunk in _chunks(self._data):
            digest.update(np.ascontiguousarray(chunk).data)
        return digest.hexdigest()


class _DecodedSource(ImageSource):
    """Shared batch assembly for sources decoded image by image with PIL."""

    def __init__(self, items: list, argument: str = "X"):
        self._items, self._argument = items, argument

    def __len__(self) -> int:
        return len(self._items)

    def _open(self, i: int) -> contextlib.AbstractContextManager[Image.Image]:
        return contextlib.nullcontext(self._items[i])

    def load(self, indices, size=None) -> torch.Tensor:
        if isinstance(indices, slice):
            positions = range(len(self))[indices]
        else:
            positions = np.asarray(indices, dtype=np.intp).reshape(-1).tolist()
        images = []
        for i in positions:
            try:
                with self._open(i) as image:
                    images.append(_decode(image, size))
            except (OSError, SyntaxError, ValueError) as exc:
                name = f" = {self._items[i]!r}" if self.kind == "paths" else ""
                raise ImageInputError(
                    f"{self._argument}[{i}]{name} could not be decoded as an image "
                    f"({exc}). Remove or repair it, or drop it from {self._argument}."
                ) from exc
            size = size or images[0].shape[1:]  # later images follow the first
        if not images:
            return torch.zeros((0, 3, *(size or (0, 0))))
        return torch.from_numpy(np.stack(images))


class PathImageSource(_DecodedSource):
    """Image files on disk, decoded with PIL (always to RGB) when loaded."""

    kind = "paths"

    @property
    def paths(self) -> list[str]:
        return self._items

    def _open(self, i: int) -> contextlib.AbstractContextManager[Image.Image]:
        return Image.open(self._items[i])

    def fingerprint(self) -> str:
        digest = hashlib.blake2b(b"paths", digest_size=16)
        for path in self._items:
            try:
                stat = os.stat(path)
            except OSError as exc:
                raise ImageInputError(
                    f"{path!r} in {self._argument} can no longer be read ({exc}); "
                    "restore the file or drop it."
                ) from exc
            entry = f"{os.path.abspath(path)}\0{stat.st_size}\0{stat.st_mtime_ns}\n"
            digest.update(entry.encode("utf-8", "surrogateescape"))
        return digest.hexdigest()


class PILImageSource(_DecodedSource):
    """In-memory ``PIL.Image.Image`` objects, converted to RGB when loaded."""

    kind = "pil"

    def fingerprint(self) -> str:
        digest = hashlib.blake2b(b"pil", digest_size=16)
        for image in self._items:
            digest.update(f"{image.mode}|{image.size}|".encode())
            digest.update(image.tobytes())
        return digest.hexdigest()


def _decode(image: Image.Image, size) -> np.ndarray:
    """One PIL image as float32 ``(3, H, W)`` in [0, 1], resized to ``size``."""
    image.load()  # decode everything now so truncated files fail inside the try
    if image.mode.startswith("I") or image.mode == "F":
        # 16/32-bit grayscale: float mode keeps the full range through resizing.
        scale, image = (1.0 if image.mode == "F" else 65535.0), image.convert("F")
    else:
        scale, image = 255.0, image.convert("RGB")
    array = np.asarray(image, dtype=np.float32) / scale
    if array.ndim == 2:
        array = np.repeat(np.clip(array, 0.0, 1.0)[..., None], 3, axis=2)
    array = array.transpose(2, 0, 1)
    if size is not None and array.shape[1:] != tuple(size):
        # Resize in float with torch, exactly as array batches are resized, so
        # files and arrays of the same pixels give the same embeddings.
        tensor = torch.from_numpy(np.ascontiguousarray(array))[None]
        tensor = F.interpolate(
            tensor,
            size=tuple(int(s) for s in size),
            mode="bilinear",
            antialias=True,
            align_corners=False,
        )
        array = tensor[0].numpy()
    return array


def _chunks(data: np.ndarray) -> Iterator[np.ndarray]:
    step = max(1, _CHUNK // max(1, int(np.prod(data.shape[1:]))))
    for start in range(0, len(data), step):
        yield data[start : start + step]


def _integer_scale(data: np.ndarray, argument: str) -> float:
    """Full-scale value of an int array: 8-bit if it fits in 0-255, else 16-bit."""
    low = min(int(chunk.min()) for chunk in _chunks(data))
    high = max(int(chunk.max()) for chunk in _chunks(data))
    if low < 0 or high > 65535:
        raise ImageInputError(
            f"{argument} holds integers from {low} to {high}, outside the pixel "
            f"ranges 0-255 and 0-65535. Rescale it, e.g. to floats in [0, 1]."
        )
    return 255.0 if high <= 255 else 65535.0


def _array_source(data: np.ndarray, argument: str, image_shape) -> ImageSource:
    shape = data.shape
    scale = 0.0
    if data.dtype.kind in "iu" and data.dtype.str[1:] not in _SCALES and data.size:
        scale = _integer_scale(data, argument)
    elif data.dtype.str[1:] not in _SCALES:
        hint = (
            " Complex data not supported: take the real part or magnitude."
            if data.dtype.kind == "c"
            else ""
        )
        raise ImageInputError(
            f"{argument} has dtype {data.dtype}, which is not an image dtype.{hint} "
            f"Pass uint8 (0-255), uint16 (0-65535), bool or float in [0, 1], e.g. "
            f"{argument}.astype(np.float32) / {argument}.max()."
        )
    if data.ndim == 2 and image_shape is None:
        raise ImageInputError(
            f"{argument} is 2-D with shape {shape}, but images need 3 or 4 "
            "dimensions. Reshape it to (n_samples, height, width), or pass "
            "image_shape=(height, width) (or with channels) to read rows as images."
        )
    if data.ndim == 2 and shape[1] == 0:
        raise ImageInputError(
            f"{argument} has 0 feature(s) (shape={shape}) while a minimum of 1 is "
            "required: each row must hold the pixels of one image."
        )
    if data.ndim == 2:
        sample = _infer_unknown_axis([int(s) for s in image_shape], shape[1])
        if len(sample) not in (2, 3) or int(np.prod(sample)) != shape[1]:
            raise ImageInputError(
                f"image_shape={tuple(image_shape)} does not fit the {shape[1]} "
                f"values per row of {argument}; pass (height, width), (channels, "
                f"height, width) or (height, width, channels) multiplying to "
                f"{shape[1]}."
            )
    elif data.ndim in (3, 4):
        sample = shape[1:]
    else:
        raise ImageInputError(
            f"{argument} has {data.ndim} dimension(s), shape {shape}. Reshape your "
            f"data to {_LAYOUTS}."
        )
    # Channels-last wins when both ends of an image could be the channel axis.
    if len(sample) == 2:
        layout = "NHW"
    elif sample[-1] in _CHANNELS or sample[0] in _CHANNELS:
        layout = "NHWC" if sample[-1] in _CHANNELS else "NCHW"
    else:
        raise ImageInputError(
            f"{argument} holds images of shape {sample}: neither the first nor the "
            f"last axis has 1, 3 or 4 channels. Pass {_LAYOUTS}."
        )
    if 0 in sample:
        raise ImageInputError(f"{argument} holds empty images of shape {sample}.")
    offset = 0
    for chunk in _chunks(data) if data.dtype.kind == "f" else ():
        finite = np.isfinite(chunk).reshape(len(chunk), -1).all(axis=1)
        if not finite.all():
            raise ImageInputError(
                f"{argument} contains NaN or infinite values (first in sample "
                f"{offset + int(np.argmin(finite))}). Replace them, e.g. with "
                f"np.nan_to_num({argument}), or drop those samples."
            )
        offset += len(chunk)
    return ArrayImageSource(data, sample, layout, scale)


def _infer_unknown_axis(sample: list[int], n_values: int) -> tuple[int, ...]:
    """Replace one -1 in ``sample`` by what makes it hold ``n_values`` (as numpy)."""
    if sample.count(-1) == 1:
        known = int(np.prod([s for s in sample if s != -1]))
        if known > 0 and n_values % known == 0:
            sample[sample.index(-1)] = n_values // known
    return tuple(sample)


def _sequence_source(items: list, argument: str, image_shape) -> ImageSource:
    if all(isinstance(item, (str, os.PathLike)) for item in items):
        paths = [os.fspath(item) for item in items]
        missing = [path for path in paths if not os.path.isfile(path)]
        if missing:
            shown = ", ".join(map(repr, missing[:3]))
            shown += f" and {len(missing) - 3} more" if len(missing) > 3 else ""
            raise ImageInputError(
                f"{len(missing)} of the {len(paths)} files in {argument} do not exist "
                f"or are not files: {shown}. Fix or drop these paths (relative paths "
                f"are resolved against {os.getcwd()!r})."
            )
        return PathImageSource(paths, argument)
    if all(isinstance(item, Image.Image) for item in items):
        return PILImageSource(items, argument)
    if all(isinstance(item, (np.ndarray, torch.Tensor)) for item in items):
        shapes = sorted({tuple(item.shape) for item in items})
        if len(shapes) > 1:
            raise ImageInputError(
                f"{argument} is a list of arrays with {len(shapes)} different shapes "
                f"(e.g. {shapes[:3]}), which cannot be stacked. Resize them to one "
                "shape first, or save them as image files and pass the paths."
            )
        arrays = [_tensor_to_numpy(item) for item in items]
        return _array_source(np.stack(arrays), argument, image_shape)
    if all(isinstance(item, (list, tuple)) for item in items):
        # Nested lists of numbers, e.g. X.tolist(): read as one numeric array.
        try:
            array = np.asarray(items)
        except ValueError as exc:
            raise ImageInputError(
                f"{argument} is a nested list whose rows have different lengths "
                "(ragged); give every image the same shape."
            ) from exc
        if array.dtype.kind in "biuf":
            return _array_source(array, argument, image_shape)
    kinds = ", ".join(sorted({type(item).__name__ for item in items}))
    raise ImageInputError(
        f"{argument} is a sequence holding {kinds}. Pass only file paths (str or "
        f"os.PathLike), only PIL images, or a numeric array of shape {_LAYOUTS}."
    )


def _tensor_to_numpy(x):
    if not isinstance(x, torch.Tensor):
        return x
    x = x.detach().cpu()  # a view for CPU tensors; accelerator tensors are copied
    return (x.float() if x.dtype == torch.bfloat16 else x).numpy()


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
        files. Files that exist but cannot be decoded fail in ``load``.

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


class _BatchDataset(torch.utils.data.Dataset):
    """Item ``k`` is the whole ``k``-th batch, so workers decode batches."""

    def __init__(self, source: ImageSource, batch_size: int, size):
        self.source, self.batch_size, self.size = source, batch_size, size

    def __len__(self) -> int:
        return -(-len(self.source) // self.batch_size)

    def __getitem__(self, k: int) -> torch.Tensor:
        start = k * self.batch_size
        return self.source.load(slice(start, start + self.batch_size), self.size)


def iter_batches(
    source: ImageSource,
    batch_size: int,
    *,
    size: tuple[int, int] | None = None,
    num_workers: int = 0,
) -> Iterator[torch.Tensor]:
    """Yield consecutive float32 ``(B, C, H, W)`` batches of ``source``, in order.

    Parameters
    ----------
    source : ImageSource
        Images, e.g. from :func:`as_image_source`.
    batch_size : int
        Images per batch; the last batch may be smaller.
    size : tuple of (int, int) or None, default=None
        ``(H, W)`` passed to :meth:`ImageSource.load`.
    num_workers : int, default=0
        For file paths, processes that decode upcoming batches while the caller
        computes. Arrays and PIL images are always converted in this process.

    Yields
    ------
    batch : torch.Tensor
        Float32 batch with values in [0, 1].

    Examples
    --------
    >>> import numpy as np
    >>> from sktransfer._inputs import as_image_source, iter_batches
    >>> source = as_image_source(np.ones((5, 4, 4), dtype=np.uint8))
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
    if num_workers > 0 and source.kind == "paths":
        batches = _BatchDataset(source, batch_size, size)
        loader = torch.utils.data.DataLoader(
            batches, batch_size=None, num_workers=int(num_workers)
        )
        return iter(loader)
    starts = range(0, len(source), batch_size)
    return (source.load(slice(start, start + batch_size), size) for start in starts)


class ImageDataset(torch.utils.data.Dataset):
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

    def __init__(self, source, y=None, size=None, transform=None):
        self.source = as_image_source(source)
        if hasattr(y, "iloc"):  # positional, not label-based, indexing
            y = y.to_numpy()
        if y is not None and len(y) != len(self.source):
            raise ImageInputError(
                f"y has {len(y)} entries but there are {len(self.source)} images; "
                "pass one target per image."
            )
        self.y, self.size, self.transform = y, size, transform

    def __len__(self) -> int:
        return len(self.source)

    def __getitem__(self, i: int):
        image = self.source.load([i], self.size)
        if self.transform is not None:
            image = self.transform(image)
        return image[0], (0 if self.y is None else self.y[i])


def list_image_folder(
    root: str | os.PathLike,
    *,
    extensions: Sequence[str] = _EXTENSIONS,
) -> tuple[list[str], np.ndarray]:
    """List ``root/<class>/<image>`` files as ``(paths, labels)``.

    The layout read by torchvision's ``ImageFolder`` and Keras'
    ``image_dataset_from_directory``. Class folders are searched recursively;
    hidden folders are skipped.

    Parameters
    ----------
    root : str or os.PathLike
        Folder holding one subfolder per class.
    extensions : sequence of str, default=(".jpg", ".jpeg", ".png", ...)
        File name endings counted as images (case-insensitive).

    Returns
    -------
    paths : list of str
        Image files, sorted by class and then by path.
    labels : ndarray of str of shape (n_images,)
        Class folder name of each file.

    Examples
    --------
    >>> import os, tempfile
    >>> from sktransfer._inputs import list_image_folder
    >>> root = tempfile.mkdtemp()
    >>> for name in ("cat/a.png", "cat/b.png", "dog/c.jpg"):
    ...     os.makedirs(os.path.join(root, os.path.dirname(name)), exist_ok=True)
    ...     open(os.path.join(root, name), "wb").close()
    >>> paths, labels = list_image_folder(root)
    >>> [os.path.basename(p) for p in paths], labels.tolist()
    (['a.png', 'b.png', 'c.jpg'], ['cat', 'cat', 'dog'])
    >>> import shutil; shutil.rmtree(root)
    """
    root = os.fspath(root)
    if not os.path.isdir(root):
        raise ImageInputError(
            f"root={root!r} is not an existing folder; pass the folder that holds "
            "one subfolder of images per class."
        )
    suffixes = tuple(ext.lower() for ext in extensions)
    classes = sorted(
        entry.name
        for entry in os.scandir(root)
        if entry.is_dir() and not entry.name.startswith(".")
    )
    paths, labels = [], []
    for label in classes:
        found = []
        for folder, subfolders, files in os.walk(os.path.join(root, label)):
            subfolders[:] = [name for name in subfolders if not name.startswith(".")]
            found += [
                os.path.join(folder, name)
                for name in files
                if name.lower().endswith(suffixes)
            ]
        paths += sorted(found)
        labels += [label] * len(found)
    if not paths:
        raise ImageInputError(
            f"root={root!r} has no images ({', '.join(suffixes)}) in class "
            f"subfolders ({len(classes)} found); arrange them as "
            "root/<class>/<image>."
        )
    return paths, np.array(labels, dtype=str)
