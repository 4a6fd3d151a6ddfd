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
    "movieReviewSnippets_GroundTruth.txt from the vaderSentiment 3.3.2 sdist on "
    "PyPI (MIT; Hutto & Gilbert, ICWSM 2014; sentences of Pang & Lee 2005)"
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


def load_movie_snippets() -> tuple[list[str], np.ndarray]:
    """(texts, labels "pos"/"neg") of the 10,6xx rated movie-review sentences."""
    with tarfile.open(_sdist()) as outer:
        inner = io.BytesIO(outer.extractfile(INNER).read())
    with tarfile.open(fileobj=inner) as data:
        member = "hutto_ICWSM_2014/movieReviewSnippets_GroundTruth.txt"
        raw = data.extractfile(member).read().decode("utf-8")
    texts, labels = [], []
    for line in raw.splitlines():
        parts = line.strip().split("\t")
        if len(parts) != 3 or float(parts[1]) == 0:
            continue
        texts.append(parts[2])
        labels.append("pos" if float(parts[1]) > 0 else "neg")
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
