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

from safetensors.torch import load_file, save_file
from sklearn.exceptions import NotFittedError

from ._features import PretrainedFeatureExtractor
from ._finetune import FineTuneClassifier
from ._regressor import FineTuneRegressor
from ._version import __version__

__all__ = ["save_model", "load_model"]

_ESTIMATORS = {
    "FineTuneClassifier": FineTuneClassifier,
    "FineTuneRegressor": FineTuneRegressor,
    "PretrainedFeatureExtractor": PretrainedFeatureExtractor,
}
# Parameters that cannot be written as JSON and are restored to their defaults.
_RUNTIME_ONLY = ("callbacks", "optimizer", "cache")


def _json_value(name: str, value):
    if isinstance(value, tuple):
        return {"__tuple__": [_json_value(name, v) for v in value]}
    if isinstance(value, os.PathLike):
        return os.fspath(value)
    if value is None or isinstance(value, bool | int | float | str):
        return value
    if isinstance(value, list):
        return [_json_value(name, v) for v in value]
    if isinstance(value, dict) and all(isinstance(k, str) for k in value):
        return {k: _json_value(name, v) for k, v in value.items()}
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
    estimator : FineTuneClassifier, FineTuneRegressor or PretrainedFeatureExtractor
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
    >>> clf = FineTuneClassifier("fmnist_resnet", freeze="all", device="cpu")
    >>> clf = clf.fit(X[:50], y[:50])
    >>> folder = save_model(clf, tempfile.mkdtemp())
    >>> restored = load_model(folder)
    >>> bool((restored.predict_proba(X[:5]) == clf.predict_proba(X[:5])).all())
    True
    """
    kind = type(estimator).__name__
    if kind not in _ESTIMATORS:
        raise TypeError(
            "save_model saves FineTuneClassifier, FineTuneRegressor or "
            f"PretrainedFeatureExtractor instances; got {kind}."
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
    try:
        extra, state = estimator._persistent_state()
    except NotFittedError as exc:
        raise ValueError(
            "save_model needs a fitted estimator; call fit first."
        ) from exc
    config.update({key: _json_value(key, value) for key, value in extra.items()})
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
    estimator._restore_persistent_state(config, state)
    return estimator
