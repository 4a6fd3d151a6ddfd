"""Train the spoken-word backbone shipped inside sktransfer on espeak-ng words.

Reproduce with ``python scripts/train_keyword_backbone.py`` (about 11 minutes on
one CPU thread, corpus synthesis included; needs ``espeak-ng``). Writes
``sktransfer/_data/keyword_cnn.safetensors`` and ``keyword_cnn.json`` (recipe,
vocabulary, voices, held-out accuracy, sha256, espeak-ng version). The training
loop itself is ``sktransfer.backbones._keyword_training.train_keyword_cnn``.

Words and voices come from the speech benchmarks' ``benchmarks/_speech_data.py``:
``PRETRAIN_VOCABULARY`` (which leaves out the Speech Commands words, digits,
letter names and their homophones) said by ``PRETRAIN_VOICES``, each clip by a
random voice at a random rate and pitch, silence trimmed. ``HELDOUT_VOICES``
share neither accent nor variant with those: the source accuracy is the
pretraining vocabulary said by them, and the transfer check is the benchmarks'
``synthetic_word_task`` (the ten command words; pool and test by different
held-out voices), frozen embeddings against MFCC statistics, both with a
logistic regression.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import torch
from safetensors.torch import save_file
from scipy.fft import dct
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from sktransfer.backbones import _keyword_cnn
from sktransfer.backbones._audio_frontend import frame_mask, mel_spectrogram
from sktransfer.backbones._keyword_training import train_keyword_cnn

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "benchmarks"))
from _speech_data import (  # noqa: E402
    HELDOUT_VOICES,
    PRETRAIN_VOCABULARY,
    PRETRAIN_VOICES,
    data_dir,
    few_shot,
    synthesize,
    synthetic_word_task,
)

OUT = ROOT / "sktransfer" / "_data"
CACHE = data_dir() / "espeak"
PREPROCESSING = _keyword_cnn.KEYWORD_PREPROCESSING
VOCABULARY = list(PRETRAIN_VOCABULARY)
RATES, PITCHES = (125, 225), (25, 80)  # espeak-ng -s (words per minute) and -p
CACHE_VERSION = 1


def espeak_version() -> str:
    return (
        subprocess.run(
            ["espeak-ng", "--version"], capture_output=True, text=True, check=True
        )
        .stdout.split(" Data")[0]
        .strip()
    )


def trim(audio: np.ndarray, margin: int = 320) -> np.ndarray:
    """Cut the silence espeak-ng leaves around a word, keeping 20 ms of it."""
    loud = np.flatnonzero(np.abs(audio) > 0.01 * np.abs(audio).max())
    return audio[max(loud[0] - margin, 0) : loud[-1] + margin]


def corpus(words, voices, per_word: int, seed: int):
    """``per_word`` clips of each word, each by a random voice, rate and pitch.

    Voices are drawn without replacement per word; rates (words per minute)
    and pitches uniformly from :data:`RATES` and :data:`PITCHES`. Cached as one
    16-bit ``.npz`` per argument set, with the seconds its synthesis took.
    """
    rng = np.random.default_rng(seed)
    jobs = []
    for label, word in enumerate(words):
        for voice in rng.choice(len(voices), size=per_word, replace=False):
            rate = int(rng.integers(RATES[0], RATES[1] + 1))
            pitch = int(rng.integers(PITCHES[0], PITCHES[1] + 1))
            jobs.append((label, word, voices[voice], rate, pitch))
    key = json.dumps([CACHE_VERSION, jobs, espeak_version()]).encode()
    path = CACHE / f"keyword-corpus-{hashlib.sha256(key).hexdigest()[:16]}.npz"
    if path.exists():
        with np.load(path) as data:
            audio = data["audio"].astype(np.float32) / 32767
            offsets, seconds = data["offsets"], float(data["seconds"])
        clips = [audio[a:b] for a, b in zip(offsets[:-1], offsets[1:], strict=True)]
    else:
        start = time.perf_counter()
        clips = [trim(synthesize(*job[1:])) for job in jobs]
        seconds = time.perf_counter() - start
        path.parent.mkdir(parents=True, exist_ok=True)
        audio = np.round(np.clip(np.concatenate(clips), -1, 1) * 32767)
        offsets = np.cumsum([0] + [len(clip) for clip in clips])
        np.savez(path, audio=audio.astype(np.int16), offsets=offsets, seconds=seconds)
        clips = [(c * 32767).round().clip(-32767, 32767) / 32767 for c in clips]
        clips = [c.astype(np.float32) for c in clips]
    return clips, np.array([job[0] for job in jobs]), seconds


def run_batches(function, clips, batch_size=64) -> torch.Tensor:
    """``function(prepared batch)`` over length-sorted batches, in clip order."""
    order = np.argsort([len(c) for c in clips])
    outputs = [None] * len(clips)
    with torch.inference_mode():
        for start in range(0, len(clips), batch_size):
            index = order[start : start + batch_size]
            result = function(PREPROCESSING([clips[i] for i in index]))
            for row, i in enumerate(index):
                outputs[i] = result[row]
    return torch.stack(outputs)


def embed(model, clips) -> np.ndarray:
    """Frozen ``pool`` embeddings (every stage but the classifier)."""
    model.eval()
    stages = [child for name, child in model.named_children() if name != "fc"]
    return run_batches(torch.nn.Sequential(*stages), clips).numpy()


def accuracy(model, clips, labels) -> float:
    model.eval()
    predicted = run_batches(lambda batch: model(batch).argmax(1), clips).numpy()
    return float((predicted == labels).mean())


def mfcc_statistics(clips) -> np.ndarray:
    """Mean and std over real frames of 20 MFCCs (DCT of the model's log-mel)."""

    def features(batch):
        mel = mel_spectrogram(
            batch["waveform"],
            _keyword_cnn.SAMPLE_RATE,
            n_fft=_keyword_cnn.N_FFT,
            hop_length=_keyword_cnn.HOP,
            n_mels=_keyword_cnn.N_MELS,
        )
        mfcc = torch.from_numpy(dct(np.log(mel.numpy() + 1e-6), norm="ortho")[..., :20])
        mask = frame_mask(batch["attention_mask"], _keyword_cnn.HOP)[..., None]
        count = mask.sum(1)
        mean = (mfcc * mask).sum(1) / count
        std = (((mfcc - mean[:, None]) ** 2 * mask).sum(1) / count).sqrt()
        return torch.cat([mean, std], dim=1)

    return run_batches(features, clips).numpy()


def transfer_check(model, seeds=(0, 1, 2)) -> dict:
    """Few-shot accuracy on the ten command words said by held-out voices.

    The benchmarks' ``synthetic_word_task``: ``shots`` clips per word drawn from
    the pool voices fit a StandardScaler + LogisticRegression, scored on the
    clips of the other held-out voices, clean and through ``telephone`` at
    10 dB SNR (``_telephone`` keys); mean over ``seeds``. The same on MFCC
    statistics is the baseline.
    """
    scores = {}
    for suffix, snr_db in (("", None), ("_telephone", 10.0)):
        task = synthetic_word_task(snr_db=snr_db)
        features = {
            "keyword_cnn": (embed(model, task.X_pool), embed(model, task.X_test)),
            "mfcc_stats": (
                mfcc_statistics(task.X_pool),
                mfcc_statistics(task.X_test),
            ),
        }
        for name, (pool, test) in features.items():
            for shots in (2, 10):
                accuracies = []
                for seed in seeds:
                    chosen = few_shot(task.y_pool, shots, seed)
                    classifier = make_pipeline(
                        StandardScaler(), LogisticRegression(max_iter=2000)
                    )
                    classifier.fit(pool[chosen], task.y_pool[chosen])
                    accuracies.append(classifier.score(test, task.y_test))
                key = f"{name}_{shots}_per_word{suffix}"
                scores[key] = round(float(np.mean(accuracies)), 4)
    scores["pool_clips"], scores["test_clips"] = len(task.y_pool), len(task.y_test)
    return scores


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--per-word", type=int, default=24)
    parser.add_argument("--epochs", type=int, default=10)
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--lr", type=float, default=4e-3)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--float16", action="store_true")
    parser.add_argument("--no-save", action="store_true", help="only train, evaluate")
    args = parser.parse_args()
    if len(VOCABULARY) != _keyword_cnn.N_WORDS:
        parser.error(
            f"The vocabulary has {len(VOCABULARY)} words; set N_WORDS in "
            "sktransfer/backbones/_keyword_cnn.py to that (the classifier width)."
        )
    torch.set_num_threads(1)

    start_time = time.perf_counter()
    clips, labels, synthesis_seconds = corpus(
        VOCABULARY, PRETRAIN_VOICES, args.per_word, args.seed
    )
    held_clips, held_labels, held_seconds = corpus(
        VOCABULARY, HELDOUT_VOICES, 3, args.seed + 1
    )
    seconds = np.array([len(c) for c in clips]) / _keyword_cnn.SAMPLE_RATE
    print(
        f"corpus: {len(clips)} clips, {len(held_clips)} held out "
        f"(synthesis {synthesis_seconds + held_seconds:.0f}s); durations "
        f"{np.percentile(seconds, [0, 50, 99, 100]).round(2)}s",
        flush=True,
    )

    def report(epoch: int, model: torch.nn.Module, loss: float) -> None:
        elapsed = time.perf_counter() - start_time
        print(f"epoch {epoch}: loss {loss:.3f} ({elapsed:.0f}s)", flush=True)

    train_start = time.perf_counter()
    model = train_keyword_cnn(
        [torch.from_numpy(c) for c in clips],
        torch.from_numpy(labels),
        n_classes=len(VOCABULARY),
        epochs=args.epochs,
        seed=args.seed,
        lr=args.lr,
        batch_size=args.batch_size,
        on_epoch=report,
    )
    train_seconds = time.perf_counter() - train_start
    dtype = torch.float16 if args.float16 else torch.float32
    state = {
        key: (value.to(dtype) if value.is_floating_point() else value).contiguous()
        for key, value in model.state_dict().items()
    }
    model.load_state_dict({key: value.float() for key, value in state.items()})
    source_accuracy = accuracy(model, held_clips, held_labels)
    print(f"held-out voices: accuracy {source_accuracy:.4f}", flush=True)
    transfer = transfer_check(model)
    print(f"transfer check: {transfer}", flush=True)
    if args.no_save:
        return

    weights_path = OUT / "keyword_cnn.safetensors"
    save_file(state, str(weights_path))
    sha256 = hashlib.sha256(weights_path.read_bytes()).hexdigest()
    widths = "-".join(str(w) for w in _keyword_cnn.WIDTHS)
    metadata = {
        "architecture": (
            f"log-mel CNN ({_keyword_cnn.N_MELS} mels, n_fft {_keyword_cnn.N_FFT}, "
            f"hop {_keyword_cnn.HOP} at 16 kHz): stem + 4 masked conv3x3-BN-ReLU "
            f"blocks, widths {widths}, 2x2 max pooling (frequency only in block4), "
            "masked mean+max over time"
        ),
        "data": (
            f"{len(VOCABULARY)} English words x {args.per_word} clips synthesised "
            f"by espeak-ng, each by a random one of {len(PRETRAIN_VOICES)} voices "
            "(benchmarks/_speech_data.py PRETRAIN_VOICES), rate "
            f"{RATES[0]}-{RATES[1]} wpm, pitch {PITCHES[0]}-{PITCHES[1]}, silence "
            "trimmed"
        ),
        "recipe": (
            f"AdamW lr={args.lr} weight_decay=5e-4, OneCycle, {args.epochs} epochs, "
            f"batch {args.batch_size}, label smoothing 0.1, head dropout 0.2; 1 s "
            "windows: speed x0.88-1.12 (resampling), random offset, gain -18..+6 "
            "dB, coloured noise at 0-30 dB SNR (p=0.8), band limits (high-pass "
            f"50-400 Hz, low-pass 3-7.5 kHz, p=0.5); seed {args.seed}"
        ),
        "vocabulary": VOCABULARY,
        "excluded_words": (
            "Speech Commands words, digits, letter names, NATO alphabet and their "
            "homophones (see PRETRAIN_VOCABULARY)"
        ),
        "pretrain_voices": list(PRETRAIN_VOICES),
        "heldout_voices": list(HELDOUT_VOICES),
        "n_clips": len(clips),
        "heldout_voice_accuracy": round(source_accuracy, 4),
        "heldout_clips": len(held_clips),
        "transfer_check": {
            "task": (
                "benchmarks synthetic_word_task: 10 command words, pool and test "
                "by different held-out voices, test clean or through telephone() "
                "at 10 dB SNR; StandardScaler + LogisticRegression, mean of 3 "
                "seeds"
            ),
            **transfer,
        },
        "synthesis_seconds": round(synthesis_seconds + held_seconds),
        "train_seconds": round(train_seconds),
        "threads": 1,
        "dtype": str(dtype).removeprefix("torch."),
        "espeak_ng": espeak_version(),
        "torch": torch.__version__,
        "sha256": sha256,
        "reproduce": "python scripts/train_keyword_backbone.py"
        + (" --float16" if args.float16 else ""),
    }
    (OUT / "keyword_cnn.json").write_text(json.dumps(metadata, indent=2) + "\n")
    print(json.dumps({k: v for k, v in metadata.items() if k != "vocabulary"}))


if __name__ == "__main__":
    main()
