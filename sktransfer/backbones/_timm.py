"""timm models as backbones, spelled ``"timm/<model name>"``.

Any architecture of ``timm.list_models()`` can be used by name, for example
``"timm/convnext_tiny"`` or ``"timm/resnet18"``; ``"timm/resnet18.tv_in1k"`` makes
one pretrained tag the default. Specs are built on first use (timm is imported only
then) and cached by the registry.

This module is the timm *source*: importing timm, the registry hook for the
``"timm/"`` prefix, preprocessing from each pretrained tag's config (through
``timm.data.resolve_data_config``) and loading pretrained weights. How a model is
cut into stages lives in :mod:`._timm_stages`.
"""

from __future__ import annotations

import difflib
import functools
import math
import os
import socket
import urllib.parse

import torch
from torch import nn

from ..exceptions import WeightsUnavailableError
from ._base import IMAGENET_FINETUNE_LR, BackboneSpec, WeightsEntry
from ._preprocessing import Preprocessing
from ._registry import register_backbone_source

# The stage modules were defined in this module before: pickles of fitted
# estimators name their classes by it, so they stay importable from here.
from ._timm_stages import (
    TimmFeatures,  # noqa: F401
    TimmPool,  # noqa: F401
    TimmViTEmbed,  # noqa: F401
    _cached_plan,
    timm_split,
)
from ._weights import OFFLINE_CHOICES

__all__ = ["PREFIX", "import_timm", "preprocessing_from_timm", "timm_spec"]

PREFIX = "timm/"
# timm is a core dependency (the default backbone is built by it); this only
# helps environments where it was removed.
INSTALL_HINT = "pip install timm"
_INTERPOLATIONS = ("bilinear", "bicubic", "nearest")


def import_timm():
    """Import timm, or explain how to install it."""
    try:
        import timm
        import timm.data  # noqa: F401
    except ImportError as exc:
        raise ImportError(
            "timm backbones need the optional dependency timm, which is not "
            f"installed. Install it with: {INSTALL_HINT}"
        ) from exc
    return timm


def preprocessing_from_timm(pretrained_cfg: dict) -> Preprocessing:
    """Map a timm pretrained config to sktransfer's :class:`Preprocessing`.

    ``input_size`` gives the crop, ``crop_pct`` the resize of the shorter side
    (``floor(crop / crop_pct)``, as timm's eval transform), plus ``mean``, ``std``
    and ``interpolation`` (filters other than bilinear/bicubic/nearest become
    bicubic; ``crop_mode="squash"``/``"border"`` become a plain resize).

    Examples
    --------
    >>> from sktransfer.backbones._timm import preprocessing_from_timm
    >>> cfg = {"input_size": (3, 224, 224), "crop_pct": 0.875, "mean": (0.5,) * 3,
    ...        "std": (0.5,) * 3, "interpolation": "bicubic"}
    >>> prep = preprocessing_from_timm(cfg)
    >>> prep.crop_size, prep.resize_size, prep.interpolation
    ((224, 224), 256, 'bicubic')
    """
    timm = import_timm()
    data = timm.data.resolve_data_config(pretrained_cfg=dict(pretrained_cfg))
    channels, height, width = data["input_size"]
    crop_pct = data.get("crop_pct") or 1.0
    resize = None
    if data.get("crop_mode", "center") == "center":
        resize = math.floor(min(height, width) / crop_pct)
    interpolation = data.get("interpolation", "bicubic")
    return Preprocessing(
        crop_size=(int(height), int(width)),
        resize_size=resize,
        mean=tuple(float(v) for v in data["mean"]),
        std=tuple(float(v) for v in data["std"]),
        in_channels=int(channels),
        interpolation=interpolation if interpolation in _INTERPOLATIONS else "bicubic",
    )


def _offline_hint(cfg: dict) -> str:
    hub_id = cfg.get("hf_hub_id")
    if hub_id:
        try:
            from huggingface_hub.constants import HF_HUB_CACHE as cache
        except ImportError:
            cache = "~/.cache/huggingface/hub"
        return (
            f"they come from the Hugging Face Hub repo {hub_id!r}, cached under "
            f"{cache!r} (set HF_HOME to move it; HF_HUB_OFFLINE=1 reads only the "
            "cache). To use them offline, copy that cache from a machine with "
            "internet, or download model.safetensors from "
            f"https://huggingface.co/{hub_id} and pass "
            "weights='/path/to/model.safetensors'."
        )
    url = cfg.get("url") or "the URL in timm's pretrained config"
    cached = os.path.join(torch.hub.get_dir(), "checkpoints", os.path.basename(url))
    return (
        f"they come from {url}. To use them offline, place that file at "
        f"{cached!r} (the torch hub cache) or pass weights='/path/to/file.pth'."
    )


def _hub_unavailable(hub_id: str) -> str | None:
    """Why the Hugging Face Hub cannot serve ``hub_id`` now, or None if it may.

    Checked before timm asks the Hub, whose client retries an unreachable host
    for about 45 s: files already in the cache are always used; otherwise
    ``HF_HUB_OFFLINE=1`` or a host that does not answer within 3 s fail at once.
    """
    try:
        from huggingface_hub import constants, try_to_load_from_cache
    except ImportError:
        return None
    for filename in ("model.safetensors", "pytorch_model.bin"):
        if isinstance(try_to_load_from_cache(hub_id, filename), str):
            return None
    if constants.HF_HUB_OFFLINE:
        return "HF_HUB_OFFLINE is set and they are not in the local cache"
    host = urllib.parse.urlparse(constants.ENDPOINT).hostname or "huggingface.co"
    try:
        socket.create_connection((host, 443), timeout=3).close()
    except OSError as exc:
        return f"{host} cannot be reached ({type(exc).__name__}: {exc})"
    return None


def _load_timm_weights(
    arch: str, tag: str, num_classes: int, progress: bool = False
) -> dict[str, torch.Tensor]:
    timm = import_timm()
    name = f"{arch}.{tag}"
    cfg = timm.models.get_pretrained_cfg(name)
    cfg = cfg.to_dict() if hasattr(cfg, "to_dict") else dict(cfg or {})
    reason = _hub_unavailable(cfg["hf_hub_id"]) if cfg.get("hf_hub_id") else None
    if reason:
        raise WeightsUnavailableError(
            f"Could not obtain timm's pretrained weights {name!r}: {reason}; "
            f"{_offline_hint(cfg)} {OFFLINE_CHOICES}"
        )
    try:
        model = timm.create_model(name, pretrained=True, num_classes=num_classes)
    except Exception as exc:
        first = str(exc).splitlines()[0] if str(exc) else ""
        raise WeightsUnavailableError(
            f"Could not obtain timm's pretrained weights {name!r} "
            f"({type(exc).__name__}: {first}); {_offline_hint(cfg)} "
            f"{OFFLINE_CHOICES}"
        ) from exc
    return model.state_dict()


def _pretrained_tags(timm, arch: str, default: str | None) -> list[str]:
    tags = [name.split(".", 1)[1] for name in timm.list_pretrained(f"{arch}.*")]
    default = default or timm.models.get_pretrained_cfg(arch).tag
    if default in tags:
        tags.remove(default)
        tags.insert(0, default)
    return tags


@functools.cache
def _timm_weights(
    arch: str, default: str | None, num_classes: int
) -> tuple[WeightsEntry, ...]:
    timm = import_timm()
    entries = []
    for tag in _pretrained_tags(timm, arch, default):
        cfg = timm.models.get_pretrained_cfg(f"{arch}.{tag}").to_dict()
        entries.append(
            WeightsEntry(
                name=tag,
                load_state_dict=functools.partial(
                    _load_timm_weights, arch, tag, num_classes
                ),
                preprocessing=preprocessing_from_timm(cfg),
                description=f"timm {arch}.{tag}",
            )
        )
    return tuple(entries)


def _create(arch: str) -> nn.Module:
    return import_timm().create_model(arch, pretrained=False)


def timm_spec(name: str) -> BackboneSpec:
    """Build the spec of ``"timm/<arch>[.<tag>]"`` (the registry caches it)."""
    timm = import_timm()
    arch, _, tag = name[len(PREFIX) :].partition(".")
    if not timm.is_model(arch):
        close = difflib.get_close_matches(arch, timm.list_models(), n=3, cutoff=0.6)
        hint = (
            f" Did you mean {' or '.join(repr(PREFIX + c) for c in close)}?"
            if close
            else ""
        )
        raise ValueError(
            f"Unknown backbone {name!r}: timm has no model {arch!r}.{hint} "
            "timm.list_models() lists its architectures; spell them "
            "'timm/<model name>', e.g. 'timm/convnext_tiny'."
        )
    if tag and f"{arch}.{tag}" not in timm.list_pretrained(f"{arch}.*"):
        tags = ", ".join(repr(t) for t in _pretrained_tags(timm, arch, None))
        raise ValueError(
            f"Unknown backbone {name!r}: timm has no pretrained tag {tag!r} for "
            f"{arch!r}; its tags are {tags or 'none'}."
        )
    model = _create(arch)
    plan, dim = _cached_plan(arch, model)
    cfg = model.pretrained_cfg
    classifiers = plan.classifiers
    return BackboneSpec(
        name=name,
        build=functools.partial(_create, arch),
        split=timm_split(arch),
        embedding_dim=dim,
        head=", ".join(classifiers) if classifiers else "",
        preprocessing=preprocessing_from_timm(cfg),
        weights=functools.partial(
            _timm_weights, arch, tag or None, int(getattr(model, "num_classes", 0))
        ),
        family="timm",
        finetune_lr=IMAGENET_FINETUNE_LR,
    )


register_backbone_source(PREFIX, timm_spec)
