"""Waveforms -> padded batches and spectrogram frames, in torch alone.

:class:`AudioPreprocessing` is the audio counterpart of
:class:`~sktransfer.backbones.Preprocessing` (images) and of the tokenizer (text):
it turns one batch of clips of any lengths into a zero-padded ``(B, T)`` waveform
tensor and a ``(B, T)`` mask of the real samples. Backbones compute their own
features from that in their first stage, with :func:`mel_spectrogram` (an STFT
with ``torch.stft`` and a Slaney mel filter bank equal to librosa's; torchaudio
on PyPI does not match the pinned torch), and carry a frame mask from
:func:`frame_mask` between stages, so padding never changes an embedding.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Sequence

import numpy as np
import torch

from ._pooling import ATTENTION_MASK

__all__ = [
    "WAVEFORM",
    "AudioPreprocessing",
    "band_limit",
    "frame_mask",
    "mel_filterbank",
    "mel_spectrogram",
]

# The padded waveforms of a prepared audio batch, beside ATTENTION_MASK (the
# real samples).
WAVEFORM = "waveform"


def _hz_to_mel(hz: np.ndarray) -> np.ndarray:
    """Slaney's mel scale (librosa's default, ``htk=False``)."""
    hz = np.atleast_1d(np.asarray(hz, dtype=np.float64))
    f_sp, min_log_hz = 200.0 / 3, 1000.0
    min_log_mel, logstep = min_log_hz / f_sp, math.log(6.4) / 27.0
    mels = hz / f_sp
    log_part = hz >= min_log_hz
    mels[log_part] = min_log_mel + np.log(hz[log_part] / min_log_hz) / logstep
    return mels


def _mel_to_hz(mels: np.ndarray) -> np.ndarray:
    mels = np.atleast_1d(np.asarray(mels, dtype=np.float64))
    f_sp, min_log_hz = 200.0 / 3, 1000.0
    min_log_mel, logstep = min_log_hz / f_sp, math.log(6.4) / 27.0
    hz = f_sp * mels
    log_part = mels >= min_log_mel
    hz[log_part] = min_log_hz * np.exp(logstep * (mels[log_part] - min_log_mel))
    return hz


@functools.lru_cache(maxsize=16)
def mel_filterbank(
    sample_rate: int,
    n_fft: int,
    n_mels: int,
    fmin: float = 0.0,
    fmax: float | None = None,
) -> torch.Tensor:
    """Slaney-normalised triangular mel filters, ``(n_fft // 2 + 1, n_mels)``.

    The same filters as ``librosa.filters.mel(sr=sample_rate, n_fft=n_fft,
    n_mels=n_mels, fmin=fmin, fmax=fmax).T`` (its defaults: Slaney scale and
    area normalisation).

    Examples
    --------
    >>> from sktransfer.backbones._audio_frontend import mel_filterbank
    >>> mel_filterbank(16000, 400, 40).shape
    torch.Size([201, 40])
    """
    fmax = sample_rate / 2 if fmax is None else fmax
    fft_freqs = np.fft.rfftfreq(n_fft, 1.0 / sample_rate)
    mel_points = np.linspace(_hz_to_mel(fmin)[0], _hz_to_mel(fmax)[0], n_mels + 2)
    mel_freqs = _mel_to_hz(mel_points)
    widths = np.diff(mel_freqs)
    ramps = mel_freqs[:, None] - fft_freqs[None, :]
    lower = -ramps[:-2] / widths[:-1, None]
    upper = ramps[2:] / widths[1:, None]
    weights = np.maximum(0, np.minimum(lower, upper))
    weights *= (2.0 / (mel_freqs[2 : n_mels + 2] - mel_freqs[:n_mels]))[:, None]
    return torch.from_numpy(weights.T.astype(np.float32))


def mel_spectrogram(
    waveform: torch.Tensor,
    sample_rate: int,
    *,
    n_fft: int,
    hop_length: int,
    n_mels: int,
    fmin: float = 0.0,
    fmax: float | None = None,
    power: float = 2.0,
) -> torch.Tensor:
    """Mel spectrogram frames ``(B, frames, n_mels)`` of waveforms ``(B, T)``.

    A centred STFT (zero padding of ``n_fft // 2`` on both sides, periodic Hann
    window of ``n_fft`` samples) as ``librosa.feature.melspectrogram`` computes
    it; ``frames = 1 + T // hop_length``. ``power=2`` gives power, 1 magnitude.

    Examples
    --------
    >>> import torch
    >>> from sktransfer.backbones._audio_frontend import mel_spectrogram
    >>> mel_spectrogram(torch.zeros(2, 16000), 16000, n_fft=400, hop_length=160,
    ...                 n_mels=40).shape
    torch.Size([2, 101, 40])
    """
    window = torch.hann_window(n_fft, device=waveform.device, dtype=torch.float32)
    spectrum = torch.stft(
        waveform.float(),
        n_fft,
        hop_length=hop_length,
        window=window,
        center=True,
        pad_mode="constant",
        return_complex=True,
    ).abs()
    if power != 1:
        spectrum = spectrum.pow(power)
    filters = mel_filterbank(int(sample_rate), n_fft, n_mels, fmin, fmax)
    return torch.matmul(spectrum.transpose(1, 2), filters.to(spectrum.device))


def band_limit(
    waveform: torch.Tensor,
    sample_rate: int,
    low_hz: torch.Tensor,
    high_hz: torch.Tensor,
) -> torch.Tensor:
    """Waveforms ``(B, T)`` band-limited as a telephone or small loudspeaker would.

    Zero-phase magnitude responses of a 4th-order Butterworth high-pass at
    ``low_hz`` times a low-pass at ``high_hz`` (one cut-off pair per row,
    ``(B, 1)`` tensors), applied in the frequency domain.

    Examples
    --------
    >>> import torch
    >>> from sktransfer.backbones._audio_frontend import band_limit
    >>> t = torch.arange(16000) / 16000
    >>> tones = torch.stack([torch.sin(2 * torch.pi * f * t) for f in (100, 1000)])
    >>> out = band_limit(tones, 16000, torch.tensor([[400.0]]), torch.tensor([[3e3]]))
    >>> (out.pow(2).mean(1) / tones.pow(2).mean(1)).round(decimals=2).tolist()
    [0.0, 1.0]
    """
    n = waveform.shape[-1]
    hz = torch.fft.rfftfreq(n, 1 / sample_rate)
    response = (1 + (low_hz / hz.clamp(min=1.0)) ** 8).rsqrt()
    response = response * (1 + (hz / high_hz) ** 8).rsqrt()
    return torch.fft.irfft(torch.fft.rfft(waveform) * response, n=n)


def frame_mask(sample_mask: torch.Tensor, hop_length: int) -> torch.Tensor:
    """Which frames of a centred STFT belong to real samples: ``(B, frames)``.

    Frame ``f`` is centred on sample ``f * hop_length``; it is real when that
    sample is (every clip keeps its first frame).
    """
    lengths = sample_mask.sum(dim=1)
    n_frames = 1 + sample_mask.shape[1] // hop_length
    centres = torch.arange(n_frames, device=sample_mask.device) * hop_length
    real = centres[None, :] < lengths[:, None]
    real[:, 0] = True
    return real.to(sample_mask.dtype)


class AudioPreprocessing:
    """A batch of mono clips -> padded ``(B, T)`` waveforms and their sample mask.

    Parameters
    ----------
    sample_rate : int
        The rate the backbone was trained at; sources resample every clip to it
        when they load (it is the ``loading_size`` hint they receive).
    min_seconds : float, default=0.0
        Clips shorter than this are zero-padded to it, with the padding marked
        real (silence after the clip), as the backbone's own recipe does for
        clips shorter than its analysis window.
    normalize : bool, default=False
        Scale every clip to zero mean and unit variance over its real samples
        (wav2vec2's feature extractor does).

    Examples
    --------
    >>> import numpy as np
    >>> from sktransfer.backbones._audio_frontend import AudioPreprocessing
    >>> batch = AudioPreprocessing(16000)([np.ones(3), np.ones(5)])
    >>> batch["waveform"].shape, batch["attention_mask"].sum(1).tolist()
    (torch.Size([2, 5]), [3, 5])
    """

    def __init__(
        self, sample_rate: int, min_seconds: float = 0.0, normalize: bool = False
    ):
        self.sample_rate = int(sample_rate)
        self.min_seconds = float(min_seconds)
        self.normalize = bool(normalize)

    @property
    def loading_size(self) -> int:
        """What sources receive as their size hint: the rate to resample to."""
        return self.sample_rate

    @property
    def min_samples(self) -> int:
        return int(math.ceil(self.min_seconds * self.sample_rate))

    def example_input(self) -> list[torch.Tensor]:
        """Two seconds of low noise, for dry runs (shapes and widths)."""
        generator = torch.Generator().manual_seed(0)
        return [0.01 * torch.randn(2 * self.sample_rate, generator=generator)]

    def describe(self) -> str:
        """Short text identifying the preprocessing (used in cache keys)."""
        return (
            f"audio,sample_rate={self.sample_rate},min_seconds={self.min_seconds},"
            f"normalize={self.normalize}"
        )

    def __call__(self, clips: Sequence) -> dict[str, torch.Tensor]:
        """Pad one batch of 1-D clips to its longest (and to ``min_seconds``)."""
        tensors = [torch.as_tensor(np.asarray(c, dtype=np.float32)) for c in clips]
        tensors = [t.reshape(-1) for t in tensors]
        lengths = [max(len(t), self.min_samples, 1) for t in tensors]
        waveform = torch.zeros(len(tensors), max(lengths))
        mask = torch.zeros(len(tensors), max(lengths), dtype=torch.long)
        for row, (clip, length) in enumerate(zip(tensors, lengths, strict=True)):
            if self.normalize and len(clip) > 1:
                clip = (clip - clip.mean()) / torch.sqrt(clip.var(correction=0) + 1e-7)
            waveform[row, : len(clip)] = clip
            mask[row, :length] = 1
        return {WAVEFORM: waveform, ATTENTION_MASK: mask}

    def __eq__(self, other) -> bool:
        return isinstance(other, AudioPreprocessing) and (
            self.describe() == other.describe()
        )

    def __hash__(self) -> int:
        return hash(self.describe())

    def __repr__(self) -> str:
        return (
            f"AudioPreprocessing(sample_rate={self.sample_rate}, "
            f"min_seconds={self.min_seconds}, normalize={self.normalize})"
        )
