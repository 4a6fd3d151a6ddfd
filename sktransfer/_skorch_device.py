"""Where sktransfer's skorch nets live: the resolved device, kept out of skorch.

The public ``device`` parameter may be ``"auto"``, which is no torch device.
:class:`DeviceMixin` keeps it as the user set it: the network (a
:class:`~sktransfer._runtime.BackboneRuntime`) and the criterion are placed on
the resolved ``device_``, skorch never moves anything itself, loading and
unpickling map tensors to a real device, and the parameter travels unchanged.
"""

from __future__ import annotations

import torch

from ._validation import resolve_device

__all__ = ["DeviceMixin"]


class DeviceMixin:
    """skorch's device handling with ``device="auto"`` kept as a parameter.

    Examples
    --------
    >>> import pickle
    >>> from sktransfer import FineTuneClassifier
    >>> clf = pickle.loads(pickle.dumps(FineTuneClassifier(device="auto")))
    >>> clf.device
    'auto'
    """

    # skorch would move module_ and criterion_ to ``device``, which may be
    # "auto"; initialize_module/initialize_criterion place them on device_.
    def _initialize_module(self, reason=None):
        with self._current_init_context("module"):
            self.initialize_module()
            self.module_ = self.torch_compile(self.module_, name="module")
        return self

    def _initialize_criterion(self, reason=None):
        with self._current_init_context("criterion"):
            self.initialize_criterion()
        return self

    def _resolved_device(self) -> torch.device:
        if getattr(self, "device_", None) is None:
            self.device_ = resolve_device(self.device)
        return self.device_

    def load_params(self, *args, **kwargs):
        # skorch maps loaded tensors to ``device``; "auto" is not a torch device,
        # so present the resolved one while skorch loads (skorch itself may
        # reset ``device`` here when that device is missing).
        requested = self.device
        if requested == "auto":
            self.device = str(self._resolved_device())
        try:
            return super().load_params(*args, **kwargs)
        finally:
            if requested == "auto":
                self.device = requested

    def __getstate__(self):
        state = super().__getstate__()
        # skorch maps tensors to state["device"] when unpickling, so it must be
        # a real device: the one fitted on, or the CPU before fit ("auto" is
        # not one, and an unfitted net holds no tensors). The parameter travels
        # apart, unchanged, so an unfitted "auto" is resolved where fit runs.
        fitted_on = state.get("device_")
        state["device"] = str(fitted_on) if fitted_on is not None else "cpu"
        state["_device_param"] = self.device
        return state

    def __setstate__(self, state):
        requested = state.pop("_device_param", state.get("device"))
        super().__setstate__(state)
        if hasattr(self, "device_"):
            self.device_ = torch.device(self.device)
        self.device = requested
