"""Distil the shipped GE2E speaker encoder into one that hears through a telephone.

``voice_encoder`` (Resemblyzer's GE2E) was trained on clean speech: heard over a
telephone line (band-pass, noise, mu-law companding) the same voice lands
elsewhere in its embedding space. This script trains a copy of it, the student,
so that a window heard through a random telephone-like channel embeds where the
frozen teacher embeds the clean window, and a clean window stays where it was:
the loss is ``(1 - cos(student(channel(x)), teacher(x))) + (1 - cos(student(x),
teacher(x)))`` on L2-normalised window embeddings. No speaker labels are used,
so any speech serves; here it is espeak-ng speech (the ``keyword_cnn`` corpus
recipe, other draws), concatenated into 1.6 s windows.

The channel, drawn per window: a 4th-order Butterworth-shaped band-pass with
its high-pass in 200-400 Hz and low-pass in 3.0-3.8 kHz (p=0.8), white noise
at 5-30 dB SNR (p=0.8), 8-bit mu-law companding (p=0.3) and a gain of -6..+6
dB.

Reproduce with ``./dev python scripts/train_voice_encoder_phone.py`` (about 15
minutes on 2 cores, corpus synthesis included; needs ``espeak-ng``). Writes
``sktransfer/_data/voice_encoder_phone.safetensors`` (the stage layout of
``voice_encoder``) and ``voice_encoder_phone.json`` (recipe, the teacher
agreement on held-out voices, sha256).
"""

from __future__ import annotations

import hashlib
import json
import sys
import time
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from safetensors.torch import save_file
from torch import nn

from sktransfer.backbones._audio_frontend import WAVEFORM, band_limit
from sktransfer.backbones._pooling import ATTENTION_MASK, HIDDEN_STATES
from sktransfer.backbones._shipped import load_packaged_weights
from sktransfer.backbones._voice_encoder import build_voice_encoder

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "scripts"))
sys.path.insert(0, str(ROOT / "benchmarks"))
from _speech_data import HELDOUT_VOICES, PRETRAIN_VOCABULARY, PRETRAIN_VOICES  # noqa: E402
from train_keyword_backbone import corpus, espeak_version  # noqa: E402

OUT = ROOT / "sktransfer" / "_data"
NAME = "voice_encoder_phone"
SAMPLE_RATE, WINDOW = 16000, 25600  # 1.6 s: one GE2E window (160 frames)
STEPS, BATCH, LR, SEED = 800, 32, 1e-4, 0
PER_WORD = 8


class WindowEncoder(nn.Module):
    """The shipped GE2E stages on 1.6 s windows: the normalised window embedding."""

    def __init__(self):
        super().__init__()
        self.stages = build_voice_encoder()

    def forward(self, waveform: torch.Tensor) -> torch.Tensor:
        states = {WAVEFORM: waveform, ATTENTION_MASK: torch.ones_like(waveform)}
        for name in ("lstm1", "lstm2", "lstm3", "linear"):  # one window per row
            states = getattr(self.stages, name)(states)
        return F.normalize(states[HIDDEN_STATES][:, 0], dim=-1)


def telephone(x: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
    """Each row through a random telephone-like channel (see the docstring)."""
    n = x.shape[0]

    def uniform(low, high):
        return low + (high - low) * torch.rand(n, 1, generator=generator)

    def chance(p):
        return torch.rand(n, 1, generator=generator) < p

    banded = band_limit(x, SAMPLE_RATE, uniform(200, 400), uniform(3000, 3800))
    y = torch.where(chance(0.8), banded, x)
    power = y.pow(2).mean(1, keepdim=True)
    noise = torch.randn(y.shape, generator=generator)
    noise = noise * (power / 10 ** (uniform(5, 30) / 10)).sqrt()
    y = y + chance(0.8) * noise
    mu = 255.0
    coded = torch.sign(y) * torch.log1p(mu * y.abs().clamp(max=1)) / np.log1p(mu)
    coded = torch.round(coded * 127) / 127
    decoded = torch.sign(coded) * ((1 + mu) ** coded.abs() - 1) / mu
    y = torch.where(chance(0.3), decoded, y)
    return y * 10 ** (uniform(-6, 6) / 20)


def windows(clips, n: int, rng: np.random.Generator) -> torch.Tensor:
    """``n`` 1.6 s windows, each of random clips laid end to end."""
    out = np.empty((n, WINDOW), np.float32)
    for row in range(n):
        parts, length = [], 0
        while length < WINDOW:
            clip = clips[rng.integers(len(clips))]
            parts.append(clip)
            length += len(clip)
        joined = np.concatenate(parts)
        start = rng.integers(0, len(joined) - WINDOW + 1)
        out[row] = joined[start : start + WINDOW]
    return torch.from_numpy(out)


@torch.no_grad()
def agreement(student, teacher, clips, generator) -> dict:
    """Mean cosine to the teacher's clean embedding, clean and by telephone."""
    x = windows(clips, 256, np.random.default_rng(123))
    target = teacher(x)
    phone = telephone(x, generator)
    return {
        "clean": round(float((student(x) * target).sum(-1).mean()), 4),
        "telephone": round(float((student(phone) * target).sum(-1).mean()), 4),
        "telephone_teacher": round(float((teacher(phone) * target).sum(-1).mean()), 4),
    }


def main() -> None:
    torch.manual_seed(SEED)
    start = time.perf_counter()
    clips, _, synthesis = corpus(
        PRETRAIN_VOCABULARY, PRETRAIN_VOICES, PER_WORD, SEED + 1
    )
    heldout, _, _ = corpus(PRETRAIN_VOCABULARY[:40], HELDOUT_VOICES, 2, SEED + 2)
    print(f"corpus: {len(clips)} clips ({synthesis:.0f} s to synthesise)", flush=True)
    teacher = WindowEncoder()
    teacher.stages.load_state_dict(load_packaged_weights("voice_encoder.safetensors"))
    teacher.eval().requires_grad_(False)
    student = WindowEncoder()
    student.load_state_dict(teacher.state_dict())
    optimiser = torch.optim.Adam(student.parameters(), lr=LR)
    rng, generator = np.random.default_rng(SEED), torch.Generator().manual_seed(SEED)
    before = agreement(student, teacher, heldout, torch.Generator().manual_seed(1))
    for step in range(STEPS):
        x = windows(clips, BATCH, rng)
        with torch.no_grad():
            target = teacher(x)
        loss = (1 - (student(telephone(x, generator)) * target).sum(-1)).mean()
        loss = loss + (1 - (student(x) * target).sum(-1)).mean()
        optimiser.zero_grad()
        loss.backward()
        nn.utils.clip_grad_norm_(student.parameters(), 1.0)
        optimiser.step()
        if step % 50 == 0 or step == STEPS - 1:
            print(f"step {step}: loss {loss.item():.4f}", flush=True)
    student.eval()
    after = agreement(student, teacher, heldout, torch.Generator().manual_seed(1))
    path = OUT / f"{NAME}.safetensors"
    state = student.stages.state_dict()
    save_file({key: value.contiguous() for key, value in state.items()}, str(path))
    metadata = {
        "architecture": (
            "GE2E (as voice_encoder): 40-band mel power (16 kHz, 25 ms / 10 ms) "
            "-> 3 x LSTM(256) -> linear(256) -> ReLU -> L2, on 1.6 s windows "
            "at 1.3/s"
        ),
        "source": (
            "distilled from voice_encoder (Resemblyzer 0.1.4's GE2E) by "
            "scripts/train_voice_encoder_phone.py"
        ),
        "licence": "Apache-2.0 (Resemblyzer, by Resemble AI; this is a derived work)",
        "data": (
            f"{len(clips)} espeak-ng clips ({espeak_version()}): "
            f"PRETRAIN_VOCABULARY x {PER_WORD}, each by a random one of "
            f"{len(PRETRAIN_VOICES)} PRETRAIN_VOICES, laid end to end in 1.6 s "
            "windows"
        ),
        "recipe": (
            f"Adam lr={LR}, {STEPS} steps of {BATCH} windows, gradient norm "
            f"clipped at 1, seed {SEED}; loss (1 - cos(student(telephone(x)), "
            "teacher(x))) + (1 - cos(student(x), teacher(x))); telephone: "
            "band-pass with high-pass 200-400 Hz and low-pass 3-3.8 kHz "
            "(p=0.8), white noise at 5-30 dB SNR (p=0.8), 8-bit mu-law (p=0.3), "
            "gain -6..+6 dB"
        ),
        "agreement_with_teacher": {
            "what": (
                "mean cosine to the teacher's clean window embedding, 256 "
                "windows of HELDOUT_VOICES speech"
            ),
            "before": before,
            "after": after,
        },
        "sha256": hashlib.sha256(path.read_bytes()).hexdigest(),
        "seconds": round(time.perf_counter() - start),
        "reproduce": "./dev python scripts/train_voice_encoder_phone.py",
    }
    (OUT / f"{NAME}.json").write_text(json.dumps(metadata, indent=2) + "\n")
    print(json.dumps(metadata["agreement_with_teacher"], indent=2))


if __name__ == "__main__":
    main()
