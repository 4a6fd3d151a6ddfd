"""Turn what users pass as ``backbone``/``weights`` into a :class:`Backbone`."""

from __future__ import annotations

import copy
import os
from collections import OrderedDict
from collections.abc import Mapping, Sequence

import torch
from torch import nn

from ..exceptions import WeightsError
from ._base import Backbone, BackboneSpec
from ._preprocessing import IMAGENET_MEAN, IMAGENET_STD, Preprocessing
from ._registry import get_backbone_spec
from ._weights import (
    file_digest,
    is_weights_path,
    load_state_dict_file,
    load_weights_into,
)

__all__ = [
    "resolve_backbone",
    "check_backbone_argument",
    "backbone_modality",
    "is_own_module",
]


def check_backbone_argument(backbone: object, weights: object) -> None:
    """Validate ``backbone``/``weights`` cheaply, before any model is built."""
    if isinstance(backbone, str):
        spec = get_backbone_spec(backbone)
        _check_weights_name(spec, weights)
    elif not isinstance(backbone, nn.Module | Mapping | Sequence) or isinstance(
        backbone, bytes
    ):
        raise TypeError(
            "The 'backbone' parameter must be a registered name (see "
            "sktransfer.list_backbones()), a torch.nn.Module, or a list of "
            f"(name, module) stages; got {type(backbone).__name__} instead."
        )
    elif weights not in (None, "DEFAULT") and not is_weights_path(weights):
        # A user's module brings its own parameters: those are its default.
        raise WeightsError(
            f"weights={weights!r} cannot be used with a custom module: pass "
            "'DEFAULT' or None to keep its current parameters, or the path of a "
            "state dict file."
        )
    if is_weights_path(weights) and not os.path.isfile(weights):
        raise WeightsError(
            f"The weights file {os.fspath(weights)!r} does not exist. Pass "
            "weights=None, 'DEFAULT', a weights name, or an existing file path."
        )


def is_own_module(backbone: object) -> bool:
    """Whether ``backbone`` is a module (or stages) of the user's own, not a name.

    The library knows neither its pretraining nor its input recipe: it is taken
    as pretrained, and its BatchNorm statistics are refitted unless the user
    states the normalisation.
    """
    return not isinstance(backbone, str)


def backbone_modality(backbone: object) -> str:
    """Kind of input ``backbone`` takes, known without building it."""
    if isinstance(backbone, str):
        return get_backbone_spec(backbone).modality
    if isinstance(backbone, Backbone):
        return backbone.modality
    return "image"  # user modules: images, the only kind they can declare today


def _check_weights_name(spec: BackboneSpec, weights: object) -> None:
    if weights is None or is_weights_path(weights):
        return
    names = spec.weight_names()
    if isinstance(weights, str) and (
        weights in names or (weights == "DEFAULT" and names)
    ):
        return
    options = ", ".join(repr(n) for n in ["DEFAULT", *names]) if names else ""
    choices = f"{options}, None" if options else "None"
    raise WeightsError(
        f"Unknown weights {weights!r} for backbone {spec.name!r}. The 'weights' "
        f"parameter takes {choices}, or the path of a .pth/.pt/.safetensors file."
    )


def resolve_backbone(
    backbone: str | nn.Module | Sequence[tuple[str, nn.Module]],
    weights: str | os.PathLike | None = None,
    *,
    image_size: int | tuple[int, int] | None = None,
    input_size: tuple[int, int] | None = None,
    max_length: int | None = None,
    image_mean: float | Sequence[float] | None = None,
    image_std: float | Sequence[float] | None = None,
    progress: bool = False,
) -> Backbone:
    """Build the backbone named or given by ``backbone`` with ``weights`` loaded.

    Parameters
    ----------
    backbone : str, nn.Module or list of (str, nn.Module)
        A registered name (see :func:`~sktransfer.list_backbones`), any module
        (its top-level children become the stages; it is copied, never modified)
        or explicit ``(name, module)`` stages.
    weights : None, "DEFAULT", str or path-like, default=None
        None for random initialisation (or the module's own parameters), a
        weights name of the registered backbone, or a local state dict file.
    image_size : int or (int, int), default=None
        Resize inputs straight to this size instead of the weights' own
        resize/crop recipe (e.g. 64 for small images).
    input_size : (int, int), default=None
        ``(height, width)`` of the images that will be fed, when known. With
        ``image_size=None``, images smaller than the network's input are then
        resized straight to a bounded size
        (:meth:`Preprocessing.for_small_images`) instead of the weights' recipe,
        provided the network accepts that size.
    max_length : int or None, default=None
        Truncate texts to this many tokens instead of the model's default.
        Text backbones only.
    image_mean, image_std : float, sequence of float or None, default=None
        Normalise images with this mean and standard deviation (pixels in
        ``[0, 1]``; one value for all channels or one per channel) instead of
        the weights' own recipe, or the default for a module of your own.
    progress : bool, default=False
        Show a download progress bar.

    Returns
    -------
    Backbone

    Examples
    --------
    >>> from sktransfer.backbones import resolve_backbone
    >>> net = resolve_backbone("resnet18")
    >>> net.stage_names
    ['stem', 'layer1', 'layer2', 'layer3', 'layer4', 'pool']
    >>> net.embedding_dim
    512
    """
    check_backbone_argument(backbone, weights)
    if isinstance(backbone, str):
        net = _resolve_registered(get_backbone_spec(backbone), weights, progress)
    else:
        net = _resolve_module(backbone, weights)
    # Options of one kind of preprocessing: a backbone whose preprocessing has
    # no such knob (text has no image size) says so.
    for option, value, method in [
        ("image_size", image_size, "with_image_size"),
        ("max_length", max_length, "with_max_length"),
    ]:
        if value is not None:
            configure = getattr(net.preprocessing, method, None)
            if configure is None:
                raise ValueError(
                    f"{option}={value!r} does not apply to the backbone "
                    f"{net.name!r}, which takes {net.modality} input; leave "
                    f"{option}=None."
                )
            net.preprocessing = configure(value)
    if image_mean is not None or image_std is not None:
        normalise = getattr(net.preprocessing, "with_normalisation", None)
        if normalise is None:
            option = "image_mean" if image_mean is not None else "image_std"
            raise ValueError(
                f"{option} does not apply to the backbone {net.name!r}, which "
                f"takes {net.modality} input; leave image_mean and image_std=None."
            )
        net.preprocessing = normalise(image_mean, image_std)
    small_images = getattr(net.preprocessing, "for_small_images", None)
    if image_size is None and input_size is not None and small_images:
        if isinstance(backbone, str):
            _fit_small_images(net, input_size)
        else:
            # A user's own module has no input recipe: images keep the size
            # they come in, most likely the size it was trained on.
            net.preprocessing = net.preprocessing.with_image_size(tuple(input_size))
    if isinstance(backbone, nn.Module) and not isinstance(backbone, nn.Sequential):
        _check_children_reproduce_forward(backbone, net)
    if not isinstance(backbone, str):
        net.embedding_dim = net.pooled_width()
    return net


def _check_children_reproduce_forward(module: nn.Module, net: Backbone) -> None:
    """Refuse a module whose ``forward`` is not its children run in order.

    A whole module becomes its top-level children, one after the other. A
    ``forward`` that applies functions between them (``F.relu``,
    ``torch.flatten``) computes something else, and fitting would fail deep
    inside training or, worse, train a different network. One dry run on two
    random images (with the module's own parameters) tells.
    """
    if len(net.stages) < 2:
        return  # a module without children is used whole
    reference = copy.deepcopy(module)
    for stage, (_, child) in zip(net.stages, reference.named_children(), strict=False):
        # Compare with the parameters the stages hold (a weights file may
        # have replaced the module's own).
        child.load_state_dict(stage.state_dict())
    recipe = net.preprocessing
    raw = torch.rand(
        2,
        recipe.in_channels,
        *recipe.crop_size,
        generator=torch.Generator().manual_seed(0),
    )
    reference.eval()
    with net._example_batch(raw) as x:
        problem = _stages_against_forward(net, reference, x)
    if problem is None:
        return
    chain = " -> ".join(net.stage_names)
    kind = type(module).__name__
    raise ValueError(
        f"The 'backbone' module {kind} is used as its top-level children run "
        f"one after the other, and that is not what {kind}.forward computes: "
        f"running {chain} {problem}. Its forward probably applies functions "
        "between them (F.relu, F.max_pool2d, torch.flatten). Pass 'backbone' as "
        "a list of (name, module) stages that reproduces forward instead, "
        "leaving the old classifier out, e.g. [('block1', nn.Sequential("
        "model.conv1, nn.ReLU(), nn.MaxPool2d(2))), ('block2', ...)]."
    )


def _fit_small_images(net: Backbone, input_size: tuple[int, int]) -> None:
    """Resize small inputs to a bounded size, if the network accepts it."""
    size = net.preprocessing.for_small_images(*input_size)
    if size is None or size == tuple(net.preprocessing.crop_size):
        if size is not None:  # already the network's size: no crop needed
            net.preprocessing = net.preprocessing.with_image_size(size)
        return
    recipe = net.preprocessing
    net.preprocessing = recipe.with_image_size(size)
    try:
        net.output_shape()  # one dry run: fixed-size networks (ViT) refuse
    except Exception:
        net.preprocessing = recipe


def _stages_against_forward(net: Backbone, reference: nn.Module, x) -> str | None:
    """How running ``net``'s stages on ``x`` differs from ``reference(x)``, or None.

    Called inside :meth:`Backbone._example_batch` (eval and inference mode).
    """
    try:
        expected = reference(x)
    except Exception:
        return None  # its own forward refuses this input: nothing to compare
    try:
        got = net(x)
    except Exception as error:
        return f"fails ({type(error).__name__}: {error})"
    if not (torch.is_tensor(expected) and torch.is_tensor(got)):
        return None
    if got.shape != expected.shape:
        return (
            f"gives an output of shape {tuple(got.shape)} where forward gives "
            f"{tuple(expected.shape)}"
        )
    if not torch.allclose(got, expected, rtol=1e-3, atol=1e-4):
        return "gives other values than forward"
    return None


def _resolve_registered(
    spec: BackboneSpec, weights: object, progress: bool
) -> Backbone:
    model = spec.build()
    entries = spec.weights()
    # Random init keeps the architecture's native input recipe.
    preprocessing = entries[0].preprocessing if entries else spec.preprocessing
    identity = None
    if is_weights_path(weights):
        path = os.fspath(weights)
        load_weights_into(model, load_state_dict_file(path), f"file {path!r}")
        identity = f"file:{file_digest(path)}"
    elif weights is not None:
        entry = (
            entries[0]
            if weights == "DEFAULT"
            else next(e for e in entries if e.name == weights)
        )
        source = f"{spec.name} weights {entry.name!r}"
        load_weights_into(model, entry.load_state_dict(progress), source)
        preprocessing, identity = entry.preprocessing, entry.name
    return Backbone(
        spec.split(model),
        embedding_dim=spec.embedding_dim,
        preprocessing=preprocessing,
        name=spec.name,
        weights=identity,
        modality=spec.modality,
        mid_layers=spec.mid_layers,
        finetune_lr=spec.finetune_lr,
        keep_batchnorm_stats=spec.keep_batchnorm_stats,
    )


def _resolve_module(backbone: object, weights: object) -> Backbone:
    if isinstance(backbone, Mapping):
        stages = list(backbone.items())
    elif isinstance(backbone, nn.Module):
        stages = list(backbone.named_children()) or [("module", backbone)]
    else:
        stages = list(backbone)
    if not all(
        isinstance(pair, tuple) and len(pair) == 2 and isinstance(pair[1], nn.Module)
        for pair in stages
    ):
        raise TypeError(
            "A list given as 'backbone' must hold (name, torch.nn.Module) pairs."
        )
    # Fitting must never change the module the user handed in.
    stages = [(str(name), copy.deepcopy(module)) for name, module in stages]
    identity = None
    if weights is not None and weights != "DEFAULT":
        path = os.fspath(weights)
        holder = (
            nn.Sequential(OrderedDict(stages))
            if isinstance(backbone, Mapping)
            else (copy.deepcopy(backbone) if isinstance(backbone, nn.Module) else None)
        )
        if holder is None:
            holder = nn.Sequential(OrderedDict(stages))
        load_weights_into(holder, load_state_dict_file(path), f"file {path!r}")
        stages = list(holder.named_children()) or [("module", holder)]
        identity = f"file:{file_digest(path)}"
    in_channels = _first_conv_channels(stages)
    preprocessing = Preprocessing(
        crop_size=(224, 224),
        mean=IMAGENET_MEAN if in_channels == 3 else (0.5,) * in_channels,
        std=IMAGENET_STD if in_channels == 3 else (0.5,) * in_channels,
        in_channels=in_channels,
    )
    net = Backbone(
        stages,
        embedding_dim=0,
        preprocessing=preprocessing,
        name=type(backbone).__name__ if isinstance(backbone, nn.Module) else "custom",
        weights=identity,
    )
    return net


def _first_conv_channels(stages: Sequence[tuple[str, nn.Module]]) -> int:
    for _, stage in stages:
        for module in stage.modules():
            if isinstance(module, nn.Conv2d):
                return module.in_channels
    return 3
