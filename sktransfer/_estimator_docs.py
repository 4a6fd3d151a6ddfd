"""Shared numpydoc text of the trainable estimators' parameters and attributes.

FineTuneClassifier and FineTuneRegressor take the same backbone, freezing,
training and cache parameters; their text is written once (parameters in
:mod:`sktransfer._docs_network` and :mod:`sktransfer._docs_training`,
attributes here) and put into both class docstrings by :func:`document`
(imbalanced-learn's ``Substitution`` idea), so the two can never describe a
shared parameter differently.
"""

from __future__ import annotations

from ._docs_network import PARAMETERS as _NETWORK
from ._docs_training import PARAMETERS as _TRAINING

__all__ = ["PARAMETERS", "ATTRIBUTES", "document"]

# One entry per parameter, as it appears in a docstring (4-space indent).
PARAMETERS: dict[str, str] = {**_NETWORK, **_TRAINING}
ATTRIBUTES: dict[str, str] = {}


ATTRIBUTES["classes_"] = """\
    classes_ : ndarray of shape (n_classes,)
        The labels seen in ``fit``, in sorted order; for a multi-label
        indicator ``y``, the column indices ``0 .. n_labels - 1`` (as
        scikit-learn's ``OneVsRestClassifier`` and ``MLPClassifier``).
"""

ATTRIBUTES["image_size_"] = """\
    image_size_ : (int, int) or None
        ``(height, width)`` images are resized straight to, or None when the
        weights' resize/crop recipe is used.
"""

ATTRIBUTES["layer_"] = """\
    layer_ : str or list of str
        Name of the stage the head sees (a list when several are concatenated):
        ``layer`` resolved, "auto" included, as the extractor's ``layer_``
        reports it.
"""

ATTRIBUTES["final_head_"] = """\
    final_head_ : bool
        Whether the network has the second head on the final embedding
        (``final_head`` resolved).
"""

ATTRIBUTES["module_"] = """\
    module_ : TransferNet
        The trained network: preprocessing, backbone stages and head(s).
"""

ATTRIBUTES["n_frozen_"] = """\
    n_frozen_ : int
        Number of frozen stages.
"""

ATTRIBUTES["freeze_"] = """\
    freeze_ : int or "all"
        The freeze depth the model was trained with: ``freeze``, or what
        "auto" chose (0 or "all").
"""

ATTRIBUTES["freeze_scores_"] = """\
    freeze_scores_ : dict or None
        The evidence of "auto" (None for an explicit ``freeze``): ``probe`` and
        ``finetune`` (held-out ``accuracy`` and ``log_loss`` for classes,
        ``micro_f1`` and ``log_loss`` for label sets, ``mse`` in standardised
        units for numbers), the ``epoch`` the fine-tune was scored after,
        ``n_held_out``; or the ``reason`` it could not compare.
"""

ATTRIBUTES["n_epochs_"] = """\
    n_epochs_ : int
        Epochs the last call of ``fit``/``partial_fit`` planned (``max_epochs``
        resolved).
"""

ATTRIBUTES["device_"] = """\
    device_ : torch.device
        Device the model lives on.
"""

ATTRIBUTES["history_"] = """\
    history_ : skorch.History
        Per-epoch losses and timings.
"""

ATTRIBUTES["used_cache_"] = """\
    used_cache_ : bool
        Whether the last fit trained on cached frozen-stage outputs.
"""

ATTRIBUTES["cache_nbytes_"] = """\
    cache_nbytes_ : int
        Size of those cached outputs (0 when not used).
"""

ATTRIBUTES["cache_hit_"] = """\
    cache_hit_ : bool
        Whether they were read from the ``cache`` directory rather than computed.
"""


ATTRIBUTES["n_outputs_"] = """\
    n_outputs_ : int
        Number of targets per row (1 for a 1-D ``y``).
"""

ATTRIBUTES["target_mean_, target_scale_"] = """\
    target_mean_, target_scale_ : ndarray of shape (n_outputs,)
        The mean and standard deviation of each target in ``fit``: the
        network predicts ``(y - target_mean_) / target_scale_``.
"""


def _section(table: dict[str, str], names: str) -> str:
    return "".join(table[name.strip()] for name in names.split(";") if name.strip())


def document(cls):
    """Fill a class docstring's ``{parameters: a; b}`` and ``{attributes: ...}``.

    Names are separated by ``;`` (an entry may document two names, as
    ``"image_mean, image_std"``).
    """
    import re

    def fill(match):
        table = PARAMETERS if match.group(1) == "parameters" else ATTRIBUTES
        return _section(table, match.group(2))

    pattern = re.compile(r"^ {4}\{(parameters|attributes):([^}]*)\}\n", re.M | re.S)
    cls.__doc__ = pattern.sub(fill, cls.__doc__)
    return cls
