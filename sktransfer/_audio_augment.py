"""Training-time augmentation that is safe for audio: time shift, gain and noise.

Image augmentation (crops, flips) would scramble a spectrogram; these three
change neither who speaks nor what is said. They act on the raw clips of a
batch, before the backbone's preprocessing pads them, and draw from torch's
generator, which the estimator seeds with ``random_state``.
"""

from __future__ import annotations

import numpy as np
import torch
from torch import nn

__all__ = ["AudioAugment"]


class AudioAugment(nn.Module):
    """Random circular time shift, gain and white noise for every clip.

    Parameters
    ----------
    max_shift : float, default=0.1
        Largest shift as a fraction of the clip's length (circular, so nothing
        is lost).
    gain_db : float, default=6.0
        Gains are drawn uniformly in ``[-gain_db, gain_db]`` decibels.
    snr_db : tuple of (float, float), default=(15.0, 40.0)
        White noise at a signal-to-noise ratio drawn in this range.

    Examples
    --------
    >>> import numpy as np
    >>> from sktransfer._audio_augment import AudioAugment
    >>> clips = np.empty(2, dtype=object)
    >>> clips[:] = [np.ones(100, np.float32), np.ones(50, np.float32)]
    >>> [len(clip) for clip in AudioAugment()(clips)]
    [100, 50]
    """

    def __init__(self, max_shift=0.1, gain_db=6.0, snr_db=(15.0, 40.0)):
        super().__init__()
        self.max_shift, self.gain_db, self.snr_db = max_shift, gain_db, snr_db

    def forward(self, clips) -> np.ndarray:
        if (
            isinstance(clips, torch.Tensor)
            or not len(clips)
            or not isinstance(clips[0], np.ndarray)
        ):
            raise ValueError(
                "augment=True shifts, scales and adds noise to audio clips; this "
                f"backbone takes {type(clips).__name__} batches. Set augment=False."
            )
        out = np.empty(len(clips), dtype=object)
        draws = torch.rand(len(clips), 4).numpy()
        for k, clip in enumerate(clips):
            clip = np.asarray(clip, dtype=np.float32)
            shift = int((2 * draws[k, 0] - 1) * self.max_shift * len(clip))
            gain = 10 ** ((2 * draws[k, 1] - 1) * self.gain_db / 20)
            clip = np.roll(clip, shift) * np.float32(gain)
            low, high = self.snr_db
            snr = low + (high - low) * draws[k, 2]
            power = float(np.mean(clip**2)) + 1e-10
            noise = torch.randn(len(clip)).numpy() * np.sqrt(power / 10 ** (snr / 10))
            out[k] = (clip + noise.astype(np.float32)).astype(np.float32)
        return out

    def extra_repr(self) -> str:
        return (
            f"max_shift={self.max_shift}, gain_db={self.gain_db}, snr_db={self.snr_db}"
        )
