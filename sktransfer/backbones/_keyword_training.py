"""The training recipe of the shipped spoken-word CNN, as one function.

``scripts/train_keyword_backbone.py`` trains the weights shipped in
``sktransfer/_data/keyword_cnn.safetensors`` with it. Corpus synthesis stays
with the caller; the loop takes clean 16 kHz clips and their word labels, and
makes every batch a fresh noisy, shifted, rescaled, resampled copy of them, with
all randomness drawn from one seeded generator.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence

import torch
import torch.nn.functional as F
from torch import nn

from ._audio_frontend import WAVEFORM, band_limit
from ._keyword_cnn import SAMPLE_RATE, build_keyword_cnn
from ._pooling import ATTENTION_MASK

__all__ = ["augment_clips", "train_keyword_cnn"]


def _uniform(n: int, low: float, high: float, generator: torch.Generator):
    return low + (high - low) * torch.rand(n, generator=generator)


def augment_clips(
    clips: Sequence[torch.Tensor],
    generator: torch.Generator,
    *,
    window: int = SAMPLE_RATE,
    speed: tuple[float, float] = (0.88, 1.12),
    gain_db: tuple[float, float] = (-18.0, 6.0),
    snr_db: tuple[float, float] = (0.0, 30.0),
    noise_probability: float = 0.8,
    band_hz: tuple[float, float, float, float] = (50.0, 400.0, 3000.0, 7500.0),
    band_probability: float = 0.5,
) -> torch.Tensor:
    """Fresh random copies of ``clips`` in fixed windows: ``(B, window)``.

    Each clip is resampled by a random factor in ``speed`` (faster and higher,
    or slower and lower, as a tape would), placed at a random offset in a
    window of silence (randomly cropped when longer), scaled by a random gain
    in ``gain_db`` and, with probability ``noise_probability``, mixed with
    coloured noise (spectral slope from white to brown) at a random SNR in
    ``snr_db``, measured against the clip's own power. Then, with probability
    ``band_probability``, the mix is band-limited as a telephone or a small
    loudspeaker would: 4th-order Butterworth-shaped high-pass and low-pass
    responses (zero phase) with cut-offs drawn from ``band_hz[0:2]`` and
    ``band_hz[2:4]`` Hz.

    Examples
    --------
    >>> import torch
    >>> from sktransfer.backbones._keyword_training import augment_clips
    >>> clips = [torch.randn(8000), torch.randn(20000)]
    >>> augment_clips(clips, torch.Generator().manual_seed(0)).shape
    torch.Size([2, 16000])
    """
    n = len(clips)
    factors = _uniform(n, *speed, generator)
    out = torch.zeros(n, window)
    power = torch.empty(n)
    for row, (clip, factor) in enumerate(zip(clips, factors.tolist(), strict=True)):
        length = max(2, round(len(clip) / factor))
        clip = F.interpolate(
            clip.view(1, 1, -1), size=length, mode="linear", align_corners=True
        ).view(-1)
        power[row] = clip.pow(2).mean()
        if length <= window:
            start = int(
                torch.randint(0, window - length + 1, (1,), generator=generator)
            )
            out[row, start : start + length] = clip
        else:
            start = int(
                torch.randint(0, length - window + 1, (1,), generator=generator)
            )
            out[row] = clip[start : start + window]
    gains = 10 ** (_uniform(n, *gain_db, generator) / 20)
    out *= gains[:, None]
    power *= gains.pow(2)
    # Coloured noise: white noise shaped by f ** (-slope / 2), slope in [0, 2].
    spectrum = torch.fft.rfft(torch.randn(n, window, generator=generator))
    freqs = torch.arange(spectrum.shape[1]).clamp(min=1).float()
    slopes = _uniform(n, 0.0, 2.0, generator)
    noise = torch.fft.irfft(spectrum * freqs.pow(-slopes[:, None] / 2), n=window)
    noise /= noise.pow(2).mean(dim=1, keepdim=True).sqrt().clamp(min=1e-12)
    snr = _uniform(n, *snr_db, generator)
    scale = (power / 10 ** (snr / 10)).sqrt()
    scale *= (torch.rand(n, generator=generator) < noise_probability).float()
    out = out + scale[:, None] * noise
    # Band limits: |H| of a 4th-order Butterworth high-pass times a low-pass.
    low = _uniform(n, band_hz[0], band_hz[1], generator)[:, None]
    high = _uniform(n, band_hz[2], band_hz[3], generator)[:, None]
    banded = band_limit(out, SAMPLE_RATE, low, high)
    chosen = torch.rand(n, generator=generator) < band_probability
    return torch.where(chosen[:, None], banded, out)


def train_keyword_cnn(
    clips: Sequence[torch.Tensor],
    y: torch.Tensor,
    *,
    n_classes: int,
    epochs: int,
    seed: int = 0,
    lr: float = 4e-3,
    batch_size: int = 64,
    window: int = SAMPLE_RATE,
    on_epoch: Callable[[int, nn.Module, float], None] | None = None,
) -> nn.Module:
    """Train a fresh ``build_keyword_cnn(n_classes)`` on clips of spoken words.

    AdamW (weight decay 5e-4), a one-cycle schedule peaking at ``lr``, label
    smoothing 0.1, shuffled batches of :func:`augment_clips` copies (all of one
    length, so BatchNorm never sees padding). ``torch.manual_seed(seed)`` is set
    before the model is built, and shuffling and augmentation draw from their
    own generator seeded with ``seed``, so the same arguments give the same
    model.

    Parameters
    ----------
    clips : sequence of torch.Tensor of shape (n_samples,)
        Clean mono clips at 16 kHz (float32, any lengths).
    y : torch.Tensor of shape (n_clips,)
        Labels in ``0 .. n_classes - 1`` (int64).
    n_classes : int
        Width of the classifier ``fc``.
    epochs : int
        Passes over ``clips``.
    seed : int, default=0
        Seed of the initialisation, the shuffling and the augmentation.
    lr : float, default=4e-3
        Peak learning rate of the one-cycle schedule.
    batch_size : int, default=64
        Clips per step (the last batch of an epoch may be smaller).
    window : int, default=16000
        Samples per training example (one second).
    on_epoch : callable, default=None
        Called after each epoch as ``on_epoch(epoch, model, loss)`` with the
        1-based epoch and the mean loss of its batches, for example to
        evaluate. It must not draw from torch's global random state.

    Returns
    -------
    model : torch.nn.Module
        The trained network (in training mode, unless ``on_epoch`` changed it).

    Examples
    --------
    >>> import torch
    >>> from sktransfer.backbones._keyword_training import train_keyword_cnn
    >>> clips = [0.1 * torch.randn(6000) for _ in range(4)]
    >>> model = train_keyword_cnn(clips, torch.tensor([0, 1, 0, 1]), n_classes=2,
    ...                           epochs=1, batch_size=2, window=8000)
    >>> model.fc[-1].out_features
    2
    """
    torch.manual_seed(seed)
    generator = torch.Generator().manual_seed(seed)
    model = build_keyword_cnn(n_classes=n_classes)
    optimizer = torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=5e-4)
    steps = epochs * math.ceil(len(clips) / batch_size)
    scheduler = torch.optim.lr_scheduler.OneCycleLR(optimizer, lr, total_steps=steps)
    for epoch in range(1, epochs + 1):
        model.train()
        order = torch.randperm(len(clips), generator=generator).tolist()
        losses = []
        for start in range(0, len(clips), batch_size):
            index = order[start : start + batch_size]
            waveform = augment_clips(
                [clips[i] for i in index], generator, window=window
            )
            batch = {
                WAVEFORM: waveform,
                ATTENTION_MASK: torch.ones_like(waveform, dtype=torch.long),
            }
            loss = F.cross_entropy(model(batch), y[index], label_smoothing=0.1)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            scheduler.step()
            losses.append(loss.item())
        if on_epoch is not None:
            on_epoch(epoch, model, sum(losses) / len(losses))
    return model
