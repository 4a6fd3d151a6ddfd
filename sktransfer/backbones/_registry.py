"""The backbone registry: register a spec once, browse names, look specs up.

Besides fixed names, a *source* can claim every name starting with a prefix (for
example ``"timm/"``) and build its specs on demand; those names are resolved by
:func:`get_backbone_spec` but not listed by :func:`list_backbones`.
"""

from __future__ import annotations

import difflib
import fnmatch
from collections.abc import Callable

from ._base import BackboneSpec

__all__ = [
    "register_backbone",
    "register_backbone_source",
    "list_backbones",
    "get_backbone_spec",
]

_REGISTRY: dict[str, BackboneSpec] = {}
# prefix -> factory(full name) -> spec, and the specs they built so far.
_SOURCES: dict[str, Callable[[str], BackboneSpec]] = {}
_SOURCE_SPECS: dict[str, BackboneSpec] = {}


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


def register_backbone_source(
    prefix: str, factory: Callable[[str], BackboneSpec]
) -> None:
    """Resolve every backbone name starting with ``prefix`` through ``factory``.

    ``factory(name)`` receives the full name (prefix included) and returns its
    :class:`BackboneSpec`, or raises ``ValueError``/``ImportError`` explaining why
    the name cannot be used. Specs are built on first use and cached. Such names
    are not listed by :func:`list_backbones`.

    Examples
    --------
    >>> from sktransfer.backbones import register_backbone_source
    >>> register_backbone_source("timm/", lambda name: None)
    Traceback (most recent call last):
    ...
    ValueError: A backbone source for the prefix 'timm/' is already registered.
    """
    if prefix in _SOURCES:
        raise ValueError(
            f"A backbone source for the prefix {prefix!r} is already registered."
        )
    _SOURCES[prefix] = factory


def list_backbones(
    pattern: str | None = None, *, modality: str | None = None
) -> list[str]:
    """Sorted names of registered backbones, optionally filtered by a glob.

    ``modality`` keeps only backbones taking that kind of input (``"image"``,
    ``"text"``).

    Names served by a prefix source (``"timm/<model name>"``, any model of
    ``timm.list_models()``) are built on demand and not listed here.

    Examples
    --------
    >>> from sktransfer import list_backbones
    >>> list_backbones("resnet*")
    ['resnet18', 'resnet34', 'resnet50']
    >>> list_backbones(modality="text")
    ['all-minilm-l6-v2']
    """
    names = sorted(
        name
        for name, spec in _REGISTRY.items()
        if modality is None or spec.modality == modality
    )
    if pattern is not None:
        names = fnmatch.filter(names, pattern)
    return names


def get_backbone_spec(name: str) -> BackboneSpec:
    """Return the spec registered under ``name`` or explain what exists.

    Names claimed by a source (:func:`register_backbone_source`) are built by it
    on first use and cached.
    """
    if isinstance(name, str):
        if name in _REGISTRY:
            return _REGISTRY[name]
        if name in _SOURCE_SPECS:
            return _SOURCE_SPECS[name]
        for prefix, factory in _SOURCES.items():
            if name.startswith(prefix):
                _SOURCE_SPECS[name] = factory(name)
                return _SOURCE_SPECS[name]
    close = difflib.get_close_matches(str(name), list(_REGISTRY), n=3, cutoff=0.5)
    hint = f" Did you mean {' or '.join(repr(c) for c in close)}?" if close else ""
    sources = "".join(f", a name starting with {p!r}" for p in _SOURCES)
    raise ValueError(
        f"Unknown backbone {name!r}.{hint} The 'backbone' parameter takes a "
        f"registered name ({', '.join(sorted(_REGISTRY))}){sources} or a "
        "torch.nn.Module."
    )
