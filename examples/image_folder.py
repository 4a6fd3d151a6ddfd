"""
Classify a folder of image files
================================

Images on disk usually sit in one subfolder per class, ``root/<class>/<image>``
(the layout of torchvision's ``ImageFolder`` and Keras).
:func:`sktransfer.list_image_folder` turns such a tree into ``(paths, labels)``,
and :class:`~sktransfer.PretrainedFeatureExtractor` takes the list of paths as
``X``: files are decoded lazily, one batch at a time, so memory does not grow
with the number of images.

Here the folder is made on the spot from 300 of scikit-learn's 8x8 digits saved
as PNG files, and the pipeline is cross-validated on the paths. The backbone is
the ``fmnist_resnet`` shipped with sktransfer (pretrained on Fashion-MNIST), so
this runs offline, in a few seconds on 2 CPU cores. Run it with
``./dev python examples/image_folder.py``.
"""

# %%
# Write an image folder
# ---------------------
# One subfolder per class, named after the digit; the folder names become the
# labels.
import os
import tempfile
import time
from collections import Counter

import numpy as np
from PIL import Image
from sklearn.datasets import load_digits
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import StratifiedKFold, cross_val_score
from sklearn.pipeline import make_pipeline

from sktransfer import PretrainedFeatureExtractor, list_image_folder

NAMES = "zero one two three four five six seven eight nine".split()

digits = load_digits()
rng = np.random.default_rng(0)
chosen = rng.choice(len(digits.images), size=300, replace=False)

workdir = tempfile.TemporaryDirectory()
root = workdir.name
for i in chosen:
    folder = os.path.join(root, NAMES[digits.target[i]])
    os.makedirs(folder, exist_ok=True)
    pixels = (digits.images[i] * (255 / 16)).astype(np.uint8)  # 0-16 -> 0-255
    Image.fromarray(pixels).save(os.path.join(folder, f"{i:04d}.png"))

# %%
# List it
# -------
paths, labels = list_image_folder(root)
print(f"{len(paths)} images in {len(set(labels))} classes, e.g.")
print("  " + os.path.relpath(paths[0], root), "->", labels[0])
print("  images per class:", dict(sorted(Counter(labels.tolist()).items())))

# %%
# Cross-validate on the file paths
# --------------------------------
# The flattened ``layer3`` maps of the backbone transfer better from clothes to
# digits than its final pooled embedding (see the quick start). Each fold fits
# the pipeline on the paths of its training files only.
model = make_pipeline(
    PretrainedFeatureExtractor(
        "fmnist_resnet", layer="layer3", pooling=None, device="cpu"
    ),
    LogisticRegression(max_iter=3000),
)
cv = StratifiedKFold(n_splits=5, shuffle=True, random_state=0)
start = time.perf_counter()
scores = cross_val_score(model, paths, labels, cv=cv)
print(
    f"accuracy over 5 folds: {scores.mean():.3f} ± {scores.std():.3f} "
    f"({time.perf_counter() - start:.1f}s)"
)

# %%
# Predict the class of new files
# ------------------------------
# A fitted pipeline predicts folder names. Train on every other file, predict
# the rest and show one file of each of a few classes.
model.fit(paths[::2], labels[::2])
test_paths, test_labels = paths[1::2], labels[1::2]
predicted = model.predict(test_paths)
print(f"accuracy on the other half: {np.mean(predicted == test_labels):.3f}")
for i in range(0, len(test_paths), 30):
    print(f"  {os.path.relpath(test_paths[i], root):<16} -> {predicted[i]}")

workdir.cleanup()
