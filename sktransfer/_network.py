"""How the estimators build their network from their parameters.

:func:`build_network` resolves the backbone, picks the stages the head sees
(``layer``, "auto" made concrete), decides whether a second head sits on the
final embedding (``final_head``), drops the stages nothing needs, and puts the
heads on top: a :class:`~sktransfer._transfer_net.TransferNet`. The default
head sees mid-level stages, which transferred best with few labels; a head on
the final embedding was better with more labels and far targets, and
``final_head`` keeps both in one network. A saved model is rebuilt from what
it recorded (its stages, its final head), never from a new reading of "auto".
"""

from __future__ import annotations

import torch

from ._adaptation import DomainDiscriminator
from ._auto_freeze import resolved_freeze
from ._transfer_net import TransferNet, augmenter, build_head
from .backbones import Backbone, resolve_backbone
from .backbones._preprocessing import straight_size

__all__ = ["build_network"]


def build_network(clf) -> None:
    """Set ``clf.module_`` (and ``layer_``, ``final_head_``, ``n_frozen_`` ...).

    ``clf`` is a FineTuneClassifier or FineTuneRegressor; while it restores a
    saved model (``_restoring``) the architecture comes from the saved entries and no
    pretrained weights are loaded.
    """
    restoring = getattr(clf, "_restoring", False)
    backbone = resolve_backbone(
        clf.backbone,
        None if restoring else clf.weights,
        image_size=clf._restored_size if restoring else clf.image_size,
        input_size=None if restoring else getattr(clf, "_input_size", None),
        max_length=clf.max_length,
        image_mean=clf.image_mean,
        image_std=clf.image_std,
    )
    clf.image_size_ = straight_size(backbone.preprocessing)
    n_frozen = backbone.frozen_depth(resolved_freeze(clf))
    saved_taps = getattr(clf, "_restored_taps", None) if restoring else None
    layer = _resolved_layer(clf, backbone) if saved_taps is None else saved_taps
    taps = backbone.taps(layer)
    clf._head_on_final_ = taps == [backbone.n_stages]
    clf.layer_ = backbone.tapped_layer(taps)  # stage names, as the extractor's
    final_stop = _saved_or_chosen_final_stop(clf, backbone, taps, n_frozen)
    clf.final_head_ = final_stop is not None
    final_head = None
    if final_stop is not None:
        final_head = _new_head(clf, backbone.pooled_width(final_stop, "avg"))
    # Stages after the last tap (or the final head's) are never needed.
    kept = taps[-1] if final_stop is None else final_stop
    backbone.truncate(kept)
    n_frozen = min(n_frozen, kept)
    clf.module_ = TransferNet(
        backbone,
        _new_head(clf, backbone.tapped_width(taps, clf.pooling)),
        n_frozen,
        augmenter(
            clf.augment,
            backbone.modality,
            n_frozen,
            getattr(backbone.preprocessing, "sample_rate", None),
        ),
        taps=taps,
        pooling=clf.pooling,
        device=clf._resolved_device(),
        autocast=clf.autocast,
        final_head=final_head,
        output=clf._targets.output,
    )
    clf.n_frozen_ = n_frozen
    clf.domain_discriminator_ = None
    if clf._adaptation() == "dann":
        features = clf.module_.head[-1].in_features
        # Its random weights leave torch's generator as it was, so the
        # batch order (and a fit without target rows) is the plain fit's.
        with torch.random.fork_rng(devices=[]):
            discriminator = DomainDiscriminator(features)
        clf.domain_discriminator_ = discriminator.to(clf._resolved_device())


def _new_head(clf, width: int):
    return build_head(
        width, tuple(clf.head_hidden), float(clf.head_dropout), clf._targets.n_outputs
    )


def _adapting(clf) -> bool:
    return getattr(clf, "_adapts_this_fit", clf._adaptation() is not None)


def _resolved_layer(clf, backbone: Backbone):
    """``layer`` with "auto" made concrete (unless a stage is named "auto").

    "auto" is the final embedding only when this fit adapts (``adaptation``
    set and target rows given): without target rows, adaptation changes
    nothing, not even the head's place.
    """
    if getattr(clf, "_restoring", False) and hasattr(clf, "_restored_layer"):
        return clf._restored_layer
    if not (isinstance(clf.layer, str) and clf.layer == "auto"):
        return clf.layer
    if "auto" in backbone.stage_names:
        return "auto"
    return None if _adapting(clf) else "mid"


def _saved_or_chosen_final_stop(clf, backbone, taps, n_frozen) -> int | None:
    if getattr(clf, "_restoring", False):
        saved = getattr(clf, "_restored_final_stage", None)  # absent before
        return None if saved is None else backbone.stop_after(saved)
    return _final_head_stop(
        backbone,
        taps,
        n_frozen,
        clf.final_head,
        adapting=_adapting(clf),
        slow_backbone=backbone.finetune_lr is not None and clf._pretrained(),
        layer=clf.layer,
    )


def _final_head_stop(
    backbone: Backbone,
    taps: list[int],
    n_frozen: int,
    final_head: bool | str,
    *,
    adapting: bool,
    slow_backbone: bool = False,
    layer=None,
) -> int | None:
    """The stage count the final head sits after, or None for no final head.

    It is the stage after the last block
    (:meth:`~sktransfer.backbones.Backbone.block_stops`: the last stage with
    weights that outputs a feature map), the one that pools its maps into the
    final embedding (with EfficientNet's last 1 x 1 convolution), or the last
    block itself when nothing follows it; for a network without feature maps,
    the last stage. So the old classifier of a network of your own passed
    whole is never taken for its embedding. ``final_head="auto"`` adds
    it only for feature-map networks whose head sees earlier stages, when some
    stage between the taps and it trains, not while adapting domains (the
    head then sees the final embedding itself) and not for a ``slow_backbone``
    (pretrained weights that recommend their own, slower fine-tuning rate:
    ImageNet networks, whose final embedding of small, far images transferred
    worse, and the second head with it); True adds it wherever there are
    stages after the taps.

    Raises
    ------
    ValueError
        When ``final_head=True`` but no stage follows the taps, or while
        adapting domains.
    """
    blocks = backbone.block_stops()
    n_stages = backbone.n_stages
    stop = min(blocks[-1] + 1, n_stages) if blocks else n_stages
    after_taps = stop > taps[-1]
    if final_head == "auto":
        trained = list(backbone.stages)[max(taps[-1], n_frozen) : stop]
        trains = any(p.requires_grad for s in trained for p in s.parameters())
        wanted = bool(blocks) and after_taps and trains
        wanted = wanted and not adapting and not slow_backbone
        return stop if wanted else None
    if not final_head:
        return None
    if adapting:
        raise ValueError(
            "final_head=True cannot be combined with domain adaptation: "
            "adaptation aligns the features of one head. Set final_head='auto' "
            "(no final head while adapting) or False."
        )
    if not after_taps:
        raise ValueError(
            f"final_head=True adds a head on the final embedding, but layer="
            f"{layer!r} already puts the head there. Set final_head='auto' or "
            "False, or choose earlier stages with layer."
        )
    return stop
