"""The two classical rows of the speech benchmark, written as a user would.

- :func:`mfcc_statistics`: 20 MFCCs (librosa) and their deltas, summarised per
  clip by mean and standard deviation over frames: the classical fixed-length
  representation for a linear classifier; :func:`mfcc_classifier` is the
  classifier on them (row :data:`MFCC_ROW`), :func:`embedding_probe` the one on
  a backbone's frozen embeddings (row :func:`embedding_row`), so that every
  speech benchmark fits and names these rows alike.
- :class:`ScratchCNN` and :func:`train_scratch_cnn`: a small log-mel CNN (four
  conv-BN-ReLU-pool blocks, global average pooling, a linear layer) trained from
  random weights by a hand-written PyTorch loop (Adam, cross-entropy, random
  crops of 1.6 s), the way a tutorial would write it.
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler
from torch import nn

from sktransfer.backbones._audio_frontend import mel_spectrogram

SAMPLE_RATE = 16000
CROP = int(1.6 * SAMPLE_RATE)
MFCC_ROW = "MFCC statistics + LR"


def mfcc_classifier():
    """StandardScaler + LogisticRegression, for :func:`mfcc_statistics`."""
    return make_pipeline(StandardScaler(), LogisticRegression(max_iter=5000))


def embedding_probe():
    """LogisticRegression on frozen embeddings, as they come."""
    return LogisticRegression(max_iter=5000)


def embedding_row(backbone: str) -> str:
    """The row name of ``backbone``'s frozen embeddings + LR."""
    return f"{backbone}: embeddings + LR"


def mfcc_statistics(clips, sample_rate: int = SAMPLE_RATE) -> np.ndarray:
    """``(n, 80)``: mean and std over frames of 20 MFCCs and their deltas."""
    import librosa

    rows = []
    for clip in clips:
        clip = np.asarray(clip, dtype=np.float32)
        mfcc = librosa.feature.mfcc(
            y=clip, sr=sample_rate, n_mfcc=20, n_fft=400, hop_length=160, n_mels=40
        )
        delta = librosa.feature.delta(mfcc, mode="nearest")
        both = np.concatenate([mfcc, delta])
        rows.append(np.concatenate([both.mean(axis=1), both.std(axis=1)]))
    return np.asarray(rows, dtype=np.float32)


def _log_mel(batch: torch.Tensor) -> torch.Tensor:
    mel = mel_spectrogram(batch, SAMPLE_RATE, n_fft=400, hop_length=160, n_mels=40)
    return torch.log(mel + 1e-6).transpose(1, 2).unsqueeze(1)  # (B, 1, 40, T)


def _fixed_length(clip: np.ndarray, rng: np.random.Generator | None) -> np.ndarray:
    """Crop (randomly when ``rng`` is given, else centred) or zero-pad to 1.6 s."""
    clip = np.asarray(clip, dtype=np.float32)
    if len(clip) >= CROP:
        start = (
            (len(clip) - CROP) // 2
            if rng is None
            else rng.integers(0, len(clip) - CROP + 1)
        )
        return clip[start : start + CROP]
    out = np.zeros(CROP, dtype=np.float32)
    start = (
        (CROP - len(clip)) // 2
        if rng is None
        else rng.integers(0, CROP - len(clip) + 1)
    )
    out[start : start + len(clip)] = clip
    return out


class ScratchCNN(nn.Module):
    """Log-mel -> 4 x (conv 3x3, BN, ReLU, max-pool 2) -> mean -> linear."""

    def __init__(self, n_classes: int, widths=(16, 32, 64, 64)):
        super().__init__()
        layers, channels = [], 1
        for width in widths:
            layers += [
                nn.Conv2d(channels, width, 3, padding=1, bias=False),
                nn.BatchNorm2d(width),
                nn.ReLU(inplace=True),
                nn.MaxPool2d(2),
            ]
            channels = width
        self.features = nn.Sequential(nn.BatchNorm2d(1), *layers)
        self.fc = nn.Linear(channels, n_classes)

    def forward(self, waveform: torch.Tensor) -> torch.Tensor:
        return self.fc(self.features(_log_mel(waveform)).mean(dim=(2, 3)))


def train_scratch_cnn(clips, y, *, seed: int, steps: int = 300, batch_size: int = 16):
    """Train :class:`ScratchCNN` on ``clips`` for ``steps`` Adam steps.

    Returns ``predict(clips) -> labels``.
    """
    torch.manual_seed(seed)
    rng = np.random.default_rng(seed)
    classes, targets = np.unique(y, return_inverse=True)
    model = ScratchCNN(len(classes))
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3, weight_decay=1e-4)
    model.train()
    for _ in range(steps):
        index = rng.choice(len(clips), size=min(batch_size, len(clips)), replace=False)
        batch = torch.from_numpy(
            np.stack([_fixed_length(clips[i], rng) for i in index])
        )
        loss = F.cross_entropy(model(batch), torch.from_numpy(targets[index]))
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    model.eval()

    @torch.no_grad()
    def predict(test_clips) -> np.ndarray:
        out = []
        for start in range(0, len(test_clips), 64):
            part = test_clips[start : start + 64]
            batch = torch.from_numpy(np.stack([_fixed_length(c, None) for c in part]))
            out.append(model(batch).argmax(1).numpy())
        return classes[np.concatenate(out)]

    return predict
