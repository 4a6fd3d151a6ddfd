"""Ablation of FineTuneClassifier's fine-tuning recipe, one element at a time.

Hypothesis
----------
Each element of the defaults earns its place across tasks, never on one: with
few labels, counting the budget in optimiser steps (``max_epochs="auto"``)
matters most; the probe start, the head on mid-level stages, warm-up and the
cosine schedule, the second head, the backbone's slower rate and the frozen
BatchNorm statistics each move accuracy by less, and none should lose clearly
on one task what it gains on another. ``freeze="auto"`` (the default) should
match the better of fine-tuning (``freeze=0``) and the exact probe
(``freeze="all"``).

Tasks (same splits as ``transfer_vs_scratch``): Fashion-MNIST 0-4 -> 5-9 with
the benchmark's ResNet source (``fashion``) and with a user's own 3-block CNN
given as ``(name, module)`` stages (``user_cnn``); the shipped clothes backbone
-> 8x8 digits (``digits``); the ImageNet EfficientNet-Lite0, the default
backbone, on the Fashion target (``lite0``). Also when named: the user's CNN
and EfficientNet-Lite0 on digits (``user_cnn_digits``, ``lite0_digits``). 10
labels per class, 3 seeds, test sets of 2,000 images (Fashion) or all other
digits. The ``recipe`` row is the library's defaults with ``freeze=0``, so
that every fine-tuning element takes effect; each other row changes one thing
of it, and ``tutorial`` is the hand-written loop (Adam 1e-3, 30 epochs, batch
32) on the same splits.

Run: ``./dev bench recipe_ablation`` (about 30 minutes on 2 cores).
Results: ``benchmarks/results/recipe_ablation.{json,md}``.
"""

from __future__ import annotations

import argparse
import sys
import time
import warnings
from pathlib import Path

import numpy as np
import torch
from safetensors.torch import load_file
from sklearn.datasets import load_digits
from sklearn.exceptions import ConvergenceWarning

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
from _transfer import (
    CUSTOM_MEAN,
    CUSTOM_STD,
    FMNIST_MEAN,
    FMNIST_STD,
    Task,
    fashion_mnist_split,
    pretrain_source,
    shipped_checkpoint,
    stages,
    stratified_subset,
)

from sktransfer import FineTuneClassifier

NAME = "recipe_ablation"
SEEDS = (0, 1, 2)
# The row every other row changes one thing of: the defaults, fine-tuning
# every stage (with freeze="auto" the probe often wins and hides the recipe).
RECIPE = {"freeze": 0}
VARIANTS = {
    "recipe": {},
    "freeze='auto' (the defaults)": {"freeze": "auto"},
    "freeze='all' (the exact probe)": {"freeze": "all"},
    "max_epochs=10 (an epoch budget, not steps)": {"max_epochs": 10},
    "head_init='random' (no probe start)": {"head_init": "random"},
    "layer=None, pooling='avg' (head on the final embedding)": {
        "layer": None,
        "pooling": "avg",
    },
    "final_head=False (no second head)": {"final_head": False},
    "warmup=0": {"warmup": 0.0},
    "schedule=None (constant lr)": {"schedule": None},
    "backbone_lr=3e-3 (the head's rate)": {"backbone_lr": 3e-3},
    "freeze_batchnorm=True": {"freeze_batchnorm": True},
    # "auto" refits a module of your own (fashion, user_cnn), not a registered
    # backbone: this row changes the first two tasks only.
    "bn_stats='pretrained'": {"bn_stats": "pretrained"},
}


def tasks(test_size: int) -> list[Task]:
    source = pretrain_source(epochs=3)
    user = pretrain_user_cnn(epochs=3)
    X_pool, y_pool = fashion_mnist_split((5, 6, 7, 8, 9), "train")
    X_test, y_test = fashion_mnist_split((5, 6, 7, 8, 9), "test")
    keep = stratified_subset(y_test, test_size)
    X_test, y_test = X_test[keep], y_test[keep]
    fashion = dict(X_pool=X_pool, y_pool=y_pool, X_test=X_test, y_test=y_test)
    loaded = load_digits()
    # Every digit not trained on is a test digit.
    digits = dict(X_pool=loaded.images / 16.0, y_pool=loaded.target, test_rest=True)
    user_state = load_file(user["checkpoint"])
    out = [
        Task("fashion", "Fashion 0-4 ResNet -> 5-9", ks=(), **fashion),
        Task("user_cnn", "Fashion 0-4 user CNN -> 5-9", ks=(), **fashion),
        Task("digits", "shipped fmnist_resnet -> digits", ks=(), **digits),
        Task("lite0", "ImageNet EfficientNet-Lite0 -> Fashion 5-9", ks=(), **fashion),
        Task("lite0_digits", "ImageNet EfficientNet-Lite0 -> digits", ks=(), **digits),
        Task("user_cnn_digits", "Fashion 0-4 user CNN -> digits", ks=(), **digits),
    ]
    out[0].methods = {
        "backbone": lambda: stages(5),
        "weights": source["backbone_weights"],
        "image_size": 28,
        "tutorial": lambda seed: TutorialFineTune(
            lambda: load_file(source["checkpoint"]),
            5,
            CUSTOM_MEAN,
            CUSTOM_STD,
            seed=seed,
        ),
    }
    out[1].methods = {
        "backbone": lambda: user_cnn_stages(user_state),
        "weights": None,
        "image_size": 28,
        "tutorial": lambda seed: TutorialFineTune(
            lambda: user_state, 5, CUSTOM_MEAN, CUSTOM_STD, seed=seed, build=UserCNN
        ),
    }
    out[2].methods = {
        "backbone": lambda: "fmnist_resnet",
        "weights": "DEFAULT",
        "image_size": None,
        "tutorial": lambda seed: TutorialFineTune(
            shipped_checkpoint, 10, FMNIST_MEAN, FMNIST_STD, seed=seed
        ),
    }
    out[3].methods = {
        "backbone": lambda: "efficientnet_lite0",
        "weights": "DEFAULT",
        "image_size": None,  # the library's choice for 28 px images: 64 px
        "tutorial": lambda seed: TutorialFineTune(
            lite0_imagenet_checkpoint,
            1000,
            (0.5,),
            (0.5,),
            seed=seed,
            build=Lite0Tutorial,
            size=64,
        ),
    }
    # The second ImageNet task: the same network and tutorial, digits as target.
    out[4].methods = out[3].methods
    # The user's CNN across domains: the same network and tutorial as user_cnn.
    out[5].methods = out[1].methods
    return out


def run(task: Task, ks, seeds, variants, log=print, tutorial: bool = True) -> list:
    records = []
    spec = task.methods
    library_params = variants
    for k in ks:
        for seed in seeds:
            X_train, y_train, X_test, y_test = task.split(k, seed)
            makers = {
                name: (
                    lambda params=params: FineTuneClassifier(
                        spec["backbone"](),
                        weights=spec["weights"],
                        image_size=spec["image_size"],
                        device="cpu",
                        random_state=seed,
                        **{**RECIPE, **params},
                    )
                )
                for name, params in library_params.items()
            }
            if tutorial:
                makers["tutorial"] = lambda: spec["tutorial"](seed)
            for name, make in makers.items():
                model = make()
                start = time.perf_counter()
                model.fit(X_train, y_train)
                seconds = time.perf_counter() - start
                accuracy = float(np.mean(model.predict(X_test) == y_test))
                records.append(
                    dict(
                        task=task.name,
                        variant=name,
                        k=k,
                        seed=seed,
                        accuracy=accuracy,
                        fit_seconds=round(seconds, 2),
                        epochs=getattr(model, "n_epochs_", model_epochs(model)),
                    )
                )
                log(
                    f"  {task.name} k={k} seed={seed} {name:<30} acc {accuracy:.3f}"
                    f"  {seconds:5.1f} s"
                )
    return records


def summarise(records: list) -> list:
    """Mean and std of accuracy per (variant, task, k), in the order run."""
    groups: dict = {}
    for r in records:
        groups.setdefault((r["variant"], r["task"], r["k"]), []).append(r["accuracy"])
    return [
        {
            "variant": variant,
            "column": f"{task} k={k}",
            "accuracy_mean": round(float(np.mean(acc)), 4),
            "accuracy_std": round(float(np.std(acc)), 4),
        }
        for (variant, task, k), acc in groups.items()
    ]


def model_epochs(model) -> int | None:
    return getattr(model, "epochs", None)


def table(records: list, tasks_run, ks) -> str:
    variants = list(dict.fromkeys(r["variant"] for r in records))
    columns = [(t, k) for t in tasks_run for k in ks]
    head = "| variant | " + " | ".join(f"{t} k={k}" for t, k in columns)
    lines = [head + " | mean |", "|---|" + "---:|" * (len(columns) + 1)]
    for variant in variants:
        cells, means = [], []
        for t, k in columns:
            acc = [
                r["accuracy"]
                for r in records
                if r["variant"] == variant and r["task"] == t and r["k"] == k
            ]
            if acc:
                means.append(np.mean(acc))
                cells.append(f"{np.mean(acc):.3f} ± {np.std(acc):.3f}")
            else:
                cells.append("")
        mean = f"{np.mean(means):.3f}" if means else ""
        lines.append(f"| {variant} | " + " | ".join(cells) + f" | {mean} |")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument(
        "--tasks", nargs="+", default=["fashion", "user_cnn", "digits", "lite0"]
    )
    parser.add_argument("--ks", nargs="+", type=int, default=[10])
    parser.add_argument("--seeds", type=int, default=len(SEEDS))
    parser.add_argument("--variants", nargs="+", default=list(VARIANTS))
    parser.add_argument("--test-size", type=int, default=2000)
    parser.add_argument("--name", default=NAME)
    parser.add_argument(
        "--no-tutorial", action="store_true", help="skip the hand-written loop row"
    )
    args = parser.parse_args()
    warnings.filterwarnings("ignore", category=ConvergenceWarning)
    variants = {name: VARIANTS[name] for name in args.variants}
    seeds = SEEDS[: args.seeds]
    start = time.perf_counter()
    records = []
    for task in tasks(args.test_size):
        if task.name in args.tasks:
            print(f"\n== {task.title}")
            records += run(
                task, args.ks, seeds, variants, tutorial=not args.no_tutorial
            )
    extra = {"recipe": RECIPE, "variants": variants}
    save(
        args.name,
        "recipe_ablation",
        __doc__,
        records,
        args.tasks,
        seeds,
        args.ks,
        start,
        **extra,
    )


def save(name, script, doc, records, columns, seeds, ks, start, **extra) -> None:
    """Write ``results/NAME.{json,md}`` of a comparison of variants; print it.

    ``doc`` is the script's docstring (its hypothesis is kept), ``columns`` the
    task names of the table, ``start`` the ``perf_counter`` of the run's start;
    ``extra`` entries go into the JSON after the hypothesis.
    """
    payload = {
        "hypothesis": doc.split("Hypothesis\n----------\n")[1].split("\n\n")[0],
        **extra,
        "seeds": list(seeds),
        "ks": ks,
        "records": records,
        "summary": summarise(records),
        "total_seconds": round(time.perf_counter() - start, 1),
        "torch_threads": torch.get_num_threads(),
    }
    write_results(name, payload)
    report = table(records, columns, ks)
    (RESULTS_DIR / f"{name}.md").write_text(report + "\n")
    print("\n" + report)


if __name__ == "__main__":
    main()
