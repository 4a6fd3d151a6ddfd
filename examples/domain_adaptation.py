"""
Domain adaptation: labelled clean images, unlabelled photo-blended ones
=======================================================================

A classifier trained on clean grey digits is deployed on digits blended into
photo crops (the MNIST-M recipe, :func:`sktransfer.datasets.blend_with_photos`).
The deployment images are available, their labels are not. Following skada's
conventions, they join the training set with the label ``-1`` and a negative
``sample_domain``; the adaptation uses them without labels.

Compared: source-only training, skada's CORAL on frozen features, and Deep CORAL
while fine-tuning. The target labels are used only to score. The backbone is the
``fmnist_resnet`` shipped with sktransfer, so this runs offline in about a minute
on 2 CPU cores: ``./dev python examples/domain_adaptation.py``.
"""

# %%
import numpy as np
from sklearn.datasets import load_digits
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import make_pipeline

from sktransfer import FineTuneClassifier, PretrainedFeatureExtractor
from sktransfer.datasets import blend_with_photos

digits = load_digits()
X, y = digits.images / 16.0, digits.target
rng = np.random.RandomState(0)
order = rng.permutation(len(y))
source, target = order[:800], order[800:]

# Source: grey digits as 3 equal channels. Target: the other digits blended
# into crops of scikit-learn's sample photos (colour).
X_source = np.repeat((X[source] * 255).astype(np.uint8)[..., None], 3, axis=3)
X_target = blend_with_photos(X[target], random_state=0)
y_target = y[target]  # for scoring only

X_all = np.concatenate([X_source, X_target])
y_all = np.concatenate([y[source], np.full(len(target), -1)])  # -1: no label
sample_domain = np.where(y_all >= 0, 1, -1)  # skada: source > 0, target < 0

# %%
# Frozen features: source only, then skada's CORAL
# ------------------------------------------------
# ``PretrainedFeatureExtractor`` is an ordinary transformer, so it is the first
# step of skada's ``make_da_pipeline``; ``sample_domain`` is routed to CORAL.
scores = {}
extractor = PretrainedFeatureExtractor("fmnist_resnet", device="cpu")
plain = make_pipeline(extractor, LogisticRegression(max_iter=2000))
plain.fit(X_source, y[source])
scores["frozen features + LR, source only"] = plain.score(X_target, y_target)

try:
    from skada import CORALAdapter, make_da_pipeline
except ImportError:  # pip install "sktransfer[da]"
    print("skada is not installed: skipping its CORAL pipeline")
else:
    coral = make_da_pipeline(
        PretrainedFeatureExtractor("fmnist_resnet", device="cpu"),
        CORALAdapter(),
        LogisticRegression(max_iter=2000),
    )
    coral.fit(X_all, y_all.copy(), sample_domain=sample_domain)
    scores["skada CORAL on frozen features + LR"] = coral.score(X_target, y_target)

# %%
# Fine-tuning: source only, then Deep CORAL
# -----------------------------------------
# With ``adaptation=None`` the target rows are left out (the source-only
# baseline with the same call); ``adaptation="coral"`` adds the covariance
# alignment of source and target features to the loss. With ``adaptation``
# set, the default ``layer="auto"`` puts the head on the final embedding, where
# Deep CORAL was measured to help most.
for adaptation in (None, "coral"):
    clf = FineTuneClassifier(
        "fmnist_resnet",
        adaptation=adaptation,
        max_epochs=4,
        device="cpu",
        random_state=0,
    )
    clf.fit(X_all, y_all, sample_domain=sample_domain)
    name = "fine-tuned, source only" if adaptation is None else "Deep CORAL"
    scores[name] = clf.score(X_target, y_target)  # predict needs no domain

for name, accuracy in scores.items():
    print(f"{name:40s} target accuracy {accuracy:.3f}")

# %%
# The adaptation weight (``adaptation_weight``) can be chosen without target
# labels with ``GridSearchCV`` and skada's DA scorers; see the user guide's
# *Domain adaptation* page.
