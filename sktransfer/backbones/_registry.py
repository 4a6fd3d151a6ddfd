"""The backbone registry: register a spec once, browse names, look specs up."""

from __future__ import annotations

import difflib
import fnmatch

from ._base import BackboneSpec

__all__ = ["register_backbone", "list_backbones", "get_backbone_spec"]

_REGISTRY: dict[str, BackboneSpec] = {}


def register_backbone(spec: BackboneSpec) -> BackboneSpec:
    """Add ``spec`` to the registry; a name can be registered only once.

    Examples
    --------
    >>> from sktransfer.backbones import get_backbone_spec, register_backbone
    >>> register_backbone(get_backbone_spec("resnet18"))
    Traceback (most recent call last):
    ...
    ValueError: A backbone named 'resnet18' is already registered...
    """
    if spec.name in _REGISTRY:
        raise ValueError(
            f"A backbone named {spec.name!r} is already registered; choose another "
            "name for your spec."
        )
    _REGISTRY[spec.name] = spec
    return spec


def list_backbones(pattern: str | None = None) -> list[str]:
    """Sorted names of registered backbones, optionally filtered by a glob.

    Examples
    --------
    >>> from sktransfer import list_backbones
    >>> list_backbones("resnet*")
    ['resnet18', 'resnet34', 'resnet50']
    """
    names = sorted(_REGISTRY)
    if pattern is not None:
        names = fnmatch.filter(names, pattern)
    return names


def get_backbone_spec(name: str) -> BackboneSpec:
    """Return the spec registered under ``name`` or explain what exists."""
    try:
        return _REGISTRY[name]
    except KeyError:
        pass
    close = difflib.get_close_matches(str(name), list(_REGISTRY), n=3, cutoff=0.5)
    hint = f" Did you mean {' or '.join(repr(c) for c in close)}?" if close else ""
    raise ValueError(
        f"Unknown backbone {name!r}.{hint} The 'backbone' parameter takes a "
        f"registered name ({', '.join(sorted(_REGISTRY))}) or a torch.nn.Module."
    )
