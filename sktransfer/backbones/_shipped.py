"""The backbone shipped inside the package: a narrow ResNet for small grayscale
images, pretrained by ``scripts/train_shipped_backbone.py`` on Fashion-MNIST.

It lets the quick start, examples and tests run offline with genuinely
pretrained features. Recipe, test accuracy and sha256 live next to the weights in
``sktransfer/_data/fmnist_resnet.json``.
"""

from __future__ import annotations

import json
from collections import OrderedDict
from importlib import resources

from torch import nn

from ._base import BackboneSpec, WeightsEntry
from ._preprocessing import Preprocessing
from ._registry import register_backbone

__all__ = ["build_fmnist_resnet", "SHIPPED_NAME", "FMNIST_PREPROCESSING"]

SHIPPED_NAME = "fmnist_resnet"
WIDTHS = (16, 32, 64, 128)
# Mean and std of the Fashion-MNIST training pixels (scaled to [0, 1]).
FMNIST_PREPROCESSING = Preprocessing(
    crop_size=(28, 28), mean=(0.2860,), std=(0.3530,), in_channels=1
)
_WEIGHTS_FILE = "fmnist_resnet.safetensors"


def build_fmnist_resnet(n_classes: int = 10) -> nn.Module:
    """The shipped architecture: 4 residual stages, 28 -> 28 -> 14 -> 7 -> 4 px."""
    from torchvision.models.resnet import BasicBlock

    layers: dict[str, nn.Module] = {
        "stem": nn.Sequential(
            nn.Conv2d(1, WIDTHS[0], 3, padding=1, bias=False),
            nn.BatchNorm2d(WIDTHS[0]),
            nn.ReLU(inplace=True),
        )
    }
    in_width = WIDTHS[0]
    for index, width in enumerate(WIDTHS, start=1):
        stride = 1 if index == 1 else 2
        downsample = None
        if stride != 1 or in_width != width:
            downsample = nn.Sequential(
                nn.Conv2d(in_width, width, 1, stride=stride, bias=False),
                nn.BatchNorm2d(width),
            )
        layers[f"layer{index}"] = BasicBlock(in_width, width, stride, downsample)
        in_width = width
    layers["pool"] = nn.Sequential(nn.AdaptiveAvgPool2d(1), nn.Flatten(1))
    layers["fc"] = nn.Linear(in_width, n_classes)
    return nn.Sequential(OrderedDict(layers))


def _split(model: nn.Module) -> list[tuple[str, nn.Module]]:
    return [(name, child) for name, child in model.named_children() if name != "fc"]


def packaged_json(filename: str) -> dict:
    """A JSON file of ``sktransfer/_data`` (the metadata of shipped weights)."""
    text = resources.files("sktransfer._data").joinpath(filename)
    return json.loads(text.read_text())


def load_packaged_weights(filename: str, progress: bool = False) -> dict:
    """The float32 state dict in the safetensors file ``sktransfer/_data/NAME``."""
    from safetensors.torch import load_file

    path = resources.files("sktransfer._data").joinpath(filename)
    with resources.as_file(path) as file:
        state = load_file(str(file))
    return {key: value.float() for key, value in state.items()}


def shipped_metadata() -> dict:
    """Recipe, accuracy and sha256 recorded when the weights were trained."""
    return packaged_json("fmnist_resnet.json")


def _load_shipped(progress: bool = False) -> dict:
    return load_packaged_weights(_WEIGHTS_FILE, progress)


def _shipped_weights() -> tuple[WeightsEntry, ...]:
    return (
        WeightsEntry(
            name="FMNIST",
            load_state_dict=_load_shipped,
            preprocessing=FMNIST_PREPROCESSING,
            description="trained on the 60k Fashion-MNIST training images",
        ),
    )


register_backbone(
    BackboneSpec(
        name=SHIPPED_NAME,
        build=build_fmnist_resnet,
        split=_split,
        embedding_dim=WIDTHS[-1],
        head="fc",
        preprocessing=FMNIST_PREPROCESSING,
        weights=_shipped_weights,
        family="shipped",
    )
)
