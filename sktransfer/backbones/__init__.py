"""Backbone registry: names -> specs -> resolved :class:`Backbone` modules."""

# Importing the sources registers their specs ("timm/..." names on demand).
from . import (  # noqa: F401
    _efficientnet_lite,
    _huggingface,
    _keyword_cnn,
    _shipped,
    _timm,
    _torchvision,
    _voice_encoder,
)
from ._base import Backbone, BackboneSpec, WeightsEntry
from ._pooling import pool_features
from ._preprocessing import Preprocessing
from ._registry import (
    get_backbone_spec,
    list_backbones,
    register_backbone,
    register_backbone_source,
)
from ._resolve import backbone_modality, check_backbone_argument, resolve_backbone

__all__ = [
    "Backbone",
    "BackboneSpec",
    "Preprocessing",
    "WeightsEntry",
    "backbone_modality",
    "check_backbone_argument",
    "get_backbone_spec",
    "list_backbones",
    "pool_features",
    "register_backbone",
    "register_backbone_source",
    "resolve_backbone",
]
