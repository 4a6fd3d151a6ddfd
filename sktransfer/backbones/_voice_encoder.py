"""``"voice_encoder"``: the GE2E speaker encoder of Resemblyzer, cut into stages.

The network (Wan et al., 2018, "Generalized end-to-end loss for speaker
verification"; weights from Resemble AI's Resemblyzer 0.1.4, Apache-2.0) maps a
40-band mel power spectrogram (16 kHz, 25 ms window, 10 ms hop) through three
LSTM layers (256 units), a linear layer and a ReLU to an L2-normalised vector.
Resemblyzer applies it to 1.6 s windows (160 frames) at 1.3 windows per second
and averages the window embeddings; the stages here do the same, for a padded
batch of clips of any lengths:

- ``lstm1``: mel frames, the clip's windows, the first LSTM layer;
- ``lstm2``, ``lstm3``: the next layers, on every frame of every window;
- ``linear``: linear + ReLU on each window's last state;
- ``pool``: L2-normalised windows averaged and normalised again.

Between stages the frames of all windows of a clip lie along one axis
(``(B, windows * 160, 256)``) with a mask of the clip's real windows, so the
frozen-output cache and masked pooling treat them as token states.

The weights ship inside the package (``sktransfer/_data/voice_encoder.*``),
converted from the wheel's ``resemblyzer/pretrained.pt`` by
``scripts/convert_voice_encoder.py``; Resemblyzer itself (which needs a compiler
for ``webrtcvad``) is not a dependency.

``"voice_encoder_phone"`` is the same network with weights distilled from these
by ``scripts/train_voice_encoder_phone.py``: it embeds speech heard through a
telephone-like channel where GE2E embeds the clean speech.
"""

from __future__ import annotations

import math
from collections import OrderedDict
from collections.abc import Mapping

import torch
import torch.nn.functional as F
from torch import nn

from ._audio_frontend import WAVEFORM, AudioPreprocessing, mel_spectrogram
from ._base import BackboneSpec, WeightsEntry
from ._pooling import ATTENTION_MASK, HIDDEN_STATES
from ._registry import register_backbone
from ._shipped import load_packaged_weights, packaged_json

__all__ = [
    "VOICE_ENCODER",
    "VOICE_ENCODER_PHONE",
    "build_voice_encoder",
    "voice_windows",
]

VOICE_ENCODER = "voice_encoder"
VOICE_ENCODER_PHONE = "voice_encoder_phone"
SAMPLE_RATE = 16000
N_MELS, N_FFT, HOP = 40, 400, 160  # 25 ms windows, 10 ms hop at 16 kHz
WINDOW_FRAMES = 160  # 1.6 s per window
WINDOWS_PER_SECOND = 1.3  # Resemblyzer's embed_utterance defaults
MIN_COVERAGE = 0.75
HIDDEN = 256
_WEIGHTS_FILE = "voice_encoder.safetensors"
_PHONE_WEIGHTS_FILE = "voice_encoder_phone.safetensors"
PREPROCESSING = AudioPreprocessing(SAMPLE_RATE)


def voice_windows(n_samples: int) -> list[int]:
    """First frames of the 160-frame windows of a clip, as Resemblyzer cuts them.

    A last window covering less than 75 % of real samples is dropped, unless it
    is the only one (short clips are zero-padded to one window).

    Examples
    --------
    >>> from sktransfer.backbones._voice_encoder import voice_windows
    >>> voice_windows(8000), voice_windows(48000)
    ([0], [0, 77, 154])
    """
    n_frames = int(math.ceil((n_samples + 1) / HOP))
    step = int(round((SAMPLE_RATE / WINDOWS_PER_SECOND) / HOP))
    starts = list(range(0, max(1, n_frames - WINDOW_FRAMES + step + 1), step))
    last = starts[-1] * HOP
    coverage = (n_samples - last) / (WINDOW_FRAMES * HOP)
    if coverage < MIN_COVERAGE and len(starts) > 1:
        starts = starts[:-1]
    return starts


def _windows_to_frames(hidden: torch.Tensor, mask: torch.Tensor) -> dict:
    """``(B * W, 160, D)`` window states -> the ``(B, W * 160, D)`` mapping."""
    batch = mask.shape[0]
    frames = hidden.reshape(batch, -1, hidden.shape[-1])
    return {
        HIDDEN_STATES: frames,
        ATTENTION_MASK: mask.repeat_interleave(WINDOW_FRAMES, dim=1),
    }


def _frames_to_windows(states: Mapping) -> tuple[torch.Tensor, torch.Tensor]:
    hidden, mask = states[HIDDEN_STATES], states[ATTENTION_MASK]
    batch = hidden.shape[0]
    windows = hidden.reshape(-1, WINDOW_FRAMES, hidden.shape[-1])
    return windows, mask.reshape(batch, -1, WINDOW_FRAMES)[:, :, 0]


class WindowedLSTM(nn.Module):
    """One LSTM layer run on every 1.6 s window of every clip."""

    def __init__(self, input_size: int, first: bool = False):
        super().__init__()
        self.first = first
        self.lstm = nn.LSTM(input_size, HIDDEN, batch_first=True)

    def _windows(self, batch: Mapping) -> tuple[torch.Tensor, torch.Tensor]:
        """Mel windows ``(B * W, 160, 40)`` and the ``(B, W)`` window mask."""
        waveform, sample_mask = batch[WAVEFORM], batch[ATTENTION_MASK]
        lengths = sample_mask.sum(dim=1).tolist()
        starts = [voice_windows(int(n)) for n in lengths]
        needed = max((s[-1] + WINDOW_FRAMES) * HOP for s in starts)
        if needed > waveform.shape[1]:  # zero-pad up to the last window's end
            waveform = F.pad(waveform, (0, needed - waveform.shape[1]))
        mel = mel_spectrogram(
            waveform, SAMPLE_RATE, n_fft=N_FFT, hop_length=HOP, n_mels=N_MELS
        )
        n_windows = max(len(s) for s in starts)
        windows = mel.new_zeros(len(starts), n_windows, WINDOW_FRAMES, N_MELS)
        mask = sample_mask.new_zeros(len(starts), n_windows)
        for row, first_frames in enumerate(starts):
            for k, first in enumerate(first_frames):
                windows[row, k] = mel[row, first : first + WINDOW_FRAMES]
                mask[row, k] = 1
        return windows.reshape(-1, WINDOW_FRAMES, N_MELS), mask

    def forward(self, states: Mapping) -> dict[str, torch.Tensor]:
        if self.first:
            windows, mask = self._windows(states)
        else:
            windows, mask = _frames_to_windows(states)
        hidden, _ = self.lstm(windows)
        return _windows_to_frames(hidden, mask)


class WindowEmbedding(nn.Module):
    """Linear + ReLU on each window's last LSTM state: ``(B, W, 256)``."""

    def __init__(self):
        super().__init__()
        self.linear = nn.Linear(HIDDEN, HIDDEN)

    def forward(self, states: Mapping) -> dict[str, torch.Tensor]:
        windows, mask = _frames_to_windows(states)
        last = windows[:, -1].reshape(mask.shape[0], mask.shape[1], HIDDEN)
        return {HIDDEN_STATES: F.relu(self.linear(last)), ATTENTION_MASK: mask}


class VoicePool(nn.Module):
    """Normalised window embeddings averaged over real windows, normalised."""

    def forward(self, states: Mapping) -> torch.Tensor:
        windows = F.normalize(states[HIDDEN_STATES], dim=-1)
        weights = states[ATTENTION_MASK].unsqueeze(-1).to(windows.dtype)
        mean = (windows * weights).sum(1) / weights.sum(1).clamp(min=1)
        return F.normalize(mean, dim=-1)


def build_voice_encoder() -> nn.Module:
    """The GE2E encoder as its five stages (random weights)."""
    return nn.Sequential(
        OrderedDict(
            lstm1=WindowedLSTM(N_MELS, first=True),
            lstm2=WindowedLSTM(HIDDEN),
            lstm3=WindowedLSTM(HIDDEN),
            linear=WindowEmbedding(),
            pool=VoicePool(),
        )
    )


def _split(model: nn.Module) -> list[tuple[str, nn.Module]]:
    return list(model.named_children())


def voice_encoder_metadata() -> dict:
    """Source, licence and sha256 of the shipped weights."""
    return packaged_json("voice_encoder.json")


def _weights_entry(filename: str, name: str, description: str):
    def load(progress: bool = False) -> dict:
        return load_packaged_weights(filename, progress)

    return lambda: (
        WeightsEntry(
            name=name,
            load_state_dict=load,
            preprocessing=PREPROCESSING,
            description=description,
        ),
    )


def _register(name: str, weights) -> None:
    register_backbone(
        BackboneSpec(
            name=name,
            build=build_voice_encoder,
            split=_split,
            embedding_dim=HIDDEN,
            head="",
            preprocessing=PREPROCESSING,
            weights=weights,
            family="shipped",
            modality="audio",
            # layer="mid" is the mean of the window embeddings before their L2
            # normalisation: with a logistic regression on top it recognised
            # speakers over a telephone line better than the normalised final
            # embedding (layer=None) with 2, 5 and 20 clips per speaker
            # (benchmarks/speech_few_shot.py, speaker task).
            mid_layers=("linear",),
            # Recurrent layers pretrained on thousands of speakers: fine-tune
            # gently, as ImageNet networks do.
            finetune_lr=1e-4,
        )
    )


_register(
    VOICE_ENCODER,
    _weights_entry(
        _WEIGHTS_FILE, "GE2E", "Resemblyzer's GE2E speaker encoder (Apache-2.0)"
    ),
)
# The same network distilled to embed speech heard through a telephone line
# where GE2E embeds it clean (scripts/train_voice_encoder_phone.py).
_register(
    VOICE_ENCODER_PHONE,
    _weights_entry(
        _PHONE_WEIGHTS_FILE,
        "GE2E-phone",
        "GE2E distilled for telephone channels (Apache-2.0, derived)",
    ),
)
