"""image_mean / image_std: the normalisation a user's network was pretrained with."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn

from sktransfer import (
    FineTuneClassifier,
    PretrainedFeatureExtractor,
    load_model,
    save_model,
)
from sktransfer.backbones import Preprocessing


def _stages(batchnorm: bool = False):
    with torch.random.fork_rng():
        torch.manual_seed(0)
        conv = nn.Conv2d(1, 4, 3, padding=1)
    pool = nn.Sequential(nn.AdaptiveAvgPool2d(1), nn.Flatten())
    middle = [("bn", nn.BatchNorm2d(4))] if batchnorm else [("relu", nn.ReLU())]
    return [("conv", conv), *middle, ("pool", pool)]


def _pixels(n: int = 30) -> np.ndarray:
    return np.random.default_rng(0).random((n, 8, 8), dtype=np.float32)


def _expected(stages, X, mean: float, std: float) -> np.ndarray:
    with torch.no_grad():
        x = (torch.as_tensor(X).unsqueeze(1) - mean) / std
        for _, stage in stages:
            x = stage(x)
    return x.numpy()


@pytest.mark.parametrize(
    "given, mean, std",
    [({}, 0.5, 0.5), ({"image_mean": 0.0, "image_std": 1.0}, 0.0, 1.0)],
)
def test_a_users_module_sees_the_normalisation_it_was_pretrained_with(given, mean, std):
    X, stages = _pixels(), _stages()
    extractor = PretrainedFeatureExtractor(
        stages, weights=None, layer=None, image_size=8, device="cpu", **given
    ).fit(X)
    assert extractor.preprocessing_.mean == (mean,)
    assert extractor.preprocessing_.std == (std,)
    np.testing.assert_allclose(
        extractor.transform(X), _expected(stages, X, mean, std), rtol=1e-5, atol=1e-6
    )


def test_stated_normalisation_keeps_the_pretrained_batchnorm_statistics():
    # With image_mean/image_std the library knows the input recipe, so
    # bn_stats="auto" keeps the statistics a registered backbone would keep.
    X = _pixels()
    y = np.arange(len(X)) % 3
    for given, refit in (
        ({}, True),
        ({"image_mean": 0.286, "image_std": 0.353}, False),
    ):
        clf = FineTuneClassifier(
            _stages(batchnorm=True),
            weights=None,
            layer=None,
            freeze="all",
            image_size=8,
            device="cpu",
            **given,
        ).fit(X, y)
        running_mean = clf.module_.backbone.stages.bn.running_mean
        assert bool(running_mean.abs().max() > 0) is refit
        if given:
            assert clf.module_.backbone.preprocessing.mean == (0.286,)


def test_one_value_applies_to_every_channel_and_the_count_is_checked():
    prep = Preprocessing(crop_size=(8, 8), in_channels=3)
    assert prep.with_normalisation(0.5, [0.1, 0.2, 0.3]).mean == (0.5, 0.5, 0.5)
    assert prep.with_normalisation(std=[0.1, 0.2, 0.3]).std == (0.1, 0.2, 0.3)
    with pytest.raises(ValueError, match=r"image_mean=\(0.1, 0.2\) has 2 values.*3"):
        prep.with_normalisation((0.1, 0.2))


@pytest.mark.parametrize(
    "given, match",
    [
        ({"image_std": 0}, "image_std=0 is not valid.*positive"),
        ({"image_std": (0.5, -1)}, r"image_std=\(0.5, -1\) is not valid"),
        ({"image_mean": "imagenet"}, "'image_mean' parameter .* must be"),
        ({"image_mean": [float("nan")]}, r"image_mean=\[nan\] is not valid"),
        ({"image_mean": (0.1, 0.2)}, "has 2 values, but the network takes 1-channel"),
    ],
)
def test_bad_normalisation_is_explained_before_fitting(given, match):
    X = _pixels(12)
    y = np.arange(12) % 3
    for estimator in (
        PretrainedFeatureExtractor(_stages(), weights=None, device="cpu", **given),
        FineTuneClassifier(
            _stages(), weights=None, max_epochs=1, device="cpu", **given
        ),
    ):
        with pytest.raises(ValueError, match=match):
            estimator.fit(X, y)
        assert not hasattr(estimator, "n_features_in_")


def test_saved_models_keep_the_stated_normalisation(tmp_path):
    X = _pixels()
    y = np.arange(len(X)) % 3
    stages = _stages()
    clf = FineTuneClassifier(
        stages,
        weights=None,
        image_size=8,
        image_mean=0.0,
        image_std=1.0,
        max_epochs=1,
        device="cpu",
        random_state=0,
    ).fit(X, y)
    restored = load_model(save_model(clf, tmp_path / "clf"), backbone=stages)
    assert restored.module_.backbone.preprocessing.std == (1.0,)
    np.testing.assert_array_equal(restored.predict_proba(X), clf.predict_proba(X))
