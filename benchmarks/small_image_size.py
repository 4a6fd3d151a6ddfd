"""
Input size for small images: how far should an ImageNet network upscale them?
=============================================================================

Hypothesis: an ImageNet network's 224 px recipe applied to 8x8 or 28x28 images
costs about 10x the time of 64 px and buys no accuracy, so ``image_size=None``
should upscale small images only a little (to a bounded size).

Method: the default backbone (EfficientNet-Lite0, ImageNet weights, frozen) embeds
images resized straight to each candidate size; a ``LogisticRegression`` on the
extractor's default embedding (whatever ``layer`` and ``pooling`` default to) is
trained on a few labels per class and tested on held-out
images. Tasks: scikit-learn's 8x8 digits (20 labels per class, 500 test images)
and a few hundred Fashion-MNIST test images (20 per class for training, 300 for
testing; skipped without Debian's ``dataset-fashion-mnist``). Time: wall seconds
of ``transform`` per 100 images (one torch thread). Writes
``benchmarks/results/small_image_size.json``; run with
``./dev bench small_image_size`` (a few minutes on 2 CPU cores).
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

import numpy as np
import torch
from sklearn.datasets import load_digits
from sklearn.linear_model import LogisticRegression

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import markdown_table, write_results

from sktransfer import PretrainedFeatureExtractor

SIZES = (32, 64, 96, 128, 224)
LABELS_PER_CLASS = 20


def split(X, y, n_train, n_test, seed=0):
    rng = np.random.default_rng(seed)
    train = np.concatenate(
        [rng.choice(np.flatnonzero(y == c), n_train, replace=False) for c in range(10)]
    )
    rest = np.setdiff1d(np.arange(len(y)), train)
    test = rng.choice(rest, n_test, replace=False)
    return X[train], y[train], X[test], y[test]


def tasks():
    digits = load_digits()
    yield "digits 8x8", split(digits.images / 16.0, digits.target, 20, 500)
    try:
        from sktransfer.datasets import load_fashion_mnist

        X, y = load_fashion_mnist("test")
    except FileNotFoundError as exc:
        print(f"Fashion-MNIST skipped: {exc}")
        return
    yield "Fashion-MNIST 28x28", split(X / 255.0, y, 20, 300)


def main() -> None:
    torch.set_num_threads(1)
    rows = []
    for task, (X_train, y_train, X_test, y_test) in tasks():
        for size in SIZES:
            extractor = PretrainedFeatureExtractor(
                "efficientnet_lite0", image_size=size, device="cpu"
            ).fit(X_train)
            start = time.perf_counter()
            test_features = extractor.transform(X_test)
            per_100 = (time.perf_counter() - start) / len(X_test) * 100
            model = LogisticRegression(max_iter=2000)
            model.fit(extractor.transform(X_train), y_train)
            accuracy = model.score(test_features, y_test)
            rows.append(
                {
                    "task": task,
                    "image_size": size,
                    "accuracy": round(float(accuracy), 3),
                    "seconds_per_100_images": round(per_100, 2),
                }
            )
            print(rows[-1], flush=True)
    columns = ["task", "image_size", "accuracy", "seconds_per_100_images"]
    print(markdown_table(rows, columns))
    write_results(
        "small_image_size",
        {
            "labels_per_class": LABELS_PER_CLASS,
            "rows": rows,
        },
    )


if __name__ == "__main__":
    main()
