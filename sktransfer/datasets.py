"""Real image data that is available offline, and a shifted domain built from it.

Fashion-MNIST comes from Debian's ``dataset-fashion-mnist`` package (IDX files
under ``/usr/share/datasets/fashion-mnist``); nothing is downloaded.
:func:`blend_with_photos` builds an MNIST-M-style target domain from any grey
images and the photos shipped with scikit-learn (or others you pass).
"""

from __future__ import annotations

import gzip
import os
from pathlib import Path

import numpy as np

__all__ = ["load_fashion_mnist", "blend_with_photos", "FASHION_MNIST_CLASSES"]

FASHION_MNIST_DIR = "/usr/share/datasets/fashion-mnist"
FASHION_MNIST_CLASSES = (
    "T-shirt/top", "Trouser", "Pullover", "Dress", "Coat",
    "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot",
)  # fmt: skip


def _read_idx(path: Path) -> np.ndarray:
    opener = gzip.open if path.suffix == ".gz" else open
    with opener(path, "rb") as handle:
        data = handle.read()
    n_dims = data[3]
    shape = tuple(
        int.from_bytes(data[4 + 4 * i : 8 + 4 * i], "big") for i in range(n_dims)
    )
    return np.frombuffer(data, dtype=np.uint8, offset=4 + 4 * n_dims).reshape(shape)


def load_fashion_mnist(
    subset: str = "train", *, data_home: str | os.PathLike | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """Load Fashion-MNIST images ``(n, 28, 28)`` uint8 and labels ``(n,)`` int64.

    Parameters
    ----------
    subset : {"train", "test"}, default="train"
        The 60,000 training or the 10,000 test images.
    data_home : path, default=None
        Folder holding the IDX files; defaults to ``$SKTRANSFER_FASHION_MNIST`` or
        ``/usr/share/datasets/fashion-mnist`` (Debian's package).

    Examples
    --------
    >>> from sktransfer.datasets import load_fashion_mnist
    >>> X, y = load_fashion_mnist("test")  # doctest: +SKIP
    >>> X.shape, y[:3]  # doctest: +SKIP
    ((10000, 28, 28), array([9, 2, 1]))
    """
    if subset not in ("train", "test"):
        raise ValueError(f"subset must be 'train' or 'test'; got {subset!r}.")
    root = Path(
        data_home or os.environ.get("SKTRANSFER_FASHION_MNIST", FASHION_MNIST_DIR)
    )
    prefix = "train" if subset == "train" else "t10k"
    files = []
    for kind in ("images-idx3-ubyte", "labels-idx1-ubyte"):
        candidates = [root / f"{prefix}-{kind}.gz", root / f"{prefix}-{kind}"]
        found = next((c for c in candidates if c.is_file()), None)
        if found is None:
            raise FileNotFoundError(
                f"Fashion-MNIST file {candidates[0]} not found. Install Debian's "
                "package with `sudo apt-get update && sudo apt-get install "
                "dataset-fashion-mnist`, or point data_home (or the "
                "SKTRANSFER_FASHION_MNIST variable) at a folder holding the IDX files."
            )
        files.append(found)
    images, labels = _read_idx(files[0]), _read_idx(files[1])
    return images.copy(), labels.astype(np.int64)


def blend_with_photos(images, photos=None, *, random_state=None) -> np.ndarray:
    """Blend grey images into random photo crops, as MNIST-M was built.

    Each image ``x`` becomes ``|crop - x|`` per colour channel, where ``crop`` is
    a random patch of the image's size from a random photo (Ganin et al., 2016).
    Labels are unchanged, so ``(images, y) -> (blended, y)`` is a labelled
    domain shift for domain adaptation.

    Parameters
    ----------
    images : array of shape (n, H, W)
        Grey images, uint8 or floats in [0, 1].
    photos : list of arrays (h, w, 3) or (h, w), default=None
        Photos to crop, uint8; at least ``H x W``. None uses scikit-learn's two
        sample photos (:func:`sklearn.datasets.load_sample_images`).
    random_state : int, RandomState or None, default=None
        Seed of the photo and crop choices.

    Returns
    -------
    blended : ndarray of shape (n, H, W, 3), uint8

    Examples
    --------
    >>> import numpy as np
    >>> from sktransfer.datasets import blend_with_photos
    >>> images = np.zeros((4, 28, 28), dtype=np.uint8)
    >>> blended = blend_with_photos(images, random_state=0)
    >>> blended.shape, blended.dtype, bool(blended.std() > 0)
    ((4, 28, 28, 3), dtype('uint8'), True)
    """
    from sklearn.utils import check_random_state

    images = np.asarray(images)
    if images.ndim != 3:
        raise ValueError(
            f"images must be grey images of shape (n, H, W); got shape {images.shape}."
        )
    if images.dtype != np.uint8:
        images = np.clip(np.rint(images.astype(np.float64) * 255), 0, 255)
    if photos is None:
        from sklearn.datasets import load_sample_images

        photos = load_sample_images().images
    photos = [np.asarray(p) for p in photos]
    photos = [
        np.repeat(p[..., None], 3, axis=2) if p.ndim == 2 else p[..., :3]
        for p in photos
    ]
    n, height, width = images.shape
    small = [p.shape for p in photos if p.shape[0] < height or p.shape[1] < width]
    if not photos or small:
        raise ValueError(
            f"photos must be at least {height}x{width} pixels to crop; got "
            f"{small or 'none'}."
        )
    rng = check_random_state(random_state)
    out = np.empty((n, height, width, 3), dtype=np.uint8)
    for i, which in enumerate(rng.randint(len(photos), size=n)):
        photo = photos[which]
        top = rng.randint(photo.shape[0] - height + 1)
        left = rng.randint(photo.shape[1] - width + 1)
        crop = photo[top : top + height, left : left + width].astype(np.int16)
        out[i] = np.abs(crop - images[i].astype(np.int16)[..., None])
    return out
