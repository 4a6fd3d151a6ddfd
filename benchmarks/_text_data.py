"""Real labelled text available offline: the VADER ground-truth sentiment snippets.

The source distribution of ``vaderSentiment`` 3.3.2 on PyPI (MIT licence, C.J.
Hutto) ships ``additional_resources/hutto_ICWSM_2014.tar.gz``, the data of
Hutto & Gilbert, "VADER: A Parsimonious Rule-based Model for Sentiment Analysis
of Social Media Text", ICWSM 2014. Its ``movieReviewSnippets_GroundTruth.txt``
holds 10,605 sentences of Rotten Tomatoes reviews (the sentence polarity data of
Pang & Lee, 2005), each with the mean of human valence ratings in [-4, 4]. A
positive mean is labelled ``"pos"``, a negative one ``"neg"`` (the few zeros are
dropped). The sdist is fetched once with pip, the ordinary PyPI client, into
``$SKTRANSFER_DATA`` (default ``~/.cache/sktransfer``), and checked by SHA-256.
"""

from __future__ import annotations

import hashlib
import io
import os
import subprocess
import sys
import tarfile
from pathlib import Path

import numpy as np

SDIST = "vaderSentiment-3.3.2.tar.gz"
SHA256 = "5d7c06e027fc8b99238edb0d53d970cf97066ef97654009890b83703849632f9"
INNER = "vaderSentiment-3.3.2/additional_resources/hutto_ICWSM_2014.tar.gz"
SOURCE = (
    "the *_GroundTruth.txt snippets of the vaderSentiment 3.3.2 sdist on PyPI "
    "(MIT; Hutto & Gilbert, ICWSM 2014): movie-review sentences (Pang & Lee "
    "2005), Amazon product reviews, NYT editorials and tweets"
)


def _sdist() -> Path:
    folder = Path(os.environ.get("SKTRANSFER_DATA", "~/.cache/sktransfer")).expanduser()
    path = folder / SDIST
    if not path.exists():
        folder.mkdir(parents=True, exist_ok=True)
        command = [sys.executable, "-m", "pip", "download", "--no-deps"]
        command += ["--no-binary", ":all:", "vaderSentiment==3.3.2", "-d", str(folder)]
        print("fetching the data once:", " ".join(command), flush=True)
        subprocess.run(command, check=True, capture_output=True)
    digest = hashlib.sha256(path.read_bytes()).hexdigest()
    if digest != SHA256:
        raise RuntimeError(f"{path} has SHA-256 {digest}, expected {SHA256}.")
    return path


# File of each genre in the archive.
GENRES = {
    "movie review": "movieReviewSnippets",
    "product review": "amazonReviewSnippets",
    "news editorial": "nytEditorialSnippets",
    "tweet": "tweets",
}


def _rated(stem: str) -> list[tuple[str, float]]:
    """(text, mean human valence) of one ground-truth file."""
    with tarfile.open(_sdist()) as outer:
        inner = io.BytesIO(outer.extractfile(INNER).read())
    with tarfile.open(fileobj=inner) as data:
        member = f"hutto_ICWSM_2014/{stem}_GroundTruth.txt"
        raw = data.extractfile(member).read().decode("utf-8", "replace")
    rows = []
    for line in raw.splitlines():
        parts = line.strip().split("\t")
        if len(parts) == 3 and parts[2].strip():
            rows.append((parts[2].strip(), float(parts[1])))
    return rows


def load_movie_snippets() -> tuple[list[str], np.ndarray]:
    """Sentiment: (texts, "pos"/"neg") of the ~10.6k rated movie-review sentences."""
    rows = [(text, score) for text, score in _rated(GENRES["movie review"]) if score]
    texts = [text for text, _ in rows]
    return texts, np.array(["pos" if score > 0 else "neg" for _, score in rows])


def load_genres() -> tuple[list[str], np.ndarray]:
    """Genre: (texts, one of GENRES) of all ~23.7k rated snippets of the 4 files."""
    texts, labels = [], []
    for genre, stem in GENRES.items():
        rows = _rated(stem)
        texts += [text for text, _ in rows]
        labels += [genre] * len(rows)
    return texts, np.array(labels)


def few_shot_split(
    labels: np.ndarray, per_class: int, seed: int, pool: np.ndarray
) -> np.ndarray:
    """``per_class`` training positions of each class, drawn from ``pool``."""
    rng = np.random.default_rng(seed)
    chosen = [
        rng.choice(pool[labels[pool] == label], per_class, replace=False)
        for label in np.unique(labels)
    ]
    return np.concatenate(chosen)
