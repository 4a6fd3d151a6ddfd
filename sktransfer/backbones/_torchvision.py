"""torchvision architectures, each described once: build, stages, head, width.

Weights come from torchvision's own weights enums (``ResNet18_Weights`` ...), so
their URLs, hub-cache file names and preprocessing metadata are torchvision's.
torchvision itself is imported only when a backbone is actually built.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Sequence

import torch
from torch import nn

from ._base import IMAGENET_FINETUNE_LR, BackboneSpec, WeightsEntry
from ._preprocessing import Preprocessing
from ._registry import register_backbone
from ._weights import download_state_dict

__all__: list[str] = []

Stages = list[tuple[str, nn.Module]]
# Used with weights=None until torchvision's metadata says otherwise.
_IMAGENET = Preprocessing(crop_size=(224, 224), resize_size=256)


def _seq(*modules: nn.Module) -> nn.Sequential:
    return nn.Sequential(*modules)


def _pool() -> nn.Sequential:
    return _seq(nn.AdaptiveAvgPool2d(1), nn.Flatten(1))


def _builder(name: str) -> Callable[[], nn.Module]:
    def build() -> nn.Module:
        from torchvision import models

        return models.get_model(name, weights=None)

    return build


def _preprocessing_from(weights) -> Preprocessing:
    transforms = weights.transforms()
    crop = transforms.crop_size[0]
    return Preprocessing(
        crop_size=(crop, crop),
        resize_size=transforms.resize_size[0],
        mean=tuple(transforms.mean),
        std=tuple(transforms.std),
        in_channels=3,
        interpolation=transforms.interpolation.value,
    )


@functools.cache
def _weights_of(name: str) -> tuple[WeightsEntry, ...]:
    from torchvision import models

    enum = models.get_model_weights(name)
    # DEFAULT first: resolve_backbone maps "DEFAULT" to the first entry.
    members = [enum.DEFAULT] + [m for m in enum if m is not enum.DEFAULT]
    return tuple(
        WeightsEntry(
            name=member.name,
            load_state_dict=functools.partial(
                lambda m, progress: download_state_dict(
                    m.url, f"{type(m).__name__}.{m.name}", progress=progress
                ),
                member,
            ),
            preprocessing=_preprocessing_from(member),
            description=f"{type(member).__name__}.{member.name}",
        )
        for member in members
    )


def _register(
    name: str,
    split: Callable[[nn.Module], Stages],
    embedding_dim: int,
    head: str,
    family: str,
) -> None:
    register_backbone(
        BackboneSpec(
            name=name,
            build=_builder(name),
            split=split,
            embedding_dim=embedding_dim,
            head=head,
            preprocessing=_IMAGENET,
            weights=functools.partial(_weights_of, name),
            family=family,
            finetune_lr=IMAGENET_FINETUNE_LR,
        )
    )


def _split_resnet(model: nn.Module) -> Stages:
    stem = _seq(model.conv1, model.bn1, model.relu, model.maxpool)
    layers = [(f"layer{i}", getattr(model, f"layer{i}")) for i in range(1, 5)]
    return [("stem", stem), *layers, ("pool", _pool())]


def _split_vgg(model: nn.Module) -> Stages:
    blocks, current = [], []
    for module in model.features:
        current.append(module)
        if isinstance(module, nn.MaxPool2d):
            blocks.append((f"block{len(blocks) + 1}", _seq(*current)))
            current = []
    pool = _seq(model.avgpool, nn.Flatten(1))
    return [*blocks, ("pool", pool), ("fc", _seq(*model.classifier[:-1]))]


def _split_grouped(groups: Sequence[Sequence[int]], tail: Callable) -> Callable:
    """Split ``model.features`` into named groups of consecutive blocks."""

    def split(model: nn.Module) -> Stages:
        stages = [("stem", model.features[groups[0][0]])]
        for number, group in enumerate(groups[1:], start=1):
            stages.append((f"block{number}", _seq(*(model.features[i] for i in group))))
        return [*stages, *tail(model)]

    return split


def _mobilenet_v2_tail(model: nn.Module) -> Stages:
    return [("pool", _pool())]


def _mobilenet_v3_tail(model: nn.Module) -> Stages:
    return [("pool", _seq(model.avgpool, nn.Flatten(1), *model.classifier[:3]))]


def _split_efficientnet(model: nn.Module) -> Stages:
    stages = [("stem", model.features[0])]
    stages += [(f"block{i}", model.features[i]) for i in range(1, len(model.features))]
    return [*stages, ("pool", _seq(model.avgpool, nn.Flatten(1)))]


def _split_convnext(model: nn.Module) -> Stages:
    features = model.features
    stages = [("stem", features[0]), ("stage1", features[1])]
    # Each later stage starts with its downsampling layer, as in timm.
    stages += [
        (f"stage{i}", _seq(features[2 * i - 2], features[2 * i - 1])) for i in (2, 3, 4)
    ]
    pool = _seq(model.avgpool, *model.classifier[:2])
    return [*stages, ("pool", pool)]


def _split_regnet(model: nn.Module) -> Stages:
    blocks = [(name, block) for name, block in model.trunk_output.named_children()]
    return [("stem", model.stem), *blocks, ("pool", _seq(model.avgpool, nn.Flatten(1)))]


class _ViTEmbedding(nn.Module):
    """Patch projection, class token and position embedding of a torchvision ViT."""

    def __init__(self, vit: nn.Module) -> None:
        super().__init__()
        self.conv_proj = vit.conv_proj
        self.class_token = vit.class_token
        self.pos_embedding = vit.encoder.pos_embedding
        self.dropout = vit.encoder.dropout

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.conv_proj(x).flatten(2).transpose(1, 2)
        token = self.class_token.expand(x.shape[0], -1, -1)
        return self.dropout(torch.cat([token, x], dim=1) + self.pos_embedding)


class _ClassToken(nn.Module):
    """Final LayerNorm, then the class token as the embedding."""

    def __init__(self, norm: nn.Module) -> None:
        super().__init__()
        self.norm = norm

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.norm(x)[:, 0]


def _split_vit(model: nn.Module) -> Stages:
    layers = list(model.encoder.layers.named_children())
    blocks = [(f"block{i + 1}", layer) for i, (_, layer) in enumerate(layers)]
    return [
        ("embed", _ViTEmbedding(model)),
        *blocks,
        ("pool", _ClassToken(model.encoder.ln)),
    ]


for _name in ("resnet18", "resnet34"):
    _register(_name, _split_resnet, 512, "fc", "resnet")
_register("resnet50", _split_resnet, 2048, "fc", "resnet")
for _name in ("vgg11", "vgg11_bn", "vgg16", "vgg16_bn"):
    _register(_name, _split_vgg, 4096, "classifier.6", "vgg")
_register(
    "mobilenet_v2",
    _split_grouped(
        [
            [0],
            [1],
            [2, 3],
            [4, 5, 6],
            [7, 8, 9, 10],
            [11, 12, 13],
            [14, 15, 16],
            [17],
            [18],
        ],
        _mobilenet_v2_tail,
    ),
    1280,
    "classifier.1",
    "mobilenet",
)
_register(
    "mobilenet_v3_large",
    _split_grouped(
        [[0], [1], [2, 3], [4, 5, 6], [7, 8, 9, 10], [11, 12], [13, 14, 15], [16]],
        _mobilenet_v3_tail,
    ),
    1280,
    "classifier.3",
    "mobilenet",
)
_register(
    "mobilenet_v3_small",
    _split_grouped(
        [[0], [1], [2, 3], [4, 5, 6], [7, 8], [9, 10, 11], [12]], _mobilenet_v3_tail
    ),
    1024,
    "classifier.3",
    "mobilenet",
)
for _name, _dim in (("b0", 1280), ("b1", 1280), ("b2", 1408), ("b3", 1536)):
    _register(
        f"efficientnet_{_name}",
        _split_efficientnet,
        _dim,
        "classifier.1",
        "efficientnet",
    )
_register("convnext_tiny", _split_convnext, 768, "classifier.2", "convnext")
_register("regnet_y_400mf", _split_regnet, 440, "fc", "regnet")
_register("vit_b_16", _split_vit, 768, "heads.head", "vit")
