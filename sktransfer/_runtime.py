"""The one place that runs a fitted backbone: device, precision, stages, pooling.

Both estimators and the frozen-output cache compute through a
:class:`BackboneRuntime`; nothing else calls backbone stages. It owns

* the device the backbone lives on and how raw batches get there;
* the precision policy (``autocast``): bfloat16 on CUDA, float16 on MPS, never on
  the CPU, the same for feature extraction and fine-tuning;
* the memory format (``channels_last``);
* which window of stages runs (:meth:`run` with ``start``/``stop``) and how an
  output becomes one vector per sample (:meth:`embed`);
* device-portable pickling: a runtime pickled on a GPU unpickles on a machine
  without one (on the CPU, with a warning): its modules travel apart and are
  mapped to a device this machine has.
"""

from __future__ import annotations

import contextlib
import io
import warnings
from collections.abc import Mapping

import torch
from skorch.exceptions import DeviceWarning
from torch import nn

from .backbones import Backbone, pool_features
from .backbones._base import to_device

__all__ = ["BackboneRuntime", "loadable_device", "to_device"]

# One mixed-precision policy for every estimator: bfloat16 needs no loss scaling
# on CUDA; MPS kernels are float16.
_AUTOCAST_DTYPES = {"cuda": torch.bfloat16, "mps": torch.float16}


def loadable_device(device: torch.device) -> torch.device:
    """``device`` if this machine has it, else the CPU (with a warning)."""
    device = torch.device(device)
    if device.type == "cuda" and torch.cuda.is_available():
        if (device.index or 0) < torch.cuda.device_count():
            return device
    elif device.type == "mps" and torch.backends.mps.is_available():
        return device
    elif device.type == "cpu":
        return device
    warnings.warn(
        f"This model was fitted on {device}, which this machine does not have; "
        "it is loaded on the CPU instead.",
        DeviceWarning,
        stacklevel=4,
    )
    return torch.device("cpu")


def _float32(x, cpu: bool = False):
    """Floating tensors (also inside a mapping of token states) as float32.

    With ``cpu=True`` every tensor is also copied to host memory (blocking).
    """
    if isinstance(x, torch.Tensor):
        x = x.float() if x.is_floating_point() else x
        return x.cpu() if cpu else x
    if isinstance(x, Mapping):
        return type(x)({key: _float32(value, cpu) for key, value in x.items()})
    return x


class BackboneRuntime(nn.Module):
    """A fitted backbone on one device, with its precision and memory policy.

    Parameters
    ----------
    backbone : Backbone
        The stages to run and their preprocessing.
    device : torch.device, default=cpu
        Where the backbone lives and batches are computed.
    autocast : bool, default=False
        Mixed precision on GPUs (bfloat16 on CUDA, float16 on MPS); ignored on
        the CPU. Outputs of :meth:`embed` are float32 either way.
    channels_last : bool, default=False
        Run convolutions in the channels-last memory format.

    Examples
    --------
    >>> import torch
    >>> from sktransfer._runtime import BackboneRuntime
    >>> from sktransfer.backbones import resolve_backbone
    >>> runtime = BackboneRuntime(resolve_backbone("fmnist_resnet", "DEFAULT"))
    >>> runtime.embed(torch.rand(2, 1, 28, 28)).shape
    torch.Size([2, 128])
    >>> runtime.embed(torch.rand(2, 1, 28, 28), stop=2, pooling=None).shape
    torch.Size([2, 12544])
    """

    def __init__(
        self,
        backbone: Backbone,
        *,
        device: torch.device | str = "cpu",
        autocast: bool = False,
        channels_last: bool = False,
    ) -> None:
        super().__init__()
        self.backbone = backbone
        self.autocast = bool(autocast)
        self.channels_last = bool(channels_last)
        self.device = torch.device("cpu")
        self.place(device)

    def place(self, device: torch.device | str) -> BackboneRuntime:
        """Move the module (and whatever else it holds) to ``device``."""
        self.device = torch.device(device)
        self.to(self.device)
        if self.channels_last:
            self.to(memory_format=torch.channels_last)
        return self

    @property
    def preprocessing(self):
        return self.backbone.preprocessing

    def precision(self):
        """Context manager applying the autocast policy on this device."""
        dtype = _AUTOCAST_DTYPES.get(self.device.type)
        if self.autocast and dtype is not None:
            return torch.autocast(self.device.type, dtype=dtype)
        return contextlib.nullcontext()

    def prepare(self, raw) -> torch.Tensor:
        """Raw batch (as sources load it) -> model input on this device."""
        x = to_device(self.preprocessing(to_device(raw, self.device)), self.device)
        if self.channels_last and isinstance(x, torch.Tensor) and x.ndim == 4:
            x = x.contiguous(memory_format=torch.channels_last)
        return x

    def run(self, x, start: int = 0, stop: int | None = None):
        """Run stages ``start`` to ``stop`` (exclusive) under the precision policy.

        ``x`` is the model input of stage ``start``: a prepared batch when
        ``start == 0``, else a (cached) output of stage ``start - 1``.
        """
        if start > 0:
            x = _float32(to_device(x, self.device))  # caches may store float16
        with self.precision():
            return self.backbone(x, start=start, stop=stop)

    def embed(
        self,
        raw,
        *,
        start: int = 0,
        stop: int | None = None,
        pooling: str | None = "avg",
        taps: list[int] | None = None,
    ) -> torch.Tensor:
        """One float32 vector per sample: prepare (when ``start == 0``), run, pool.

        With ``taps`` (sorted stops), the outputs after each of those stages are
        pooled and concatenated, in one pass up to the last of them.
        """
        x = self.prepare(raw) if start == 0 else raw
        if not taps:
            return pool_features(self.run(x, start, stop), pooling).float()
        return self.run_taps(x, start, taps, pooling)[0]

    def run_taps(self, x, start: int, taps: list[int], pooling: str | None):
        """``(pooled outputs of taps, concatenated; output of the last tap)``.

        ``x`` is the input of stage ``start``; the stages run once, up to the
        last of the sorted ``taps``.
        """
        outputs = self.run_stops(x, start, taps)
        parts = [pool_features(output, pooling).float() for output in outputs]
        return torch.cat(parts, dim=1), outputs[-1]

    def run_stops(self, x, start: int, stops: list[int]) -> list:
        """Outputs after each of the sorted ``stops``, running every stage once."""
        outputs = []
        for stop in stops:
            x = self.run(x, start, stop)
            outputs.append(x)
            start = stop
        return outputs

    def features(self, raw, start: int = 0) -> torch.Tensor:
        """The embedding of raw batches (prepared here) or of stage outputs."""
        return self.embed(raw, start=start)

    @torch.inference_mode()
    def outputs(self, batches, stops: list[int]):
        """Yield per batch the float32 CPU outputs after each of the sorted
        ``stops``, from one pass in eval mode up to the last of them."""
        was_training = self.training
        self.eval()
        try:
            for raw in batches:
                outputs = self.run_stops(self.prepare(raw), 0, stops)
                yield [_float32(output, cpu=True) for output in outputs]
        finally:
            self.train(was_training)

    def extra_repr(self) -> str:
        return f"device={self.device}, autocast={self.autocast}"

    # ----------------------------------------------------------- pickling
    def __getstate__(self):
        state = self.__dict__.copy()
        if self.device.type != "cpu":
            # Tensors pickled on a GPU unpickle only where that GPU exists:
            # serialise the modules apart so __setstate__ can map them.
            buffer = io.BytesIO()
            torch.save(state.pop("_modules"), buffer)
            state["_modules_on_device"] = buffer.getvalue()
        return state

    def __setstate__(self, state):
        blob = state.pop("_modules_on_device", None)
        if blob is not None:
            device = loadable_device(state["device"])
            # Not weights_only: these are modules, and unpickling this object
            # already trusts the pickle.
            state["_modules"] = torch.load(
                io.BytesIO(blob), map_location=device, weights_only=False
            )
            state["device"] = device
        super().__setstate__(state)
