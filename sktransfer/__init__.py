"""sktransfer: pretrained deep backbones as scikit-learn estimators."""

from ._cache_store import FrozenOutputCache
from ._features import PretrainedFeatureExtractor
from ._finetune import FineTuneClassifier
from ._inputs import as_audio_source, as_image_source, list_image_folder
from ._persistence import load_model, save_model
from ._regressor import FineTuneRegressor
from ._version import __version__
from .backbones import (
    Preprocessing,
    list_backbones,
    register_backbone,
    resolve_backbone,
)

__all__ = [
    "FineTuneClassifier",
    "FineTuneRegressor",
    "FrozenOutputCache",
    "PretrainedFeatureExtractor",
    "Preprocessing",
    "as_audio_source",
    "as_image_source",
    "list_backbones",
    "list_image_folder",
    "load_model",
    "register_backbone",
    "resolve_backbone",
    "save_model",
    "__version__",
]
