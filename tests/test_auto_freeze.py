"""``freeze="auto"``: the probe or fine-tuning, chosen in ``fit`` on held-out rows."""

from __future__ import annotations

import numpy as np
import pytest

import sktransfer._auto_freeze as auto_freeze
from sktransfer import load_model, save_model


@pytest.fixture(scope="module")
def wrecked(make_classifier, few_digits):
    """An auto fit whose fine-tuning diverges (learning rate 10): the probe wins."""
    X, y = few_digits
    # layer="mid": the trial network has a second head, the probe's has not.
    clf = make_classifier(
        freeze="auto", layer="mid", max_epochs=4, lr=10.0, backbone_lr=10.0
    )
    return clf.fit(X, y)


def test_the_probe_is_kept_when_fine_tuning_loses_on_held_out_rows(
    wrecked, make_classifier, few_digits
):
    X, y = few_digits
    assert wrecked.freeze_ == "all"
    assert wrecked.n_epochs_ == 0
    assert wrecked.n_frozen_ == wrecked.module_.n_frozen > 0
    assert not any(p.requires_grad for p in wrecked.module_.backbone.parameters())
    scores = wrecked.freeze_scores_
    assert scores["n_held_out"] == 20  # a fifth of 10 rows per class
    assert scores["epoch"] == 2  # half of max_epochs=4
    assert scores["probe"]["accuracy"] > scores["finetune"]["accuracy"]
    # The model is the probe fitted on every row: freeze="all" itself, and its
    # fitted attributes describe that network, not the trial's.
    probe = make_classifier(freeze="all", layer="mid").fit(X, y)
    assert wrecked.final_head_ is probe.final_head_ is False
    assert wrecked.layer_ == probe.layer_
    np.testing.assert_allclose(
        wrecked.predict_proba(X), probe.predict_proba(X), atol=1e-6
    )


def test_fine_tuning_goes_on_with_the_held_out_rows_when_it_wins(
    make_classifier, few_digits, monkeypatch, capsys
):
    X, y = few_digits
    # A probe that gets every held-out row wrong: fine-tuning must win.
    monkeypatch.setattr(
        auto_freeze,
        "_probe_scores",
        lambda *args: {"accuracy": 0.0, "log_loss": 10.0},
    )
    clf = make_classifier(freeze="auto", max_epochs=4, verbose=1).fit(X, y)
    assert clf.freeze_ == 0 and clf.n_frozen_ == 0
    assert clf.freeze_scores_["finetune"]["accuracy"] > 0
    assert "fine-tuning goes on with every row" in capsys.readouterr().out
    # Two epochs on the 80 trial rows (3 batches of 32), then two on all 100
    # (4 batches): the held-out rows were trained on.
    batches = [len(epoch["batches"]) for epoch in clf.history]
    assert batches == [3, 3, 4, 4]
    assert clf.history[-1]["steps"] == 14


@pytest.mark.parametrize(
    ("params", "reason"),
    [
        ({"weights": None}, "weights=None"),
        ({"max_epochs": 1}, "max_epochs < 2"),
        ({"head_hidden": (8,)}, "head_hidden"),
        ({"early_stopping": True, "validation_fraction": 0.4}, "early_stopping"),
    ],
)
def test_auto_fine_tunes_where_there_is_no_probe_to_compare(
    make_classifier, few_digits, params, reason
):
    X, y = few_digits
    clf = make_classifier(freeze="auto", **params).fit(X[::4], y[::4])
    assert clf.freeze_ == 0 and clf.n_frozen_ == 0
    assert reason in clf.freeze_scores_["reason"]


def test_an_explicit_freeze_is_kept_as_it_is(make_classifier, few_digits):
    X, y = few_digits
    clf = make_classifier(freeze=2, max_epochs=1).fit(X[::4], y[::4])
    assert clf.freeze_ == 2 and clf.freeze_scores_ is None


def test_a_saved_model_keeps_the_choice_and_its_evidence(wrecked, few_digits, tmp_path):
    X, _ = few_digits
    restored = load_model(save_model(wrecked, tmp_path / "model"))
    assert restored.freeze == "auto" and restored.freeze_ == "all"
    assert restored.freeze_scores_ == wrecked.freeze_scores_
    assert restored.n_frozen_ == wrecked.n_frozen_
    np.testing.assert_allclose(
        restored.predict_proba(X), wrecked.predict_proba(X), atol=1e-6
    )


def test_held_out_rows_are_stratified_and_spare_single_row_classes():
    labels = np.repeat([0, 1, 2], [10, 2, 1])
    held = auto_freeze.holdout_rows(labels, np.arange(len(labels)), seed=0)
    assert np.bincount(labels[held], minlength=3).tolist() == [2, 1, 0]
    assert len(np.unique(held)) == len(held)
