"""Transfer vs training from scratch on real data, with few and many labels.

Hypothesis
----------
A backbone pretrained on a related task makes a small labelled set go much
further than the same architecture trained from random weights, and the gap
shrinks as labels grow. Across domains (clothes -> digits) the pooled final
embedding transfers poorly, but earlier maps (``layer3``, flattened) or
fine-tuning still beat starting from scratch. ``FineTuneClassifier`` should match
or beat the loop a user writes from a PyTorch tutorial, and with ``freeze="all"``
it is exactly the logistic-regression pipeline on frozen features.

Tasks
-----
1. ``fashion``: ``build_fmnist_resnet(5)`` pretrained on Fashion-MNIST classes
   0-4 (30k images, trained once and cached in ``benchmarks/.cache``), passed as
   ``(name, module)`` stages and transferred to classes 5-9 with k labelled
   images per class; tested on all 5000 test images of classes 5-9.
2. ``user_cnn``: the same target task from a user's own 3-block CNN
   (``_handwritten.UserCNN``) pretrained on classes 0-4.
3. ``digits``: the shipped ``fmnist_resnet`` transferred to scikit-learn's 8x8
   digits with k labels per class; tested on all other digits.
4. ``lite0_fashion``: the offline ImageNet EfficientNet-Lite0 (the library's
   default backbone) on task 1's target (k = 10 and 50 only: 64 px inputs
   through a 4M-parameter network are slow on a CPU).
5. Anchor (single-process full run only): from-scratch ``FineTuneClassifier`` on
   all of Fashion-MNIST against the "2 Conv+pooling" row of the Fashion-MNIST
   benchmark table (0.916 test accuracy).

Methods (``LABELS`` below; each task's data and estimator factories are in
``_scratch_tasks.py``). By default (``DEFAULT_METHODS``):
``FineTuneClassifier(backbone)`` with nothing else set (its ``freeze="auto"``);
the same architecture from scratch; the loop of common PyTorch tutorials (new
linear head, every layer trained with Adam 1e-3 and cross-entropy, batch 32,
fixed epochs: ``_handwritten.TutorialFineTune``) from the pretrained and from
random weights; frozen embeddings + ``LogisticRegression``; and
``freeze="all"``. The others (``freeze=0``, grid searches over ``freeze``, a
single head, the final layer's embedding, a user's fresh module) run when
``--methods`` names them. Every method sees the same splits and seeds. The
hand-written loops run ``epochs = clip(5000 / n_train, 1, 30)`` epochs; the
library rows use its own ``max_epochs="auto"``.

Run with ``./dev bench transfer_vs_scratch`` (one process, every task, 3 seeds,
about 30 minutes on 2 cores), or split one run across cores at one commit, then
merge (parts from different commits are refused)::

    ./dev bench transfer_vs_scratch --tasks fashion
    ./dev bench transfer_vs_scratch --tasks user_cnn,digits,lite0_fashion
    ./dev bench transfer_vs_scratch --merge

``--quick`` (about 5 minutes from a fresh clone; writes
``results/transfer_vs_scratch_quick.json``): seeds 0 and 1, 10 labels per
class, the headline methods, a 1-epoch source and 1000 test images. Use
``OMP_NUM_THREADS=1`` per process when running parts side by side; two
processes with two threads each on two cores run several times slower. Needs
Fashion-MNIST: ``sudo apt-get install dataset-fashion-mnist``.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
import warnings
from pathlib import Path

import numpy as np
import torch
from sklearn.exceptions import ConvergenceWarning

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import RESULTS_DIR, write_results
from _handwritten import pretrain_user_cnn
from _parts import read_parts
from _scratch_tasks import (
    all_tasks_for_report,
    digits_task,
    fashion_task,
    imagenet_task,
    user_cnn_task,
)
from _transfer import (
    Task,
    plot,
    pretrain_source,
    results_table,
    run_task,
    summarise,
)

from sktransfer import FineTuneClassifier
from sktransfer.datasets import load_fashion_mnist

NAME = "transfer_vs_scratch"
# The rows of the published table; the other methods run when named.
DEFAULT_METHODS = (
    "defaults",
    "scratch",
    "tutorial",
    "tutorial_scratch",
    "lr",
    "ft_all",
)
# The headline rows, in minutes (--quick).
QUICK_METHODS = ("defaults", "scratch", "tutorial", "lr", "ft_all")
SEEDS = (0, 1, 2)
QUICK_SEEDS = (0, 1)
ANCHOR_TARGET = 0.916  # Fashion-MNIST benchmark table, "2 Conv+pooling"
LABELS = {
    "defaults": "FineTuneClassifier(backbone): library defaults, nothing else set",
    "single_head": "the defaults with final_head=False (one head, on mid-level stages)",
    "scratch": "from scratch (FineTuneClassifier, weights=None, freeze=0)",
    "scratch_defaults": "from scratch, nothing else set (a fresh module)",
    "tutorial": "hand-written torch loop (new head, fine-tune all, Adam 1e-3)",
    "tutorial_scratch": "hand-written torch loop from random weights",
    "lr": "PretrainedFeatureExtractor(backbone) + LogisticRegression",
    "lr_final": "PretrainedFeatureExtractor(layer=None) + LogisticRegression",
    "ft_all": 'FineTuneClassifier(freeze="all")',
    "ft_0": "FineTuneClassifier(freeze=0): fine-tune every stage",
    "auto": 'FineTuneClassifier(freeze="auto"): probe or freeze=0, by held-out rows',
    "grid": 'GridSearchCV(FineTuneClassifier, freeze=[0, "all"], cv=3)',
    "grid_repeated": "the same, cv=RepeatedStratifiedKFold(5 folds x 2)",
    "grid_prefer": "the same, cv=3, refit: freeze=0 unless beaten by > 1 SE",
}


def anchor(epochs=4) -> dict:
    """From-scratch FineTuneClassifier on all 60k Fashion-MNIST training images."""
    X, y = load_fashion_mnist("train")
    X_test, y_test = load_fashion_mnist("test")
    params = dict(
        weights=None,
        freeze=0,
        lr=2e-3,
        batch_size=128,
        max_epochs=epochs,
        augment="flip",
        device="cpu",
        random_state=0,
    )
    model = FineTuneClassifier("fmnist_resnet", **params)
    print(f"Anchor: FineTuneClassifier from scratch, {len(y)} images, {epochs} epochs")
    start = time.perf_counter()
    model.fit(X, y)
    seconds = time.perf_counter() - start
    accuracy = float(model.score(X_test, y_test))
    verdict = "reaches" if accuracy >= ANCHOR_TARGET else "does NOT reach"
    print(
        f"  test accuracy {accuracy:.4f} in {seconds:.0f} s: {verdict} the "
        f"'2 Conv+pooling' baseline ({ANCHOR_TARGET})"
    )
    return {
        "params": {"backbone": "fmnist_resnet", **params},
        "n_train": len(y),
        "test_accuracy": round(accuracy, 4),
        "fit_seconds": round(seconds, 1),
        "epoch_seconds": [round(h["dur"], 1) for h in model.history],
        "target": ANCHOR_TARGET,
        "reaches_target": accuracy >= ANCHOR_TARGET,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument(
        "--quick", action="store_true", help="headline rows in ~5 min (2 seeds, k=10)"
    )
    parser.add_argument(
        "--tasks",
        help="comma-separated task names to run (default: all); the results go "
        "to a part file that --merge combines, so tasks can run one per core",
    )
    parser.add_argument(
        "--methods",
        help="comma-separated methods to run (default: "
        f"{','.join(DEFAULT_METHODS)}; with --quick: {','.join(QUICK_METHODS)})",
    )
    parser.add_argument(
        "--ks", help="comma-separated label budgets to run (default: each task's)"
    )
    parser.add_argument(
        "--merge", action="store_true", help="combine the part files into one report"
    )
    parser.add_argument(
        "--plot-only",
        action="store_true",
        help="redraw the plots of results/NAME.json without running anything",
    )
    parser.add_argument(
        "--name",
        help="results file name (default: transfer_vs_scratch, or "
        "transfer_vs_scratch_quick with --quick)",
    )
    args = parser.parse_args()
    warnings.filterwarnings("ignore", category=ConvergenceWarning)
    name = args.name or NAME + ("_quick" if args.quick else "")
    if args.merge:
        return merge_parts(name)
    if args.plot_only:
        return plot_tasks(name, json.loads((RESULTS_DIR / f"{name}.json").read_text()))
    seeds = QUICK_SEEDS if args.quick else SEEDS
    budget = (
        # Fewer than ~30 steps leave BatchNorm running statistics of a network
        # trained from scratch unconverged (eval-mode predictions near chance).
        {"images_per_fit": 1500, "max_epochs": 15}
        if args.quick
        else {"images_per_fit": 5000, "max_epochs": 30}
    )
    torch.manual_seed(0)
    np.random.seed(0)
    start, cpu_start = time.perf_counter(), time.process_time()
    try:
        source = pretrain_source(epochs=1 if args.quick else 3)
    except FileNotFoundError as exc:  # Fashion-MNIST missing: say how to get it
        sys.exit(f"{exc}\nThen rerun ./dev bench {NAME}.")
    fashion = fashion_task(source, args.quick)
    user = pretrain_user_cnn(epochs=3)
    tasks = [
        fashion,
        user_cnn_task(fashion, user),
        digits_task(args.quick),
        imagenet_task(fashion),
    ]
    if args.tasks:
        wanted = args.tasks.split(",")
        unknown = set(wanted) - {t.name for t in tasks}
        if unknown:
            sys.exit(
                f"--tasks: unknown {sorted(unknown)}; choose from "
                f"{[t.name for t in tasks]}"
            )
        tasks = [t for t in tasks if t.name in wanted]
    methods = args.methods.split(",") if args.methods else None
    wanted_methods = methods or (QUICK_METHODS if args.quick else DEFAULT_METHODS)
    for task in tasks:
        task.methods = {
            name: make for name, make in task.methods.items() if name in wanted_methods
        }
        if args.ks:
            task.ks = tuple(k for k in task.ks if str(k) in args.ks.split(","))
    if not any(task.methods and task.ks for task in tasks):
        names = [task.name for task in tasks]
        sys.exit(f"--methods {args.methods} --ks {args.ks}: nothing to run on {names}")
    payload = {
        "hypothesis": __doc__.split("Hypothesis\n----------\n")[1].split("\n\n")[0],
        "quick": args.quick,
        "seeds": list(seeds),
        "epoch_budget": budget,
        "source_backbone": source,
        "methods": LABELS,
    }
    records = []
    for task in tasks:
        print(f"\n== {task.title}")
        task_start, cpu_task = time.perf_counter(), time.process_time()
        records += run_task(task, seeds, budget)
        payload[f"seconds_{task.name}"] = round(time.perf_counter() - task_start, 1)
        payload[f"cpu_seconds_{task.name}"] = round(time.process_time() - cpu_task)
    payload["tasks"] = [t.name for t in tasks]
    payload["records"] = records
    # CPU time of this process: on a shared machine, wall time also counts the
    # time other processes held the cores; CPU time does not.
    payload["total_seconds"] = round(time.perf_counter() - start, 1)
    payload["total_cpu_seconds"] = round(time.process_time() - cpu_start, 1)
    payload["torch_threads"] = torch.get_num_threads()
    if args.tasks:
        part = "+".join(payload["tasks"]) + (f"-{args.methods}" if methods else "")
        part += f"-k{args.ks}" if args.ks else ""
        write_results(f"{name}.part-{part.replace(',', '+')}", payload)
        print(f"Wrote the part; combine parts with --merge{' --quick' * args.quick}")
        return
    if not (args.quick or args.methods):
        payload["anchor"] = anchor()
    report(name, payload, tasks)


def merge_parts(name: str) -> None:
    """Combine ``<name>.part-*.json`` (one per process) into the report."""
    try:
        payload = read_parts(name, key=("task", "method", "k", "seed"))
    except FileNotFoundError as exc:
        sys.exit(f"{exc}; run --tasks first.")
    payload["methods"] = LABELS  # the oldest part may predate a row
    every = all_tasks_for_report(payload["quick"])
    tasks = [t for t in every if t.name in payload["tasks"]]
    # Records in report order: task, label budget, method, seed.
    task_order = [t.name for t in every]
    method_order = list(LABELS)
    payload["records"].sort(
        key=lambda r: (
            task_order.index(r["task"]),
            str(r["k"]).zfill(6),
            method_order.index(r["method"]),
            r["seed"],
        )
    )
    report(name, payload, tasks)


def report(name: str, payload: dict, tasks: list[Task]) -> None:
    """Summary, JSON, Markdown and plot of one run's records."""
    summary = summarise(payload["records"])
    payload["summary"] = summary
    tables = [f"### {t.title}\n\n{results_table(summary, t, LABELS)}" for t in tasks]
    write_results(name, payload)
    plot_tasks(name, payload)
    text = _markdown(tables, payload, payload["quick"])
    (RESULTS_DIR / f"{name}.md").write_text(text)
    print("\n" + text)
    print(f"Wrote {RESULTS_DIR / name}.{{json,md}} and one plot per task")


def plot_tasks(name: str, payload: dict) -> None:
    """One learning-curve plot per task of ``payload``: ``results/NAME_TASK.png``."""
    every = all_tasks_for_report(payload["quick"])
    for task in (t for t in every if t.name in payload["tasks"]):
        path = RESULTS_DIR / f"{name}_{task.name}.png"
        plot(payload["summary"], [task], LABELS, path, {"fashion": 6000})


def _markdown(tables, payload, quick) -> str:
    source = payload["source_backbone"]
    lines = [
        f"Test accuracy, mean ± std over {len(payload['seeds'])} seed(s), and "
        "mean wall time of one fit (CPU, torch threads: "
        f"{payload['torch_threads']}); best per column in bold. Every method uses "
        "the same splits; the hand-written loops see about "
        f"{payload['epoch_budget']['images_per_fit']} images per fit (at most "
        f"{payload['epoch_budget']['max_epochs']} epochs), the library rows use "
        "their own max_epochs='auto'. Source backbone for "
        f"Fashion-MNIST: {source['recipe']}; test accuracy on classes 0-4 "
        f"{source['test_accuracy_source_classes']}.",
        "",
        *[t + "\n" for t in tables],
    ]
    if "anchor" in payload:
        a = payload["anchor"]
        lines.append(
            f"Anchor: `FineTuneClassifier('fmnist_resnet', weights=None, freeze=0, "
            f"lr=2e-3, batch_size=128, max_epochs={a['params']['max_epochs']}, "
            f"augment='flip')` on all {a['n_train']} Fashion-MNIST training images: "
            f"test accuracy **{a['test_accuracy']:.4f}** in {a['fit_seconds']:.0f} s "
            f"(Fashion-MNIST benchmark table, 2 Conv+pooling: {ANCHOR_TARGET})."
        )
    # Merged parts: the wall time is the longest part's, the CPU time the sum.
    parts = payload.get("parts")
    run = f"{len(parts)} part runs, the longest" if parts else "Whole run"
    lines.append(
        f"\n{run}{' (--quick)' if quick else ''}: "
        f"{payload['total_seconds'] / 60:.1f} min wall; "
        f"{payload['total_cpu_seconds'] / 60:.1f} min CPU time in all "
        f"({payload['torch_threads']} torch threads)"
        + ("" if source.get("cached") is False else "; source backbone from cache")
        + "."
    )
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    main()
