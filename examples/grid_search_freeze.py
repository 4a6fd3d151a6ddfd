"""
Grid search over freeze depth
=============================

How many pretrained stages should stay frozen? ``freeze`` is a plain
hyperparameter, so scikit-learn's ``GridSearchCV`` answers it by cross-validation
on the training labels only; the held-out test set is touched once, at the end.

Target task: scikit-learn's 8x8 digits with 30 labels per class. Backbone: the
``fmnist_resnet`` shipped with sktransfer (pretrained on Fashion-MNIST clothes), so
this runs offline, in a few minutes on 2 CPU cores. Run it with
``./dev python examples/grid_search_freeze.py``.
"""

# %%
import time

import numpy as np
import pandas as pd
from sklearn.datasets import load_digits
from sklearn.model_selection import GridSearchCV, StratifiedKFold, train_test_split

from sktransfer import FineTuneClassifier

digits = load_digits()
X, y = digits.images / 16.0, digits.target
X_train, X_test, y_train, y_test = train_test_split(
    X, y, train_size=300, stratify=y, random_state=0
)

# %%
# ``freeze=0`` fine-tunes every stage, ``"all"`` trains the head only (solved
# exactly as a logistic regression). The backbone has 6 stages: stem, layer1-4, pool.
clf = FineTuneClassifier(
    "fmnist_resnet", max_epochs=8, batch_size=32, device="cpu", random_state=0
)
grid = GridSearchCV(
    clf,
    {"freeze": [0, 2, 3, "all"], "lr": [1e-3, 3e-3]},
    cv=StratifiedKFold(3, shuffle=True, random_state=0),
    n_jobs=1,
)
start = time.perf_counter()
grid.fit(X_train, y_train)
elapsed = time.perf_counter() - start

# %%
results = pd.DataFrame(grid.cv_results_)
table = results[
    [
        "param_freeze",
        "param_lr",
        "mean_test_score",
        "std_test_score",
        "mean_fit_time",
        "rank_test_score",
    ]
].sort_values("rank_test_score")
print(table.to_string(index=False, float_format=lambda v: f"{v:.4g}"))
print(f"\nbest: {grid.best_params_}, cv accuracy {grid.best_score_:.3f}")
print(f"held-out accuracy of the refitted best model: {grid.score(X_test, y_test):.3f}")
print(f"grid search wall time: {elapsed:.0f}s ({len(results) * 3} fits + refit)")
np.testing.assert_equal(grid.best_estimator_.classes_, np.arange(10))
