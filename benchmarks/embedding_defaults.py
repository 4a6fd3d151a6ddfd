"""Which stages and pooling make the extractor's default embedding.

Hypothesis
----------
The pooled final embedding is specialised to the source task, so across domains
(clothes -> digits) it loses even to raw pixels; mid-level stages transfer
better, and pooling them over a coarse grid (rather than over all positions)
keeps the layout that tells digits and garments apart. One rule, "the fourth-
and third-last stages on a 4 x 4 grid", should beat the final embedding and raw
pixels with every backbone and task here, not just one.

Tasks: scikit-learn's digits (5 stratified random splits, k = 5 and 10 labels
per class, tested on all other digits, as the quick start) and Fashion-MNIST
classes 5-9 (a pool of 3,000 training and 2,000 test images, k = 10 and 50, 3
seeds). Backbones: the clothes ResNet (the shipped ``fmnist_resnet`` on digits,
the benchmark's ResNet pretrained on classes 0-4 on Fashion) and ImageNet
EfficientNet-Lite0 at 64 px. Every candidate is ``pool_features`` of stage
outputs (what the extractor computes), followed by LogisticRegression.

Run: ``./dev bench embedding_defaults``. Results:
``benchmarks/results/embedding_defaults.{json,md}``.
"""

from __future__ import annotations

import sys
import time
import warnings
from pathlib import Path

import numpy as np
import torch
from sklearn.datasets import load_digits
from sklearn.exceptions import ConvergenceWarning
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import StratifiedShuffleSplit

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import RESULTS_DIR, write_results
from _transfer import fashion_mnist_split, pretrain_source, stages

from sktransfer._runtime import BackboneRuntime
from sktransfer.backbones import pool_features, resolve_backbone

NAME = "embedding_defaults"


def candidates(names: list[str]) -> dict:
    """Stage/pooling choices, named by rule so they apply to any backbone."""
    last3 = names[-4:-1]  # the three stages before the final pooled one
    mid = names[-4:-2]  # the fourth- and third-last: layer="mid"
    return {
        "final embedding (layer=None)": [(names[-1], "avg")],
        "last 3 stages, avgmax": [(n, "avgmax") for n in last3],
        "last 3 stages, gem": [(n, "gem") for n in last3],
        "last 3 stages, grid": [(n, "grid") for n in last3],
        "third-last stage, grid": [(names[-3], "grid")],
        "mid (4th+3rd-last), avg": [(n, "avg") for n in mid],
        "mid (4th+3rd-last), grid [default]": [(n, "grid") for n in mid],
        "third-last stage, flattened": [(names[-3], None)],
    }


@torch.inference_mode()
def stage_outputs(net, images: torch.Tensor) -> dict:
    runtime = BackboneRuntime(net.eval())
    outputs = {name: [] for name in net.stage_names}
    for start in range(0, len(images), 256):
        x = runtime.prepare(images[start : start + 256])
        for index, name in enumerate(net.stage_names):
            x = runtime.run(x, index, index + 1)
            outputs[name].append(x)
    return {name: torch.cat(parts) for name, parts in outputs.items()}


def features(outputs: dict, spec) -> np.ndarray:
    parts = [pool_features(outputs[name], pooling) for name, pooling in spec]
    return torch.cat(parts, dim=1).double().numpy()


def score(X, y, splits) -> list[float]:
    return [
        LogisticRegression(max_iter=3000).fit(X[tr], y[tr]).score(X[te], y[te])
        for tr, te in splits
    ]


def digits_splits(y):
    return {
        k: list(
            StratifiedShuffleSplit(5, train_size=10 * k, random_state=0).split(y, y)
        )
        for k in (5, 10)
    }


def fashion_data():
    X_pool, y_pool = fashion_mnist_split((5, 6, 7, 8, 9), "train")
    X_test, y_test = fashion_mnist_split((5, 6, 7, 8, 9), "test")
    rng = np.random.RandomState(0)
    pool = rng.choice(len(y_pool), 3000, replace=False)
    test = rng.choice(len(y_test), 2000, replace=False)
    X = np.concatenate([X_pool[pool], X_test[test]]) / 255.0
    y = np.concatenate([y_pool[pool], y_test[test]])
    splits = {}
    for k in (10, 50):
        splits[k] = []
        for seed in range(3):
            r = np.random.RandomState(seed)
            train = np.concatenate(
                [
                    r.choice(np.flatnonzero(y[:3000] == c), k, replace=False)
                    for c in range(5, 10)
                ]
            )
            splits[k].append((train, np.arange(3000, 5000)))
    return X, y, splits


def main() -> None:
    warnings.filterwarnings("ignore", category=ConvergenceWarning)
    start = time.perf_counter()
    source = pretrain_source(epochs=3)
    digits = load_digits()
    X_fashion, y_fashion, fashion_splits = fashion_data()
    settings = [
        ("digits", "fmnist_resnet", digits.images / 16.0, digits.target,
         digits_splits(digits.target),
         lambda: resolve_backbone("fmnist_resnet", "DEFAULT")),
        ("digits", "efficientnet_lite0 64px", digits.images / 16.0, digits.target,
         digits_splits(digits.target),
         lambda: resolve_backbone("efficientnet_lite0", "DEFAULT", image_size=64)),
        ("fashion 5-9", "ResNet from classes 0-4", X_fashion, y_fashion,
         fashion_splits,
         lambda: resolve_backbone(
             stages(5), source["backbone_weights"], image_size=28)),
        ("fashion 5-9", "efficientnet_lite0 64px", X_fashion, y_fashion,
         fashion_splits,
         lambda: resolve_backbone("efficientnet_lite0", "DEFAULT", image_size=64)),
    ]  # fmt: skip
    records = []
    for task, backbone, X, y, splits, build in settings:
        images = torch.as_tensor(X, dtype=torch.float32)[:, None]
        net = build()
        outputs = stage_outputs(net, images)
        rows = {"raw pixels": images.flatten(1).double().numpy()}
        for name, spec in candidates(net.stage_names).items():
            rows[name] = features(outputs, spec)
        for name, matrix in rows.items():
            for k, k_splits in splits.items():
                accuracy = score(matrix, y, k_splits)
                records.append(
                    dict(
                        column=f"{task}, {backbone}, k={k}",
                        task=task,
                        backbone=backbone,
                        candidate=name,
                        k=k,
                        width=int(matrix.shape[1]),
                        accuracy_mean=round(float(np.mean(accuracy)), 4),
                        accuracy_std=round(float(np.std(accuracy)), 4),
                    )
                )
                print(f"{task:<12} {backbone:<24} k={k:<3} {name:<38} "
                      f"{np.mean(accuracy):.3f}", flush=True)  # fmt: skip
    payload = {
        "hypothesis": __doc__.split("Hypothesis\n----------\n")[1].split("\n\n")[0],
        "records": records,
        "total_seconds": round(time.perf_counter() - start, 1),
    }
    write_results(NAME, payload)
    columns = list(dict.fromkeys((r["task"], r["backbone"], r["k"]) for r in records))
    names = list(dict.fromkeys(r["candidate"] for r in records))
    cell = {(r["task"], r["backbone"], r["k"], r["candidate"]): r for r in records}
    lines = [
        "| candidate | " + " | ".join(f"{t}, {b}, k={k}" for t, b, k in columns) + " |",
        "|---|" + "---:|" * len(columns),
    ]
    for name in names:
        cells = [f"{cell[(*c, name)]['accuracy_mean']:.3f}" for c in columns]
        lines.append(f"| {name} | " + " | ".join(cells) + " |")
    (RESULTS_DIR / f"{NAME}.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
