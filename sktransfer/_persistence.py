"""Pickle-free saving and loading of fitted estimators.

A saved model is a folder with ``config.json`` (the estimator's parameters and
labels) and ``weights.safetensors`` (its tensors). Loading rebuilds the
architecture from the parameters and reads the tensors with safetensors, so a
model file can never execute code, unlike a pickle.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
from safetensors.torch import load_file, save_file

from ._features import PretrainedFeatureExtractor
from ._finetune import FineTuneClassifier
from ._validation import resolve_device
from ._version import __version__
from .backbones import resolve_backbone
from .backbones._weights import load_weights_into

__all__ = ["save_model", "load_model"]

_ESTIMATORS = {
    "FineTuneClassifier": FineTuneClassifier,
    "PretrainedFeatureExtractor": PretrainedFeatureExtractor,
}
# Parameters that cannot be written as JSON and are restored to their defaults.
_RUNTIME_ONLY = ("callbacks", "optimizer", "cache")
_CRITERION_PREFIX = "__criterion__."


def _json_value(name: str, value):
    if isinstance(value, tuple):
        return {"__tuple__": [_json_value(name, v) for v in value]}
    if isinstance(value, os.PathLike):
        return os.fspath(value)
    if value is None or isinstance(value, bool | int | float | str):
        return value
    if isinstance(value, list):
        return [_json_value(name, v) for v in value]
    raise TypeError(
        f"Cannot save the parameter {name}={value!r} as JSON. Registered backbone "
        "names work; for a custom module pass it again as load_model(path, "
        "backbone=module)."
    )


def _from_json(value):
    if isinstance(value, dict) and "__tuple__" in value:
        return tuple(_from_json(v) for v in value["__tuple__"])
    if isinstance(value, list):
        return [_from_json(v) for v in value]
    return value


def save_model(estimator, path: str | os.PathLike) -> Path:
    """Save a fitted estimator to the folder ``path`` without pickle.

    Parameters
    ----------
    estimator : FineTuneClassifier or PretrainedFeatureExtractor
        A fitted estimator.
    path : str or path-like
        Folder to create (or overwrite) with ``config.json`` and
        ``weights.safetensors``.

    Returns
    -------
    pathlib.Path

    Examples
    --------
    >>> import tempfile
    >>> from sklearn.datasets import load_digits
    >>> from sktransfer import FineTuneClassifier, load_model, save_model
    >>> X, y = load_digits(return_X_y=True)
    >>> X = X.reshape(-1, 8, 8) / 16.0
    >>> clf = FineTuneClassifier("fmnist_resnet", device="cpu").fit(X[:50], y[:50])
    >>> folder = save_model(clf, tempfile.mkdtemp())
    >>> restored = load_model(folder)
    >>> bool((restored.predict_proba(X[:5]) == clf.predict_proba(X[:5])).all())
    True
    """
    kind = type(estimator).__name__
    if kind not in _ESTIMATORS:
        raise TypeError(
            f"save_model saves FineTuneClassifier or PretrainedFeatureExtractor "
            f"instances; got {kind}."
        )
    params = estimator.get_params(deep=False)
    config_params = {}
    for name in estimator._parameter_constraints:
        if name in _RUNTIME_ONLY or name not in params:
            continue
        if name == "backbone" and not isinstance(params[name], str):
            config_params[name] = None  # a custom module: given again on load
            continue
        config_params[name] = _json_value(name, params[name])
    config = {
        "format": 1,
        "sktransfer": __version__,
        "estimator": kind,
        "params": config_params,
    }
    if kind == "FineTuneClassifier":
        if not getattr(estimator, "initialized_", False):
            raise ValueError("save_model needs a fitted estimator; call fit first.")
        labels = estimator.classes_.tolist()
        config["classes"] = [_json_value("classes_", label) for label in labels]
        config["classes_dtype"] = estimator.classes_.dtype.str
        state = dict(estimator.module_.state_dict())
        weight = getattr(estimator.criterion_, "weight", None)
        if weight is not None:
            state[_CRITERION_PREFIX + "weight"] = weight
    else:
        if not hasattr(estimator, "backbone_"):
            raise ValueError("save_model needs a fitted estimator; call fit first.")
        config["layer"] = estimator.layer_
        state = dict(estimator.backbone_.state_dict())
    folder = Path(path)
    folder.mkdir(parents=True, exist_ok=True)
    tensors = {k: v.detach().cpu().contiguous() for k, v in state.items()}
    save_file(tensors, str(folder / "weights.safetensors"))
    (folder / "config.json").write_text(json.dumps(config, indent=2) + "\n")
    return folder


def load_model(path: str | os.PathLike, *, backbone=None, device: str = "cpu"):
    """Load an estimator saved by :func:`save_model`; never unpickles anything.

    Parameters
    ----------
    path : str or path-like
        Folder written by :func:`save_model`.
    backbone : torch.nn.Module or list of (str, nn.Module), default=None
        The architecture, required when the model was trained on a custom module
        (its parameters are replaced by the saved ones).
    device : str, default="cpu"
        Where to put the model.
    """
    folder = Path(path)
    config = json.loads((folder / "config.json").read_text())
    kind = config.get("estimator")
    if kind not in _ESTIMATORS:
        raise ValueError(f"{folder} does not hold a model saved by sktransfer.")
    params = {name: _from_json(value) for name, value in config["params"].items()}
    if params.get("backbone") is None:
        if backbone is None:
            raise ValueError(
                f"The model in {folder} was trained on a custom module; pass the "
                "same architecture as load_model(path, backbone=module)."
            )
        params["backbone"] = backbone
    params["device"] = device
    state = load_file(str(folder / "weights.safetensors"))
    estimator = _ESTIMATORS[kind](**params)
    # Weights come from the file: build the architecture only (no download).
    net = resolve_backbone(
        params["backbone"], None, image_size=params.get("image_size")
    )
    if kind == "FineTuneClassifier":
        _restore_classifier(estimator, net, config, state)
    else:
        _restore_extractor(estimator, net, config, state)
    return estimator


def _restore_classifier(estimator, net, config, state) -> None:
    classes = np.asarray(config["classes"], dtype=np.dtype(config["classes_dtype"]))
    criterion_weight = state.pop(_CRITERION_PREFIX + "weight", None)
    estimator.classes_inferred_ = classes
    estimator._y_encoded_ = np.arange(len(classes))
    with estimator._on_device(resolve_device(estimator.device)):
        estimator._pending_backbone_ = (net,)
        estimator.initialize()
        load_weights_into(estimator.module_, state, "the saved model")
        if criterion_weight is not None:
            estimator.criterion_.weight = criterion_weight.to(estimator.device_)
        estimator.module_.to(estimator.device_)


def _restore_extractor(estimator, net, config, state) -> None:
    net.truncate(net.stage_names.index(config["layer"]) + 1)
    load_weights_into(net, state, "the saved model")
    estimator._install(net, resolve_device(estimator.device))
