"""Loaders for real image data that is available offline.

Fashion-MNIST comes from Debian's ``dataset-fashion-mnist`` package (IDX files
under ``/usr/share/datasets/fashion-mnist``); nothing is downloaded.
"""

from __future__ import annotations

import gzip
import os
from pathlib import Path

import numpy as np

__all__ = ["load_fashion_mnist", "FASHION_MNIST_CLASSES"]

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
