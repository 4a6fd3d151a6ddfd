"""Saving without pickle, interrupted training, checkpoints and resuming."""

from __future__ import annotations

import json
import os
import pickle

import numpy as np
import pytest
from safetensors import SafetensorError
from skorch.callbacks import Callback, Checkpoint, LoadInitState
from torch import nn

from sktransfer import (
    FineTuneClassifier,
    load_model,
    save_model,
)


def test_classifier_round_trips_without_pickle(few_digits, tmp_path, make_classifier):
    X, y = few_digits
    labels = np.array([f"digit {v}" for v in y])
    clf = make_classifier(freeze=4, head_hidden=(8,), class_weight="balanced").fit(
        X, labels
    )
    folder = save_model(clf, tmp_path / "model")
    assert sorted(os.listdir(folder)) == ["config.json", "weights.safetensors"]
    restored = load_model(folder)
    np.testing.assert_array_equal(restored.predict_proba(X), clf.predict_proba(X))
    np.testing.assert_array_equal(restored.predict(X), clf.predict(X))
    assert restored.get_params()["head_hidden"] == (8,)
    assert restored.classes_.dtype == clf.classes_.dtype


def test_extractor_round_trips_without_pickle(few_digits, tmp_path, make_extractor):
    X, _ = few_digits
    extractor = make_extractor(layer="layer3", pooling=None).fit(X)
    restored = load_model(save_model(extractor, tmp_path / "ext"))
    np.testing.assert_array_equal(restored.transform(X), extractor.transform(X))
    assert restored.n_features_out_ == extractor.n_features_out_


def test_custom_module_needs_its_architecture_again(few_digits, tmp_path):
    X, y = few_digits
    module = nn.Sequential(nn.Conv2d(1, 4, 3), nn.ReLU(), nn.AdaptiveAvgPool2d(1))
    clf = FineTuneClassifier(
        module,
        weights=None,
        freeze=0,
        image_size=12,
        max_epochs=1,
        device="cpu",
        random_state=0,
    ).fit(X, y)
    folder = save_model(clf, tmp_path / "custom")
    with pytest.raises(ValueError, match="backbone=module"):
        load_model(folder)
    restored = load_model(folder, backbone=module)
    np.testing.assert_array_equal(restored.predict_proba(X), clf.predict_proba(X))


class _Payload:
    def __reduce__(self):
        return (os.system, ("touch /tmp/sktransfer_load_model_pwned",))


def test_a_pickle_disguised_as_weights_is_refused(
    few_digits, tmp_path, make_classifier
):
    X, y = few_digits
    folder = save_model(make_classifier(freeze="all").fit(X, y), tmp_path / "model")
    (folder / "weights.safetensors").write_bytes(pickle.dumps(_Payload()))
    with pytest.raises(SafetensorError):
        load_model(folder)
    assert not os.path.exists("/tmp/sktransfer_load_model_pwned")


def test_config_is_plain_json(few_digits, tmp_path, make_classifier):
    X, y = few_digits
    folder = save_model(make_classifier(freeze="all").fit(X, y), tmp_path / "model")
    config = json.loads((folder / "config.json").read_text())
    assert config["estimator"] == "FineTuneClassifier"
    assert config["params"]["backbone"] == "fmnist_resnet"
    assert config["classes"] == list(range(10))


class _InterruptAt(Callback):
    def __init__(self, epoch):
        self.epoch = epoch

    def on_epoch_end(self, net, **kwargs):
        if len(net.history) == self.epoch:
            raise KeyboardInterrupt


def test_ctrl_c_leaves_a_usable_model_with_the_completed_epochs(
    few_digits, make_classifier
):
    X, y = few_digits
    clf = make_classifier(
        freeze=4, max_epochs=10, callbacks=[("stop", _InterruptAt(2))]
    )
    clf.fit(X, y)  # the interrupt is absorbed, as in skorch
    assert len(clf.history_) == 2
    assert clf.predict_proba(X).shape == (100, 10)


def test_checkpoint_and_resume(few_digits, tmp_path, make_classifier):
    X, y = few_digits
    checkpoint = Checkpoint(dirname=str(tmp_path / "ckpt"), monitor=None)
    first = make_classifier(
        freeze=4, max_epochs=2, callbacks=[("ckpt", checkpoint)]
    ).fit(X, y)
    assert (tmp_path / "ckpt" / "params.pt").exists()
    resumed = make_classifier(
        freeze=4, max_epochs=1, callbacks=[("resume", LoadInitState(checkpoint))]
    ).fit(X, y)
    # The restored history continues where the checkpoint left off.
    assert len(resumed.history_) == 3
    assert len(first.history_) == 2
