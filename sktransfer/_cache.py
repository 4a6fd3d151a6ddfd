"""Never recompute frozen layers: outputs of frozen stages, computed once.

Within one ``fit`` the outputs are kept in memory. With a ``cache`` (a directory or
a :class:`joblib.Memory`) they are also stored on disk, keyed by everything that
determines them: the parameters and buffers of the frozen stages (so the backbone,
its weights and the freeze depth), the preprocessing, the storage dtype and a
fingerprint of the input images. Grid-search candidates, cross-validation folds
and a :class:`PretrainedFeatureExtractor` on the same data then reuse them.
joblib writes each entry to a temporary name and renames it, so concurrent
workers computing the same entry cannot corrupt it. A cache directory is local
to one host unless it lives on a shared filesystem.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass

import joblib
import numpy as np
import torch
from torch.utils.data import Dataset, TensorDataset

from ._inputs import InputSource, iter_batches
from ._runtime import BackboneRuntime
from .backbones import Backbone
from .exceptions import CacheTooLargeError

__all__ = [
    "FrozenOutputs",
    "as_memory",
    "bytes_per_image",
    "frozen_outputs",
    "format_bytes",
    "outputs_dataset",
]

_DTYPES = {"float32": np.float32, "float16": np.float16}


@dataclass
class FrozenOutputs:
    """Outputs of the first ``stop`` stages for every sample of a source.

    ``values`` is one tensor ``(n, ...)``, or for text backbones a mapping of
    token states ``(n, L, D)`` and their padding mask ``(n, L)``, where ``L`` is
    the longest text of the source (shorter ones are padded and masked).
    """

    values: torch.Tensor | dict[str, torch.Tensor]
    nbytes: int
    from_disk: bool


class _MappingDataset(Dataset):
    """``(values[i] for every key, y[i])``: collates into batches of mappings."""

    def __init__(self, values: Mapping[str, torch.Tensor], y: torch.Tensor):
        self.values, self.y = values, y

    def __len__(self) -> int:
        return len(self.y)

    def __getitem__(self, i: int):
        return {key: value[i] for key, value in self.values.items()}, self.y[i]


def outputs_dataset(values, y) -> Dataset:
    """Dataset of ``(cached output, target)`` rows for training on them."""
    y = torch.as_tensor(y)
    if isinstance(values, Mapping):
        return _MappingDataset(values, y)
    return TensorDataset(values, y)


def as_memory(cache) -> joblib.Memory | None:
    """Turn the ``cache`` parameter (None, a path or a Memory) into a Memory."""
    if cache is None or isinstance(cache, joblib.Memory):
        return cache
    if isinstance(cache, str | os.PathLike):
        return joblib.Memory(os.fspath(cache), verbose=0)
    raise TypeError(
        "The 'cache' parameter must be None, a directory path or a joblib.Memory; "
        f"got {type(cache).__name__} instead."
    )


def format_bytes(n: float) -> str:
    for unit in ("B", "KiB", "MiB", "GiB"):
        if n < 1024 or unit == "GiB":
            return f"{n:.1f} {unit}" if unit != "B" else f"{int(n)} B"
        n /= 1024
    return f"{n:.1f} GiB"


def bytes_per_image(net: Backbone, stop: int, dtype: str = "float32") -> int:
    """Bytes one sample's output of the first ``stop`` stages takes."""
    return int(np.prod(net.output_shape(stop)) * np.dtype(_DTYPES[dtype]).itemsize)


def _state_fingerprint(net: Backbone, stop: int) -> str:
    stages = list(net.stages)[:stop]
    state = {
        f"{index}.{key}": value.detach().cpu().numpy()
        for index, stage in enumerate(stages)
        for key, value in stage.state_dict().items()
    }
    return joblib.hash(state)


def _as_numpy(value: torch.Tensor, dtype: str) -> np.ndarray:
    array = value.numpy()
    return array.astype(_DTYPES[dtype]) if array.dtype.kind == "f" else array


def _concatenate(chunks: list, dtype: str):
    """One array (or mapping of arrays) from per-batch outputs.

    Token states of different batches have different lengths: they are padded
    with zeros (and a zero mask) to the longest.
    """
    if not isinstance(chunks[0], Mapping):
        return np.concatenate([_as_numpy(chunk, dtype) for chunk in chunks])
    length = max(v.shape[1] for chunk in chunks for v in chunk.values() if v.ndim > 1)
    out = {}
    for key in chunks[0]:
        parts = []
        for chunk in chunks:
            part = _as_numpy(chunk[key], dtype)
            if part.ndim > 1 and part.shape[1] < length:
                pad = [(0, 0), (0, length - part.shape[1])] + [(0, 0)] * (part.ndim - 2)
                part = np.pad(part, pad)
            parts.append(part)
        out[key] = np.concatenate(parts)
    return out


def _compute(key, runtime, source, stop, dtype, batch_size):
    """Run the first ``stop`` stages over ``source``; ``key`` only names the result.

    Batches follow the source's inference order (texts sorted by length); the
    rows are put back in the source's order.
    """
    size = runtime.preprocessing.loading_size
    order = source.inference_order()
    batches = iter_batches(source, batch_size, size=size, order=order)
    values = _concatenate(list(runtime.outputs(batches, stop)), dtype)
    if order is None:
        return values
    inverse = np.argsort(order)
    if isinstance(values, Mapping):
        return {key: value[inverse] for key, value in values.items()}
    return values[inverse]


def frozen_outputs(
    runtime: BackboneRuntime,
    source: InputSource,
    stop: int,
    *,
    memory: joblib.Memory | None = None,
    dtype: str = "float32",
    max_bytes: int | None = None,
    batch_size: int = 64,
) -> FrozenOutputs:
    """Outputs of stages ``[0, stop)`` for all inputs, from disk when cached.

    Raises :class:`CacheTooLargeError` before computing anything when they would
    take more than ``max_bytes``.
    """
    net = runtime.backbone
    per_image = bytes_per_image(net, stop, dtype)
    total = per_image * len(source)
    if max_bytes is not None and total > max_bytes:
        raise CacheTooLargeError(
            f"Caching the output of stage {stop} ({net.stage_names[stop - 1]!r}) "
            f"of {net.name!r} for {len(source)} images needs {format_bytes(total)} "
            f"({format_bytes(per_image)} per image), more than "
            f"cache_max_bytes={format_bytes(max_bytes)}. Freeze more stages, use "
            "cache_dtype='float16', raise cache_max_bytes, or set "
            "cache_frozen=False to recompute the frozen stages every epoch."
        )
    key = {
        "stages": _state_fingerprint(net, stop),
        "stop": stop,
        "preprocessing": net.preprocessing.describe(),
        "images": source.fingerprint(),
        "dtype": dtype,
    }
    args = (key, runtime, source, stop, dtype, batch_size)
    if memory is None:
        values, from_disk = _compute(*args), False
    else:
        cached = memory.cache(
            _compute, ignore=["runtime", "source", "stop", "batch_size"]
        )
        from_disk = cached.check_call_in_cache(*args)
        values = cached(*args)
    if isinstance(values, Mapping):
        tensors = {
            k: torch.from_numpy(np.ascontiguousarray(v)) for k, v in values.items()
        }
        nbytes = sum(int(v.nbytes) for v in values.values())
    else:
        tensors, nbytes = torch.from_numpy(np.ascontiguousarray(values)), values.nbytes
    return FrozenOutputs(values=tensors, nbytes=int(nbytes), from_disk=bool(from_disk))
