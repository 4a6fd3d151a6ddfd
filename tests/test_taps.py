"""FineTuneClassifier: the head on chosen stages (``layer``, ``pooling``), BatchNorm."""

from __future__ import annotations

import json
from collections import OrderedDict

import numpy as np
import pytest
import torch
from sklearn.linear_model import LogisticRegression
from torch import nn

from sktransfer import FineTuneClassifier, load_model, resolve_backbone, save_model


def test_head_sees_the_extractors_features_and_later_stages_are_dropped(
    digits, make_classifier, make_extractor
):
    X, y = digits
    train, test = slice(0, 100), slice(100, 600)
    params = {"layer": "mid", "pooling": "grid"}
    clf = make_classifier(freeze="all", **params).fit(X[train], y[train])
    extractor = make_extractor(**params).fit(X[train])
    names = clf.module_.backbone.stage_names
    assert names[-1] == "layer3" and "layer4" not in names
    assert clf.module_.head[-1].in_features == extractor.n_features_out_
    assert clf.layer_ == extractor.layer_ == ["layer2", "layer3"]
    # Everything frozen + linear head: the head is the logistic regression on
    # exactly the extractor's features.
    lr = LogisticRegression(tol=1e-6, max_iter=5000).fit(
        extractor.transform(X[train]).astype(np.float64), y[train]
    )
    expected = lr.predict_proba(extractor.transform(X[test]).astype(np.float64))
    np.testing.assert_allclose(clf.predict_proba(X[test]), expected, atol=2e-3)
    assert clf.n_epochs_ == 0


@pytest.mark.parametrize("freeze", [2, 4])
def test_cache_stops_at_the_first_tap_and_trains_the_same_model(
    few_digits, make_classifier, freeze
):
    # Taps are stages 3 and 4 (layer2, layer3). freeze=4 freezes a tap: the
    # cache can only hold stage 3's input, and stage 3 runs frozen each epoch.
    X, y = few_digits
    params = {"layer": "mid", "pooling": "grid", "freeze": freeze, "max_epochs": 2}
    params["head_hidden"] = (16,)  # something to train when every stage is frozen
    cached = make_classifier(**params).fit(X, y)
    uncached = make_classifier(cache_frozen=False, **params).fit(X, y)
    assert cached.used_cache_ and not uncached.used_cache_
    assert cached.n_frozen_ == freeze
    assert cached.module_.cacheable_stop() == min(freeze, 3)
    np.testing.assert_allclose(
        cached.predict_proba(X), uncached.predict_proba(X), atol=1e-4
    )


def test_freeze_beyond_the_last_tap_freezes_every_kept_stage(
    few_digits, make_classifier
):
    X, y = few_digits
    clf = make_classifier(layer="layer2", freeze=5).fit(X, y)
    assert clf.n_frozen_ == 3  # stem, layer1, layer2: all that is kept
    assert clf.n_epochs_ == 0  # all frozen, linear head: the probe is the fit


def test_a_stage_list_concatenates_their_pooled_outputs(few_digits, make_classifier):
    X, y = few_digits
    clf = make_classifier(layer=["layer1", "layer3"], pooling="avg").fit(X, y)
    assert clf.module_.taps == [2, 4]
    widths = [clf.module_.backbone.pooled_width(stop, "avg") for stop in (2, 4)]
    assert clf.module_.head[-1].in_features == sum(widths)
    assert clf.predict_proba(X).shape == (len(X), 10)


def _three_block_cnn():
    def block(c_in, c_out):
        return nn.Sequential(
            nn.Conv2d(c_in, c_out, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2)
        )

    return nn.Sequential(
        OrderedDict(
            block1=block(1, 4),
            block2=block(4, 8),
            block3=block(8, 8),
            pool=nn.Sequential(nn.AdaptiveAvgPool2d(1), nn.Flatten()),
            fc=nn.Linear(8, 5),
        )
    )


@pytest.mark.parametrize(
    "drop", [("fc",), ("pool", "fc"), ()], ids=["with pool", "blocks only", "whole"]
)
def test_mid_counts_blocks_however_a_user_lists_the_stages(few_digits, drop):
    # A user's CNN passed with its pooling stage, as bare blocks, or whole with
    # its old classifier: "mid" is block1 + block2 each time (the third- and
    # second-last blocks), and the final head sits on the pooled block3: the
    # old classifier is dropped.
    X, y = few_digits
    stages = [(n, m) for n, m in _three_block_cnn().named_children() if n not in drop]
    net = resolve_backbone(stages)
    assert net.block_stops() == [1, 2, 3]
    assert net.taps("mid") == [1, 2]
    clf = FineTuneClassifier(
        stages, weights=None, image_size=16, max_epochs=1, device="cpu"
    ).fit(X, y)
    kept = [n for n in ("block1", "block2", "block3", "pool") if n not in drop]
    assert clf.module_.backbone.stage_names == kept
    assert clf.module_.taps == [1, 2] and clf.final_head_


def test_mid_without_feature_maps_counts_stages():
    # No stage outputs a feature map (an MLP): the fourth- and third-last stages.
    mlp = [
        (f"dense{i}", nn.Sequential(nn.Flatten(), nn.LazyLinear(4))) for i in range(5)
    ]
    net = resolve_backbone(mlp)
    assert net.block_stops() == []
    assert net.taps("mid") == [2, 3]


def test_unknown_layer_names_the_argument_and_the_stages(few_digits, make_classifier):
    X, y = few_digits
    with pytest.raises(ValueError, match=r"layer='layer9' is not a stage.*layer2"):
        make_classifier(layer="layer9").fit(X, y)
    with pytest.raises(ValueError, match="'pooling' parameter"):
        make_classifier(pooling="median").fit(X, y)


def test_taps_survive_saving(few_digits, make_classifier, tmp_path):
    X, y = few_digits
    clf = make_classifier(layer="mid", pooling="grid", max_epochs=1).fit(X, y)
    save_model(clf, tmp_path / "model")
    loaded = load_model(tmp_path / "model")
    assert loaded.module_.taps == clf.module_.taps
    # The final head too, whatever final_head="auto" would decide now.
    assert clf.final_head_ and loaded.final_head_
    assert loaded.module_.backbone.stage_names == clf.module_.backbone.stage_names
    np.testing.assert_allclose(loaded.predict_proba(X), clf.predict_proba(X), atol=1e-6)


def test_saved_models_keep_their_stages_whatever_mid_means_later(
    few_digits, make_classifier, tmp_path
):
    # The file names the tapped stages; loading uses them, not a new reading of
    # "mid" (here simulated by a file whose layer_ says the final embedding).
    X, y = few_digits
    clf = make_classifier(layer="mid", pooling="grid", max_epochs=1).fit(X, y)
    save_model(clf, tmp_path / "model")
    config_path = tmp_path / "model" / "config.json"
    config = json.loads(config_path.read_text())
    assert config["tap_names_"] == ["layer2", "layer3"]
    config["layer_"] = None
    config_path.write_text(json.dumps(config))
    loaded = load_model(tmp_path / "model")
    assert loaded.module_.taps == clf.module_.taps == [3, 4]
    np.testing.assert_allclose(loaded.predict_proba(X), clf.predict_proba(X), atol=1e-6)


def test_freeze_batchnorm_keeps_running_statistics_while_weights_learn(
    few_digits, make_classifier
):
    X, y = few_digits
    params = {"freeze": 0, "max_epochs": 2, "lr": 1e-2}
    before = resolve_backbone("fmnist_resnet", "DEFAULT").state_dict()
    frozen_bn = make_classifier(freeze_batchnorm=True, **params).fit(X, y)
    updated_bn = make_classifier(**params).fit(X, y)
    for clf, kept in ((frozen_bn, True), (updated_bn, False)):
        after = clf.module_.backbone.state_dict()
        stats = [k for k in after if k.endswith(("running_mean", "running_var"))]
        weights = [k for k in after if k.endswith("weight")]
        assert stats and weights
        same = [torch.equal(after[k], before[k]) for k in stats]
        assert all(same) if kept else not any(same)
        assert not any(torch.equal(after[k], before[k]) for k in weights)


def test_default_head_sees_mid_level_stages_and_starts_from_the_probe(digits):
    X, y = digits
    train, test = slice(0, 100), slice(100, 400)
    common = {"backbone": "fmnist_resnet", "device": "cpu", "random_state": 0}
    untrained = FineTuneClassifier(**common, max_epochs=0).fit(X[train], y[train])
    assert untrained.module_.taps == [3, 4] and untrained.n_frozen_ == 0
    # Before any epoch the head is the logistic regression of freeze="all"
    # (the final head, which starts at random, left out here).
    single = FineTuneClassifier(**common, max_epochs=0, final_head=False)
    single.fit(X[train], y[train])
    probe = FineTuneClassifier(**common, freeze="all").fit(X[train], y[train])
    np.testing.assert_allclose(
        single.predict_proba(X[test]), probe.predict_proba(X[test]), atol=1e-5
    )
    torch.testing.assert_close(
        untrained.module_.head.state_dict(), single.module_.head.state_dict()
    )
    # On the final embedding with trained stages, "auto" starts at random.
    final = FineTuneClassifier(**common, layer=None, max_epochs=0)
    final.fit(X[train], y[train])
    assert final.score(X[test], y[test]) < 0.5 < probe.score(X[test], y[test])
    # A probed head: the stages below learn at a third of its rate.
    head, *stages = (g["initial_lr"] for g in single.optimizer_.param_groups)
    assert head == 3e-3 and stages and all(lr == 1e-3 for lr in stages)
    head, *stages = (g["initial_lr"] for g in final.optimizer_.param_groups)
    assert stages and all(lr == head == 3e-3 for lr in stages)
