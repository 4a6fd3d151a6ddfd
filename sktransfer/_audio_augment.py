"""Training-time augmentation that is safe for audio: shift, gain, noise, band limits.

Image augmentation (crops, flips) would scramble a spectrogram; these four
change neither who speaks nor what is said. They act on the raw clips of a
batch, before the backbone's preprocessing pads them, and draw from torch's
generator, which the estimator seeds with ``random_state``. The band limits are
those the shipped ``keyword_cnn`` was pretrained with: without them,
fine-tuning let it unlearn the robustness to telephone-like channels it had.
"""

from __future__ import annotations

import numpy as np
import torch
from torch import nn

from .backbones._audio_frontend import band_limit

__all__ = ["AudioAugment"]


class AudioAugment(nn.Module):
    """Random circular time shift, gain, white noise and band limits per clip.

    Parameters
    ----------
    max_shift : float, default=0.1
        Largest shift as a fraction of the clip's length (circular, so nothing
        is lost).
    gain_db : float, default=6.0
        Gains are drawn uniformly in ``[-gain_db, gain_db]`` decibels.
    snr_db : tuple of (float, float), default=(15.0, 40.0)
        White noise at a signal-to-noise ratio drawn in this range.
    band_hz : tuple of 4 floats, default=(50.0, 400.0, 3000.0, 7500.0)
        Ranges of the high-pass (``band_hz[0:2]``) and low-pass
        (``band_hz[2:4]``) cut-offs, in Hz (telephones pass 300-3400 Hz).
    band_probability : float, default=0.5
        Share of the clips that are band-limited.
    sample_rate : int, default=16000
        The rate of the clips (the backbone's).

    Examples
    --------
    >>> import numpy as np
    >>> from sktransfer._audio_augment import AudioAugment
    >>> clips = np.empty(2, dtype=object)
    >>> clips[:] = [np.ones(100, np.float32), np.ones(50, np.float32)]
    >>> [len(clip) for clip in AudioAugment()(clips)]
    [100, 50]
    """

    def __init__(
        self,
        max_shift=0.1,
        gain_db=6.0,
        snr_db=(15.0, 40.0),
        band_hz=(50.0, 400.0, 3000.0, 7500.0),
        band_probability=0.5,
        sample_rate=16000,
    ):
        super().__init__()
        self.max_shift, self.gain_db, self.snr_db = max_shift, gain_db, snr_db
        self.band_hz, self.band_probability = band_hz, band_probability
        self.sample_rate = sample_rate

    def forward(self, clips) -> np.ndarray:
        if (
            isinstance(clips, torch.Tensor)
            or not len(clips)
            or not isinstance(clips[0], np.ndarray)
        ):
            raise ValueError(
                "augment=True shifts, scales, band-limits and adds noise to audio "
                f"clips; this backbone takes {type(clips).__name__} batches. Set "
                "augment=False."
            )
        out = np.empty(len(clips), dtype=object)
        draws = torch.rand(len(clips), 6).numpy()
        low_hz, high_hz = self.band_hz[0:2], self.band_hz[2:4]
        for k, clip in enumerate(clips):
            clip = np.asarray(clip, dtype=np.float32)
            shift = int((2 * draws[k, 0] - 1) * self.max_shift * len(clip))
            gain = 10 ** ((2 * draws[k, 1] - 1) * self.gain_db / 20)
            clip = np.roll(clip, shift) * np.float32(gain)
            low, high = self.snr_db
            snr = low + (high - low) * draws[k, 2]
            power = float(np.mean(clip**2)) + 1e-10
            noise = torch.randn(len(clip)).numpy() * np.sqrt(power / 10 ** (snr / 10))
            clip = (clip + noise.astype(np.float32)).astype(np.float32)
            if draws[k, 3] < self.band_probability:
                cut_low = low_hz[0] + (low_hz[1] - low_hz[0]) * draws[k, 4]
                cut_high = high_hz[0] + (high_hz[1] - high_hz[0]) * draws[k, 5]
                banded = band_limit(
                    torch.from_numpy(clip)[None],
                    self.sample_rate,
                    torch.tensor([[cut_low]], dtype=torch.float32),
                    torch.tensor([[cut_high]], dtype=torch.float32),
                )
                clip = banded[0].numpy().astype(np.float32)
            out[k] = clip
        return out

    def extra_repr(self) -> str:
        return (
            f"max_shift={self.max_shift}, gain_db={self.gain_db}, "
            f"snr_db={self.snr_db}, band_hz={self.band_hz}, "
            f"band_probability={self.band_probability}, "
            f"sample_rate={self.sample_rate}"
        )
