"""List a ``root/<class>/<image>`` folder as file paths and class labels."""

from __future__ import annotations

import os
from collections.abc import Sequence

import numpy as np

from ..exceptions import ImageInputError

__all__ = ["list_image_folder"]

_EXTENSIONS = (".jpg", ".jpeg", ".png", ".bmp", ".gif", ".tif", ".tiff", ".webp")


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
