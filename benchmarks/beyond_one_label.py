"""Targets beyond one class label: image and text regression, multi-label text.

Hypotheses, on real data available offline (see ``_target_data.py``), 3 seeds:

1. ``FineTuneRegressor`` with its defaults beats ridge regression on frozen
   embeddings of the same backbone (``RidgeCV``) at every training size, and
   the pretrained backbone beats the same architecture trained from scratch;
2. with ``freeze="all"`` it is as good as frozen embeddings + ``RidgeCV``
   (it is the ridge probe, its penalty chosen by leave-one-out over
   ``logspace(-2, 4, 13)`` on the unscaled embeddings);
3. for multi-label text, ``FineTuneClassifier`` given a 0/1 indicator matrix
   beats TF-IDF + one-vs-rest logistic regression in micro-F1 at every size,
   as frozen MiniLM embeddings beat TF-IDF on single-label text. The
   baselines choose their class weights by CV; the sktransfer rows are
   shown with the defaults (``class_weight="auto"``: "balanced" for label
   sets) and with ``class_weight=None`` (unweighted, the default before
   ``"auto"``), to show what the weights do.

Tasks (targets, training sizes, fixed test sets):

``fashion_zoom``
    Fashion-MNIST images shrunk about their centre by ``s ~ U[0.5, 1]``;
    predict ``s``. n = 50, 200, 1000 images (any class); 1000 test images.
    Metrics R^2 and RMSE. Backbones: ``fmnist_resnet`` (shipped, pretrained
    on Fashion-MNIST classes at full scale) and ``efficientnet_lite0``
    (ImageNet, images upscaled to 64 px by the library).
``vader_rating``
    Movie-review sentences; predict the mean human valence rating in [-4, 4].
    n = 50, 200, 500; 600 test sentences. Metrics R^2 and RMSE.
``debtags``
    Debian package descriptions (short + long, English, from this machine's
    apt lists at benchmark time); predict 20 debtags of the facets use::,
    works-with::, field::, game::, network::, admin::, security::, sound::
    (0/1 matrix). n = 100, 400 (every label on and off in each training
    set); 1000 test packages. Metrics micro- and macro-F1.

Rows: a classical baseline (``RidgeCV`` on pixels; TF-IDF of 1-2 grams with
sublinear tf + ``RidgeCV``, or + one-vs-rest ``LogisticRegression``); frozen
embeddings (``PretrainedFeatureExtractor``, ``max_length=64`` for MiniLM),
standardised, + the same ridge or logistic regression; the sktransfer
estimator with its defaults (``freeze="auto"``) and with ``freeze="all"``; for
images also the ``fmnist_resnet`` architecture trained from scratch
(``weights=None``). The baselines get their best shot: ``RidgeCV`` chooses
alpha by efficient leave-one-out over ``logspace(-5, 6, 23)``; the logistic
regressions (liblinear) choose C in ``logspace(-4, 5, 10)`` and class weights
(none or "balanced": rare labels otherwise are never predicted) by 3-fold CV
on micro-F1. The sktransfer rows use their defaults.
Fit seconds are wall seconds of ``fit`` (frozen rows: embedding the training
set and the fit), on the shared 2-core machine; the 1-minute load average is
recorded with each row.

Cost: a MiniLM fine-tuning step (32 texts of up to 64 tokens) took 2.3 s on
the sentences and 2.8 s on the package descriptions on the shared 2 cores
(load 3.5), and ``max_epochs="auto"`` runs at least 100 steps (n = 500: 160,
n = 1000: 320). So the text tasks stop at a few hundred rows, and by default
the gradient-trained rows (FineTune defaults, from scratch) of
``vader_rating`` run at its smallest and largest size (``--finetune-sizes
all``: every size); those of the other tasks at every size (an
EfficientNet-Lite0 fit on 1000 images at 64 px is 1-2 min).

Run: ``./dev bench beyond_one_label`` (all tasks, 3 seeds; about an hour on
2 cores). ``--quick`` runs 1 seed at each task's smallest size,
every row (a few minutes); ``--tasks``, ``--seeds``, ``--sizes``,
``--finetune-sizes`` (none when given no value), ``--largest`` (each
task's largest size only), ``--rows`` (only the rows of these labels) and
``--no-finetune`` (baselines and frozen rows only) shorten a run. With two or
more seeds the summary also pairs, seed by seed, each "FineTune <backbone>
defaults" row with the frozen-embedding row of the same backbone: the mean gap
and its standard error (``paired_gaps``). The sktransfer rows are
skipped with a note where ``FineTuneRegressor`` cannot be imported or
``FineTuneClassifier`` refuses a 0/1 label matrix. Writes
``results/beyond_one_label.json`` (per-seed records and a summary) and ``.md``
(a table per task).
"""

from __future__ import annotations

import argparse
import os
import time
import warnings
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import torch
from _common import (
    RESULTS_DIR,
    command_line,
    load_average,
    markdown_table,
    write_results,
)
from _target_data import (
    DEBTAGS_TEST,
    LABEL_FACETS,
    RATING_TEST,
    ZOOM_RANGE,
    draw,
    fashion_zoom_test,
    fashion_zoom_train,
    held_out_split,
    load_debtags,
    median_words,
    multilabel_draw,
    vader_ratings,
)
from _text_data import SOURCE as VADER_SOURCE
from sklearn.feature_extraction.text import TfidfVectorizer
from sklearn.linear_model import LogisticRegression, RidgeCV
from sklearn.metrics import f1_score, mean_squared_error, r2_score
from sklearn.model_selection import GridSearchCV, KFold
from sklearn.multiclass import OneVsRestClassifier
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import FunctionTransformer, StandardScaler

from sktransfer import FineTuneClassifier, PretrainedFeatureExtractor

try:
    from sktransfer import FineTuneRegressor
except ImportError:  # being built on another branch
    FineTuneRegressor = None

NAME = "beyond_one_label"
TEXT_BACKBONE = "all-minilm-l6-v2"
MAX_LENGTH = 64
IMAGE_BACKBONES = ("fmnist_resnet", "efficientnet_lite0")
ALPHAS = np.logspace(-5, 6, 23)
CS = np.logspace(-4, 5, 10)


# Rows trained by gradient steps (the costly ones): their labels end so.
GRADIENT_TRAINED = (
    "defaults",
    "from scratch (fmnist_resnet arch.)",
    "defaults but class_weight=None",
)


class Skipped(Exception):
    """A row that cannot run with this version of sktransfer."""


@dataclass
class Task:
    name: str
    kind: str  # "regression" or "multilabel"
    sizes: tuple[int, ...]
    finetune_sizes: tuple[int, ...]  # sizes of the GRADIENT_TRAINED rows
    load: Callable


# ------------------------------------------------------------------ models
def ridge(scale: bool):
    model = RidgeCV(alphas=ALPHAS)
    return make_pipeline(StandardScaler(), model) if scale else model


def tfidf_vectorizer():
    return TfidfVectorizer(ngram_range=(1, 2), sublinear_tf=True)


def ovr_lr_cv(seed: int, *, tfidf: bool):
    """One-vs-rest logistic regression; C and class weights by 3-fold CV."""
    steps = [OneVsRestClassifier(LogisticRegression(solver="liblinear"))]
    if tfidf:
        steps.insert(0, tfidf_vectorizer())
    else:
        steps.insert(0, StandardScaler())
    pipeline = make_pipeline(*steps)
    return GridSearchCV(
        pipeline,
        {
            "onevsrestclassifier__estimator__C": CS,
            "onevsrestclassifier__estimator__class_weight": [None, "balanced"],
        },
        scoring="f1_micro",
        cv=KFold(3, shuffle=True, random_state=seed),
    )


def regressor(backbone: str, seed: int, **params):
    if FineTuneRegressor is None:
        raise Skipped("FineTuneRegressor cannot be imported from sktransfer")
    return FineTuneRegressor(backbone, device="cpu", random_state=seed, **params)


def penalty(model) -> dict:
    """The alpha or C a CV chose (to see that it is not at an end of the grid)."""
    if isinstance(model, GridSearchCV):
        best = model.best_params_
        return {
            "C": float(best["onevsrestclassifier__estimator__C"]),
            "class_weight": best["onevsrestclassifier__estimator__class_weight"],
        }
    last = model[-1] if hasattr(model, "steps") else model
    return {"alpha": float(last.alpha_)} if hasattr(last, "alpha_") else {}


def what_auto_chose(model) -> dict:
    if getattr(model, "freeze", None) != "auto" or not hasattr(model, "freeze_"):
        return {}
    return {"chosen_freeze": model.freeze_}


# -------------------------------------------------------------------- rows
class Embedder:
    """Frozen embeddings of one backbone: the test set once, training per fit."""

    def __init__(self, backbone: str, X_test, **params):
        self.extractor = PretrainedFeatureExtractor(backbone, device="cpu", **params)
        start = time.perf_counter()
        self.test = self.extractor.fit_transform(X_test)
        self.test_seconds = time.perf_counter() - start


class Baseline:
    """A model fitted on the training inputs and scored on the test inputs."""

    def __init__(self, model):
        self.model = model

    def fit(self, X, y):
        self.model.fit(X, y)
        return self

    def predict_test(self, X_test):
        return np.asarray(self.model.predict(X_test))


class Estimator(Baseline):
    """An sktransfer estimator; a ValueError from ``fit`` marks it unsupported."""

    def fit(self, X, y):
        try:
            return super().fit(X, y)
        except ValueError as error:  # e.g. a 0/1 label matrix refused
            raise Skipped(f"{type(self.model).__name__}.fit: {error}") from error


class FrozenModel(Baseline):
    """``model`` on frozen embeddings (the test set's computed once)."""

    def __init__(self, embedder: Embedder, model):
        super().__init__(model)
        self.embedder = embedder

    def fit(self, X, y):
        return super().fit(self.embedder.extractor.transform(X), y)

    def predict_test(self, X_test):
        return super().predict_test(self.embedder.test)


def flat_pixels(X):
    return X.reshape(len(X), -1) / 255


def image_rows(args, X_test) -> dict[str, Callable]:
    """Row label -> ``seed -> model`` (``fit``, ``predict_test``) for images."""
    embedders = {name: Embedder(name, X_test) for name in IMAGE_BACKBONES}
    for name, embedder in embedders.items():
        print(
            f"  frozen {name}: {len(X_test)} test images in "
            f"{embedder.test_seconds:.1f} s",
            flush=True,
        )
    rows = {
        "ridge on pixels": lambda seed: Baseline(
            make_pipeline(FunctionTransformer(flat_pixels), ridge(scale=False))
        )
    }
    for name, embedder in embedders.items():
        rows[f"{name} frozen + RidgeCV"] = lambda seed, e=embedder: FrozenModel(
            e, ridge(scale=True)
        )
    if not args.finetune:
        return rows
    for name in IMAGE_BACKBONES:
        rows[f"FineTune {name} defaults"] = lambda seed, b=name: Estimator(
            regressor(b, seed)
        )
        rows[f"FineTune {name} freeze='all'"] = lambda seed, b=name: Estimator(
            regressor(b, seed, freeze="all")
        )
    rows["from scratch (fmnist_resnet arch.)"] = lambda seed: Estimator(
        regressor("fmnist_resnet", seed, weights=None, freeze=0)
    )
    return rows


def text_rows(args, task: Task, X_test, finetune) -> dict[str, Callable]:
    """Row label -> ``seed -> model`` for text; ``finetune(seed, **params)``."""
    embedder = Embedder(TEXT_BACKBONE, X_test, max_length=MAX_LENGTH)
    print(
        f"  frozen {TEXT_BACKBONE}: {len(X_test)} test texts in "
        f"{embedder.test_seconds:.1f} s",
        flush=True,
    )
    if task.kind == "regression":
        rows = {
            "TF-IDF + RidgeCV": lambda seed: Baseline(
                make_pipeline(tfidf_vectorizer(), ridge(scale=False))
            ),
            "MiniLM frozen + RidgeCV": lambda seed: FrozenModel(
                embedder, ridge(scale=True)
            ),
        }
    else:
        rows = {
            "TF-IDF + OvR LR (CV)": lambda seed: Baseline(ovr_lr_cv(seed, tfidf=True)),
            "MiniLM frozen + OvR LR (CV)": lambda seed: FrozenModel(
                embedder, ovr_lr_cv(seed, tfidf=False)
            ),
        }
    if args.finetune:
        rows["FineTune MiniLM defaults"] = lambda seed: Estimator(finetune(seed))
        rows["FineTune MiniLM freeze='all'"] = lambda seed: Estimator(
            finetune(seed, freeze="all")
        )
    if args.finetune and task.kind == "multilabel":
        # The defaults weigh each label's 1s and 0s ("balanced"); unweighted,
        # rare labels are seldom above the 0.5 threshold.
        unweighted = {"class_weight": None}
        rows["FineTune MiniLM defaults but class_weight=None"] = lambda seed: Estimator(
            finetune(seed, **unweighted)
        )
        rows["FineTune MiniLM freeze='all', class_weight=None"] = lambda seed: (
            Estimator(finetune(seed, freeze="all", **unweighted))
        )
    return rows


# ------------------------------------------------------------------- tasks
def score(kind: str, y_true, y_pred) -> dict:
    if kind == "regression":
        y_pred = np.asarray(y_pred, dtype=float).reshape(np.shape(y_true))
        return {
            "r2": round(float(r2_score(y_true, y_pred)), 4),
            "rmse": round(float(np.sqrt(mean_squared_error(y_true, y_pred))), 4),
        }
    y_pred = np.asarray(y_pred)
    if y_pred.shape != y_true.shape:
        raise Skipped(f"predict returned shape {y_pred.shape}, not {y_true.shape}")
    return {
        "micro_f1": round(float(f1_score(y_true, y_pred, average="micro")), 4),
        "macro_f1": round(
            float(f1_score(y_true, y_pred, average="macro", zero_division=0)), 4
        ),
        "labels_per_row": round(float(y_pred.sum(axis=1).mean()), 3),
    }


def run_rows(task: Task, rows, splits, X_test, y_test, args, records, skipped):
    """Fit every row on every ``(n, seed, X, y, extra)`` of ``splits``."""
    if args.rows:
        rows = {label: make for label, make in rows.items() if label in args.rows}
        if not rows:
            raise SystemExit(
                f"--rows: none of {args.rows} is a row of {task.name}; drop the "
                f"task from --tasks or name one of its rows."
            )
    for n, seed, X, y, extra in splits:
        for label, make in rows.items():
            if f"{task.name}: {label}" in skipped:
                continue
            if label.endswith(GRADIENT_TRAINED) and n not in task.finetune_sizes:
                continue
            try:
                model = make(seed)
                start = time.perf_counter()
                model.fit(X, y)
                seconds = time.perf_counter() - start
                metrics = score(task.kind, y_test, model.predict_test(X_test))
            except Skipped as reason:
                skipped[f"{task.name}: {label}"] = str(reason)
                print(f"  skipped {label!r}: {reason}", flush=True)
                continue
            record = {
                "task": task.name,
                "row": label,
                "n": n,
                "seed": seed,
                **metrics,
                "fit_seconds": round(seconds, 2),
                "load_1min": (load_average() or [None])[0],
                **penalty(model.model),
                **what_auto_chose(model.model),
                **extra,
            }
            records.append(record)
            shown = "  ".join(
                f"{key}={record[key]}"
                for key in ("r2", "rmse", "micro_f1", "macro_f1")
                if key in record
            )
            print(
                f"{task.name:12s} n={n:4d} seed={seed} {label:38s} {shown}  "
                f"{seconds:6.1f} s",
                flush=True,
            )


def fashion_zoom(task: Task, args, records, skipped) -> dict:
    X_test, y_test = fashion_zoom_test()
    rows = image_rows(args, X_test)
    splits = (
        (n, seed, *fashion_zoom_train(n, seed), {})
        for n in task.sizes
        for seed in args.seeds
    )
    run_rows(task, rows, splits, X_test, y_test, args, records, skipped)
    return {
        "test_images": len(X_test),
        "classes": "all 10 Fashion-MNIST classes",
        "zoom_range": ZOOM_RANGE,
        "target_std_test": round(float(y_test.std()), 4),
    }


def vader_rating(task: Task, args, records, skipped) -> dict:
    texts, ratings = vader_ratings()
    texts = np.array(texts, dtype=object)
    test, pool = held_out_split(len(texts), RATING_TEST)
    X_test, y_test = list(texts[test]), ratings[test]

    def models(seed, **params):
        return regressor(TEXT_BACKBONE, seed, max_length=MAX_LENGTH, **params)

    rows = text_rows(args, task, X_test, models)
    splits = (
        (n, seed, list(texts[rows_]), ratings[rows_], {})
        for n in task.sizes
        for seed in args.seeds
        for rows_ in [draw(pool, n, seed)]
    )
    run_rows(task, rows, splits, X_test, y_test, args, records, skipped)
    return {
        "data": VADER_SOURCE + "; movie-review sentences only",
        "texts": len(texts),
        "median_words": median_words(texts),
        "test_texts": len(test),
        "target_std_test": round(float(y_test.std()), 4),
    }


def debtags(task: Task, args, records, skipped) -> dict:
    texts, Y, labels, info = load_debtags()
    texts = np.array(texts, dtype=object)
    test, pool = held_out_split(len(texts), DEBTAGS_TEST)
    X_test, Y_test = list(texts[test]), Y[test]
    assert Y_test.sum(axis=0).min() > 0, "a label is never on in the test set"

    def models(seed, **params):
        return FineTuneClassifier(
            TEXT_BACKBONE,
            max_length=MAX_LENGTH,
            device="cpu",
            random_state=seed,
            **params,
        )

    rows = text_rows(args, task, X_test, models)

    def splits():
        for n in task.sizes:
            for seed in args.seeds:
                chosen, draws = multilabel_draw(Y, pool, n, seed)
                yield n, seed, list(texts[chosen]), Y[chosen], {"draws": draws}

    run_rows(task, rows, splits(), X_test, Y_test, args, records, skipped)
    return {
        "data": (
            "Debian package descriptions (short + long, Translation-en) and "
            "debtags, from this machine's apt lists (apt-cache dumpavail) at "
            "benchmark time"
        ),
        "label_facets": list(LABEL_FACETS),
        "labels": labels,
        "label_frequency": dict(zip(labels, Y.sum(axis=0).tolist())),
        "texts": len(texts),
        "median_words": median_words(texts),
        "test_texts": len(test),
        **info,
    }


TASKS = {
    "fashion_zoom": Task(
        "fashion_zoom", "regression", (50, 200, 1000), (50, 200, 1000), fashion_zoom
    ),
    "vader_rating": Task(
        "vader_rating", "regression", (50, 200, 500), (50, 500), vader_rating
    ),
    "debtags": Task("debtags", "multilabel", (100, 400), (100, 400), debtags),
}
METRICS = {"regression": ("r2", "rmse"), "multilabel": ("micro_f1", "macro_f1")}


# ----------------------------------------------------------------- summary
def summarise(records: list[dict]) -> list[dict]:
    """Mean and std over seeds of each metric, per task, row and n."""
    groups: dict[tuple, list[dict]] = {}
    for record in records:
        groups.setdefault((record["task"], record["row"], record["n"]), []).append(
            record
        )
    summary = []
    for (task, row, n), group in groups.items():
        entry = {"task": task, "row": row, "n": n, "seeds": len(group)}
        for key in ("r2", "rmse", "micro_f1", "macro_f1", "fit_seconds"):
            if key in group[0]:
                values = [record[key] for record in group]
                entry[key] = round(float(np.mean(values)), 4)
                entry[key + "_std"] = round(float(np.std(values)), 4)
        summary.append(entry)
    return summary


def paired_gaps(records: list[dict]) -> list[dict]:
    """Each "FineTune <b> defaults" row minus "<b> frozen ..." seed by seed.

    The issue's line compares fine-tuning with defaults against frozen
    embeddings of the same backbone; pairing by seed removes the variation
    that both share (the training draw), so the standard error is that of
    the gap itself.
    """
    by_key = {(r["task"], r["row"], r["n"], r["seed"]): r for r in records}
    gaps = []
    for task, row, n in dict.fromkeys((r["task"], r["row"], r["n"]) for r in records):
        words = row.split()
        if words[0] != "FineTune" or not row.endswith(" defaults"):
            continue
        frozen = [
            other
            for (t, other, m, _) in by_key
            if t == task and m == n and other.startswith(f"{words[1]} frozen")
        ]
        for against in dict.fromkeys(frozen):
            seeds = sorted(
                seed
                for (t, other, m, seed) in by_key
                if (t, other, m) == (task, row, n)
                and (task, against, n, seed) in by_key
            )
            if len(seeds) < 2:
                continue
            for metric in ("r2", "micro_f1", "macro_f1"):
                if metric not in by_key[(task, row, n, seeds[0])]:
                    continue
                diff = np.array(
                    [
                        by_key[(task, row, n, s)][metric]
                        - by_key[(task, against, n, s)][metric]
                        for s in seeds
                    ]
                )
                gaps.append(
                    {
                        "task": task,
                        "n": n,
                        "row": row,
                        "against": against,
                        "metric": metric,
                        "seeds": len(seeds),
                        "mean_gap": round(float(diff.mean()), 4),
                        "se_gap": round(
                            float(diff.std(ddof=1) / np.sqrt(len(diff))), 4
                        ),
                        "seeds_ahead": int((diff > 0).sum()),
                        "seeds_behind": int((diff < 0).sum()),
                    }
                )
    return gaps


def gaps_table(gaps: list[dict]) -> str:
    """The paired gaps as Markdown."""
    rows = [
        {
            **gap,
            "mean gap ± s.e.": f"{gap['mean_gap']:+.4f} ± {gap['se_gap']:.4f}",
            "ahead / behind": f"{gap['seeds_ahead']} / {gap['seeds_behind']}",
        }
        for gap in gaps
    ]
    columns = ("task", "n", "row", "against", "metric", "seeds")
    return (
        "### Fine-tuning defaults minus frozen embeddings, paired by seed\n\n"
        + markdown_table(rows, (*columns, "mean gap ± s.e.", "ahead / behind"))
        + "\n"
    )


def task_table(task: Task, summary: list[dict]) -> str:
    """Rows x n: each metric as mean ± std over seeds, then mean fit seconds."""
    entries = [entry for entry in summary if entry["task"] == task.name]
    sizes = sorted({entry["n"] for entry in entries})
    labels = list(dict.fromkeys(entry["row"] for entry in entries))
    by_key = {(entry["row"], entry["n"]): entry for entry in entries}
    metrics = METRICS[task.kind]
    header = ["row"] + [f"{m} n={n}" for n in sizes for m in metrics]
    header += [f"fit s n={n}" for n in sizes]
    lines = [
        f"### {task.name} (mean ± std over seeds)",
        "",
        "| " + " | ".join(header) + " |",
        "| --- | " + " | ".join("---:" for _ in header[1:]) + " |",
    ]
    for label in labels:
        cells = []
        for n in sizes:
            entry = by_key.get((label, n))
            for metric in metrics:
                cells.append(
                    f"{entry[metric]:.3f} ± {entry[metric + '_std']:.3f}"
                    if entry
                    else "–"
                )
        for n in sizes:
            entry = by_key.get((label, n))
            cells.append(f"{entry['fit_seconds']:.1f}" if entry else "–")
        lines.append(f"| {label} | " + " | ".join(cells) + " |")
    return "\n".join(lines + [""])


def finetune_sizes(values: list[str] | None, task: Task) -> tuple[int, ...]:
    if values is None:
        return task.finetune_sizes
    if values == ["all"]:
        return task.sizes
    return tuple(int(value) for value in values)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tasks", nargs="*", default=list(TASKS), choices=list(TASKS))
    parser.add_argument("--seeds", type=int, nargs="*", default=[0, 1, 2])
    parser.add_argument(
        "--sizes", type=int, nargs="*", help="training sizes for every task given"
    )
    parser.add_argument(
        "--finetune-sizes",
        nargs="*",
        help="sizes of the gradient-trained rows (FineTune defaults, from "
        'scratch) for every task given, or "all"',
    )
    parser.add_argument(
        "--largest", action="store_true", help="each task's largest size only"
    )
    parser.add_argument("--rows", nargs="*", help="only the rows of these labels")
    parser.add_argument(
        "--quick", action="store_true", help="1 seed, each task's smallest size"
    )
    parser.add_argument(
        "--no-finetune",
        dest="finetune",
        action="store_false",
        help="baselines and frozen embeddings only",
    )
    parser.add_argument("--name", default=NAME, help="results file name")
    args = parser.parse_args()
    if args.quick:
        args.seeds = args.seeds[:1]
    warnings.filterwarnings("ignore", category=FutureWarning)
    warnings.filterwarnings("ignore", message="Label .* is present in all training")
    print(f"torch threads {torch.get_num_threads()}, load {load_average()}")
    started = time.perf_counter()
    records: list[dict] = []
    skipped: dict[str, str] = {}
    data = {}
    tasks = []
    for name in args.tasks:
        task = TASKS[name]
        sizes = tuple(args.sizes or task.sizes)
        gradient_sizes = finetune_sizes(args.finetune_sizes, task)
        if args.quick:
            sizes = gradient_sizes = sizes[:1]
        if args.largest:
            sizes = gradient_sizes = sizes[-1:]
        task = Task(name, task.kind, sizes, gradient_sizes, task.load)
        tasks.append(task)
        print(f"\n## {name}: n = {sizes}, seeds {args.seeds}", flush=True)
        data[name] = task.load(task, args, records, skipped)
    summary = summarise(records)
    gaps = paired_gaps(records)
    markdown = "\n".join(task_table(task, summary) for task in tasks)
    if gaps:
        markdown += "\n" + gaps_table(gaps)
    if skipped:
        markdown += "\nSkipped rows:\n\n" + "".join(
            f"- {label}: {reason}\n" for label, reason in skipped.items()
        )
    print("\n" + markdown)
    wall = round(time.perf_counter() - started, 1)
    command = command_line()
    write_results(
        args.name,
        {
            "torch_threads": torch.get_num_threads(),
            "cpu_count": os.cpu_count(),
            "max_length": MAX_LENGTH,
            "ridge_alphas": ALPHAS.tolist(),
            "lr_Cs": CS.tolist(),
            "data": data,
            "finetune_sizes": {task.name: task.finetune_sizes for task in tasks},
            "skipped": skipped,
            "wall_seconds": wall,
            "summary": summary,
            "paired_gaps": gaps,
            "records": records,
        },
    )
    header = (
        f"Targets beyond one class label. Generated by `{command.strip()}` in "
        f"{wall:.0f} s with {torch.get_num_threads()} torch threads "
        f"(load average at the end {load_average()}).\n\n"
    )
    (RESULTS_DIR / f"{args.name}.md").write_text(header + markdown)


if __name__ == "__main__":
    main()
