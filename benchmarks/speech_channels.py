"""Do speaker embeddings hold over recording channels they were not made for?

Hypothesis
----------
``"voice_encoder_phone"`` was distilled from GE2E (``"voice_encoder"``) to embed
a voice heard through a random telephone-like channel where GE2E embeds it
clean (band-pass with high-pass 200-400 Hz and low-pass 3-3.8 kHz, white noise
at 5-30 dB SNR, 8-bit mu-law; ``scripts/train_voice_encoder_phone.py``). The
``speaker`` task of ``speech_few_shot`` tests it with one channel inside those
ranges. If what it learnt is robustness rather than that channel, it should
also beat GE2E on channels outside them (another codec, a reverberant room,
which it never heard), stay level on clean speech, and this benchmark says
where it does not.

Task: ``speech_few_shot``'s ``speaker`` task (seven professional voices of
Debian's Asterisk prompts, clean enrolment, other sentences at test), with its
test clips passed through each of these channels instead of only the first:

- ``telephone``: the benchmark's own (300-3400 Hz, 10 dB SNR, mu-law);
- ``clean``: no channel;
- ``gsm``: 300-3400 Hz, 20 dB SNR, the GSM 6.10 codec (not in training);
- ``room``: reverberation with RT60 0.5 s and full-band noise at 20 dB SNR
  (``_speech_data.room``; no reverberation in training);
- ``narrow_noisy``: 500-3000 Hz, 5 dB SNR, mu-law (a band narrower and noise
  stronger than any in training).

Rows: MFCC statistics + StandardScaler + LogisticRegression (the classical
baseline of ``speech_few_shot``) and, for each GE2E variant, its
``PretrainedFeatureExtractor`` embeddings + LogisticRegression; k = 2, 5 and 20
enrolment clips per speaker, 3 seeds (the same draws as ``speech_few_shot``).

Run: ``./dev bench speech_channels`` (about 2 minutes on 2 cores once the
Asterisk packages are cached; the first run downloads them, see
``_speech_data.py``). Results: ``benchmarks/results/speech_channels.{json,md}``.
"""

from __future__ import annotations

import functools
import sys
import time
import warnings
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import RESULTS_DIR, load_average, markdown_table, write_results
from _speech_baselines import (
    MFCC_ROW,
    embedding_probe,
    embedding_row,
    mfcc_classifier,
    mfcc_statistics,
)
from _speech_data import (
    SAMPLE_RATE,
    few_shot,
    no_channel,
    room,
    speaker_id_task,
    telephone,
)

from sktransfer import PretrainedFeatureExtractor

NAME = "speech_channels"
BACKBONES = ("voice_encoder", "voice_encoder_phone")
KS = (2, 5, 20)
SEEDS = (0, 1, 2)
CHANNELS = {
    "telephone": functools.partial(telephone, snr_db=10.0),
    "clean": no_channel,
    "gsm": functools.partial(telephone, snr_db=20.0, codec="gsm"),
    "room": room,
    "narrow_noisy": functools.partial(telephone, snr_db=5.0, band=(500.0, 3000.0)),
}


def main() -> None:
    warnings.filterwarnings("ignore", category=FutureWarning)
    load = load_average()
    task = speaker_id_task(channel=no_channel)
    clean = task.X_test
    extractors = {
        b: PretrainedFeatureExtractor(b, device="cpu").fit(task.X_pool[:2])
        for b in BACKBONES
    }
    # Each row: how it turns clips into features, and the classifier on them.
    rows = {MFCC_ROW: (mfcc_statistics, mfcc_classifier)}
    for b in BACKBONES:
        rows[embedding_row(b)] = (extractors[b].transform, embedding_probe)
    pool = {row: features(task.X_pool) for row, (features, _) in rows.items()}
    records = []
    for number, (name, channel) in enumerate(CHANNELS.items()):
        start = time.perf_counter()
        rng = np.random.default_rng([SEEDS[0], number])
        heard = [channel(x, SAMPLE_RATE, rng) for x in clean]
        test = {row: features(heard) for row, (features, _) in rows.items()}
        for k in KS:
            for seed in SEEDS:
                train = few_shot(task.y_pool, k, seed)
                for row, (_, classifier) in rows.items():
                    model = classifier().fit(pool[row][train], task.y_pool[train])
                    accuracy = model.score(test[row], task.y_test)
                    records.append(
                        dict(
                            channel=name,
                            k=k,
                            seed=seed,
                            row=row,
                            accuracy=round(float(accuracy), 4),
                        )
                    )
        print(f"{name}: {time.perf_counter() - start:.0f} s", flush=True)
    summary = summarise(records)
    write_results(
        NAME,
        {
            "loadavg_at_start": load,
            "task": task.meta["task"],
            "classes": task.meta["classes"],
            "test_clips": len(clean),
            "channels": {name: repr(channel) for name, channel in CHANNELS.items()},
            "summary": summary,
            "records": records,
        },
    )
    (RESULTS_DIR / f"{NAME}.md").write_text(markdown(summary) + "\n")
    print(markdown(summary))


def summarise(records: list[dict]) -> list[dict]:
    """Mean accuracy per channel and k, a column per row, and the gain over GE2E."""
    cells: dict[tuple, dict[str, list[float]]] = {}
    for r in records:
        cell = cells.setdefault((r["channel"], r["k"]), {})
        cell.setdefault(r["row"], []).append(r["accuracy"])
    summary = []
    for (channel, k), rows in cells.items():
        means = {row: round(float(np.mean(v)), 3) for row, v in rows.items()}
        gain = means[embedding_row(BACKBONES[1])] - means[embedding_row(BACKBONES[0])]
        summary.append(
            {"test channel": channel, "k": k, **means, "phone - GE2E": round(gain, 3)}
        )
    return summary


def markdown(summary: list[dict]) -> str:
    shown = [
        {key: f"{v:.3f}" if isinstance(v, float) else v for key, v in row.items()}
        for row in summary
    ]
    return (
        "Speaker identification, clean enrolment, test clips through each "
        f"channel: accuracy, mean of {len(SEEDS)} seeds (generated by "
        f"`./dev bench {NAME}`).\n\n" + markdown_table(shown, list(summary[0]))
    )


if __name__ == "__main__":
    main()
