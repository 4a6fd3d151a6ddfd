"""Turn what users hold into model batches, one modality behind one interface.

``_source`` holds the modality-neutral interface (:class:`InputSource`,
:class:`Modality` and its registry, :func:`iter_batches`,
:class:`SourceDataset`); ``_images`` and the ``_image_*`` modules implement the
``"image"`` modality on top of it, ``_text`` the ``"text"`` modality and
``_audio`` the ``"audio"`` modality.
"""

from ._audio import AudioModality, AudioSource, as_audio_source
from ._image_arrays import ArrayImageSource
from ._image_files import PathImageSource, PILImageSource
from ._image_folder import list_image_folder
from ._images import (
    ImageDataset,
    ImageModality,
    ImageSource,
    as_image_source,
    source_image_size,
)
from ._source import (
    InputSource,
    Modality,
    SourceDataset,
    collate_samples,
    get_modality,
    iter_batches,
    register_modality,
)
from ._text import TextModality, TextSource, as_text_source

__all__ = [
    "ArrayImageSource",
    "AudioModality",
    "AudioSource",
    "ImageDataset",
    "ImageModality",
    "ImageSource",
    "InputSource",
    "Modality",
    "PILImageSource",
    "PathImageSource",
    "SourceDataset",
    "TextModality",
    "TextSource",
    "as_audio_source",
    "as_image_source",
    "as_text_source",
    "collate_samples",
    "get_modality",
    "iter_batches",
    "list_image_folder",
    "register_modality",
    "source_image_size",
]
