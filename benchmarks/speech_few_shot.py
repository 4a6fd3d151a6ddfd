"""Few-shot speech tasks, SUPERB-style: frozen encoders + a light head, and fine-tuning.

Hypotheses, on real recordings (Debian's Asterisk prompts: seven professional
speakers, five languages, see ``_speech_data.py``), k = 2, 5 and 20 clips per
class, 3 seeds:

1. on speaker identification, the best frozen embeddings + LR (GE2E:
   ``voice_encoder``, or ``voice_encoder_phone``, distilled from it for telephone
   lines) beat MFCC statistics + LR by >= 10 points at 2 clips per speaker;
2. on spoken words, the best library row beats MFCC + LR and a log-mel CNN
   trained from scratch at every k;
3. fine-tuning is at least as accurate as frozen embeddings + LR at 20 clips per
   class.

Tasks:

- ``speaker``: which of the 7 speakers is talking. Enrolment clips are clean
  prompts; test clips are other prompts (other sentences) heard over a
  telephone channel (300-3400 Hz band-pass, noise at 10 dB SNR, 8-bit mu-law).
- ``digits``: which digit (zero to nine) is spoken. Training clips are
  synthesised by espeak-ng in voices held out from the ``keyword_cnn``
  pretraining (other accents and voice variants); test clips are the real
  recorded digits of the one English speaker, clean and over the telephone.
  The digit words are not in the backbone's pretraining vocabulary.
- ``language``: es, fr or it, from a speaker of each language; tested on
  another speaker of the same language (other sentences, other recording chain).

Rows: MFCC statistics (20 MFCCs and deltas, mean and std over frames, librosa)
+ StandardScaler + LogisticRegression; a small log-mel CNN trained from scratch by
a hand-written loop (``_speech_baselines.py``, 300 Adam steps); for each audio
backbone, frozen embeddings (``PretrainedFeatureExtractor`` defaults) +
LogisticRegression; ``FineTuneClassifier`` defaults (``freeze="auto"``, clips
augmented whenever every stage trains) and
``freeze=3`` (the last stages and the head train, on cached outputs) and
``freeze="all"`` (the exact probe), at 20 clips per class (``--ft-ks``: fine-tuning
the GE2E LSTMs takes minutes per fit on a CPU, so ``voice_encoder`` and
``voice_encoder_phone`` are fine-tuned on the speaker task only).

Run: ``./dev bench speech_few_shot`` (one command: the three tasks, k = 2, 5,
20, 3 seeds, fine-tuning at k = 20; the first run downloads the Debian packages,
about 120 MB, and synthesises the training words with espeak-ng, both cached under
``~/.cache/sktransfer``). ``--tasks``, ``--ks``, ``--seeds``, ``--backbones``
and ``--freeze`` shorten a run; ``--augment auto false`` adds fine-tuning rows
without the default augmentation of audio. Writes ``results/<--name>.json`` and
``.md``.
"""

from __future__ import annotations

import argparse
import time
import warnings

import numpy as np
import torch
from _common import (
    RESULTS_DIR,
    chosen_freeze,
    command_line,
    few_shot_table,
    freeze_value,
    load_average,
    write_results,
)
from _speech_baselines import (
    MFCC_ROW,
    embedding_probe,
    embedding_row,
    mfcc_classifier,
    mfcc_statistics,
    train_scratch_cnn,
)
from _speech_data import (
    few_shot,
    language_id_task,
    speaker_id_task,
    spoken_word_task,
)

from sktransfer import FineTuneClassifier, PretrainedFeatureExtractor, list_backbones

TASKS = {
    "speaker": speaker_id_task,
    "digits": lambda: spoken_word_task(word_set="digits"),
    "language": language_id_task,
}
DEFAULT_FREEZE = FineTuneClassifier().freeze
DEFAULT_AUGMENT = FineTuneClassifier().augment
AUGMENT_VALUES = {"auto": "auto", "true": True, "false": False}
# Fine-tuning the GE2E LSTMs takes minutes per fit on a CPU: its fine-tuning rows
# run on the task it was made for only. Other backbones fine-tune on every task.
FINE_TUNED_ON = {"voice_encoder": ("speaker",), "voice_encoder_phone": ("speaker",)}


def _record(rows, task, method, k, seed, accuracy, seconds, **more):
    rows.append(
        {
            "task": task,
            "method": method,
            "per_class": k,
            "seed": seed,
            "accuracy": round(float(accuracy), 4),
            "fit_seconds": round(seconds, 2),
            **more,
        }
    )
    print(f"{task:9s} k={k:3d} seed={seed} {method:44s} {accuracy:.3f}", flush=True)


def _fine_tune_label(backbone: str, freeze, augment=DEFAULT_AUGMENT) -> str:
    if augment != DEFAULT_AUGMENT:
        return f"{backbone}: FineTune freeze={freeze!r}, augment={augment!r}"
    if freeze == DEFAULT_FREEZE:
        return f"{backbone}: FineTune defaults (freeze={freeze!r})"
    return f"{backbone}: FineTune freeze={freeze!r}"


def run_task(task: str, args, rows: list[dict]) -> None:
    started = time.perf_counter()
    data = TASKS[task]()
    pool_x, pool_y, test_x, test_y, _ = data
    classes = np.unique(pool_y)
    print(
        f"\n## {task}: {len(classes)} classes, pool {len(pool_x)}, test "
        f"{len(test_x)} (built in {time.perf_counter() - started:.0f} s)",
        flush=True,
    )
    # What does not depend on k or the seed is computed once per task.
    pool_mfcc, test_mfcc = mfcc_statistics(pool_x), mfcc_statistics(test_x)
    extractors, pool_embeddings, test_embeddings = {}, {}, {}
    for backbone in args.backbones:
        extractor = PretrainedFeatureExtractor(backbone, device="cpu").fit(pool_x[:2])
        extractors[backbone] = extractor
        pool_embeddings[backbone] = extractor.transform(pool_x)
        test_embeddings[backbone] = extractor.transform(test_x)
    for k in args.ks:
        for seed in args.seeds:
            train = few_shot(pool_y, k, seed)
            train_x = [pool_x[i] for i in train]
            train_y = pool_y[train]

            def record(method, accuracy, seconds, k=k, seed=seed, **more):
                _record(rows, task, method, k, seed, accuracy, seconds, **more)

            start = time.perf_counter()
            mfcc = mfcc_classifier()
            mfcc.fit(pool_mfcc[train], train_y)
            accuracy = mfcc.score(test_mfcc, test_y)
            record(MFCC_ROW, accuracy, time.perf_counter() - start)
            start = time.perf_counter()
            predict = train_scratch_cnn(train_x, train_y, seed=seed)
            seconds = time.perf_counter() - start
            record(
                "log-mel CNN from scratch", np.mean(predict(test_x) == test_y), seconds
            )
            for backbone in args.backbones:
                start = time.perf_counter()
                probe = embedding_probe()
                probe.fit(pool_embeddings[backbone][train], train_y)
                accuracy = probe.score(test_embeddings[backbone], test_y)
                seconds = time.perf_counter() - start
                record(embedding_row(backbone), accuracy, seconds)
                tuned = k in args.ft_ks and task in FINE_TUNED_ON.get(backbone, TASKS)
                settings = [(f, a) for f in args.freeze for a in args.augment]
                for freeze, augment in settings if tuned else ():
                    start = time.perf_counter()
                    clf = FineTuneClassifier(
                        backbone,
                        freeze=freeze,
                        augment=augment,
                        device="cpu",
                        random_state=seed,
                    ).fit(train_x, train_y)
                    seconds = time.perf_counter() - start
                    accuracy = np.mean(clf.predict(test_x) == test_y)
                    label = _fine_tune_label(backbone, freeze, augment)
                    record(label, accuracy, seconds, **chosen_freeze(clf))


def main() -> None:
    audio = list_backbones(modality="audio")
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tasks", nargs="*", default=list(TASKS), choices=list(TASKS))
    parser.add_argument("--ks", type=int, nargs="*", default=[2, 5, 20])
    parser.add_argument("--seeds", type=int, nargs="*", default=[0, 1, 2])
    parser.add_argument("--backbones", nargs="*", default=audio, choices=audio)
    parser.add_argument(
        "--freeze", type=freeze_value, nargs="*", default=[DEFAULT_FREEZE, 3, "all"]
    )
    parser.add_argument(
        "--augment",
        type=AUGMENT_VALUES.__getitem__,
        nargs="*",
        default=[DEFAULT_AUGMENT],
        help="augment values of the fine-tuning rows (auto, true, false)",
    )
    parser.add_argument(
        "--ft-ks", type=int, nargs="*", default=[20], help="k with fine-tuning rows"
    )
    parser.add_argument("--name", default="speech_few_shot", help="results file name")
    args = parser.parse_args()
    warnings.filterwarnings("ignore", category=FutureWarning)
    started = time.perf_counter()
    load_at_start = load_average()
    rows: list[dict] = []
    for task in args.tasks:
        run_task(task, args, rows)
    markdown = few_shot_table(rows)
    print("\n" + markdown)
    wall = round(time.perf_counter() - started, 1)
    command = command_line()
    write_results(
        args.name,
        {
            "data": "Debian asterisk-core-sounds-* / asterisk-prompt-* recordings; "
            "espeak-ng words (benchmarks/_speech_data.py)",
            "torch_threads": torch.get_num_threads(),
            "loadavg_at_start": load_at_start,
            "wall_seconds": wall,
            "rows": rows,
        },
    )
    header = (
        f"Few-shot speech tasks (accuracy). Generated by `{command.strip()}` in "
        f"{wall:.0f} s with {torch.get_num_threads()} torch threads.\n\n"
    )
    (RESULTS_DIR / f"{args.name}.md").write_text(header + markdown)


if __name__ == "__main__":
    main()
