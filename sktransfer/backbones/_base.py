"""The two objects every backbone source produces: a spec and a resolved backbone.

A :class:`BackboneSpec` describes an architecture once (how to build it, how to cut
it into stages, where its classifier sat, how wide its embedding is and where its
pretrained weights come from). Resolving a spec with a choice of weights gives a
:class:`Backbone`: a module whose ordered *stages* map preprocessed images to
embedding vectors. Freeze depth and intermediate layers both count those stages,
so ``freeze=k`` means the same thing for every source.
"""

from __future__ import annotations

import contextlib
from collections import OrderedDict
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field

import torch
from torch import nn

from ._pooling import HIDDEN_STATES, pool_features
from ._preprocessing import Preprocessing

__all__ = [
    "Backbone",
    "BackboneSpec",
    "WeightsEntry",
    "to_device",
    "IMAGENET_FINETUNE_LR",
]

# The rate at which networks pretrained on ImageNet-scale data (torchvision,
# timm, EfficientNet-Lite0) fine-tune their stages by default: a few dozen
# labelled images should nudge their general features, not rewrite them at a
# new head's rate (benchmarks/results/recipe_ablation_imagenet_bn.json, in git
# at ea690e0).
IMAGENET_FINETUNE_LR = 1e-4


def to_device(batch, device: torch.device):
    """Move a raw or preprocessed batch (tensor, mapping of tensors) to ``device``.

    Anything else (a list of strings before tokenisation) is returned as is.
    """
    if isinstance(batch, torch.Tensor):
        return batch.to(device, non_blocking=True)
    if isinstance(batch, Mapping):
        return type(batch)({key: to_device(v, device) for key, v in batch.items()})
    return batch


def _main_tensor(output) -> torch.Tensor:
    """The tensor whose shape describes a stage output (token states for text)."""
    return output[HIDDEN_STATES] if isinstance(output, Mapping) else output


@dataclass(frozen=True)
class WeightsEntry:
    """Where a named set of pretrained weights comes from.

    Parameters
    ----------
    name : str
        Name users pass as ``weights=`` (for torchvision, the enum member name).
    load_state_dict : callable
        ``load_state_dict(progress) -> dict`` returning tensors keyed like the
        module returned by the spec's ``build``; may raise
        :class:`~sktransfer.exceptions.WeightsUnavailableError`.
    preprocessing : Preprocessing
        The preprocessing these weights were trained with.
    description : str
        One line shown by :func:`~sktransfer.list_backbones` docs.
    """

    name: str
    load_state_dict: Callable[[bool], dict]
    preprocessing: Preprocessing
    description: str = ""


@dataclass(frozen=True)
class BackboneSpec:
    """Description of one architecture in the registry.

    Parameters
    ----------
    name : str
        Registry name, e.g. ``"resnet18"``.
    build : callable
        ``build() -> nn.Module``: the architecture with random initialisation, with
        parameter names matching its checkpoints.
    split : callable
        ``split(model) -> list of (stage_name, module)``: the ordered stages from
        input to the pooled, flattened embedding. The classifier head is left out.
    embedding_dim : int
        Width of the embedding produced by the last stage.
    head : str
        Dotted path of the classifier the split drops (documentation).
    preprocessing : Preprocessing
        Preprocessing used with ``weights=None`` or a local weights file.
    weights : callable, default=no weights
        ``weights() -> tuple of WeightsEntry``: the named pretrained weights, the
        first being ``"DEFAULT"``. A callable so that listing the registry never
        imports a model zoo.
    family : str
        Group shown in the documentation table.
    modality : str, default="image"
        Kind of input the architecture takes; picks how user inputs are read.
    mid_layers : tuple of str or None, default=None
        The stages ``layer="mid"`` stands for; None: the third- and second-last
        blocks (see :meth:`Backbone.taps`). Sentence encoders name their final
        pooled stage, the one they were trained to make.
    finetune_lr : float or None, default=None
        Learning rate its pretrained stages are fine-tuned with when the user
        gives no ``backbone_lr``; None leaves the choice to the estimator.
        Networks pretrained on large data recommend one far below a new
        head's: ``IMAGENET_FINETUNE_LR`` for ImageNet-scale image networks,
        ``5e-5`` for text transformers.
    keep_batchnorm_stats : bool, default=False
        Fine-tuning keeps its BatchNorm layers in inference mode (pretrained
        running statistics) unless the user sets ``freeze_batchnorm``: for
        networks pretrained under many recording channels, whose statistics a
        few clips of one channel would replace.
    """

    name: str
    build: Callable[[], nn.Module]
    split: Callable[[nn.Module], list[tuple[str, nn.Module]]]
    embedding_dim: int
    head: str
    preprocessing: Preprocessing
    weights: Callable[[], tuple[WeightsEntry, ...]] = field(default=tuple)
    family: str = ""
    modality: str = "image"
    mid_layers: tuple[str, ...] | None = None
    finetune_lr: float | None = None
    keep_batchnorm_stats: bool = False

    def weight_names(self) -> list[str]:
        """Names accepted as ``weights=`` besides None, ``"DEFAULT"`` and paths."""
        return [entry.name for entry in self.weights()]


class Backbone(nn.Module):
    """A resolved backbone: named stages from preprocessed images to embeddings.

    Parameters
    ----------
    stages : sequence of (str, nn.Module)
        Ordered stages; calling them one after the other maps a preprocessed batch
        ``(B, C, H, W)`` to embeddings ``(B, embedding_dim)``.
    embedding_dim : int
        Width of the final embedding.
    preprocessing : Preprocessing
        How raw images must be prepared for these weights.
    name : str
        Registry name, or the class name of a user-given module.
    weights : str or None
        Identity of the loaded weights (name, file path with digest, or None).
    modality : str, default="image"
        Kind of input the stages take (see ``sktransfer._inputs.get_modality``).
    mid_layers : tuple of str or None, default=None
        The stages ``layer="mid"`` stands for (see :meth:`taps`).
    finetune_lr : float or None, default=None
        Recommended learning rate for fine-tuning these (pretrained) stages.
    keep_batchnorm_stats : bool, default=False
        Whether fine-tuning should keep the pretrained BatchNorm statistics
        (see :class:`BackboneSpec`).

    Examples
    --------
    >>> import torch
    >>> from torch import nn
    >>> from sktransfer.backbones import Backbone
    >>> from sktransfer.backbones import Preprocessing
    >>> net = Backbone(
    ...     [("conv", nn.Conv2d(1, 4, 3)), ("pool", nn.AdaptiveAvgPool2d(1)),
    ...      ("flat", nn.Flatten())],
    ...     embedding_dim=4,
    ...     preprocessing=Preprocessing(crop_size=(8, 8), mean=(0.5,), std=(0.5,),
    ...                                 in_channels=1),
    ... )
    >>> net.stage_names
    ['conv', 'pool', 'flat']
    >>> net(torch.zeros(2, 1, 8, 8)).shape
    torch.Size([2, 4])
    """

    def __init__(
        self,
        stages: Sequence[tuple[str, nn.Module]],
        *,
        embedding_dim: int,
        preprocessing: Preprocessing,
        name: str = "custom",
        weights: str | None = None,
        modality: str = "image",
        mid_layers: tuple[str, ...] | None = None,
        finetune_lr: float | None = None,
        keep_batchnorm_stats: bool = False,
    ) -> None:
        super().__init__()
        self.stages = nn.Sequential(OrderedDict(stages))
        self.embedding_dim = int(embedding_dim)
        self.preprocessing = preprocessing
        self.name = name
        self.weights = weights
        self.modality = modality
        self.mid_layers = mid_layers
        self.finetune_lr = finetune_lr
        self.keep_batchnorm_stats = bool(keep_batchnorm_stats)
        # Dry-run output shapes, keyed by (stop, preprocessing): see output_shape.
        self._shapes: dict = {}

    @property
    def stage_names(self) -> list[str]:
        return [name for name, _ in self.stages.named_children()]

    @property
    def n_stages(self) -> int:
        return len(self.stages)

    def truncate(self, stop: int) -> Backbone:
        """Keep only the first ``stop`` stages (names kept), in place."""
        kept = list(self.stages.named_children())[:stop]
        self.stages = nn.Sequential(OrderedDict(kept))
        return self

    def stop_after(self, layer: str | int | None) -> int:
        """Number of stages that run to produce the output of ``layer``.

        ``layer`` is a stage name, a stage index (negative counts from the end)
        or None for the last stage.
        """
        names = self.stage_names
        if layer is None:
            return len(names)
        if isinstance(layer, str):
            if layer not in names:
                raise ValueError(
                    f"layer={layer!r} is not a stage of {self.name!r}; its "
                    f"stages are {names} (or give a stage index)."
                )
            return names.index(layer) + 1
        if not -len(names) <= layer < len(names):
            self._out_of_range(
                "layer",
                layer,
                f"an index in [{-len(names)}, {len(names) - 1}] or a stage name",
            )
        return layer % len(names) + 1

    def taps(self, layer) -> list[int]:
        """Stops (stage counts) whose outputs make up the ``layer`` selection.

        ``layer`` is anything :meth:`stop_after` takes, a list of those, or
        ``"mid"``: the third- and second-last of the :meth:`block_stops` (for a
        ResNet ``layer2`` and ``layer3``), the mid-level features that transfer
        best across domains (unless the source names other ``mid_layers``).
        Counting blocks, not stages, gives the same layers whether a user's
        stage list ends with a pooling stage, the old classifier, or neither.
        Networks without feature maps (transformers) take the fourth- and
        third-last stages; backbones with fewer use what they have.
        """
        n = self.n_stages
        if isinstance(layer, str) and layer == "mid" and "mid" not in self.stage_names:
            if getattr(self, "mid_layers", None):
                return self.taps(list(self.mid_layers))
            blocks = self.block_stops()
            if blocks:
                return blocks[-3:-1] or blocks[-1:]
            stops = [stop for stop in (n - 3, n - 2) if stop >= 1]
            return stops or [n]
        if isinstance(layer, list | tuple):
            if not layer:
                raise ValueError("layer=[] selects no stage; name at least one.")
            return sorted({self.stop_after(item) for item in layer})
        return [self.stop_after(layer)]

    def block_stops(self) -> list[int]:
        """Stops of the stages with weights whose output is a feature map.

        These are a convolutional network's blocks, without the pooling,
        flattening or classifier stages after them (a stage that pools to
        ``1 x 1`` without weights is not a block). Found by one dry run.

        Examples
        --------
        >>> from torch import nn
        >>> from sktransfer import resolve_backbone
        >>> cnn = [("block1", nn.Conv2d(1, 4, 3)), ("block2", nn.Conv2d(4, 8, 3)),
        ...        ("block3", nn.Conv2d(8, 8, 3)), ("pool", nn.AdaptiveAvgPool2d(1)),
        ...        ("fc", nn.Sequential(nn.Flatten(), nn.Linear(8, 5)))]
        >>> net = resolve_backbone(cnn)
        >>> net.block_stops(), net.taps("mid")
        ([1, 2, 3], [1, 2])
        """
        key = (None, self.preprocessing.describe(), "blocks")
        if key not in self._shapes:
            shapes = self._stage_shapes()
            self._shapes[key] = [
                stop
                for stop, (shape, stage) in enumerate(zip(shapes, self.stages), 1)
                if len(shape) == 3 and next(stage.parameters(), None) is not None
            ]
        return self._shapes[key]

    def _stage_shapes(self) -> list[tuple[int, ...]]:
        """Each stage's output shape, in one pass (also kept for output_shape)."""
        describe = self.preprocessing.describe()
        shapes = []
        with self._example_batch() as x:
            for stop, stage in enumerate(self.stages, 1):
                x = stage(x)
                shapes.append(tuple(_main_tensor(x).shape[1:]))
                self._shapes.setdefault((stop, describe, "shape"), shapes[-1])
        return shapes

    def keep_taps(self, layer) -> list[int]:
        """Drop the stages after the ``layer`` selection; return its :meth:`taps`."""
        taps = self.taps(layer)
        self.truncate(taps[-1])
        return taps

    def tap_names(self, taps: list[int]) -> list[str]:
        """Names of the stages whose outputs ``taps`` (stage counts) select."""
        return [self.stage_names[stop - 1] for stop in taps]

    def tapped_layer(self, taps: list[int]) -> str | list[str]:
        """``taps`` as the estimators' ``layer_`` reports them: a name or a list."""
        names = self.tap_names(taps)
        return names[0] if len(names) == 1 else names

    def tapped_width(self, taps: list[int], pooling: str | None) -> int:
        """Width of the pooled outputs of ``taps``, concatenated."""
        return sum(self.pooled_width(stop, pooling) for stop in taps)

    def frozen_depth(self, freeze: int | str) -> int:
        """Number of stages a ``freeze`` depth (a count or ``"all"``) covers."""
        if freeze == "all":
            return self.n_stages
        if not 0 <= freeze <= self.n_stages:
            self._out_of_range(
                "freeze", freeze, f"an int in [0, {self.n_stages}] or 'all'"
            )
        return int(freeze)

    def _out_of_range(self, argument: str, value: int, valid: str):
        raise ValueError(
            f"{argument}={value} is out of range for backbone {self.name!r}, which "
            f"has {self.n_stages} stages {self.stage_names}; use {valid}."
        )

    def output_shape(self, stop: int | None = None) -> tuple[int, ...]:
        """Shape of one sample's output of the first ``stop`` stages.

        Found once by a dry run on the preprocessing's example input and
        remembered for this preprocessing. For token sequences it is the shape
        of the token states at the example's length (for text backbones the
        longest input, ``max_length`` tokens: an upper bound).
        """
        return self._dry_run(
            stop, "shape", lambda out: tuple(_main_tensor(out).shape[1:])
        )

    def pooled_width(self, stop: int | None = None, pooling: str | None = "avg") -> int:
        """Width of the vector ``pool_features`` makes of stage ``stop``'s output."""
        return self._dry_run(
            stop,
            ("pooled", pooling),
            lambda out: int(pool_features(out, pooling).shape[1]),
        )

    def _dry_run(self, stop: int | None, what, summarize: Callable):
        """``summarize(output of the first stop stages on the example input)``."""
        stop = self.n_stages if stop is None else stop
        key = (stop, self.preprocessing.describe(), what)
        if key not in self._shapes:
            with self._example_batch() as example:
                self._shapes[key] = summarize(self(example, stop=stop))
        return self._shapes[key]

    @contextlib.contextmanager
    def _example_batch(self, raw: torch.Tensor | None = None):
        """``raw`` (or the example input) prepared, in eval and inference mode.

        The module's mode is restored afterwards.
        """
        was_training = self.training
        self.eval()
        try:
            device = next(self.parameters(), torch.empty(0)).device
            with torch.inference_mode():
                if raw is None:
                    raw = self.preprocessing.example_input()
                raw = to_device(raw, device)
                yield to_device(self.preprocessing(raw), device)
        finally:
            self.train(was_training)

    def forward(self, x: torch.Tensor, start: int = 0, stop: int | None = None):
        """Run stages ``start`` to ``stop`` (exclusive) on ``x``."""
        for stage in list(self.stages)[start:stop]:
            x = stage(x)
        return x

    def extra_repr(self) -> str:
        return f"name={self.name!r}, weights={self.weights!r}"
