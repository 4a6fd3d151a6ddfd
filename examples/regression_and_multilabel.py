"""
Numbers and several labels: FineTuneRegressor and multi-label classification
============================================================================

Transfer learning is not only for one class per image. This example uses the
``fmnist_resnet`` backbone shipped with sktransfer (offline, CPU) on
scikit-learn's digits for two other kinds of target:

* **regression**: each digit is turned by a random angle, and
  :class:`~sktransfer.FineTuneRegressor` predicts the angle in degrees;
* **multi-label classification**: each digit carries three yes/no tags (odd,
  five or more, has a closed loop), given to
  :class:`~sktransfer.FineTuneClassifier` as a 0/1 indicator matrix.

Both are compared with the classical baseline on raw pixels. Runs in about a
minute on 2 CPU cores: ``./dev python examples/regression_and_multilabel.py``.
"""

# %%
import numpy as np
from scipy.ndimage import rotate
from sklearn.datasets import load_digits
from sklearn.linear_model import LogisticRegression, RidgeCV
from sklearn.metrics import f1_score
from sklearn.multiclass import OneVsRestClassifier

from sktransfer import FineTuneClassifier, FineTuneRegressor

X, digit = load_digits(return_X_y=True)
images = X.reshape(-1, 8, 8) / 16.0
rng = np.random.RandomState(0)

# %%
# Regression: how far is the digit turned?
# ------------------------------------------
# Targets are plain numbers (degrees). They are standardised inside ``fit``
# and restored by ``predict``, so their units do not matter.
angle = rng.uniform(-45, 45, size=len(images))
turned = np.stack(
    [rotate(im, a, reshape=False, order=1) for im, a in zip(images, angle)]
).clip(0, 1)
train, test = np.arange(300), np.arange(1000, 1797)

flat = turned.reshape(len(turned), -1)
pixels = RidgeCV(alphas=np.logspace(-3, 3, 13)).fit(flat[train], angle[train])
print(f"ridge on pixels: R^2 = {pixels.score(flat[test], angle[test]):.3f}")
for freeze in ["all", "auto"]:
    reg = FineTuneRegressor(
        "fmnist_resnet", freeze=freeze, device="cpu", random_state=0, verbose=0
    )
    reg.fit(turned[train], angle[train])
    print(
        f"FineTuneRegressor(freeze={freeze!r}): R^2 = "
        f"{reg.score(turned[test], angle[test]):.3f} (freeze_ = {reg.freeze_!r})"
    )

# %%
# Multi-label: several yes/no tags per digit
# ------------------------------------------
# ``y`` is an indicator matrix, as ``MultiLabelBinarizer`` makes: one column per
# tag. The network gets one sigmoid per tag, ``predict`` returns the matrix and
# ``predict_proba`` each tag's probability.
tags = np.stack([digit % 2 == 1, digit >= 5, np.isin(digit, [0, 6, 8, 9])], axis=1)
tags = tags.astype(int)
few = np.arange(100)  # 100 labelled digits

baseline = OneVsRestClassifier(LogisticRegression(max_iter=2000))
baseline.fit(X[few], tags[few])
print(
    "one-vs-rest LR on pixels: micro-F1 = "
    f"{f1_score(tags[test], baseline.predict(X[test]), average='micro'):.3f}"
)
clf = FineTuneClassifier("fmnist_resnet", device="cpu", random_state=0, verbose=0)
clf.fit(images[few], tags[few])
predicted = clf.predict(images[test])
print(
    "FineTuneClassifier: micro-F1 = "
    f"{f1_score(tags[test], predicted, average='micro'):.3f} "
    f"(freeze_ = {clf.freeze_!r}); probabilities of the first digit: "
    f"{clf.predict_proba(images[:1]).round(2)}"
)
