"""sktransfer: pretrained deep backbones as scikit-learn estimators."""

from ._features import PretrainedFeatureExtractor
from ._finetune import FineTuneClassifier
from ._inputs import as_image_source, list_image_folder
from .backbones import list_backbones, register_backbone, resolve_backbone

__version__ = "0.1.0"

__all__ = [
    "FineTuneClassifier",
    "PretrainedFeatureExtractor",
    "as_image_source",
    "list_backbones",
    "list_image_folder",
    "register_backbone",
    "resolve_backbone",
    "__version__",
]
