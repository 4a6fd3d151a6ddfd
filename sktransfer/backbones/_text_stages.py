"""Stages of a transformer text encoder and the tokenizer that feeds them.

A Hugging Face encoder (BERT and its relatives: a ``model.embeddings`` module
and a ``model.encoder.layer`` list) is cut into ``embeddings``, ``layer1`` ...
``layerN`` and ``pool``. Between stages a mapping carries the token states and
the padding mask (:data:`~sktransfer.backbones._base.HIDDEN_STATES`,
:data:`~sktransfer.backbones._base.ATTENTION_MASK`), so any stage can be cut,
cached or pooled. :class:`Tokenization` is the text counterpart of
:class:`~sktransfer.backbones.Preprocessing`: it turns a batch of strings into
model input, padded to the longest text of that batch.
"""

from __future__ import annotations

import copy
import hashlib
from collections.abc import Mapping, Sequence

import torch
import torch.nn.functional as F
from torch import nn

from ._pooling import ATTENTION_MASK, HIDDEN_STATES

__all__ = [
    "Tokenization",
    "TextEmbeddings",
    "EncoderLayer",
    "SentencePool",
    "encoder_split",
]


class Tokenization:
    """Strings -> ``{"input_ids", "attention_mask", ...}`` tensors, per batch.

    Parameters
    ----------
    folder : str or None
        Hugging Face model folder holding the tokenizer files. None when the
        package that ships it is missing (loading then raises ``ImportError``).
    max_length : int
        Texts are truncated to this many tokens (special tokens included).
    limit : int
        Longest input the model's position embeddings allow.
    install_hint : str, default=""
        Added to the ``ImportError`` raised when ``folder`` is None.

    Notes
    -----
    The tokenizer is loaded on first use (offline: ``local_files_only``) and
    travels with pickles of fitted estimators, so they load without the folder.
    """

    loading_size = None  # texts have no decoding size

    def __init__(
        self, folder: str | None, max_length: int, limit: int, install_hint: str = ""
    ):
        self.folder = folder
        self.max_length = int(max_length)
        self.limit = int(limit)
        self.install_hint = install_hint
        self._tokenizer = None
        self._digest: str | None = None

    @property
    def tokenizer(self):
        if self._tokenizer is None:
            if self.folder is None:
                raise ImportError(self.install_hint)
            from ._huggingface import import_transformers

            transformers = import_transformers()
            self._tokenizer = transformers.AutoTokenizer.from_pretrained(
                self.folder, local_files_only=True
            )
        return self._tokenizer

    def with_max_length(self, max_length: int) -> Tokenization:
        """Return a copy that truncates texts to ``max_length`` tokens."""
        if not 1 <= int(max_length) <= self.limit:
            raise ValueError(
                f"max_length={max_length} is out of range for this text backbone; "
                f"use an int in [1, {self.limit}] (its position embeddings end "
                f"there), or None for its default of {self.max_length}."
            )
        clone = copy.copy(self)
        clone.max_length = int(max_length)
        return clone

    def example_input(self) -> list[str]:
        """The longest raw input (``max_length`` tokens), for dry runs."""
        return [" ".join(["a"] * self.max_length)]

    def describe(self) -> str:
        """Short text identifying the tokenizer and length (used in cache keys)."""
        if self._digest is None:
            tokenizer = self.tokenizer
            backend = getattr(tokenizer, "backend_tokenizer", None)
            text = backend.to_str() if backend is not None else repr(tokenizer)
            self._digest = hashlib.blake2b(text.encode(), digest_size=8).hexdigest()
        return f"tokenizer={self._digest},max_length={self.max_length}"

    def __call__(self, texts: Sequence[str]) -> dict[str, torch.Tensor]:
        """Tokenise one batch, padded to its longest text, truncated to max_length."""
        tokenizer = self.tokenizer
        encoded = tokenizer(
            list(texts),
            padding=True,
            truncation=True,
            max_length=self.max_length,
            return_tensors="pt",
        )
        names = set(tokenizer.model_input_names)
        return {key: value for key, value in encoded.items() if key in names}

    def __getstate__(self):
        state = self.__dict__.copy()
        if self.folder is not None:
            state["_tokenizer"] = self.tokenizer  # self-contained pickles
        return state

    def __repr__(self) -> str:
        return f"Tokenization(folder={self.folder!r}, max_length={self.max_length})"


class TextEmbeddings(nn.Module):
    """Token, position and segment embeddings: model input -> token states."""

    def __init__(self, embeddings: nn.Module):
        super().__init__()
        self.embeddings = embeddings

    def forward(self, batch: Mapping[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        kwargs = {"input_ids": batch["input_ids"]}
        if batch.get("token_type_ids") is not None:
            kwargs["token_type_ids"] = batch["token_type_ids"]
        hidden = self.embeddings(**kwargs)
        return {HIDDEN_STATES: hidden, ATTENTION_MASK: batch[ATTENTION_MASK]}


class EncoderLayer(nn.Module):
    """One transformer layer on token states, attending to real tokens only."""

    def __init__(self, layer: nn.Module, config):
        super().__init__()
        self.layer = layer
        self.config = config

    def forward(self, states: Mapping[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        from transformers.masking_utils import create_bidirectional_mask

        hidden, mask = states[HIDDEN_STATES], states[ATTENTION_MASK]
        attention = create_bidirectional_mask(
            config=self.config, inputs_embeds=hidden, attention_mask=mask
        )
        out = self.layer(hidden, attention)
        if isinstance(out, tuple):  # older layers return (hidden, ...)
            out = out[0]
        return {HIDDEN_STATES: out, ATTENTION_MASK: mask}


class SentencePool(nn.Module):
    """Token states -> one vector per text: masked mean (or CLS), L2 optional.

    Parameters
    ----------
    mode : {"mean", "cls"}, default="mean"
        Mean over the real tokens, as sentence-transformers' mean pooling, or
        the first token's state.
    normalize : bool, default=False
        Scale every vector to unit L2 norm.
    """

    def __init__(self, mode: str = "mean", normalize: bool = False):
        super().__init__()
        self.mode, self.normalize = mode, bool(normalize)

    def forward(self, states: Mapping[str, torch.Tensor]) -> torch.Tensor:
        hidden, mask = states[HIDDEN_STATES], states[ATTENTION_MASK]
        if self.mode == "cls":
            out = hidden[:, 0]
        else:
            weights = mask.unsqueeze(-1).to(hidden.dtype)
            out = (hidden * weights).sum(1) / weights.sum(1).clamp(min=1e-9)
        return F.normalize(out, p=2, dim=1) if self.normalize else out

    def extra_repr(self) -> str:
        return f"mode={self.mode!r}, normalize={self.normalize}"


def encoder_split(
    model: nn.Module, *, mode: str = "mean", normalize: bool = False
) -> list[tuple[str, nn.Module]]:
    """Stages of a BERT-like encoder: embeddings, layer1 ... layerN, pool.

    Its own pooler (a dense layer on the first token) is left out, as
    sentence-transformers does.
    """
    layers = getattr(getattr(model, "encoder", None), "layer", None)
    if not hasattr(model, "embeddings") or layers is None:
        raise ValueError(
            f"{type(model).__name__} is not a BERT-like encoder (a model with "
            "'embeddings' and 'encoder.layer'); text backbones support BERT, "
            "RoBERTa, XLM-RoBERTa, ELECTRA, MiniLM and other models of that form."
        )
    stages: list[tuple[str, nn.Module]] = [
        ("embeddings", TextEmbeddings(model.embeddings))
    ]
    stages += [
        (f"layer{k}", EncoderLayer(layer, model.config))
        for k, layer in enumerate(layers, start=1)
    ]
    stages.append(("pool", SentencePool(mode, normalize)))
    return stages
