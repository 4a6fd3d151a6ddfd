"""Exceptions and warnings raised by sktransfer.

They subclass the built-in or scikit-learn types that callers already catch, so
``except ValueError`` keeps working while sktransfer-specific handling stays
possible.
"""

from sklearn.exceptions import NotFittedError

__all__ = [
    "SkTransferError",
    "ImageInputError",
    "TextInputError",
    "AudioInputError",
    "WeightsError",
    "WeightsUnavailableError",
    "CacheTooLargeError",
    "NotFittedError",
    "PixelRangeWarning",
]


class SkTransferError(Exception):
    """Base class of every error sktransfer raises on purpose."""


class ImageInputError(SkTransferError, ValueError):
    """Images given to ``fit``/``transform``/``predict`` cannot be used."""


class TextInputError(SkTransferError, ValueError):
    """Texts given to ``fit``/``transform``/``predict`` cannot be used."""


class AudioInputError(SkTransferError, ValueError):
    """Audio clips given to ``fit``/``transform``/``predict`` cannot be used."""


class WeightsError(SkTransferError, ValueError):
    """Pretrained weights cannot be resolved or do not fit the architecture."""


class WeightsUnavailableError(WeightsError, OSError):
    """Weights exist but could not be obtained (no internet, no cached file)."""


class CacheTooLargeError(SkTransferError, ValueError):
    """Frozen-stage outputs would not fit the cache's memory budget."""


class PixelRangeWarning(UserWarning):
    """Array images whose values look scaled for another pixel range.

    Floats are read as pixels in [0, 1] and integers as 0-255 (or 0-65535);
    the warning says how to rescale. Silence it with
    ``warnings.filterwarnings("ignore", category=PixelRangeWarning)``.
    """
