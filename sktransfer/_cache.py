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
from dataclasses import dataclass

import joblib
import numpy as np
import torch

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
]

_DTYPES = {"float32": np.float32, "float16": np.float16}


@dataclass
class FrozenOutputs:
    """Outputs of the first ``stop`` stages for every image of a source."""

    values: torch.Tensor
    nbytes: int
    from_disk: bool


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


def _compute(key, runtime, source, stop, dtype, batch_size) -> np.ndarray:
    """Run the first ``stop`` stages over ``source``; ``key`` only names the result."""
    size = runtime.preprocessing.loading_size
    batches = iter_batches(source, batch_size, size=size)
    chunks = [
        out.numpy().astype(_DTYPES[dtype]) for out in runtime.outputs(batches, stop)
    ]
    return np.concatenate(chunks)


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
    return FrozenOutputs(
        values=torch.from_numpy(np.ascontiguousarray(values)),
        nbytes=int(values.nbytes),
        from_disk=bool(from_disk),
    )
