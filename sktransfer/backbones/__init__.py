"""Backbone registry: names -> specs -> resolved :class:`Backbone` modules."""

from . import _shipped, _torchvision  # noqa: F401  (registers the specs)
from ._base import Backbone, BackboneSpec, WeightsEntry, pool_features
from ._registry import get_backbone_spec, list_backbones, register_backbone
from ._resolve import resolve_backbone

__all__ = [
    "Backbone",
    "BackboneSpec",
    "WeightsEntry",
    "get_backbone_spec",
    "list_backbones",
    "pool_features",
    "register_backbone",
    "resolve_backbone",
]
