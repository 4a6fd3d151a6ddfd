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
1. Within Fashion-MNIST: ``build_fmnist_resnet(5)`` pretrained on classes 0-4 of
   the training set (30k images, trained once and cached in
   ``benchmarks/.cache``), transferred to classes 5-9 with k labelled training
   images per class; tested on all 5000 test images of classes 5-9.
2. Across domains: the shipped ``fmnist_resnet`` (``weights="DEFAULT"``)
   transferred to scikit-learn's 8x8 digits with k labels per class; tested on
   all other digits.
3. Anchor: from-scratch ``FineTuneClassifier`` on all of Fashion-MNIST (60k, 10
   classes) against the "2 Conv+pooling" row of the Fashion-MNIST benchmark table
   (0.916 test accuracy).

Methods (``LABELS`` below): the same architecture from scratch
(``FineTuneClassifier(weights=None, freeze=0)``); the loop of common PyTorch
tutorials (new linear head, every layer trained with Adam 1e-3 and
cross-entropy, fixed epochs: ``_transfer.TutorialFineTune``); frozen embeddings
+ ``LogisticRegression``; ``FineTuneClassifier`` with ``freeze="all"``, 3 and 0
(defaults otherwise); and ``GridSearchCV`` over those freeze depths (inner 3-fold
CV on the training labels). Every method sees the same splits and seeds. A
full-network fit sees about 5,000 images (``epochs = clip(5000 / n_train, 1,
30)``), so all methods train with the same budget; k="all" runs one seed (the
training set is then the same for every seed) and no grid search (too slow here).

Run with ``./dev bench transfer_vs_scratch`` (measured: 27 CPU-minutes with one
torch thread, 32 minutes wall on a 2-core machine shared with other jobs) or
``./dev bench transfer_vs_scratch --quick`` (1 seed, small k, few epochs, 1000 test
images for task 1, no anchor; 2 CPU-minutes, 3 minutes wall). On a busy machine
``OMP_NUM_THREADS=1`` is several times faster than two threads fighting for the
cores. Needs Fashion-MNIST: ``sudo apt-get install dataset-fashion-mnist``.
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
from sklearn.model_selection import GridSearchCV
from sklearn.pipeline import Pipeline

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import RESULTS_DIR, write_results
from _transfer import (
    CUSTOM_MEAN,
    CUSTOM_STD,
    FMNIST_MEAN,
    FMNIST_STD,
    Task,
    TutorialFineTune,
    UserCNN,
    fashion_mnist_split,
    plot,
    pretrain_source,
    pretrain_user_cnn,
    results_table,
    run_task,
    shipped_checkpoint,
    stages,
    stratified_subset,
    summarise,
    user_cnn_stages,
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
    "ft_0": "FineTuneClassifier(freeze=0)",
    "grid": 'GridSearchCV(FineTuneClassifier, freeze=[0, "all"], cv=3)',
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
        "ft_0": lambda seed, epochs: finetune(seed, freeze=0),
        "grid": lambda seed, epochs: GridSearchCV(
            finetune(seed), {"freeze": [0, "all"]}, cv=3
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
        ks=(10, 50) if quick else (10, 50, 250, "all"),
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


def user_cnn_task(fashion: Task, user: dict) -> Task:
    """The same target task from a user's own 3-block CNN (held-out kind)."""
    state = load_file(user["checkpoint"])
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
    )
    task.methods = methods(
        backbone=lambda: "efficientnet_lite0",
        weights=None,
        scratch=lambda seed: {"backbone": "efficientnet_lite0", "weights": None},
        tutorial=None,
    )
    task.methods = {
        name: make
        for name, make in task.methods.items()
        if name in ("defaults", "lr", "lr_final", "ft_all", "ft_0")
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
    args = parser.parse_args()
    warnings.filterwarnings("ignore", category=ConvergenceWarning)
    name = NAME + ("_quick" if args.quick else "")
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
    summary = summarise(records)
    payload.update(records=records, summary=summary)
    tables = [f"### {t.title}\n\n{results_table(summary, t, LABELS)}" for t in tasks]
    if not args.quick:
        write_results(name, payload)  # keep the tasks' results if the anchor fails
        payload["anchor"] = anchor()
    # CPU time of this process: on a shared machine, wall time also counts the
    # time other processes held the cores; CPU time does not.
    payload["total_seconds"] = round(time.perf_counter() - start, 1)
    payload["total_cpu_seconds"] = round(time.process_time() - cpu_start, 1)
    payload["torch_threads"] = torch.get_num_threads()
    write_results(name, payload)
    plot(summary, tasks, LABELS, RESULTS_DIR / f"{name}.png", {"fashion": 6000})
    report = _markdown(tables, payload, args.quick)
    (RESULTS_DIR / f"{name}.md").write_text(report)
    print("\n" + report)
    print(f"Wrote {RESULTS_DIR / name}.{{json,md,png}}")


def _markdown(tables, payload, quick) -> str:
    source = payload["source_backbone"]
    lines = [
        f"Test accuracy, mean ± std over {len(payload['seeds'])} seed(s) (k=all: one "
        "seed), and mean wall time of one fit (CPU, torch threads: "
        f"{torch.get_num_threads()}); best per "
        "column in bold. Every method uses the same splits; full-network fits see "
        f"about {payload['epoch_budget']['images_per_fit']} images (at most "
        f"{payload['epoch_budget']['max_epochs']} epochs). Source backbone for "
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
    lines.append(
        f"\nWhole run{' (--quick)' if quick else ''}: "
        f"{payload['total_seconds'] / 60:.1f} min wall, "
        f"{payload['total_cpu_seconds'] / 60:.1f} min CPU time of the process "
        f"({payload['torch_threads']} torch threads)"
        + ("" if source.get("cached") is False else "; source backbone from cache")
        + "."
    )
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    main()
