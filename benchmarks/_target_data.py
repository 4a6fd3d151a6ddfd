"""Real data with targets beyond one class label, available offline.

Three tasks for ``beyond_one_label.py``:

``fashion_zoom`` (image regression)
    Fashion-MNIST images (Debian's ``dataset-fashion-mnist``, every class; its
    objects are cropped so that their longer side spans the 28 px frame, so
    the scale of an image is visible in each class). Each image is shrunk by a
    factor ``s ~ U[0.5, 1.0]`` about its centre, the border padded with 0, the
    frame kept at 28 x 28; the target is ``s``. The resampling is bilinear on
    a 4x (nearest) upsampled copy followed by 4 x 4 average pooling: close to
    area resampling, anti-aliased, the identity at ``s = 1``, and ``s`` stays
    continuous rather than rounded to whole pixels. Training
    images come from the 60,000 training images, the test images from the
    10,000 test images (100 per class).
``vader_rating`` (text regression)
    The VADER ground-truth snippets of ``_text_data.py`` (movie-review
    sentences); the target is the mean human valence rating in [-4, 4].
``debtags`` (multi-label text)
    Debian package descriptions (short and long, English) and their debtags,
    read at benchmark time from this machine's apt lists: ``apt-cache
    dumpavail`` gives ``Package``, ``Description-md5`` and ``Tag``; the long
    descriptions come from Debian's ``Translation-en`` index of the same
    sources (the lists here are configured without it), fetched once with
    ``apt-get update -o Acquire::Languages=en`` into a private lists folder
    under ``$SKTRANSFER_DATA`` (default ``~/.cache/sktransfer``) and matched
    by ``(Package, Description-md5)``. See :data:`LABEL_FACETS` for the labels.
"""

from __future__ import annotations

import collections
import hashlib
import os
import re
import shutil
import subprocess
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from _text_data import GENRES, _rated

from sktransfer.datasets import load_fashion_mnist

# ------------------------------------------------------------- fashion_zoom
ZOOM_RANGE = (0.5, 1.0)
ZOOM_TEST_PER_CLASS = 100
_SUPERSAMPLE = 4


def zoom_images(images: np.ndarray, scales: np.ndarray) -> np.ndarray:
    """Shrink each 28 x 28 uint8 image by its scale about the centre (0 pad)."""
    x = torch.as_tensor(images).float().unsqueeze(1) / 255
    size = x.shape[-1] * _SUPERSAMPLE
    x = F.interpolate(x, size=(size, size), mode="nearest")
    theta = torch.zeros(len(x), 2, 3)
    inverse = torch.as_tensor(1 / np.asarray(scales, dtype=np.float32))
    theta[:, 0, 0] = theta[:, 1, 1] = inverse  # output point u samples u / s
    grid = F.affine_grid(theta, list(x.shape), align_corners=False)
    x = F.grid_sample(
        x, grid, mode="bilinear", padding_mode="zeros", align_corners=False
    )
    x = F.avg_pool2d(x, _SUPERSAMPLE)
    return (x.squeeze(1).clamp(0, 1) * 255).round().byte().numpy()


def _zoomed(images: np.ndarray, rng: np.random.Generator):
    scales = rng.uniform(*ZOOM_RANGE, size=len(images))
    return zoom_images(images, scales), scales


def fashion_zoom_test() -> tuple[np.ndarray, np.ndarray]:
    """The fixed test set: 100 zoomed test images per class and their scales."""
    X, y = load_fashion_mnist("test")
    rng = np.random.default_rng(12345)
    picks = np.sort(
        np.concatenate(
            [
                rng.choice(np.flatnonzero(y == c), ZOOM_TEST_PER_CLASS, replace=False)
                for c in np.unique(y)
            ]
        )
    )
    return _zoomed(X[picks], rng)


def fashion_zoom_train(n: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """``n`` training images drawn at random (any class) with fresh scales."""
    X, _ = load_fashion_mnist("train")
    rng = np.random.default_rng([seed, n])
    picks = np.sort(rng.choice(len(X), n, replace=False))
    return _zoomed(X[picks], rng)


# ------------------------------------------------------------- vader_rating
RATING_TEST = 600


def vader_ratings() -> tuple[list[str], np.ndarray]:
    """Movie-review sentences and their mean human rating, duplicates dropped."""
    rated = dict(_rated(GENRES["movie review"]))  # a repeated text keeps one rating
    return list(rated), np.array(list(rated.values()))


def held_out_split(n_rows: int, n_test: int) -> tuple[np.ndarray, np.ndarray]:
    """A fixed test set and the pool training rows are drawn from."""
    rng = np.random.default_rng(12345)
    order = rng.permutation(n_rows)
    return np.sort(order[:n_test]), np.sort(order[n_test:])


def draw(pool: np.ndarray, n: int, seed: int) -> np.ndarray:
    """``n`` rows of ``pool`` drawn with ``seed`` (nested seeds per size)."""
    return np.sort(np.random.default_rng([seed, n]).choice(pool, n, replace=False))


# ------------------------------------------------------------------ debtags
# Facets that say what a package is for or works with, which its description
# informs. Left out as administrative or predictable from the package's name
# and section rather than its text: role:: (shared-lib, program, ...),
# interface::, uitoolkit::, x11::, implemented-in::, devel:: (mostly
# devel::library and devel::lang:perl of lib*-perl packages), suite::,
# scope::, made-of::, culture::, iso15924::, special::, and any *TODO tag.
LABEL_FACETS = (
    "use",
    "works-with",
    "field",
    "game",
    "network",
    "admin",
    "security",
    "sound",
)
N_LABELS = 20
# Facets left out above, for a multi-label task that no tuning has seen
# (``label_set_weights``): 15 labels, 1.75 per text.
HELD_OUT_FACETS = ("interface", "implemented-in", "uitoolkit")
DEBTAGS_TEST = 1000
_TRANSLATION_GLOB = "*_i18n_Translation-en*"


def _apt_data_dir() -> Path:
    folder = Path(os.environ.get("SKTRANSFER_DATA", "~/.cache/sktransfer"))
    return folder.expanduser() / "apt-translation-en"


def _translation_files() -> list[Path]:
    """Debian's ``Translation-en`` indexes: the machine's, else fetched once."""
    system = sorted(Path("/var/lib/apt/lists").glob(_TRANSLATION_GLOB))
    if system:
        return system
    root = _apt_data_dir()
    lists = root / "lists"
    found = sorted(lists.glob(_TRANSLATION_GLOB))
    if found:
        return found
    for folder in (lists / "partial", root / "cache" / "archives" / "partial"):
        folder.mkdir(parents=True, exist_ok=True)
    command = ["apt-get", "update", "-qq", "-o", f"Dir::State::Lists={lists}"]
    command += ["-o", f"Dir::Cache={root / 'cache'}", "-o", "Acquire::Languages=en"]
    print("fetching Debian's English descriptions once:", " ".join(command))
    subprocess.run(command, check=True, capture_output=True)
    shutil.rmtree(root / "cache", ignore_errors=True)
    return sorted(lists.glob(_TRANSLATION_GLOB))


def _read_index(path: Path) -> str:
    """Text of an apt index file, decompressed by apt itself (lz4, gz, xz)."""
    helper = "/usr/lib/apt/apt-helper"
    result = subprocess.run(
        [helper, "cat-file", str(path)], check=True, capture_output=True
    )
    return result.stdout.decode("utf-8", "replace")


def _stanzas(text: str):
    """Each stanza of a Debian control file as a {field: value} dict."""
    for block in text.split("\n\n"):
        fields: dict[str, str] = {}
        key = None
        for line in block.splitlines():
            if line[:1] in (" ", "\t") and key is not None:
                fields[key] += "\n" + line
            elif ":" in line:
                key, value = line.split(":", 1)
                fields[key] = value.strip()
        if fields:
            yield fields


def _long_descriptions() -> dict[tuple[str, str], str]:
    """``(package, description md5) -> description`` of Translation-en."""
    found = {}
    for path in _translation_files():
        for fields in _stanzas(_read_index(path)):
            if "Description-en" in fields and "Description-md5" in fields:
                key = (fields["Package"], fields["Description-md5"])
                found[key] = fields["Description-en"]
    return found


def _clean(description: str) -> str:
    """Short description, then the long one: one paragraph, ``.`` lines dropped."""
    short, *rest = [line.strip() for line in description.splitlines()]
    body = " ".join(line for line in rest if line and line != ".")
    return f"{short.rstrip('.')}. {body}" if body else short


def _tags(value: str) -> set[str]:
    return {tag.strip() for tag in value.replace("\n", " ").split(",") if tag.strip()}


def _is_label(tag: str, facets: tuple[str, ...]) -> bool:
    return tag.split("::")[0] in facets and "TODO" not in tag


def debtags_packages(
    facets: tuple[str, ...] = LABEL_FACETS,
) -> tuple[list[str], list[set[str]], dict]:
    """Tagged packages' (description, candidate label tags), one per text.

    Packages whose description has no Translation-en match are skipped; a text
    shared by several packages keeps the first package's (by name) tags.
    """
    dump = subprocess.run(
        ["apt-cache", "dumpavail"], check=True, capture_output=True
    ).stdout.decode("utf-8", "replace")
    long = _long_descriptions()
    tagged = unmatched = 0
    by_text: dict[str, set[str]] = {}
    for fields in sorted(_stanzas(dump), key=lambda f: f.get("Package", "")):
        if "Tag" not in fields:
            continue
        tagged += 1
        key = (fields["Package"], fields.get("Description-md5", ""))
        if key not in long:
            unmatched += 1
            continue
        text = _clean(long[key])
        labels = {t for t in _tags(fields["Tag"]) if _is_label(t, facets)}
        by_text.setdefault(text, labels)
    info = {
        "packages_with_tags": tagged,
        "without_long_description": unmatched,
        "distinct_descriptions": len(by_text),
        "apt_lists_sha256": _lists_digest(),
    }
    return list(by_text), list(by_text.values()), info


def _lists_digest() -> str:
    """Which apt lists the data came from: SHA-256 of their InRelease files."""
    digest = hashlib.sha256()
    for path in sorted(Path("/var/lib/apt/lists").glob("*InRelease")):
        digest.update(path.read_bytes())
    return digest.hexdigest()[:16]


def load_debtags(
    facets: tuple[str, ...] = LABEL_FACETS, n_labels: int = N_LABELS
) -> tuple[list[str], np.ndarray, list[str], dict]:
    """Texts, their (n, n_labels) 0/1 label matrix, the label names, and counts.

    Labels are the ``n_labels`` most frequent tags of ``facets``; the texts
    are the deduplicated descriptions carrying at least one of them.
    """
    texts, tags, info = debtags_packages(facets)
    counts = collections.Counter(tag for row in tags for tag in row)
    labels = sorted(counts, key=lambda tag: (-counts[tag], tag))[:n_labels]
    Y = np.array([[tag in row for tag in labels] for row in tags], dtype=np.int64)
    keep = Y.any(axis=1)
    texts = [text for text, kept in zip(texts, keep) if kept]
    info = {**info, "with_a_label": int(keep.sum())}
    return texts, Y[keep], labels, info


def every_label_varies(Y: np.ndarray) -> bool:
    """Whether every label (column) of ``Y`` is on in some rows, off in others."""
    on = Y.sum(axis=0)
    return bool(np.all((on > 0) & (on < len(Y))))


def multilabel_draw(Y: np.ndarray, pool: np.ndarray, n: int, seed: int):
    """``n`` rows of ``pool`` in which every label is on and off.

    Draws are repeated from the same seeded stream until one qualifies, so a
    training set is a uniform draw conditioned on that. Returns the rows and
    the number of draws it took.
    """
    rng = np.random.default_rng([seed, n])
    for attempt in range(1, 1001):
        rows = np.sort(rng.choice(pool, n, replace=False))
        if every_label_varies(Y[rows]):
            return rows, attempt
    raise RuntimeError(f"no draw of {n} rows has every label on and off")


def fashion_mosaics(n: int, rng: np.random.Generator, split: str):
    """``n`` 56 x 56 mosaics of Fashion-MNIST ``split`` items, their 0/1 classes.

    Each quarter holds a random item with probability 0.5 (else stays
    black); the labels say which of the 10 classes appear (about 1.9 per
    mosaic, each class in about a fifth of them).
    """
    items, classes = load_fashion_mnist(split)
    mosaics = np.zeros((n, 56, 56), np.uint8)
    labels = np.zeros((n, 10), np.int64)
    for i in range(n):
        for quarter in range(4):
            if rng.random() < 0.5:
                pick = rng.integers(len(items))
                row, col = divmod(quarter, 2)
                mosaics[i, 28 * row : 28 * row + 28, 28 * col : 28 * col + 28] = items[
                    pick
                ]
                labels[i, classes[pick]] = 1
    return mosaics, labels


def median_words(texts) -> float:
    """Median number of words of ``texts`` (for reporting their lengths)."""
    return float(np.median([len(re.findall(r"\w+", text)) for text in texts]))
