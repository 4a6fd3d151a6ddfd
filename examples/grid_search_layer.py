"""
Grid search over the layer to embed with
========================================

Which stage of a pretrained backbone gives the best features for a new task, and
how should its feature maps become vectors? ``layer`` and ``pooling`` are plain
hyperparameters of :class:`~sktransfer.PretrainedFeatureExtractor`, so
scikit-learn's ``GridSearchCV`` answers by cross-validation on the training
labels only; the held-out images are scored once, at the end.

Target task: scikit-learn's 8x8 digits with 20 labels per class. Backbone: the
``fmnist_resnet`` shipped with sktransfer (pretrained on Fashion-MNIST clothes),
so this runs offline, in well under a minute on 2 CPU cores. Run it with
``./dev python examples/grid_search_layer.py``.
"""

# %%
import time

import numpy as np
from sklearn.base import clone
from sklearn.datasets import load_digits
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import GridSearchCV, StratifiedKFold, train_test_split
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import StandardScaler

from sktransfer import PretrainedFeatureExtractor

digits = load_digits()
X, y = digits.images / 16.0, digits.target  # (1797, 8, 8) images in [0, 1]
X_train, X_test, y_train, y_test = train_test_split(
    X, y, train_size=20 * 10, stratify=y, random_state=0
)
print(f"{len(X_train)} training images (20 per class), {len(X_test)} held out")

# %%
# The grid
# --------
# The stages of ``fmnist_resnet`` are stem, layer1 ... layer4 and pool (layer1,
# at full resolution, is left out to keep this quick). For the intermediate
# stages, ``pooling`` reduces each feature map to its mean or max
# (one value per channel) or, with None, keeps every position (flattened).
# ``layer=None`` is the final embedding, already pooled, so it needs no pooling.
# Standardising the embeddings lets the logistic regression converge in fewer
# iterations.
pipe = Pipeline(
    [
        ("embed", PretrainedFeatureExtractor("fmnist_resnet", device="cpu")),
        ("scale", StandardScaler()),
        ("clf", LogisticRegression(max_iter=3000)),
    ]
)
param_grid = [
    {"embed__layer": [None]},
    {
        "embed__layer": ["layer2", "layer3", "layer4"],
        "embed__pooling": ["avg", "max", None],
    },
]
grid = GridSearchCV(
    pipe, param_grid, cv=StratifiedKFold(3, shuffle=True, random_state=0)
)
start = time.perf_counter()
grid.fit(X_train, y_train)
elapsed = time.perf_counter() - start

# %%
# Results, best first
# -------------------
results = grid.cv_results_
print(f"{'rank':>4}  {'layer':<7} {'pooling':<8} {'features':>8}  cv accuracy")
for i in np.argsort(results["rank_test_score"], kind="stable"):
    params = results["params"][i]
    layer = params["embed__layer"] or "final"
    pooling = params.get("embed__pooling", "-") or "flatten"
    # Width of the embedding: a fresh extractor with these parameters, fitted on
    # one image (fitting only loads the backbone).
    embed = clone(pipe).set_params(**params).named_steps["embed"]
    width = embed.fit(X_train[:1]).n_features_out_
    print(
        f"{results['rank_test_score'][i]:>4}  {layer:<7} {pooling:<8} {width:>8}  "
        f"{results['mean_test_score'][i]:.3f} ± {results['std_test_score'][i]:.3f}"
    )

# %%
# The refitted best pipeline on the held-out digits
# -------------------------------------------------
best = grid.best_params_
print(f"\nbest: layer={best['embed__layer']!r}, pooling={best.get('embed__pooling')!r}")
print(f"held-out accuracy: {grid.score(X_test, y_test):.3f}")
n_fits = len(results["params"]) * grid.n_splits_ + 1
print(f"grid search: {n_fits} fits in {elapsed:.0f}s")
