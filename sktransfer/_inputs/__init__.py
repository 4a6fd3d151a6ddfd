"""Turn what users hold into model batches (private; see ``_images``)."""

from ._images import (
    ArrayImageSource,
    ImageDataset,
    ImageSource,
    PathImageSource,
    PILImageSource,
    as_image_source,
    iter_batches,
    list_image_folder,
)

__all__ = [
    "ArrayImageSource",
    "ImageDataset",
    "ImageSource",
    "PILImageSource",
    "PathImageSource",
    "as_image_source",
    "iter_batches",
    "list_image_folder",
]
