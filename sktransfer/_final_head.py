"""Where FineTuneClassifier's second head goes: the ``final_head`` parameter.

The default head sees mid-level stages (``layer="mid"``), which transferred
best with few labels; a head on the backbone's final embedding was better
with more labels and far targets. With ``final_head`` the network has both:
the stages after the taps stay, up to the final embedding, and a second head on
its average-pooled output trains next to the first
(:class:`~sktransfer._transfer_net.TransferNet`).
"""

from __future__ import annotations

from .backbones import Backbone

__all__ = ["final_head_stop"]


def final_head_stop(
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
