"""Scaling out: one grid search, sequential, on loky and on a dask cluster.

Hypothesis: the stock ``GridSearchCV`` over ``FineTuneClassifier`` needs no change
to run in parallel. Its fits are independent and coarse (about a second each),
so on 2 cores both joblib backends, ``n_jobs=2`` (loky, one machine) and
``backend="dask"`` on a 2-worker ``LocalCluster`` (the path that scales to many
machines), finish the same 12-candidate x 3-fold search >= 1.6x faster than
``n_jobs=1``, and dask's cost per task (scheduling, pickling, transfers) is
milliseconds, negligible next to a fit. From the measured time per fit, a
500-candidate x 3-fold search on 8 GPU workers is then estimated on paper.

Target task: scikit-learn's 8x8 digits, 50 labels per class (500 images), the
shipped ``fmnist_resnet``; grid ``freeze`` [3, 4, 5, "all"] x ``head_hidden``
[(), (32,), (64,)], 3 epochs, ``refit=False`` (the refit runs in the calling
process whatever the backend, so it would only dilute the comparison). Workers
are warmed up first (a long-lived cluster has imported torch already); the
machine's load average is recorded, since other users' jobs slow the parallel
runs most (they compete for the same 2 cores).

Run: ``./dev bench scale_out`` (``--quick`` for a smoke run).
"""

from __future__ import annotations

import argparse
import math
import time

import joblib
import numpy as np
import torch
from _common import load_average, markdown_table, write_results
from sklearn.datasets import load_digits
from sklearn.model_selection import GridSearchCV, StratifiedKFold

from sktransfer import FineTuneClassifier

# Assumption of the paper estimate, not measured here (no GPU on this machine):
# how much faster one GPU worker runs one fit than one CPU thread does.
GPU_SPEEDUPS = (1.0, 10.0)
# Sequential with torch's default threads (what n_jobs=1 gives), and with one
# thread (the per-process budget of the parallel runs: their ideal is 2x that).
MODES = ("sequential", "sequential, 1 thread", "loky", "dask")


def target_task(per_class: int):
    digits = load_digits()
    X, y = (digits.images / 16.0).astype(np.float32), digits.target
    index = np.concatenate([np.flatnonzero(y == c)[:per_class] for c in range(10)])
    return X[index], y[index]


def make_search(grid: dict, folds: int, epochs: int, n_jobs: int) -> GridSearchCV:
    clf = FineTuneClassifier(
        "fmnist_resnet",
        max_epochs=epochs,
        lr=3e-3,
        layer=None,  # the final-embedding head the committed results used
        device="auto",
        random_state=0,
    )
    cv = StratifiedKFold(folds, shuffle=True, random_state=0)
    return GridSearchCV(
        clf, grid, cv=cv, n_jobs=n_jobs, refit=False, error_score="raise"
    )


def run_search(mode: str, X, y, grid, folds, epochs) -> dict:
    """One timed search; returns wall time and the fit/score time inside tasks."""
    sequential = mode.startswith("sequential")
    search = make_search(grid, folds, epochs, 1 if sequential else 2)
    threads = torch.get_num_threads()
    if mode == "sequential, 1 thread":
        torch.set_num_threads(1)
    load_before = load_average()
    start = time.perf_counter()
    try:
        if mode == "dask":
            with joblib.parallel_config(backend="dask", scatter=[X, y]):
                search.fit(X, y)
        else:
            with joblib.parallel_config(backend="loky"):
                search.fit(X, y)
    finally:
        torch.set_num_threads(threads)
    wall = time.perf_counter() - start
    results = search.cv_results_
    n_tasks = len(results["params"]) * folds
    busy = folds * float(
        np.sum(results["mean_fit_time"]) + np.sum(results["mean_score_time"])
    )
    workers = 1 if sequential else 2
    return {
        "mode": mode,
        "wall_s": wall,
        "n_tasks": n_tasks,
        "task_s_sum": busy,
        "mean_task_s": busy / n_tasks,
        # Worker-seconds not spent inside fit/score, per task: dispatching,
        # pickling, cloning, and workers idle at the end (uneven fits).
        "overhead_per_task_s": (wall * workers - busy) / n_tasks,
        "best_params": search.best_params_,
        "best_score": float(search.best_score_),
        "loadavg_1min_before": load_before[0] if load_before else None,
        "loadavg_1min_after": (load_average() or [None])[0],
    }


def _noop(i: int) -> int:
    return i


def dispatch_cost(backend: str, n: int = 200) -> float:
    """Seconds per trivial task: the backend's own round trip, without any fit."""
    with joblib.parallel_config(backend=backend, n_jobs=2):
        joblib.Parallel(batch_size=1)(joblib.delayed(_noop)(i) for i in range(4))
        start = time.perf_counter()
        joblib.Parallel(batch_size=1)(joblib.delayed(_noop)(i) for i in range(n))
    return (time.perf_counter() - start) / n


def paper_estimate(mean_task_s: float, dispatch_s: float) -> list[dict]:
    """Wall time of 500 candidates x 3 folds on 8 GPU workers, one fit each."""
    n_fits, workers = 500 * 3, 8
    rounds = math.ceil(n_fits / workers)
    return [
        {
            "fits": n_fits,
            "gpu_workers": workers,
            "assumed_gpu_speedup": speedup,
            "per_fit_s": mean_task_s / speedup + dispatch_s,
            "estimate_min": rounds * (mean_task_s / speedup + dispatch_s) / 60,
        }
        for speedup in GPU_SPEEDUPS
    ]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true")
    args = parser.parse_args()
    from dask.distributed import Client, LocalCluster

    if args.quick:
        per_class, folds, epochs = 20, 2, 1
        grid = {"freeze": [4, "all"], "head_hidden": [(), (32,)]}
    else:
        per_class, folds, epochs = 50, 3, 3
        grid = {"freeze": [3, 4, 5, "all"], "head_hidden": [(), (32,), (64,)]}
    X, y = target_task(per_class)
    start = time.perf_counter()
    cluster_start = time.perf_counter()
    cluster = LocalCluster(
        n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None
    )
    client = Client(cluster)
    cluster_s = time.perf_counter() - cluster_start
    try:
        # Warm-up: every process imports torch and reads the weights once.
        small = {"freeze": [4, "all"], "head_hidden": [(), (8,)]}
        for mode in ("sequential", "loky", "dask"):
            run_search(mode, X[::5], y[::5], small, 2, 1)
        rows = [run_search(mode, X, y, grid, folds, epochs) for mode in MODES]
        dispatch = {backend: dispatch_cost(backend) for backend in ("loky", "dask")}
        worker_threads = sorted(set(client.run(torch.get_num_threads).values()))
    finally:
        client.close()
        cluster.close()
    for row in rows:
        row["speedup"] = rows[0]["wall_s"] / row["wall_s"]
        row["speedup_vs_1_thread"] = rows[1]["wall_s"] / row["wall_s"]
        row["dispatch_ms"] = 1000 * dispatch.get(row["mode"], 0.0)
    dask_row = rows[-1]
    estimate = paper_estimate(dask_row["mean_task_s"], dispatch["dask"])

    n_candidates = math.prod(len(values) for values in grid.values())
    print(
        f"\n## {n_candidates} candidates x {folds} folds, {len(X)} digits, "
        f"{epochs} epochs, 2 cores (torch threads: sequential "
        f"{torch.get_num_threads()}, workers {worker_threads})\n"
    )
    table = [
        {
            "mode": row["mode"],
            "wall s": row["wall_s"],
            "speed-up": row["speedup"],
            "vs 1 thread": row["speedup_vs_1_thread"],
            "mean fit+score s": row["mean_task_s"],
            "overhead/task s": row["overhead_per_task_s"],
            "dispatch/task ms": row["dispatch_ms"],
            "load avg before/after": (
                f"{row['loadavg_1min_before']} / {row['loadavg_1min_after']}"
            ),
            "best": row["best_params"],
        }
        for row in rows
    ]
    columns = list(table[0])
    print(markdown_table(table, columns))
    print(
        "\n## Paper estimate: 500 candidates x 3 folds on 8 GPU workers "
        f"(per fit: {dask_row['mean_task_s']:.2f} s measured on 1 CPU thread)\n"
    )
    print(
        markdown_table(
            estimate,
            ["fits", "gpu_workers", "assumed_gpu_speedup", "per_fit_s", "estimate_min"],
        )
    )
    same = all(row["best_params"] == rows[0]["best_params"] for row in rows)
    print(
        f"\nsame best parameters in all modes: {same}; cluster start {cluster_s:.1f} s"
    )
    name = "scale_out_quick" if args.quick else "scale_out"
    path = write_results(
        name,
        {
            "n_images": len(X),
            "grid": {key: [str(v) for v in values] for key, values in grid.items()},
            "folds": folds,
            "epochs": epochs,
            "cluster_start_s": cluster_s,
            "worker_torch_threads": worker_threads,
            "sequential_torch_threads": torch.get_num_threads(),
            "runs": rows,
            "dispatch_s_per_task": dispatch,
            "paper_estimate_500x3_on_8_gpus": estimate,
            "same_best_params": same,
            "wall_s": time.perf_counter() - start,
        },
    )
    print(f"\nwrote {path} ({time.perf_counter() - start:.0f}s)")


if __name__ == "__main__":
    main()
