"""Batch preprocessing: channel adaptation, resizing and normalisation.

Everything works on whole batches of float tensors ``(B, C, H, W)`` with values in
``[0, 1]``, which is much faster than torchvision's per-image transforms when the
images already sit in memory as one array.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace

import torch
import torch.nn.functional as F

__all__ = [
    "Preprocessing",
    "IMAGENET_MEAN",
    "IMAGENET_STD",
    "SMALL_IMAGE_SIZE",
    "normalisation_values",
]

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
# With image_size=None, images smaller than a network's input are upscaled to at
# most this many pixels (their longer side), never to the weights' 224 px recipe:
# measured by benchmarks/small_image_size.py (see the user guide).
SMALL_IMAGE_SIZE = 64
# ITU-R 601 luma weights, as used by PIL's ``convert("L")``.
_LUMA = (0.299, 0.587, 0.114)


@dataclass(frozen=True)
class Preprocessing:
    """How images are turned into the tensors a backbone expects.

    Parameters
    ----------
    crop_size : tuple of int
        Final ``(height, width)`` fed to the network.
    resize_size : int or None, default=None
        When set, the shorter image side is first resized to this many pixels and
        the centre ``crop_size`` is cut out (the ImageNet evaluation recipe). When
        None, images are resized straight to ``crop_size``.
    mean, std : tuple of float
        Per-channel normalisation, one value per input channel.
    in_channels : int, default=3
        Channels the network takes. Grayscale input is repeated to 3 channels,
        RGB is converted to luma for 1-channel networks, alpha is dropped.
    interpolation : {"bilinear", "bicubic", "nearest"}, default="bilinear"
        Resampling filter; anti-aliased when shrinking.

    Examples
    --------
    >>> import torch
    >>> from sktransfer.backbones import Preprocessing
    >>> prep = Preprocessing(crop_size=(32, 32), mean=(0.5,), std=(0.5,), in_channels=1)
    >>> prep(torch.rand(4, 3, 64, 48)).shape
    torch.Size([4, 1, 32, 32])
    """

    crop_size: tuple[int, int]
    resize_size: int | None = None
    mean: tuple[float, ...] = IMAGENET_MEAN
    std: tuple[float, ...] = IMAGENET_STD
    in_channels: int = 3
    interpolation: str = "bilinear"

    def with_image_size(self, image_size: int | tuple[int, int]) -> Preprocessing:
        """Return a copy that resizes images straight to ``image_size``."""
        if isinstance(image_size, int):
            image_size = (image_size, image_size)
        return replace(self, crop_size=tuple(image_size), resize_size=None)

    def with_normalisation(self, mean=None, std=None) -> Preprocessing:
        """Return a copy normalising with ``mean``/``std`` (None keeps the current).

        One value applies to every channel; otherwise one value per channel.

        Examples
        --------
        >>> from sktransfer.backbones import Preprocessing
        >>> prep = Preprocessing(crop_size=(28, 28), in_channels=1)
        >>> prep.with_normalisation(0.286, (0.353,)).mean
        (0.286,)
        >>> Preprocessing(crop_size=(8, 8)).with_normalisation(std=1.0).std
        (1.0, 1.0, 1.0)
        """
        values = {}
        for name, value in (("mean", mean), ("std", std)):
            if value is None:
                continue
            value = normalisation_values(value, f"image_{name}", positive=name == "std")
            if len(value) == 1:
                value = value * self.in_channels
            if len(value) != self.in_channels:
                raise ValueError(
                    f"image_{name}={value!r} has {len(value)} values, but the "
                    f"network takes {self.in_channels}-channel images: give one "
                    f"value, or {self.in_channels}."
                )
            values[name] = value
        return replace(self, **values)

    def for_small_images(self, height: int, width: int) -> tuple[int, int] | None:
        """Size images of ``height x width`` go to when no ``image_size`` is given.

        Images at least as large as the network's input (``crop_size``) follow the
        weights' recipe (None is returned). Smaller ones are resized straight,
        keeping their aspect ratio, to a longer side of
        ``max(their longer side, SMALL_IMAGE_SIZE)``, and never beyond
        ``crop_size``: an 8x8 or 28x28 image goes to 64x64 for a 224 px ImageNet
        network, and stays at its native size for a 28 px one.

        Examples
        --------
        >>> from sktransfer.backbones import Preprocessing
        >>> prep = Preprocessing(crop_size=(224, 224), resize_size=256)
        >>> prep.for_small_images(8, 8), prep.for_small_images(28, 56)
        ((64, 64), (32, 64))
        >>> prep.for_small_images(150, 150), prep.for_small_images(300, 400)
        ((150, 150), None)
        >>> Preprocessing(crop_size=(28, 28)).for_small_images(8, 8)
        (28, 28)
        """
        crop_h, crop_w = self.crop_size
        if height >= crop_h and width >= crop_w:
            return None
        longer = max(height, width)
        target = min(max(longer, SMALL_IMAGE_SIZE), max(crop_h, crop_w))
        scale = target / longer
        size = (max(1, round(height * scale)), max(1, round(width * scale)))
        return (min(size[0], crop_h), min(size[1], crop_w))

    @property
    def loading_size(self) -> tuple[int, int]:
        """Common size decoded files are brought to so a batch can be stacked."""
        if self.resize_size is None:
            return tuple(self.crop_size)
        return (self.resize_size, self.resize_size)

    def example_input(self) -> torch.Tensor:
        """One raw input of the expected size, for dry runs that learn shapes."""
        return torch.zeros(1, self.in_channels, *self.crop_size)

    def describe(self) -> str:
        """Short text identifying this preprocessing (used in cache keys)."""
        return (
            f"crop={self.crop_size},resize={self.resize_size},mean={self.mean},"
            f"std={self.std},ch={self.in_channels},interp={self.interpolation}"
        )

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        """Preprocess a float batch ``(B, C, H, W)`` with values in ``[0, 1]``."""
        x = self._adapt_channels(x)
        x = self._resize(x)
        mean = torch.tensor(self.mean, dtype=x.dtype, device=x.device)
        std = torch.tensor(self.std, dtype=x.dtype, device=x.device)
        return (x - mean.view(1, -1, 1, 1)) / std.view(1, -1, 1, 1)

    def _adapt_channels(self, x: torch.Tensor) -> torch.Tensor:
        channels = x.shape[1]
        if channels == 4:
            x, channels = x[:, :3], 3
        if channels == self.in_channels:
            return x
        if channels == 1 and self.in_channels == 3:
            return x.expand(-1, 3, -1, -1)
        if channels == 3 and self.in_channels == 1:
            luma = torch.tensor(_LUMA, dtype=x.dtype, device=x.device)
            return (x * luma.view(1, 3, 1, 1)).sum(dim=1, keepdim=True)
        raise ValueError(
            f"Cannot feed {channels}-channel images to a network that takes "
            f"{self.in_channels} channels; give 1, 3 or 4 channel images."
        )

    def _resize(self, x: torch.Tensor) -> torch.Tensor:
        height, width = x.shape[-2:]
        if self.resize_size is not None:
            scale = self.resize_size / min(height, width)
            new_size = (round(height * scale), round(width * scale))
            x = self._interpolate(x, new_size)
            x = _center_crop(x, self.crop_size)
        elif (height, width) != tuple(self.crop_size):
            x = self._interpolate(x, tuple(self.crop_size))
        return x

    def _interpolate(self, x: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
        if tuple(x.shape[-2:]) == tuple(size):
            return x
        mode = self.interpolation
        antialias = mode in ("bilinear", "bicubic")
        kwargs = {"align_corners": False} if mode != "nearest" else {}
        return F.interpolate(x, size=size, mode=mode, antialias=antialias, **kwargs)


def normalisation_values(value, name: str, *, positive: bool = False) -> tuple:
    """``value`` (a number or a sequence of them) as a tuple of floats, checked.

    ``name`` is the parameter named in the error; ``positive`` refuses zero and
    negative values (a standard deviation).

    Examples
    --------
    >>> from sktransfer.backbones._preprocessing import normalisation_values
    >>> normalisation_values([0.5, 0.25, 0], "image_mean")
    (0.5, 0.25, 0.0)
    """
    values = (value,) if isinstance(value, int | float) else value
    try:
        values = tuple(float(v) for v in values)
    except (TypeError, ValueError):
        values = None
    if (
        not values
        or isinstance(value, str | bytes | bool)
        or not all(math.isfinite(v) and (v > 0 or not positive) for v in values)
    ):
        kind = "positive numbers" if positive else "finite numbers"
        raise ValueError(
            f"{name}={value!r} is not valid: give one number for every channel or "
            f"one per channel, as {kind}, on the scale of pixels in [0, 1] (as in "
            f"torchvision's Normalize after ToTensor), or None for the backbone's "
            "own normalisation."
        )
    return values


def straight_size(preprocessing: Preprocessing) -> tuple[int, int] | None:
    """The size images are resized straight to, or None for a resize/crop recipe.

    None too for preprocessing of other inputs (text has no image size).
    """
    if getattr(preprocessing, "resize_size", None) is not None:
        return None
    if getattr(preprocessing, "crop_size", None) is None:
        return None
    return tuple(int(v) for v in preprocessing.crop_size)


def _center_crop(x: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    height, width = x.shape[-2:]
    crop_h, crop_w = size
    if crop_h > height or crop_w > width:
        pad_h, pad_w = max(crop_h - height, 0), max(crop_w - width, 0)
        x = F.pad(x, (pad_w // 2, pad_w - pad_w // 2, pad_h // 2, pad_h - pad_h // 2))
        height, width = x.shape[-2:]
    top, left = (height - crop_h) // 2, (width - crop_w) // 2
    return x[..., top : top + crop_h, left : left + crop_w]
