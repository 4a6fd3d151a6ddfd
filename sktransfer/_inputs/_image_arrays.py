"""Images held in numeric arrays: validation, layouts, pixel scales and batches.

:func:`_array_source` checks an array cheaply (dtype, dimensions, channel axis,
finite values, chunk by chunk) and wraps it in an :class:`ArrayImageSource`,
which slices, reshapes and rescales one batch at a time without copying the
user's array up front.
"""

from __future__ import annotations

import hashlib
import sys
import warnings
from collections.abc import Iterator

import numpy as np
import torch

from ..exceptions import ImageInputError, PixelRangeWarning
from ._images import ImageSource

__all__ = ["ArrayImageSource"]

_CHANNELS = (1, 3, 4)
_SCALES = {"u1": 255.0, "u2": 65535.0, "b1": 1.0, "f2": 1.0, "f4": 1.0, "f8": 1.0}
_CHUNK = 1 << 24  # elements per chunk: bounds the temporaries of checks and hashing
_LAYOUTS = (
    "(n_samples, height, width), (n_samples, height, width, channels) or "
    "(n_samples, channels, height, width) with channels in {1, 3, 4}"
)


class ArrayImageSource(ImageSource):
    """Images held in one numpy array, sliced (and reshaped) per batch.

    Built by :func:`as_image_source`, which validates the array first.

    Parameters
    ----------
    data : ndarray of shape (n_samples, ...)
        The user's array, kept as is (2-D rows are reshaped per batch).
    sample_shape : tuple of int
        Shape of one image as stored in ``data`` once rows are reshaped.
    layout : {"NHW", "NHWC", "NCHW"}
        Axis order of ``(n_samples, *sample_shape)``.
    scale : float, default=0
        Full-scale pixel value; 0 picks it from the dtype (255 for uint8).
    """

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


def _chunks(data: np.ndarray) -> Iterator[np.ndarray]:
    step = max(1, _CHUNK // max(1, int(np.prod(data.shape[1:]))))
    for start in range(0, len(data), step):
        yield data[start : start + step]


def _value_range(data: np.ndarray) -> tuple[float, float]:
    low = min(chunk.min() for chunk in _chunks(data))
    high = max(chunk.max() for chunk in _chunks(data))
    return low.item(), high.item()


def _check_pixel_range(data: np.ndarray, argument: str) -> None:
    """Warn when array values look like another pixel scale than they are read as.

    The usual mistakes: scikit-learn's digits (0-16) passed as floats or as
    int64, images in 0-255 held as floats, binary 0/1 images held as integers,
    and arrays already normalised with a mean and std.
    """
    if data.dtype.kind not in "iuf" or not data.size:
        return
    low, high = _value_range(data)
    name = argument
    if data.dtype.kind == "f":
        tolerance = 1e-3  # rounding of images resized or converted elsewhere
        if low >= -tolerance and high <= 1 + tolerance:
            return
        if low < -tolerance:
            fix = (
                "It looks normalised (mean/std): pass the raw pixels instead, "
                "scaled to [0, 1]; the backbone applies its own normalisation"
            )
        elif high <= 16:
            fix = f"It looks like 0-16 (like scikit-learn's digits): pass {name} / 16.0"
        elif high <= 255:
            fix = (
                f"It looks like 0-255: pass {name} / 255.0 (or {name}.astype(np.uint8))"
            )
        else:
            fix = f"Scale it to [0, 1], e.g. ({name} - {name}.min()) / np.ptp({name})"
        read_as = "floats are read as pixel values in [0, 1]"
    elif high == 1:
        fix = (
            f"It looks like 0-1 (binary images): pass {name}.astype(bool) or "
            f"{name}.astype(np.float32), which are read as 0-1"
        )
        read_as = "integers are read as 0-255, so 1 is almost black"
    elif 1 < high <= 16:
        fix = (
            f"It looks like 0-16 (like scikit-learn's digits): pass "
            f"{name} / 16.0, a float array in [0, 1]"
        )
        read_as = "integers are read as 0-255, so these images are almost black"
    else:
        return
    warnings.warn(
        f"{name} holds {data.dtype} values from {low:g} to {high:g}, but {read_as}. "
        f"{fix}.",
        PixelRangeWarning,
        stacklevel=_caller_level(),
    )


def _caller_level() -> int:
    """``stacklevel`` of the user's call: the first frame outside sktransfer and
    the scikit-learn/skorch code that calls into it."""
    frame, level = sys._getframe(1), 1
    while frame is not None and frame.f_globals.get("__name__", "").startswith(
        ("sktransfer.", "sklearn.", "skorch.")
    ):
        frame, level = frame.f_back, level + 1
    return level


def _integer_scale(data: np.ndarray, argument: str) -> float:
    """Full-scale value of an int array: 8-bit if it fits in 0-255, else 16-bit."""
    low, high = (int(v) for v in _value_range(data))
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
    _check_pixel_range(data, argument)
    return ArrayImageSource(data, sample, layout, scale)


def _infer_unknown_axis(sample: list[int], n_values: int) -> tuple[int, ...]:
    """Replace one -1 in ``sample`` by what makes it hold ``n_values`` (as numpy)."""
    if sample.count(-1) == 1:
        known = int(np.prod([s for s in sample if s != -1]))
        if known > 0 and n_values % known == 0:
            sample[sample.index(-1)] = n_values // known
    return tuple(sample)


def _tensor_to_numpy(x):
    if not isinstance(x, torch.Tensor):
        return x
    x = x.detach().cpu()  # a view for CPU tensors; accelerator tensors are copied
    return (x.float() if x.dtype == torch.bfloat16 else x).numpy()
