"""Ablation of FineTuneClassifier's small-data recipe, one element at a time.

Hypothesis
----------
With few labels the budget, not the method, limits fine-tuning: counting it in
optimiser steps (``max_epochs="auto"``) instead of epochs recovers most of the
gap to a hand-written loop, and the other recipe elements (warm-up, layer-wise
learning-rate decay, label smoothing, weight averaging, BatchNorm
re-estimation, crop augmentation, the probe start, the freeze depth) each move
accuracy by less. Each element is kept in the defaults only if it helps across
tasks, never on one.

Tasks (same splits as ``transfer_vs_scratch``): Fashion-MNIST 0-4 -> 5-9 with
the benchmark's ResNet source (``fashion``) and with a user's own 3-block CNN
given as ``(name, module)`` stages (``user_cnn``); the shipped clothes backbone
-> 8x8 digits (``digits``); the ImageNet EfficientNet-Lite0 on the Fashion
target (``lite0``, only when named: slow). Also only when named: the user's
CNN and EfficientNet-Lite0 on digits (``user_cnn_digits``, ``lite0_digits``).
k labels per class, 3 seeds, test sets of 2,000 images (Fashion) or all other
digits. Each row changes one
parameter from the ``recipe`` row; ``tutorial`` is the hand-written loop (Adam
1e-3, 30 epochs, batch 32) on the same splits.

Run: ``./dev bench recipe_ablation`` (``--tasks fashion digits --ks 10 50``).
Results: ``benchmarks/results/recipe_ablation.{json,md}``.
"""

from __future__ import annotations

import argparse
import contextlib
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

from sktransfer import FineTuneClassifier, _recipe

NAME = "recipe_ablation"
SEEDS = (0, 1, 2)
# The row every other row changes one thing of: the defaults before the head
# moved to mid-level stages. The committed results of recipe_ablation and
# recipe_ablation_schedule were measured when backbone_lr=None meant lr / 3
# (now: lr).
RECIPE = {"freeze": 0, "layer": None, "pooling": "avg"}
# Over RECIPE, the library's defaults since the head moved to mid-level stages.
DEFAULTS = {"layer": "mid", "pooling": "grid"}
VARIANTS = {
    "recipe": {},
    "max_epochs=10 (epoch budget)": {"max_epochs": 10},
    "max_epochs=150 (3x the steps at k=10)": {"max_epochs": 150},
    "head_init='probe'": {"head_init": "probe"},
    "head_init='random'": {"head_init": "random"},
    "warmup=0.1": {"warmup": 0.1},
    "layer_decay=0.7": {"layer_decay": 0.7},
    "label_smoothing=0.1": {"label_smoothing": 0.1},
    "weight_averaging='swa'": {"weight_averaging": "swa"},
    "recalibrate_bn=True": {"recalibrate_bn": True},
    "augment='crop'": {"augment": "crop"},
    "tta=True": {"tta": True},
    "schedule=None (constant lr)": {"schedule": None},
    "backbone_lr=3e-3 (= lr)": {"backbone_lr": 3e-3},
    "backbone_lr=1e-3 (lr / 3, the default before)": {"backbone_lr": 1e-3},
    "freeze=2": {"freeze": 2},
    "freeze='all'": {"freeze": "all"},
    "freeze_batchnorm=True": {"freeze_batchnorm": True},
    # The head on mid-level taps, as the extractor's defaults.
    "layer='mid', pooling='grid', head_init='random'": {
        "layer": "mid",
        "pooling": "grid",
        "head_init": "random",
    },
    "layer='mid', pooling='grid', head_init='probe'": {
        "layer": "mid",
        "pooling": "grid",
        "head_init": "probe",
    },
    "layer='mid', pooling='grid', head_init='probe', backbone_lr=1e-3": {
        "layer": "mid",
        "pooling": "grid",
        "head_init": "probe",
        "backbone_lr": 1e-3,
    },
    "layer='mid', pooling='grid', head_init='probe', backbone_lr=3e-4": {
        "layer": "mid",
        "pooling": "grid",
        "head_init": "probe",
        "backbone_lr": 3e-4,
    },
    "layer='mid', pooling='grid', head_init='probe', weight_averaging='wise'": {
        "layer": "mid",
        "pooling": "grid",
        "head_init": "probe",
        "weight_averaging": "wise",
    },
    "layer='mid', pooling='grid', head_init='probe', freeze_batchnorm=True": {
        "layer": "mid",
        "pooling": "grid",
        "head_init": "probe",
        "freeze_batchnorm": True,
    },
    # The defaults (head on the taps, probe start, backbone at lr / 3) with one
    # change each; auto_min_steps raises the floor of max_epochs="auto" (see
    # auto_steps).
    "defaults, auto floor 200 steps": {**DEFAULTS, "auto_min_steps": 200},
    "defaults, auto floor 300 steps": {**DEFAULTS, "auto_min_steps": 300},
    "defaults, probe_C=0.1": {**DEFAULTS, "probe_C": 0.1},
    "defaults, probe_C=0.01": {**DEFAULTS, "probe_C": 0.01},
    "defaults": DEFAULTS,
    "defaults, final_head=False": {**DEFAULTS, "final_head": False},
    "defaults, final_head=True": {**DEFAULTS, "final_head": True},
    "defaults, warmup=0.1": {**DEFAULTS, "warmup": 0.1},
    "defaults, warmup=0.2": {**DEFAULTS, "warmup": 0.2},
    "defaults, tta=True": {**DEFAULTS, "tta": True},
    "defaults, backbone_lr=3e-4": {**DEFAULTS, "backbone_lr": 3e-4},
    "defaults, backbone_lr=1e-4": {**DEFAULTS, "backbone_lr": 1e-4},
    "defaults, freeze_batchnorm=True": {**DEFAULTS, "freeze_batchnorm": True},
    "defaults, freeze_batchnorm=True, backbone_lr=1e-4": {
        **DEFAULTS,
        "freeze_batchnorm": True,
        "backbone_lr": 1e-4,
    },
    "defaults, schedule=None (constant lr)": {**DEFAULTS, "schedule": None},
    "defaults, lr=1e-3": {**DEFAULTS, "lr": 1e-3},
    "defaults, lr=3e-4": {**DEFAULTS, "lr": 3e-4},
    "defaults, lr=3e-4, backbone_lr=1e-3": {
        **DEFAULTS,
        "lr": 3e-4,
        "backbone_lr": 1e-3,
    },
    "defaults, layer=['layer3', 'layer4']": {**DEFAULTS, "layer": ["layer3", "layer4"]},
    "defaults, backbone_lr=0 (only the head trains)": {**DEFAULTS, "backbone_lr": 0.0},
    "defaults, backbone_lr=0, freeze_batchnorm=True": {
        **DEFAULTS,
        "backbone_lr": 0.0,
        "freeze_batchnorm": True,
    },
    "defaults, freeze_batchnorm=True, lr=3e-4": {
        **DEFAULTS,
        "freeze_batchnorm": True,
        "lr": 3e-4,
    },
    "layer='mid', pooling='grid', freeze='all'": {
        "layer": "mid",
        "pooling": "grid",
        "freeze": "all",
    },
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


@contextlib.contextmanager
def auto_steps(min_steps: int | None):
    """Within the block, ``max_epochs="auto"`` gives at least ``min_steps`` steps."""
    saved = _recipe.AUTO_MIN_STEPS
    if min_steps is not None:
        _recipe.AUTO_MIN_STEPS = min_steps
    try:
        yield
    finally:
        _recipe.AUTO_MIN_STEPS = saved


def run(task: Task, ks, seeds, variants, log=print, tutorial: bool = True) -> list:
    records = []
    spec = task.methods
    # auto_min_steps is the benchmark's knob on the max_epochs="auto" rule, not
    # a parameter of the estimator.
    library_params = {
        name: {key: v for key, v in params.items() if key != "auto_min_steps"}
        for name, params in variants.items()
    }
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
                with auto_steps(variants.get(name, {}).get("auto_min_steps")):
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
    parser.add_argument("--tasks", nargs="+", default=["fashion", "user_cnn", "digits"])
    parser.add_argument("--ks", nargs="+", type=int, default=[10, 50])
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
