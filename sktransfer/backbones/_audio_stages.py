"""Stages of a Hugging Face speech encoder: wav2vec 2.0, HuBERT, WavLM and kin.

These models (a ``feature_extractor`` of strided convolutions on the waveform,
a ``feature_projection`` and an ``encoder`` with ``pos_conv_embed`` and
``layers``) are cut into ``feature_encoder``, ``projection``, ``layer1`` ...
``layerN`` and ``pool``. Between stages a mapping carries the frame states
``(B, frames, D)`` and the mask of the real frames, as text stages carry tokens
(:data:`~sktransfer.backbones._pooling.HIDDEN_STATES`,
:data:`~sktransfer.backbones._pooling.ATTENTION_MASK`). The first stage takes
the padded waveforms and sample mask of
:class:`~sktransfer.backbones._audio_frontend.AudioPreprocessing`.

In eval mode every stage computes what the model's own forward computes, and a
clip's output does not depend on the clips padded beside it:

- the frame mask follows from each clip's number of samples through every
  convolution (``floor((n - kernel) / stride) + 1``, the model's
  ``_get_feat_extract_output_lengths``);
- a ``feat_extract_norm="group"`` encoder (wav2vec 2.0 Base, HuBERT Base)
  normalises each channel of its first convolution over time. transformers
  warns not to pad its input, since padding enters those statistics; here they
  are taken over each clip's real frames only, which gives what the model
  computes on that clip alone, unpadded;
- padded frames are zeroed before the positional convolution (as the model
  does), and between the convolutions of a stacked one (data2vec-audio), so
  that padding reads as the convolution's own zero padding;
- layers attend to real frames only, through the mask transformers builds for
  that model (``create_bidirectional_mask``; WavLM takes the frame mask and
  its relative position bias, recomputed by each layer from the first one's).

In training mode dropout and LayerDrop (``config.layerdrop``) act as in the
model; its SpecAugment masking of frames (``mask_time_prob``) is left out: the
estimators augment the waveforms instead. A ``config.add_adapter`` adapter
(for sequence-to-sequence decoders) is left out.
"""

from __future__ import annotations

import inspect
import warnings
from collections.abc import Mapping, Sequence

import torch
import torch.nn.functional as F
from torch import nn
from torch.nn.utils import parametrize

from ._audio_frontend import WAVEFORM
from ._pooling import ATTENTION_MASK, HIDDEN_STATES, pool_features

__all__ = [
    "FeatureEncoder",
    "FeatureProjection",
    "SpeechEncoderLayer",
    "FramePool",
    "WeightNormConv1d",
    "receptive_field",
    "speech_encoder_split",
]


def receptive_field(kernels: Sequence[int], strides: Sequence[int]) -> int:
    """Samples a convolution stack needs to make its first frame.

    Examples
    --------
    >>> from sktransfer.backbones._audio_stages import receptive_field
    >>> receptive_field((10, 3, 3, 3, 3, 2, 2), (5, 2, 2, 2, 2, 2, 2))  # wav2vec2
    400
    """
    field, step = 1, 1
    for kernel, stride in zip(kernels, strides, strict=True):
        field += (int(kernel) - 1) * step
        step *= int(stride)
    return field


def _masked_group_norm(
    x: torch.Tensor, lengths: torch.Tensor, norm: nn.GroupNorm
) -> torch.Tensor:
    """``norm(x)`` with statistics over each clip's first ``lengths`` frames."""
    batch, channels, frames = x.shape
    real = torch.arange(frames, device=x.device)[None, :] < lengths[:, None]
    weights = real.to(torch.float32)[:, None, None, :]
    grouped = x.float().reshape(batch, norm.num_groups, -1, frames)
    count = weights.sum(dim=-1, keepdim=True).clamp(min=1) * grouped.shape[2]
    mean = (grouped * weights).sum(dim=(2, 3), keepdim=True) / count
    var = ((grouped - mean).square() * weights).sum(dim=(2, 3), keepdim=True) / count
    out = ((grouped - mean) * torch.rsqrt(var + norm.eps)).reshape(x.shape)
    if norm.affine:
        out = out * norm.weight[:, None] + norm.bias[:, None]
    return out.to(x.dtype)


class FeatureEncoder(nn.Module):
    """Strided convolutions: waveforms ``(B, T)`` -> frames ``(B, L, C)`` and mask."""

    def __init__(self, feature_extractor: nn.Module):
        super().__init__()
        self.feature_extractor = feature_extractor

    def forward(self, batch: Mapping[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        sample_mask = batch[ATTENTION_MASK]
        lengths = sample_mask.sum(dim=1)
        hidden = batch[WAVEFORM][:, None]
        for layer in self.feature_extractor.conv_layers:
            kernel, stride = layer.conv.kernel_size[0], layer.conv.stride[0]
            lengths = torch.div(lengths - kernel, stride, rounding_mode="floor") + 1
            norm = getattr(layer, "layer_norm", None)
            if isinstance(norm, nn.GroupNorm):
                hidden = _masked_group_norm(layer.conv(hidden), lengths, norm)
                hidden = layer.activation(hidden)
            else:
                hidden = layer(hidden)
        frames = torch.arange(hidden.shape[-1], device=hidden.device)
        mask = (frames[None, :] < lengths[:, None]).to(sample_mask.dtype)
        return {HIDDEN_STATES: hidden.transpose(1, 2), ATTENTION_MASK: mask}


class WeightNormConv1d(nn.Module):
    """A weight-normalised ``Conv1d`` that pickles: ``weight = g * v / ||v||``.

    The models' positional convolution is normalised by torch's
    ``parametrizations.weight_norm``, whose modules refuse to pickle (and
    fitted estimators pickle their stages). This computes the same weight
    (``torch._weight_norm``, as that parametrization does) from the same two
    parameters, so it trains and predicts as the original.
    """

    def __init__(self, conv: nn.Conv1d):
        super().__init__()
        weights = conv.parametrizations.weight
        self.dim = weights[0].dim
        self.weight_g, self.weight_v = weights.original0, weights.original1
        self.bias = conv.bias
        self.options = (conv.stride, conv.padding, conv.dilation, conv.groups)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        weight = torch._weight_norm(self.weight_v, self.weight_g, self.dim)
        return F.conv1d(x, weight, self.bias, *self.options)


def _picklable_weight_norm(module: nn.Module) -> None:
    """Swap, in place, ``module``'s weight-normalised Conv1d for WeightNormConv1d."""
    for parent in list(module.modules()):
        for name, child in list(parent.named_children()):
            if _is_weight_normalised(child):
                setattr(parent, name, WeightNormConv1d(child))


def _is_weight_normalised(module: nn.Module) -> bool:
    if not isinstance(module, nn.Conv1d):
        return False
    if not parametrize.is_parametrized(module, "weight"):
        return False
    weights = module.parametrizations.weight
    return len(weights) == 1 and type(weights[0]).__name__ == "_WeightNorm"


def _zero_padding(hidden: torch.Tensor, real: torch.Tensor) -> torch.Tensor:
    """``hidden`` ``(B, D, L)`` with the frames outside ``real`` ``(B, L)`` zeroed."""
    return hidden.masked_fill(~real[:, None, :], 0.0)


def _positions(
    embed: nn.Module, hidden: torch.Tensor, real: torch.Tensor
) -> torch.Tensor:
    """The positional convolution's output, as if each clip were alone."""
    layers = getattr(embed, "layers", None)
    batch_norm = getattr(embed, "batch_norm", None)
    if layers is None and batch_norm is None:  # one convolution
        return embed(hidden)  # padded frames are already zero
    states = hidden.transpose(1, 2)
    if layers is not None:  # data2vec-audio: a stack of convolutions
        for layer in layers:
            states = layer(_zero_padding(states, real))
        return states.transpose(1, 2)
    # HuBERT with conv_pos_batch_norm: padding is zero after the batch norm.
    states = _zero_padding(batch_norm(states), real)
    states = embed.activation(embed.padding(embed.conv(states)))
    return states.transpose(1, 2)


class FeatureProjection(nn.Module):
    """Projection to the model width, positional convolution, norm, dropout.

    ``encoder_norm`` is the encoder's layer norm before its layers (None in
    the stable-layer-norm variant, which applies it after the last layer).
    """

    def __init__(self, projection: nn.Module, encoder: nn.Module, stable: bool):
        super().__init__()
        self.projection = projection
        self.pos_conv_embed = encoder.pos_conv_embed
        self.encoder_norm = None if stable else encoder.layer_norm
        self.dropout = encoder.dropout

    def forward(self, states: Mapping[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        hidden, mask = states[HIDDEN_STATES], states[ATTENTION_MASK]
        hidden = self.projection(hidden)
        if isinstance(hidden, tuple):  # (projected, normalised input)
            hidden = hidden[0]
        real = mask.bool()
        hidden = hidden.masked_fill(~real[:, :, None], 0.0)
        hidden = hidden + _positions(self.pos_conv_embed, hidden, real)
        if self.encoder_norm is not None:
            hidden = self.encoder_norm(hidden)
        return {HIDDEN_STATES: self.dropout(hidden), ATTENTION_MASK: mask}


class SpeechEncoderLayer(nn.Module):
    """One transformer layer on frame states, attending to real frames only.

    Parameters
    ----------
    layer : nn.Module
        The model's layer.
    config : PretrainedConfig
        The model's configuration (attention implementation, for the mask).
    layerdrop : float, default=0.0
        In training, the probability that the layer is skipped (LayerDrop).
    encoder_norm : nn.Module or None, default=None
        The encoder's final layer norm, for the last layer of a
        stable-layer-norm model.
    relative : nn.Module or None, default=None
        WavLM: the first layer's attention, whose ``compute_bias`` gives the
        relative position bias that layer passes on to the others. Kept out of
        this module's parameters (the first layer's stage owns it).
    """

    def __init__(
        self,
        layer: nn.Module,
        config,
        *,
        layerdrop: float = 0.0,
        encoder_norm: nn.Module | None = None,
        relative: nn.Module | None = None,
    ):
        super().__init__()
        self.layer = layer
        self.config = config
        self.layerdrop = float(layerdrop)
        self.encoder_norm = encoder_norm
        self._relative = (relative,)  # a tuple: not registered as a submodule
        self._bias = "position_bias" in inspect.signature(layer.forward).parameters

    def _attend(self, hidden: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        if self._bias:  # WavLM: its own masking, relative position bias
            bias, (first,) = None, self._relative
            if first is not None:
                batch, length = hidden.shape[:2]
                bias = first.compute_bias(length, length).unsqueeze(0)
                bias = bias.expand(batch, -1, -1, -1).reshape(-1, length, length)
            with warnings.catch_warnings():  # its bool mask beside a float bias
                warnings.filterwarnings("ignore", "Support for mismatched key_padd")
                return self.layer(hidden, attention_mask=mask, position_bias=bias)
        from transformers.masking_utils import create_bidirectional_mask

        attention = create_bidirectional_mask(
            config=self.config, inputs_embeds=hidden, attention_mask=mask
        )
        return self.layer(hidden, attention_mask=attention)

    def forward(self, states: Mapping[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        hidden, mask = states[HIDDEN_STATES], states[ATTENTION_MASK]
        skip = self.training and self.layerdrop > 0 and torch.rand([]) < self.layerdrop
        if not skip:
            hidden = self._attend(hidden, mask)
            if isinstance(hidden, tuple):  # (states, position bias, ...)
                hidden = hidden[0]
        if self.encoder_norm is not None:
            hidden = self.encoder_norm(hidden)
        return {HIDDEN_STATES: hidden, ATTENTION_MASK: mask}

    def extra_repr(self) -> str:
        return f"layerdrop={self.layerdrop}"


class FramePool(nn.Module):
    """Frame states -> one vector per clip: the mean over its real frames."""

    def forward(self, states: Mapping[str, torch.Tensor]) -> torch.Tensor:
        return pool_features(states, "avg")


def speech_encoder_split(model: nn.Module) -> list[tuple[str, nn.Module]]:
    """Stages of a wav2vec2-like model: feature_encoder, projection, layers, pool."""
    encoder = getattr(model, "encoder", None)
    layers = getattr(encoder, "layers", None)
    parts = [
        getattr(model, "feature_extractor", None),
        getattr(model, "feature_projection", None),
        getattr(encoder, "pos_conv_embed", None),
        layers,
    ]
    if any(part is None for part in parts):
        raise ValueError(
            f"{type(model).__name__} is not a wav2vec2-like speech encoder (a "
            "model with 'feature_extractor', 'feature_projection' and "
            "'encoder.pos_conv_embed' and 'encoder.layers'); speech backbones "
            "support wav2vec 2.0, HuBERT, WavLM, data2vec-audio and UniSpeech."
        )
    _picklable_weight_norm(encoder.pos_conv_embed)
    config = model.config
    stable = bool(getattr(config, "do_stable_layer_norm", False))
    relative = "position_bias" in inspect.signature(layers[0].forward).parameters
    stages: list[tuple[str, nn.Module]] = [
        ("feature_encoder", FeatureEncoder(model.feature_extractor)),
        ("projection", FeatureProjection(model.feature_projection, encoder, stable)),
    ]
    for k, layer in enumerate(layers):
        last = k == len(layers) - 1
        stage = SpeechEncoderLayer(
            layer,
            config,
            # WavLM never drops its first layer, which makes the position bias.
            layerdrop=0.0 if relative and k == 0 else config.layerdrop,
            encoder_norm=encoder.layer_norm if stable and last else None,
            relative=layers[0].attention if relative and k > 0 else None,
        )
        stages.append((f"layer{k + 1}", stage))
    stages.append(("pool", FramePool()))
    return stages
