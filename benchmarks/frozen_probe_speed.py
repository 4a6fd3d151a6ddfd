"""How fast the frozen paths are: ``freeze="all"`` and the extractor + LR recipe.

Hypotheses (issue "the everyday paths"):

1. ``FineTuneClassifier(freeze="all")`` fits within 2x the time of the frozen
   forward pass it needs (the extractor's ``fit_transform`` on the same images,
   same taps and pooling) and at least 5x faster than ``freeze=0`` at 250 labels
   per class. Its head is the exact logistic-regression optimum, so a faster
   solver must leave its accuracy unchanged (+-0.002).
2. The docs' recipe, ``make_pipeline(PretrainedFeatureExtractor(...),
   LogisticRegression(max_iter=1000))``, is dominated by the forward pass, not
   by the solver.

Task: a user's 3-block CNN pretrained on Fashion-MNIST classes 0-4 (the one of
``transfer_vs_scratch``, passed as stages with ``weights=None``) -> classes 5-9,
k = 50 and 250 labels per class, 3 seeds, 2,000 test images. Every estimator is
left at its defaults but for ``freeze``; the extractor uses the classifier's
taps and pooling (``layer="mid"``, ``pooling="grid"``). Timings are wall clock
of one fit each, after an untimed warm-up fit of every row (the first fit of a
process pays for imports), one job at a time; the torch threads and the load
average at start are recorded.

Run: ``./dev bench frozen_probe_speed``.
Results: ``benchmarks/results/frozen_probe_speed.{json,md}``.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
import warnings
from pathlib import Path

import numpy as np
import torch
from safetensors.torch import load_file
from sklearn.exceptions import ConvergenceWarning
from sklearn.linear_model import LogisticRegression

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import RESULTS_DIR, load_average, markdown_table, write_results
from _handwritten import pretrain_user_cnn, user_cnn_stages
from _transfer import fashion_mnist_split, stratified_subset

from sktransfer import FineTuneClassifier, PretrainedFeatureExtractor

NAME = "frozen_probe_speed"
CLASSES = (5, 6, 7, 8, 9)


def _timed(fn):
    start = time.perf_counter()
    out = fn()
    return out, time.perf_counter() - start


def one_run(state: dict, X, y, X_test, y_test, seed: int) -> list[dict]:
    """Every row for one training set: seconds and test accuracy."""
    stages = lambda: user_cnn_stages(state)  # noqa: E731 (fresh modules per fit)
    common = dict(weights=None, image_size=28)
    rows = []
    extractor = PretrainedFeatureExtractor(stages(), **common, progress=False)
    features, forward = _timed(lambda: extractor.fit_transform(X))
    rows.append({"method": "frozen forward pass (extractor)", "seconds": forward})
    probe = LogisticRegression(max_iter=1000)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", ConvergenceWarning)
        _, solve = _timed(lambda: probe.fit(features, y))
    accuracy = float((probe.predict(extractor.transform(X_test)) == y_test).mean())
    rows.append(
        {
            "method": "extractor + LogisticRegression(max_iter=1000)",
            "seconds": forward + solve,
            "solver_seconds": solve,
            "converged": not any(
                issubclass(w.category, ConvergenceWarning) for w in caught
            ),
            "accuracy": accuracy,
        }
    )
    for freeze in ("all", 0):
        clf = FineTuneClassifier(stages(), **common, freeze=freeze, random_state=seed)
        _, seconds = _timed(lambda clf=clf: clf.fit(X, y))
        accuracy = float((clf.predict(X_test) == y_test).mean())
        rows.append(
            {
                "method": f"FineTuneClassifier(freeze={freeze!r})",
                "seconds": seconds,
                "accuracy": accuracy,
            }
        )
    return rows


def summarise(records: list[dict]) -> list[dict]:
    """Mean over seeds per (k, method), with ratios to the forward pass."""
    out = []
    for k in sorted({r["per_class"] for r in records}):
        at_k = [r for r in records if r["per_class"] == k]
        forward = np.mean([r["seconds"] for r in at_k if "forward" in r["method"]])
        full = np.mean([r["seconds"] for r in at_k if r["method"].endswith("=0)")])
        for method in dict.fromkeys(r["method"] for r in at_k):
            rows = [r for r in at_k if r["method"] == method]
            seconds = float(np.mean([r["seconds"] for r in rows]))
            row = {
                "per_class": k,
                "method": method,
                "seconds": round(seconds, 2),
                "x_forward": round(seconds / forward, 2),
                "speedup_vs_freeze_0": round(full / seconds, 1),
            }
            if "accuracy" in rows[0]:
                row["accuracy"] = round(
                    float(np.mean([r["accuracy"] for r in rows])), 4
                )
            if "solver_seconds" in rows[0]:
                row["solver_seconds"] = round(
                    float(np.mean([r["solver_seconds"] for r in rows])), 2
                )
            out.append(row)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--ks", type=int, nargs="*", default=[50, 250])
    parser.add_argument("--seeds", type=int, nargs="*", default=[0, 1, 2])
    parser.add_argument("--name", default=NAME)
    args = parser.parse_args()
    load = load_average()
    start = time.perf_counter()
    state = load_file(pretrain_user_cnn(epochs=3)["checkpoint"])
    X_pool, y_pool = fashion_mnist_split(CLASSES, "train")
    X_test, y_test = fashion_mnist_split(CLASSES, "test")
    keep = stratified_subset(y_test, 2000)
    X_test, y_test = X_test[keep], y_test[keep]
    # Untimed: the first fit of a process pays for imports and torch's set-up.
    warm = stratified_subset(y_pool, 10 * len(CLASSES), seed=99)
    one_run(state, X_pool[warm], y_pool[warm], X_test[:50], y_test[:50], 0)
    records = []
    for k in args.ks:
        for seed in args.seeds:
            train = stratified_subset(y_pool, k * len(CLASSES), seed=seed)
            for row in one_run(
                state, X_pool[train], y_pool[train], X_test, y_test, seed
            ):
                records.append({"per_class": k, "seed": seed, **row})
                print(records[-1], flush=True)
    summary = summarise(records)
    columns = ["per_class", "method", "seconds", "x_forward", "speedup_vs_freeze_0"]
    shown = [
        {**row, "accuracy": f"{row['accuracy']:.4f}"} if "accuracy" in row else row
        for row in summary
    ]
    table = markdown_table(shown, [*columns, "solver_seconds", "accuracy"])
    threads = torch.get_num_threads()
    write_results(
        args.name,
        {
            "torch_threads": threads,
            "omp_wait_policy": os.environ.get("OMP_WAIT_POLICY"),
            "loadavg_at_start": load,
            "wall_seconds": round(time.perf_counter() - start, 1),
            "summary": summary,
            "rows": records,
        },
    )
    header = f"## Frozen paths: fit seconds ({threads} torch threads, load {load})"
    (RESULTS_DIR / f"{args.name}.md").write_text(f"{header}\n\n{table}\n")
    print(table)


if __name__ == "__main__":
    main()
