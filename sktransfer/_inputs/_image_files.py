"""Images decoded one by one with PIL: files on disk, PIL objects, and lists.

:func:`_sequence_source` sorts a user's list into file paths, PIL images or
same-shaped arrays (stacked and handed to the array source); the two decoded
sources share :class:`_DecodedSource`, which turns each image into float32
``(3, H, W)`` pixels with :func:`_decode` only when a batch is loaded.
"""

from __future__ import annotations

import contextlib
import hashlib
import os

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image

from ..exceptions import ImageInputError
from ._image_arrays import _LAYOUTS, _array_source, _tensor_to_numpy
from ._images import ImageSource

__all__ = ["PathImageSource", "PILImageSource"]


class _DecodedSource(ImageSource):
    """Shared batch assembly for sources decoded image by image with PIL.

    Parameters
    ----------
    items : list
        File paths or PIL images, one per sample.
    argument : str, default="X"
        Name of the user's input in error messages.
    """

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
    """Image files on disk, decoded with PIL (always to RGB) when loaded.

    Parameters
    ----------
    items : list of str
        Paths of existing files, checked by :func:`as_image_source`.
    argument : str, default="X"
        Name of the user's input in error messages.
    """

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
    """In-memory ``PIL.Image.Image`` objects, converted to RGB when loaded.

    Parameters
    ----------
    items : list of PIL.Image.Image
        The images, never modified.
    argument : str, default="X"
        Name of the user's input in error messages.
    """

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
