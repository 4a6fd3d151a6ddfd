"""The small-data recipe: step budgets, schedule, layer rates, averaging, BN, TTA."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from skorch.callbacks import Callback

from sktransfer import (
    FineTuneClassifier,
    PretrainedFeatureExtractor,
    _recipe,
    resolve_backbone,
)
from sktransfer._recipe import (
    AUTO_MIN_EPOCHS,
    AUTO_MIN_STEPS,
    StepSchedule,
    auto_epochs,
    probed_head_lr,
)
from sktransfer._training import starts_from_probe


@pytest.fixture(scope="module")
def fifty_digits(digits):
    """5 images of each digit class: 50 images, 2 batches of 32."""
    X, y = digits
    index = np.concatenate([np.flatnonzero(y == c)[:5] for c in range(10)])
    return X[index], y[index]


def test_auto_budget_counts_optimiser_steps(fifty_digits, make_classifier):
    X, y = fifty_digits
    clf = make_classifier(freeze=4, max_epochs="auto").fit(X, y)
    steps_per_epoch = math.ceil(len(y) / clf.batch_size)
    assert clf.n_epochs_ == auto_epochs(len(y), clf.batch_size)
    assert clf.n_epochs_ * steps_per_epoch >= AUTO_MIN_STEPS
    assert len(clf.history_) == clf.n_epochs_
    assert clf.history_[-1, "steps"] == clf.n_epochs_ * steps_per_epoch


def test_auto_budget_of_large_sets_is_counted_in_epochs():
    assert auto_epochs(100_000, 32) == AUTO_MIN_EPOCHS
    assert auto_epochs(10, 32) == AUTO_MIN_STEPS


def test_an_explicit_epoch_count_keeps_its_meaning(fifty_digits, make_classifier):
    X, y = fifty_digits
    clf = make_classifier(freeze=4, max_epochs=3).fit(X, y)
    assert clf.n_epochs_ == 3 and len(clf.history_) == 3
    assert clf.history_[-1, "steps"] == 3 * 2


def test_schedule_warms_up_then_decays_to_zero():
    schedule = StepSchedule(cosine=True, warmup=0.1)
    schedule.total_steps_ = 100
    factors = [schedule.factor(step) for step in range(100)]
    assert factors[0] < factors[5] < factors[9] <= 1.0  # linear warm-up
    assert max(factors) == pytest.approx(1.0, abs=0.01)
    assert all(a >= b for a, b in zip(factors[10:], factors[11:], strict=False))
    assert factors[-1] < 0.01


def test_a_restart_runs_two_cycles_each_warmed_up_and_annealed():
    schedule = StepSchedule(cosine=True, warmup=0.1)
    schedule.total_steps_, schedule.restart_step_ = 100, 40
    factors = [schedule.factor(step) for step in range(100)]
    assert factors[39] < 0.01 and factors[99] < 0.01  # both cycles end annealed
    assert factors[40] < factors[45] and max(factors[40:]) == pytest.approx(1, abs=0.01)
    assert max(factors[:4]) < 1 and factors[4] == pytest.approx(1, abs=0.01)


def test_layer_decay_gives_earlier_stages_smaller_rates(fifty_digits, make_classifier):
    X, y = fifty_digits
    clf = make_classifier(freeze=0, layer_decay=0.5, lr=1e-2, max_epochs=1)
    clf.fit(X, y)
    groups = clf.optimizer_.param_groups
    head, stages = groups[0], groups[1:]
    assert head["initial_lr"] == 1e-2
    rates = [group["initial_lr"] for group in stages]
    assert len(rates) == clf.module_.backbone.n_stages - 1  # "pool" has no weights
    assert rates == sorted(rates) and rates[-1] == pytest.approx(1e-2)
    assert rates[-2] == pytest.approx(rates[-1] / 2)


def test_label_smoothing_reaches_the_loss(fifty_digits, make_classifier):
    X, y = fifty_digits
    clf = make_classifier(freeze=4, label_smoothing=0.2, max_epochs=1).fit(X, y)
    assert clf.criterion_.label_smoothing == 0.2


def test_weight_averaging_changes_the_final_weights(fifty_digits, make_classifier):
    X, y = fifty_digits
    plain = make_classifier(freeze=3, max_epochs=8).fit(X, y)
    averaged = make_classifier(freeze=3, max_epochs=8, weight_averaging="swa")
    averaged.fit(X, y)
    head_plain, head_avg = plain.module_.head[-1], averaged.module_.head[-1]
    assert not torch.equal(head_plain.weight, head_avg.weight)
    assert averaged.score(X, y) > 0.5


def test_wise_interpolation_is_the_midpoint_of_start_and_trained_weights(
    fifty_digits, make_classifier
):
    X, y = fifty_digits
    params = {"freeze": 3, "max_epochs": 3, "lr": 1e-2}
    trained = make_classifier(**params).fit(X, y).module_.backbone.state_dict()
    wise = make_classifier(weight_averaging="wise", **params).fit(X, y)
    start = resolve_backbone("fmnist_resnet", "DEFAULT").state_dict()
    mixed = wise.module_.backbone.state_dict()
    moved = [k for k in start if not torch.equal(start[k], trained[k])]
    assert any("layer3" in k and "running_mean" in k for k in moved)
    for key in moved:
        if start[key].is_floating_point():
            expected = (start[key] + trained[key]) / 2
            torch.testing.assert_close(mixed[key], expected, rtol=1e-5, atol=1e-6)


def test_batchnorm_recalibration_touches_only_trained_layers(
    fifty_digits, make_classifier
):
    X, y = fifty_digits
    before = make_classifier(freeze=4, max_epochs=2).fit(X, y)
    after = make_classifier(freeze=4, max_epochs=2, recalibrate_bn=True).fit(X, y)

    def batchnorms(clf):
        return [
            m
            for m in clf.module_.modules()
            if isinstance(m, torch.nn.modules.batchnorm._BatchNorm)
        ]

    frozen = [list(s.modules()) for s in after.module_.frozen_stages()]
    frozen_ids = {id(m) for modules in frozen for m in modules}
    for old, new in zip(batchnorms(before), batchnorms(after), strict=True):
        if id(new) in frozen_ids:  # pretrained statistics kept
            assert torch.equal(old.running_mean, new.running_mean)
        else:  # one cumulative pass over the 50 training images (64 a batch)
            assert int(new.num_batches_tracked) == 1
            assert new.momentum == old.momentum


def test_tta_averages_probabilities_of_shifted_copies(fifty_digits, make_classifier):
    X, y = fifty_digits
    clf = make_classifier(freeze="all").fit(X, y)
    plain = clf.predict_proba(X)
    clf.set_params(tta=True)
    averaged = clf.predict_proba(X)
    np.testing.assert_allclose(averaged.sum(axis=1), 1.0, rtol=1e-5)
    assert not np.allclose(plain, averaged)
    assert clf.module_.tta is False  # only switched on while predicting


class _Scale(torch.nn.Module):
    """Multiplies its input: a backbone stage with activations of any size."""

    def __init__(self, factor: float):
        super().__init__()
        self.factor = factor

    def forward(self, x):
        return x * self.factor


def _scaled_backbone(factor: float):
    from torch import nn

    torch.manual_seed(0)
    body = nn.Sequential(nn.Conv2d(1, 4, 3), nn.ReLU(), nn.AdaptiveAvgPool2d(1))
    return [("body", body), ("flat", nn.Flatten()), ("scale", _Scale(factor))]


def _one_epoch_on_scaled_backbone(X, y, factor: float, head_init: str):
    """One epoch whose head sees the final embedding while the body trains."""
    from sktransfer import FineTuneClassifier

    return FineTuneClassifier(
        _scaled_backbone(factor),
        layer=None,
        head_init=head_init,
        image_size=12,
        max_epochs=1,
        device="cpu",
        random_state=0,
    ).fit(X, y)


# The probe on features scaled 100x converges slowly; its rate is what counts.
@pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")
@pytest.mark.parametrize("head_init", ["probe", "random"])
def test_a_probed_head_slows_down_on_features_of_a_large_spread(
    fifty_digits, head_init
):
    X, y = fifty_digits
    rates = {}
    for factor in (1.0, 100.0):
        clf = _one_epoch_on_scaled_backbone(X, y, factor, head_init)
        groups = clf.optimizer_.param_groups
        rates[factor] = [group["initial_lr"] for group in groups]
        assert clf.history_[-1, "lr"] <= rates[factor][0]
    head_small, head_large = rates[1.0][0], rates[100.0][0]
    assert rates[1.0][1:] == rates[100.0][1:]  # the stages keep their rate
    if head_init == "random":
        assert head_small == head_large == 3e-3
    else:  # spread about 0.04, then 4: the rate drops to about 0.5 / 4 of lr
        assert head_small == 3e-3
        assert head_large < head_small / 5, (head_small, head_large)


def test_multi_label_fine_tuning_starts_its_final_head_from_the_probe(fifty_digits):
    """A random head on label sets stayed at the labels' frequencies (debtags)."""
    X, y = fifty_digits
    Y = np.column_stack([y >= 5, y % 2 == 0, np.isin(y, [0, 6, 8, 9])]).astype(int)
    first_loss = {}
    for target, head_init in [(y, "auto"), (Y, "auto"), (Y, "random")]:
        clf = _one_epoch_on_scaled_backbone(X, target, 1.0, head_init)
        first_loss[target.ndim, head_init] = clf.history_[0, "train_loss"]
        assert starts_from_probe(clf) == (target.ndim == 2 and head_init == "auto")
    # The probe's start fits the labels better than their frequencies do.
    assert first_loss[2, "auto"] < first_loss[2, "random"] - 0.01, first_loss


# Newton-CG still converges on features 1e4x their usual scale; 1e6x stalls it.
@pytest.mark.parametrize("factor, warns", [(1.0, False), (1e6, True)])
def test_a_probe_that_stops_early_says_what_the_user_can_change(
    fifty_digits, factor, warns
):
    import warnings

    from sklearn.exceptions import ConvergenceWarning

    from sktransfer import FineTuneClassifier

    X, y = fifty_digits
    clf = FineTuneClassifier(
        _scaled_backbone(factor),
        layer=None,
        freeze="all",
        image_size=12,
        device="cpu",
    )
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        clf.fit(X, y)
    messages = [str(w.message) for w in caught if w.category is ConvergenceWarning]
    assert len(messages) == int(warns), messages
    if warns:  # the library's advice, never scikit-learn's "increase max_iter"
        assert "probe_C='auto'" in messages[0]
        assert "image_mean and image_std" in messages[0]
        assert "with all stages frozen it is the fitted head" in messages[0]
        assert "max_iter" not in messages[0]


def test_probed_head_rate_is_lr_up_to_the_reference_spread():
    rng = np.random.default_rng(0)
    features = rng.normal(size=(2000, 16))
    features /= features.std(axis=0)
    reference = _recipe.PROBED_HEAD_SPREAD
    assert probed_head_lr(1e-3, 0.5 * reference * features) == 1e-3
    assert probed_head_lr(1e-3, reference * features) == pytest.approx(1e-3)
    assert probed_head_lr(1e-3, 4 * reference * features) == pytest.approx(2.5e-4)


class _BatchLog(Callback):
    """Records the labels of every training batch, per epoch."""

    def on_epoch_begin(self, net, **kwargs):
        self.epochs_ = [*getattr(self, "epochs_", []), []]

    def on_batch_begin(self, net, batch=None, training=False, **kwargs):
        if training:
            self.epochs_[-1].append(np.asarray(batch[1]).tolist())


def test_training_batches_are_shuffled_and_evenly_sized(fifty_digits, make_classifier):
    X, y = fifty_digits
    log = _BatchLog()
    make_classifier(freeze=4, max_epochs=3, callbacks=[log]).fit(X[:33], y[:33])
    for epoch in log.epochs_:
        assert sorted(len(batch) for batch in epoch) == [16, 17]
        assert sorted(sum(epoch, [])) == sorted(y[:33].tolist())  # each image once
    orders = [sum(epoch, []) for epoch in log.epochs_]
    assert orders[0] != orders[1] or orders[1] != orders[2]  # a new order per epoch


def test_explicit_loader_settings_keep_skorch_batches(fifty_digits, make_classifier):
    X, y = fifty_digits
    log = _BatchLog()
    clf = make_classifier(
        freeze=4, max_epochs=2, callbacks=[log], iterator_train__shuffle=False
    )
    clf.fit(X[:33], y[:33])
    assert [len(batch) for batch in log.epochs_[0]] == [32, 1]
    assert log.epochs_[0] == log.epochs_[1]


def _conv_bn_stages():
    with torch.random.fork_rng():
        torch.manual_seed(0)
        conv = torch.nn.Conv2d(1, 4, 3, padding=1)
    pool = torch.nn.Sequential(torch.nn.AdaptiveAvgPool2d(1), torch.nn.Flatten())
    return [("conv", conv), ("bn", torch.nn.BatchNorm2d(4)), ("pool", pool)]


@pytest.mark.parametrize(
    "bn_stats, refit", [("auto", True), ("refit", True), ("pretrained", False)]
)
def test_a_users_module_gets_the_batchnorm_statistics_of_its_training_images(
    fifty_digits, bn_stats, refit
):
    # The library feeds 1-channel images as (x - 0.5) / 0.5; a module pretrained
    # on other inputs would carry other statistics. "auto" refits them for a
    # module of the user's own, before the probe (freeze="all": no training).
    X, y = fifty_digits
    stages = _conv_bn_stages()
    clf = FineTuneClassifier(
        stages,
        weights=None,
        layer=None,
        freeze="all",
        image_size=8,
        bn_stats=bn_stats,
        device="cpu",
    ).fit(X, y)
    assert clf.n_epochs_ == 0
    bn = clf.module_.backbone.stages.bn
    with torch.no_grad():
        inputs = (torch.as_tensor(X).unsqueeze(1) - 0.5) / 0.5
        outputs = stages[0][1](inputs)
    expected_mean = outputs.mean(dim=(0, 2, 3)) if refit else torch.zeros(4)
    expected_var = outputs.var(dim=(0, 2, 3)) if refit else torch.ones(4)
    extractor = PretrainedFeatureExtractor(
        stages, weights=None, layer=None, image_size=8, bn_stats=bn_stats, device="cpu"
    ).fit(X)
    for fitted in (bn, extractor.backbone_.stages.bn):  # the same in both estimators
        torch.testing.assert_close(
            fitted.running_mean, expected_mean, atol=1e-4, rtol=1e-4
        )
        torch.testing.assert_close(
            fitted.running_var, expected_var, atol=1e-4, rtol=1e-3
        )
    assert stages[1][1].running_mean.abs().max() == 0  # the user's module: untouched


def test_registered_backbones_keep_their_pretrained_batchnorm_statistics(
    fifty_digits, make_classifier
):
    X, y = fifty_digits
    pretrained = resolve_backbone("fmnist_resnet", "DEFAULT").state_dict()
    for bn_stats, kept in (("auto", True), ("refit", False)):
        clf = make_classifier(freeze="all", bn_stats=bn_stats).fit(X, y)
        state = clf.module_.backbone.state_dict()
        means = [k for k in state if k.endswith("running_mean")]
        assert means
        same = all(torch.equal(state[k], pretrained[k]) for k in means)
        assert same is kept
