"""How a timm model is cut into stages: the plan, its check, and its modules.

Stages come from timm's own stage metadata, ``model.feature_info``: each entry
names the module that ends a stage. The modules that ``forward_features`` calls
are recorded in call order and cut after each of those modules:

- ``stem``: everything up to the first stage (when timm's first entry is a stem
  output such as ResNet's ``act1``, the stem ends there);
- ``stage1`` ... ``stageN``: one per remaining ``feature_info`` entry;
- ``pool``: the rest of ``forward_features`` (a final norm or head convolution)
  followed by ``forward_head(x, pre_logits=True)``: global pooling and the head's
  norm or hidden layer, never the classifier.

Vision transformers add the class token and position embedding in a method, so
their stem runs ``patch_embed``, ``_pos_embed``, ``patch_drop`` and ``norm_pre``.
Every split is checked once on a dry-run batch against
``model.forward_head(model.forward_features(x), pre_logits=True)``; a model that
cannot be cut this way gets two stages, ``features`` (``forward_features``) and
``pool``. Plans are found by module name and cached per architecture, so timm is
never imported here: the models come from :mod:`._timm`.
"""

from __future__ import annotations

import copy
import functools
import itertools
from collections import OrderedDict
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import torch
from torch import nn

__all__ = [
    "StagePlan",
    "TimmFeatures",
    "TimmPool",
    "TimmViTEmbed",
    "apply_plan",
    "plan_stages",
    "timm_split",
]

Stages = list[tuple[str, nn.Module]]


@dataclass(frozen=True)
class StagePlan:
    """How one timm architecture is cut into stages, by module path.

    ``stages`` holds ``(stage name, module paths)`` in order; ``tail`` the modules
    ``forward_features`` calls after the last stage; ``head`` the top-level
    children only ``forward_head`` uses; ``classifiers`` the classifier paths
    replaced by ``nn.Identity``. ``kind`` is ``"sequential"``, ``"vit"`` (the stem
    also adds tokens and positions) or ``"features"`` (one ``forward_features``
    stage).
    """

    stages: tuple[tuple[str, tuple[str, ...]], ...]
    tail: tuple[str, ...]
    head: tuple[str, ...]
    classifiers: tuple[str, ...]
    kind: str = "sequential"


def _restricted(model: nn.Module, keep: Sequence[str], *, tensors: bool) -> nn.Module:
    """Shallow copy of ``model`` owning only the children ``keep``.

    Its own parameters and buffers (class token, position embedding) are kept
    when ``tensors``. The model's methods still work as long as they only use
    what was kept; the original model is not modified.
    """
    shell = copy.copy(model)
    shell._modules = OrderedDict(
        (name, child)
        for name, child in model._modules.items()
        if name in keep or child is None
    )
    shell._parameters = OrderedDict(
        (name, p) for name, p in model._parameters.items() if tensors or p is None
    )
    shell._buffers = OrderedDict(
        (name, b) for name, b in model._buffers.items() if tensors or b is None
    )
    shell._non_persistent_buffers_set = (
        set(model._non_persistent_buffers_set) if tensors else set()
    )
    return shell


def _replace_path(root: nn.Module, path: str, new: nn.Module) -> None:
    """Set ``root.<path>`` to ``new``, copying the parents on the way."""
    *parents, last = path.split(".")
    node = root
    for name in parents:
        if name not in node._modules:
            return
        child = copy.copy(node._modules[name])
        child._modules = OrderedDict(child._modules)
        node._modules[name] = child
        node = child
    if last in node._modules:
        node._modules[last] = new


class TimmPool(nn.Module):
    """Last stage: the end of ``forward_features``, then the head's pre-logits."""

    def __init__(self, tail: Sequence[tuple[str, nn.Module]], head: nn.Module):
        super().__init__()
        self.tail = nn.Sequential(OrderedDict(tail))
        self.head = head

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head.forward_head(self.tail(x), pre_logits=True)


class TimmViTEmbed(nn.Module):
    """Stem of a timm vision transformer: patches, tokens, positions."""

    def __init__(self, vit: nn.Module):
        super().__init__()
        self.vit = vit

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        vit = self.vit
        x = vit._pos_embed(vit.patch_embed(x))
        return vit.norm_pre(vit.patch_drop(x))


class TimmFeatures(nn.Module):
    """``forward_features`` of a model that cannot be cut into stages."""

    def __init__(self, model: nn.Module):
        super().__init__()
        self.model = model

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.model.forward_features(x)


def apply_plan(plan: StagePlan, model: nn.Module) -> Stages:
    """Cut ``model`` into the stages ``plan`` describes (no copy of parameters)."""

    def named(paths: Sequence[str]) -> list[tuple[str, nn.Module]]:
        return [(p.replace(".", "_"), model.get_submodule(p)) for p in paths]

    stages: Stages = []
    for index, (name, paths) in enumerate(plan.stages):
        if plan.kind == "vit" and index == 0:
            stage = TimmViTEmbed(_restricted(model, paths, tensors=True))
        elif plan.kind == "features":
            stage = TimmFeatures(_restricted(model, paths, tensors=True))
        else:
            stage = nn.Sequential(OrderedDict(named(paths)))
        stages.append((name, stage))
    head = _restricted(model, plan.head, tensors=False)
    for path in plan.classifiers:
        _replace_path(head, path, nn.Identity())
    return [*stages, ("pool", TimmPool(named(plan.tail), head))]


def _feature_modules(model: nn.Module) -> list[str]:
    info = getattr(model, "feature_info", None)
    if info is None:
        return []
    entries = info.get_dicts() if hasattr(info, "get_dicts") else info
    return [entry["module"] for entry in entries if entry.get("module")]


def _candidates(model: nn.Module, feature_paths: Sequence[str]) -> list[str]:
    """Top-level children, with the containers of stage modules opened up."""
    names = [name for name, _ in model.named_children()]
    for path in feature_paths:
        parts = path.split(".")
        for depth in range(1, len(parts)):
            prefix = ".".join(parts[:depth])
            if prefix in names:
                children = model.get_submodule(prefix).named_children()
                index = names.index(prefix)
                names[index : index + 1] = [f"{prefix}.{c}" for c, _ in children]
    return names


def _record_calls(model: nn.Module, paths: Sequence[str], run: Callable):
    """Run ``run()``; return the calls of ``paths`` in order, the top-level
    children any of whose modules ran, and the result."""
    order: list[str] = []
    used: set[str] = set()
    handles = [
        model.get_submodule(path).register_forward_pre_hook(
            lambda module, args, path=path: order.append(path)
        )
        for path in paths
    ]
    handles += [
        module.register_forward_pre_hook(
            lambda module, args, top=name.split(".")[0]: used.add(top)
        )
        for name, module in model.named_modules()
        if name
    ]
    try:
        result = run()
    finally:
        for handle in handles:
            handle.remove()
    return order, used, result


def _classifier_paths(model: nn.Module) -> tuple[str, ...]:
    try:
        classifier = model.get_classifier()
    except Exception:  # models without the method keep their head
        return ()
    found = classifier if isinstance(classifier, tuple | list) else (classifier,)
    return tuple(
        name
        for name, module in model.named_modules()
        if name and any(module is c for c in found)
    )


def _candidate_plans(model: nn.Module, x: torch.Tensor) -> list[StagePlan]:
    feature_paths = _feature_modules(model)
    order, trunk, features = _record_calls(
        model,
        _candidates(model, feature_paths),
        lambda: model.forward_features(x),
    )
    _, pooling, _ = _record_calls(
        model, (), lambda: model.forward_head(features, pre_logits=True)
    )
    classifiers = _classifier_paths(model)
    # The head: what only forward_head runs, plus the (unrun) classifier.
    pooling |= {path.split(".")[0] for path in classifiers}
    children = [name for name, _ in model.named_children()]
    head = tuple(n for n in children if n in pooling and n not in trunk)
    features = StagePlan(
        (("features", tuple(n for n in children if n not in head)),),
        (),
        head,
        classifiers,
        "features",
    )
    ends = [order.index(p) for p in feature_paths if p in order]
    if (
        not feature_paths
        or len(ends) != len(feature_paths)
        or len(set(order)) != len(order)
        or ends != sorted(ends)
    ):
        return [features]
    stages: list[tuple[str, tuple[str, ...]]] = []
    if "." not in feature_paths[0]:
        # timm's first entry is the stem's output (ResNet act1, EfficientNet bn1).
        stages.append(("stem", tuple(order[: ends[0] + 1])))
        start, ends = ends[0] + 1, ends[1:]
    else:
        start = ends[0]
        if start:
            stages.append(("stem", tuple(order[:start])))
    for number, end in enumerate(ends, start=1):
        stages.append((f"stage{number}", tuple(order[start : end + 1])))
        start = end + 1
    tail = tuple(order[start:])
    plans = [StagePlan(tuple(stages), tail, head, classifiers)]
    if hasattr(model, "_pos_embed") and stages[0][0] == "stem":
        plans.insert(0, StagePlan(tuple(stages), tail, head, classifiers, "vit"))
    return [*plans, features]


def _tensor_ids(module: nn.Module) -> list[int]:
    return [id(t) for t in itertools.chain(module.parameters(), module.buffers())]


def _owns_everything(model: nn.Module, plan: StagePlan, stages: Stages) -> bool:
    """Every tensor but the classifier's belongs to exactly one stage."""
    owned = [i for _, stage in stages for i in _tensor_ids(stage)]
    dropped = {i for p in plan.classifiers for i in _tensor_ids(model.get_submodule(p))}
    return len(owned) == len(set(owned)) and set(owned) | dropped == set(
        _tensor_ids(model)
    )


def _run(stages: Stages, x: torch.Tensor) -> torch.Tensor:
    for _, stage in stages:
        x = stage(x)
    return x


def _dry_run_input(channels: int, size: tuple[int, int]) -> torch.Tensor:
    """A fixed random batch of two images, run once to check a plan."""
    generator = torch.Generator().manual_seed(0)
    return torch.randn(2, channels, *size, generator=generator)


def plan_stages(model: nn.Module) -> tuple[StagePlan, int]:
    """Find and check the stage plan of ``model``; return it with the embedding width.

    Each candidate plan is applied and run on a dry-run batch; the first whose
    output equals ``forward_head(forward_features(x), pre_logits=True)`` is kept.
    """
    was_training = model.training
    model.eval()
    cfg = getattr(model, "pretrained_cfg", None) or {}
    channels, *native = cfg.get("input_size", (3, 224, 224))
    channels = getattr(model, "in_chans", None) or channels
    # Small inputs keep the dry run cheap; fixed-size models (ViT, Swin) need their own.
    sizes = [tuple(native)] if cfg.get("fixed_input_size") else [(64, 64), native]
    error: Exception | None = None
    try:
        with torch.no_grad():
            for size in sizes:
                x = _dry_run_input(channels, tuple(size))
                try:
                    expected = model.forward_head(
                        model.forward_features(x), pre_logits=True
                    )
                    plans = _candidate_plans(model, x)
                except Exception as exc:  # too small for this model: try native
                    error = exc
                    continue
                for plan in plans:
                    try:
                        stages = apply_plan(plan, model)
                        got = _run(stages, x)
                    except Exception as exc:
                        error = exc
                        continue
                    if (
                        got.shape == expected.shape
                        and torch.allclose(got, expected, rtol=1e-4, atol=1e-5)
                        and _owns_everything(model, plan, stages)
                    ):
                        if got.ndim != 2:
                            break
                        return plan, int(got.shape[1])
                break
    finally:
        model.train(was_training)
    name = type(model).__name__
    raise ValueError(
        f"The timm model {name} cannot be used as a backbone: its forward_head("
        "forward_features(x), pre_logits=True) could not be reproduced stage by "
        f"stage or does not give one vector per image (last error: {error!r})."
    )


_PLANS: dict[str, tuple[StagePlan, int]] = {}


def _cached_plan(arch: str, model: nn.Module) -> tuple[StagePlan, int]:
    if arch not in _PLANS:
        _PLANS[arch] = plan_stages(model)
    return _PLANS[arch]


def _split(arch: str, model: nn.Module) -> Stages:
    return apply_plan(_cached_plan(arch, model)[0], model)


def timm_split(arch: str) -> Callable[[nn.Module], Stages]:
    """``split`` function for specs built on the timm architecture ``arch``."""
    return functools.partial(_split, arch)
