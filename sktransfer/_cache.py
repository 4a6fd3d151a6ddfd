"""Never recompute frozen layers: outputs of frozen stages, computed once.

Within one ``fit`` the outputs are kept in memory. With a ``cache`` (a
:class:`FrozenOutputCache`, a directory, or a :class:`joblib.Memory` standing for
its directory) they are also stored on disk, keyed by everything that determines
them: the parameters and buffers of the frozen stages (so the backbone, its
weights and the freeze depth), the stop stages, the preprocessing, the storage
dtype and a fingerprint of the inputs. Grid-search candidates, cross-validation
folds and a :class:`PretrainedFeatureExtractor` on the same data then reuse them.
The extractor's taps (several stops) are computed in one pass and stored as one
entry. The store (``_cache_store.py``) never unpickles anything and writes
atomically, so concurrent workers can share it. A cache directory is local to
one host unless it lives on a shared filesystem.
"""

from __future__ import annotations

import hashlib
import warnings
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np
import torch
from torch.utils.data import Dataset, TensorDataset

from ._cache_store import FrozenOutputCache, as_cache
from ._inputs import InputSource, iter_batches
from ._runtime import BackboneRuntime
from .backbones import Backbone
from .exceptions import CacheTooLargeError

__all__ = [
    "FrozenOutputCache",
    "FrozenOutputs",
    "as_cache",
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
    the longest text of the source (shorter ones are padded and masked). For a
    list of stops it is a list of those, one per stop.
    """

    values: torch.Tensor | dict[str, torch.Tensor] | list
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
    """SHA-256 of the names, dtypes, shapes and bytes of the first stages' state."""
    digest = hashlib.sha256()
    for index, stage in enumerate(list(net.stages)[:stop]):
        for key, value in stage.state_dict().items():
            value = value.detach().cpu().contiguous()
            digest.update(f"{index}.{key}:{value.dtype}:{list(value.shape)};".encode())
            digest.update(value.reshape(-1).view(torch.uint8).numpy().tobytes())
    return digest.hexdigest()


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


def _compute(runtime, source, stops: list[int], dtype: str, batch_size: int) -> list:
    """Outputs of each of the sorted ``stops`` over ``source``, in one pass.

    Batches follow the source's inference order (texts sorted by length); the
    rows are put back in the source's order.
    """
    size = runtime.preprocessing.loading_size
    order = source.inference_order()
    batches = iter_batches(source, batch_size, size=size, order=order)
    chunks = list(runtime.outputs(batches, stops))
    values = [_concatenate([c[i] for c in chunks], dtype) for i in range(len(stops))]
    if order is None:
        return values
    inverse = np.argsort(order)
    return [_reorder(value, inverse) for value in values]


def _reorder(value, index: np.ndarray):
    if isinstance(value, Mapping):
        return {key: array[index] for key, array in value.items()}
    return value[index]


def _flatten(values: list, stops: list[int]) -> dict[str, np.ndarray]:
    """Named arrays of the store: ``"3"``, or ``"3.hidden_states"`` for mappings."""
    arrays = {}
    for stop, value in zip(stops, values, strict=True):
        if isinstance(value, Mapping):
            arrays.update({f"{stop}.{key}": array for key, array in value.items()})
        else:
            arrays[str(stop)] = value
    return arrays


def _unflatten(arrays: dict, stops: list[int], n: int) -> list | None:
    """Inverse of :func:`_flatten`; None unless every stop has ``n`` rows."""
    values = []
    for stop in stops:
        if str(stop) in arrays:
            values.append(arrays[str(stop)])
            continue
        prefix = f"{stop}."
        value = {k[len(prefix) :]: v for k, v in arrays.items() if k.startswith(prefix)}
        values.append(value or None)
    parts = [
        part
        for value in values
        for part in (value.values() if isinstance(value, Mapping) else [value])
    ]
    if any(part is None or part.ndim == 0 or len(part) != n for part in parts):
        return None
    return values


def _as_tensors(value):
    if isinstance(value, Mapping):
        return {k: torch.from_numpy(np.ascontiguousarray(v)) for k, v in value.items()}
    return torch.from_numpy(np.ascontiguousarray(value))


def frozen_outputs(
    runtime: BackboneRuntime,
    source: InputSource,
    stop: int | Sequence[int],
    *,
    cache: FrozenOutputCache | None = None,
    dtype: str = "float32",
    max_bytes: int | None = None,
    batch_size: int = 64,
) -> FrozenOutputs:
    """Outputs of stages ``[0, stop)`` for all inputs, from disk when cached.

    ``stop`` may be a sorted list of stops (an extractor's taps): the stages
    then run once, up to the last of them, ``values`` is a list with one output
    per stop and the cache stores them as one entry. Raises
    :class:`CacheTooLargeError` before computing anything when they would take
    more than ``max_bytes``.
    """
    net = runtime.backbone
    stops = [int(stop)] if isinstance(stop, int | np.integer) else list(stop)
    if max_bytes is not None:
        per_image = sum(bytes_per_image(net, s, dtype) for s in stops)
        total = per_image * len(source)
        if total > max_bytes:
            names = ", ".join(repr(net.stage_names[s - 1]) for s in stops)
            raise CacheTooLargeError(
                f"Caching the output of stage {', '.join(map(str, stops))} "
                f"({names}) of {net.name!r} for {len(source)} images needs "
                f"{format_bytes(total)} ({format_bytes(per_image)} per image), "
                f"more than cache_max_bytes={format_bytes(max_bytes)}. Freeze more "
                "stages, use cache_dtype='float16', raise cache_max_bytes, or set "
                "cache_frozen=False to recompute the frozen stages every epoch."
            )
    key = {
        "stages": _state_fingerprint(net, stops[-1]),
        "stops": stops,
        "preprocessing": net.preprocessing.describe(),
        "images": source.fingerprint(),
        "dtype": dtype,
    }
    values = None
    if cache is not None:
        stored = cache._read(key)
        if stored is not None:
            values = _unflatten(stored, stops, len(source))
            if values is None:
                warnings.warn(
                    f"Ignoring {cache._forget(key)!r} in the frozen-output cache: "
                    "its arrays do not match its key. It is recomputed.",
                    UserWarning,
                    stacklevel=3,
                )
    from_disk = values is not None
    if values is None:
        values = _compute(runtime, source, stops, dtype, batch_size)
        if cache is not None:
            cache._write(key, _flatten(values, stops))
    nbytes = sum(int(array.nbytes) for array in _flatten(values, stops).values())
    tensors = [_as_tensors(value) for value in values]
    return FrozenOutputs(
        values=tensors if isinstance(stop, Sequence) else tensors[0],
        nbytes=nbytes,
        from_disk=from_disk,
    )
