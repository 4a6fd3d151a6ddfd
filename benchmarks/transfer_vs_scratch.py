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

Methods (``LABELS`` below): ``FineTuneClassifier(backbone)`` with nothing else
set (its default is ``freeze=0``, so no separate ``freeze=0`` row); the same
architecture from scratch; the loop of common PyTorch tutorials (new linear
head, every layer trained with Adam 1e-3 and cross-entropy, batch 32, fixed
epochs: ``_handwritten.TutorialFineTune``) from the pretrained and from random
weights; frozen embeddings + ``LogisticRegression`` (the extractor's default
``layer`` and the final layer); ``freeze="all"``; and ``GridSearchCV`` over
``freeze`` (inner 3-fold CV on the training labels). Every method sees the same
splits and seeds. The hand-written loops run ``epochs = clip(5000 / n_train, 1,
30)`` epochs; the library rows use its own ``max_epochs="auto"``.

Run with ``./dev bench transfer_vs_scratch`` (one process, all tasks), or one
process per core and then a merge::

    ./dev bench transfer_vs_scratch --tasks fashion
    ./dev bench transfer_vs_scratch --tasks user_cnn,digits,lite0_fashion
    ./dev bench transfer_vs_scratch --merge

``--quick``: 1 seed, small k, a 1-epoch source, 1000 test images. Use
``OMP_NUM_THREADS=1`` per process; two processes with two threads each on two
cores run several times slower. Needs Fashion-MNIST: ``sudo apt-get install
dataset-fashion-mnist``.
"""

from __future__ import annotations

import argparse
import sys
import time
import warnings
from collections import OrderedDict
from dataclasses import replace
from pathlib import Path

import numpy as np
import torch
from safetensors.torch import load_file
from sklearn.datasets import load_digits
from sklearn.exceptions import ConvergenceWarning
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import GridSearchCV, RepeatedStratifiedKFold
from sklearn.pipeline import Pipeline

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import RESULTS_DIR, write_results
from _handwritten import (
    Lite0Tutorial,
    TutorialFineTune,
    UserCNN,
    lite0_imagenet_checkpoint,
    pretrain_user_cnn,
    user_cnn_stages,
)
from _parts import read_parts
from _transfer import (
    CUSTOM_MEAN,
    CUSTOM_STD,
    FMNIST_MEAN,
    FMNIST_STD,
    Task,
    fashion_mnist_split,
    plot,
    pretrain_source,
    results_table,
    run_task,
    shipped_checkpoint,
    stages,
    stratified_subset,
    summarise,
)

from sktransfer import FineTuneClassifier, PretrainedFeatureExtractor
from sktransfer.datasets import load_fashion_mnist

NAME = "transfer_vs_scratch"
# What weights=None means for a registered name, spelled out for custom modules.
FROM_SCRATCH = {
    "weights": None,
    "head_init": "random",
    "backbone_lr": FineTuneClassifier().lr,
}
SEEDS = (0, 1, 2)
ANCHOR_TARGET = 0.916  # Fashion-MNIST benchmark table, "2 Conv+pooling"
LABELS = {
    "defaults": "FineTuneClassifier(backbone): library defaults, nothing else set",
    "scratch": "from scratch (FineTuneClassifier, weights=None, freeze=0)",
    "tutorial": "hand-written torch loop (new head, fine-tune all, Adam 1e-3)",
    "tutorial_scratch": "hand-written torch loop from random weights",
    "lr": "PretrainedFeatureExtractor(backbone) + LogisticRegression",
    "lr_final": "PretrainedFeatureExtractor(layer=None) + LogisticRegression",
    "ft_all": 'FineTuneClassifier(freeze="all")',
    "grid": 'GridSearchCV(FineTuneClassifier, freeze=[0, "all"], cv=3)',
    "grid_repeated": "the same, cv=RepeatedStratifiedKFold(5 folds x 2)",
}


def methods(backbone, weights, scratch, tutorial, tutorial_scratch=None):
    """Estimator factories ``make(seed, epochs)`` for one source backbone.

    ``backbone()`` returns what a user passes (a name or pretrained stages);
    rows other than the baselines use library defaults unless they name one
    parameter. ``epochs`` (the benchmark's budget) only drives the
    hand-written loops and ``max_epochs`` of the from-scratch row's budget is
    the library's own.
    """

    def finetune(seed, **params):
        extra = {} if weights is None else {"weights": weights}
        return FineTuneClassifier(
            backbone(), **extra, **params, device="cpu", random_state=seed
        )

    def extractor_lr(seed, epochs, **params):
        extra = {} if weights is None else {"weights": weights}
        extractor = PretrainedFeatureExtractor(
            backbone(), **extra, **params, device="cpu", progress=False
        )
        return Pipeline(
            [("emb", extractor), ("clf", LogisticRegression(max_iter=3000))]
        )

    return {
        "defaults": lambda seed, epochs: finetune(seed),
        "scratch": lambda seed, epochs: FineTuneClassifier(
            **scratch(seed), freeze=0, device="cpu", random_state=seed
        ),
        "tutorial": tutorial,
        "tutorial_scratch": tutorial_scratch,
        "lr": extractor_lr,
        "lr_final": lambda seed, epochs: extractor_lr(seed, epochs, layer=None),
        "ft_all": lambda seed, epochs: finetune(seed, freeze="all"),
        "grid": lambda seed, epochs: GridSearchCV(
            finetune(seed), {"freeze": [0, "all"]}, cv=3
        ),
        # The small-data recipe of the user guide: 5 folds, repeated twice, so
        # every image is scored twice and no fold has 3 images per class.
        "grid_repeated": lambda seed, epochs: GridSearchCV(
            finetune(seed),
            {"freeze": [0, "all"]},
            cv=RepeatedStratifiedKFold(n_splits=5, n_repeats=2, random_state=seed),
        ),
    }


def _pretrained_stages(n_classes, checkpoint):
    """The benchmark's source ResNet as a user holds it: stages with weights."""
    state = load_file(checkpoint)
    parts = stages(n_classes)
    holder = torch.nn.Sequential(OrderedDict(parts))
    holder.load_state_dict({k: v for k, v in state.items() if not k.startswith("fc.")})
    return list(holder.named_children())


def fashion_task(source: dict, quick: bool) -> Task:
    X_pool, y_pool = fashion_mnist_split((5, 6, 7, 8, 9), "train")
    X_test, y_test = fashion_mnist_split((5, 6, 7, 8, 9), "test")
    if quick:
        keep = stratified_subset(y_test, 1000)
        X_test, y_test = X_test[keep], y_test[keep]
    checkpoint = source["checkpoint"]
    task = Task(
        name="fashion",
        title=f"Fashion-MNIST classes 0-4 -> classes 5-9 (test: {len(y_test)} images)",
        X_pool=X_pool,
        y_pool=y_pool,
        X_test=X_test,
        y_test=y_test,
        ks=(10, 50) if quick else (10, 50, 250),
    )
    task.methods = methods(
        backbone=lambda: _pretrained_stages(5, checkpoint),
        weights=None,
        # Same architecture and normalisation, random weights, seeded.
        # Random stages passed as a module: say explicitly that nothing is
        # pretrained (no probe initialisation, one learning rate everywhere).
        scratch=lambda seed: {"backbone": stages(5, seed=seed), **FROM_SCRATCH},
        tutorial=lambda seed, epochs: TutorialFineTune(
            lambda: load_file(checkpoint),
            5,
            CUSTOM_MEAN,
            CUSTOM_STD,
            epochs=epochs,
            seed=seed,
        ),
        tutorial_scratch=lambda seed, epochs: TutorialFineTune(
            None, 5, CUSTOM_MEAN, CUSTOM_STD, epochs=epochs, seed=seed
        ),
    )
    return task


def user_cnn_task(fashion: Task, user: dict, load: bool = True) -> Task:
    """The same target task from a user's own 3-block CNN (held-out kind)."""
    state = load_file(user["checkpoint"]) if load else None
    task = replace(
        fashion,
        name="user_cnn",
        title="User's 3-block CNN, Fashion-MNIST classes 0-4 -> 5-9",
    )
    task.methods = methods(
        backbone=lambda: user_cnn_stages(state),
        weights=None,
        scratch=lambda seed: {"backbone": user_cnn_stages(seed=seed), **FROM_SCRATCH},
        tutorial=lambda seed, epochs: TutorialFineTune(
            lambda: state,
            5,
            CUSTOM_MEAN,
            CUSTOM_STD,
            epochs=epochs,
            seed=seed,
            build=UserCNN,
        ),
        tutorial_scratch=lambda seed, epochs: TutorialFineTune(
            None, 5, CUSTOM_MEAN, CUSTOM_STD, epochs=epochs, seed=seed, build=UserCNN
        ),
    )
    return task


def imagenet_task(fashion: Task) -> Task:
    """ImageNet EfficientNet-Lite0 on the same Fashion-MNIST target task."""
    task = replace(
        fashion,
        name="lite0_fashion",
        title="ImageNet EfficientNet-Lite0 -> Fashion-MNIST classes 5-9",
        # 64 px inputs through a 4M-parameter network: k=250 is too slow here.
        ks=tuple(k for k in fashion.ks if k in (10, 50)),
    )
    task.methods = methods(
        backbone=lambda: "efficientnet_lite0",
        weights=None,
        scratch=lambda seed: {"backbone": "efficientnet_lite0", "weights": None},
        # The tutorial feeds the size the library chooses for 28 px images.
        tutorial=lambda seed, epochs: TutorialFineTune(
            lite0_imagenet_checkpoint,
            1000,
            (0.5,),
            (0.5,),
            epochs=epochs,
            seed=seed,
            build=Lite0Tutorial,
            size=64,
        ),
    )
    task.methods = {
        name: make
        for name, make in task.methods.items()
        if name in ("defaults", "tutorial", "lr", "lr_final", "ft_all", "grid")
    }
    return task


def digits_task(quick: bool) -> Task:
    digits = load_digits()
    task = Task(
        name="digits",
        title="shipped fmnist_resnet (clothes) -> 8x8 digits (test: all other digits)",
        X_pool=digits.images / 16.0,
        y_pool=digits.target,
        ks=(5, 10) if quick else (5, 10, 50),
        test_rest=True,
    )
    task.methods = methods(
        backbone=lambda: "fmnist_resnet",
        weights=None,
        scratch=lambda seed: {"backbone": "fmnist_resnet", "weights": None},
        tutorial=lambda seed, epochs: TutorialFineTune(
            shipped_checkpoint, 10, FMNIST_MEAN, FMNIST_STD, epochs=epochs, seed=seed
        ),
        tutorial_scratch=lambda seed, epochs: TutorialFineTune(
            None, 10, FMNIST_MEAN, FMNIST_STD, epochs=epochs, seed=seed
        ),
    )
    return task


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
    parser.add_argument("--quick", action="store_true", help="smoke run, ~2-3 min")
    parser.add_argument(
        "--tasks",
        help="comma-separated task names to run (default: all); the results go "
        "to a part file that --merge combines, so tasks can run one per core",
    )
    parser.add_argument(
        "--methods",
        help="comma-separated methods to run (default: all but "
        "grid_repeated, which runs only when named)",
    )
    parser.add_argument(
        "--ks", help="comma-separated label budgets to run (default: each task's)"
    )
    parser.add_argument(
        "--merge", action="store_true", help="combine the part files into one report"
    )
    args = parser.parse_args()
    warnings.filterwarnings("ignore", category=ConvergenceWarning)
    name = NAME + ("_quick" if args.quick else "")
    if args.merge:
        return merge_parts(name)
    seeds = SEEDS[:1] if args.quick else SEEDS
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
    for task in tasks:
        task.methods = {
            name: make
            for name, make in task.methods.items()
            if (name in methods if methods else name != "grid_repeated")
        }
        if args.ks:
            task.ks = tuple(k for k in task.ks if str(k) in args.ks.split(","))
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
    if not args.quick:
        payload["anchor"] = anchor()
    report(name, payload, tasks)


def all_tasks_for_report(quick: bool) -> list[Task]:
    """The tasks' titles, budgets and method order, without loading models."""
    source = {"checkpoint": None}
    fashion = fashion_task(source, quick)
    user = {"checkpoint": None}
    return [
        fashion,
        user_cnn_task(fashion, user, load=False),
        digits_task(quick),
        imagenet_task(fashion),
    ]


def merge_parts(name: str) -> None:
    """Combine ``<name>.part-*.json`` (one per process) into the report."""
    try:
        payload = read_parts(name, key=("task", "method", "k", "seed"))
    except FileNotFoundError as exc:
        sys.exit(f"{exc}; run --tasks first.")
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
    plot(summary, tasks, LABELS, RESULTS_DIR / f"{name}.png", {"fashion": 6000})
    text = _markdown(tables, payload, payload["quick"])
    (RESULTS_DIR / f"{name}.md").write_text(text)
    print("\n" + text)
    print(f"Wrote {RESULTS_DIR / name}.{{json,md,png}}")


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
