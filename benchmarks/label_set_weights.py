"""Should multi-label fine-tuning weigh each label's 1s and 0s by default?

Hypothesis
----------
Trained unweighted, one sigmoid per label predicts a rare label seldom above
the 0.5 threshold of ``predict``, so F1 suffers, most of all macro-F1.
``class_weight="balanced"`` (each label's 1s and 0s weighed by their
frequency) should give better micro- and macro-F1 on multi-label tasks that
no default was chosen on, whatever the modality, and the default
(``class_weight="auto"``, "balanced" for label sets) should then beat frozen
embeddings with a cross-validated one-vs-rest logistic regression, which
chooses its class weights itself.

Tasks (neither is in ``beyond_one_label``), n = 100 and 400 training rows,
every label on and off in each training set, 3 seeds, fixed test sets:

``debtags_facets``
    Debian package descriptions; predict their debtags of the facets
    ``beyond_one_label`` leaves out (interface, implemented-in, uitoolkit;
    the 15 most frequent, 1.75 per text), with ``"all-minilm-l6-v2"``
    (``max_length=64``); 1000 test texts.
``fashion_mosaics``
    2 x 2 mosaics of Fashion-MNIST items (each quarter filled with
    probability 0.5); predict which of the 10 classes appear (about 1.9 per
    mosaic), with the shipped ``fmnist_resnet``. Training mosaics come from
    the training split, the 1000 test mosaics from the test split.

Rows: frozen embeddings + one-vs-rest logistic regression (standardised, C
and class weights by 3-fold CV on micro-F1: ``beyond_one_label``'s
baseline); ``FineTuneClassifier`` with its defaults; the same with
``class_weight=None`` (unweighted, the default before ``"auto"``). Metrics:
micro- and macro-F1 and labels predicted per row.

Run: ``./dev bench label_set_weights`` (about half an hour on 2 cores;
``--tasks fashion_mosaics`` takes a few minutes). Results:
``benchmarks/results/label_set_weights.{json,md}``.
"""

from __future__ import annotations

import argparse
import time
import warnings

import numpy as np
from _common import (
    RESULTS_DIR,
    command_line,
    load_average,
    markdown_table,
    write_results,
)
from _target_data import (
    DEBTAGS_TEST,
    HELD_OUT_FACETS,
    every_label_varies,
    fashion_mosaics,
    held_out_split,
    load_debtags,
    multilabel_draw,
)
from beyond_one_label import MAX_LENGTH, TEXT_BACKBONE, ovr_lr_cv, score

from sktransfer import FineTuneClassifier, PretrainedFeatureExtractor

NAME = "label_set_weights"
SIZES = (100, 400)
MOSAIC_TEST = 1000
ROWS = (
    "frozen + OvR LR (CV)",
    "FineTune defaults",
    "FineTune class_weight=None",
)


def debtags_facets():
    """Backbone, extractor params, (n, seed) -> training rows, test rows."""
    texts, Y, labels, _ = load_debtags(HELD_OUT_FACETS, n_labels=15)
    texts = np.array(texts, dtype=object)
    test, pool = held_out_split(len(texts), DEBTAGS_TEST)

    def train(n, seed):
        rows, _ = multilabel_draw(Y, pool, n, seed)
        return list(texts[rows]), Y[rows]

    params = {"max_length": MAX_LENGTH}
    return TEXT_BACKBONE, params, train, (list(texts[test]), Y[test]), labels


def mosaics():
    test = fashion_mosaics(MOSAIC_TEST, np.random.default_rng(123), "test")

    def train(n, seed):
        rng = np.random.default_rng([seed, n])
        for _ in range(100):  # every class on and off, as multilabel_draw
            X, Y = fashion_mosaics(n, rng, "train")
            if every_label_varies(Y):
                return X, Y
        raise RuntimeError(f"no {n} mosaics have every class on and off")

    return "fmnist_resnet", {}, train, test, [f"class {c}" for c in range(10)]


TASKS = {"debtags_facets": debtags_facets, "fashion_mosaics": mosaics}


def run_task(name: str, seeds, records: list[dict]) -> dict:
    backbone, params, train, (X_test, Y_test), labels = TASKS[name]()
    extractor = PretrainedFeatureExtractor(backbone, device="cpu", **params)
    test_features = extractor.fit_transform(X_test)
    for n in SIZES:
        for seed in seeds:
            X, Y = train(n, seed)
            models = {
                ROWS[1]: {},
                ROWS[2]: {"class_weight": None},
            }
            start = time.perf_counter()
            baseline = ovr_lr_cv(seed, tfidf=False).fit(extractor.transform(X), Y)
            fits = {
                ROWS[0]: (baseline.predict(test_features), time.perf_counter() - start)
            }
            for row, extra in models.items():
                start = time.perf_counter()
                clf = FineTuneClassifier(
                    backbone, device="cpu", random_state=seed, **params, **extra
                ).fit(X, Y)
                fits[row] = (
                    clf.predict(X_test),
                    time.perf_counter() - start,
                    clf.freeze_,
                )
            for row, (predicted, seconds, *chose) in fits.items():
                record = {
                    "task": name,
                    "row": row,
                    "n": n,
                    "seed": seed,
                    **score("multilabel", Y_test, predicted),
                    "fit_seconds": round(seconds, 1),
                    "load_1min": (load_average() or [None])[0],
                }
                if chose:
                    record["freeze_chosen"] = str(chose[0])
                records.append(record)
                print(record, flush=True)
    return {
        "backbone": backbone,
        "labels": labels,
        "test_rows": len(Y_test),
        "test_labels_per_row": round(float(Y_test.sum(axis=1).mean()), 3),
    }


def summarise(records: list[dict]) -> list[dict]:
    """Mean over seeds per task, n and row; seeds where the defaults win both."""
    groups: dict[tuple, list[dict]] = {}
    for record in records:
        key = (record["task"], record["n"], record["row"])
        groups.setdefault(key, []).append(record)
    summary = []
    for (task, n, row), group in groups.items():
        entry = {"task": task, "n": n, "row": row, "seeds": len(group)}
        for key in ("micro_f1", "macro_f1", "labels_per_row", "fit_seconds"):
            entry[key] = round(float(np.mean([r[key] for r in group])), 4)
        if row == ROWS[1]:
            unweighted = {r["seed"]: r for r in groups[(task, n, ROWS[2])]}
            entry["seeds_ahead_of_unweighted_on_both"] = sum(
                r["micro_f1"] > unweighted[r["seed"]]["micro_f1"]
                and r["macro_f1"] > unweighted[r["seed"]]["macro_f1"]
                for r in group
            )
        summary.append(entry)
    return summary


COLUMNS = ("task", "n", "row", "seeds", "micro_f1", "macro_f1", "labels_per_row")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tasks", nargs="*", default=list(TASKS), choices=list(TASKS))
    parser.add_argument("--seeds", type=int, nargs="*", default=[0, 1, 2])
    args = parser.parse_args()
    warnings.filterwarnings("ignore", category=FutureWarning)
    warnings.filterwarnings("ignore", message="Label .* is present in all training")
    print(f"load {load_average()}", flush=True)
    records: list[dict] = []
    data = {task: run_task(task, args.seeds, records) for task in args.tasks}
    summary = summarise(records)
    shown = [
        {k: f"{v:.3f}" if isinstance(v, float) else v for k, v in entry.items()}
        for entry in summary
    ]
    table = markdown_table(shown, (*COLUMNS, "seeds_ahead_of_unweighted_on_both"))
    write_results(NAME, {"data": data, "summary": summary, "records": records})
    header = (
        f"Multi-label class weights. Generated by `{command_line().strip()}` "
        f"(load average at the end {load_average()}).\n\n"
    )
    (RESULTS_DIR / f"{NAME}.md").write_text(header + table + "\n")
    print(table)


if __name__ == "__main__":
    main()
