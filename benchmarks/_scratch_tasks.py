"""The tasks of ``transfer_vs_scratch``: data, backbones and each method's estimator.

Each task is a :class:`_transfer.Task` whose ``methods`` maps a row name (the
keys of ``transfer_vs_scratch.LABELS``) to a factory ``make(seed, epochs)``.
``epochs`` only drives the hand-written loops; the library rows use their own
``max_epochs="auto"``.
"""

from __future__ import annotations

from collections import OrderedDict
from dataclasses import replace

import numpy as np
import torch
from _handwritten import (
    Lite0Tutorial,
    TutorialFineTune,
    UserCNN,
    lite0_imagenet_checkpoint,
    user_cnn_stages,
)
from _transfer import (
    CUSTOM_MEAN,
    CUSTOM_STD,
    FMNIST_MEAN,
    FMNIST_STD,
    Task,
    fashion_mnist_split,
    shipped_checkpoint,
    stages,
    stratified_subset,
)
from safetensors.torch import load_file
from sklearn.datasets import load_digits
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import GridSearchCV, RepeatedStratifiedKFold
from sklearn.pipeline import Pipeline

from sktransfer import FineTuneClassifier, PretrainedFeatureExtractor

__all__ = [
    "FROM_SCRATCH",
    "all_tasks_for_report",
    "digits_task",
    "fashion_task",
    "imagenet_task",
    "user_cnn_task",
]

# What weights=None means for a registered name, spelled out for custom modules.
FROM_SCRATCH = {
    "weights": None,
    "head_init": "random",
    "backbone_lr": FineTuneClassifier().lr,
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
        # The defaults without their second head (on the final embedding).
        "single_head": lambda seed, epochs: finetune(seed, final_head=False),
        "scratch": lambda seed, epochs: FineTuneClassifier(
            **scratch(seed), freeze=0, device="cpu", random_state=seed
        ),
        # What a user writes to train from scratch: a fresh module (or
        # weights=None for a name) and nothing else; the library cannot tell a
        # fresh module from a pretrained one.
        "scratch_defaults": lambda seed, epochs: FineTuneClassifier(
            **{k: v for k, v in scratch(seed).items() if k in ("backbone", "weights")},
            device="cpu",
            random_state=seed,
        ),
        "tutorial": tutorial,
        "tutorial_scratch": tutorial_scratch,
        "lr": extractor_lr,
        "lr_final": lambda seed, epochs: extractor_lr(seed, epochs, layer=None),
        "ft_all": lambda seed, epochs: finetune(seed, freeze="all"),
        "ft_0": lambda seed, epochs: finetune(seed, freeze=0),
        "auto": lambda seed, epochs: finetune(seed, freeze="auto"),
        "grid": lambda seed, epochs: GridSearchCV(
            finetune(seed), {"freeze": [0, "all"]}, cv=3
        ),
        # The same folds; the refit keeps the defaults (freeze=0) unless "all"
        # wins by more than a standard error of the per-fold differences.
        "grid_prefer": lambda seed, epochs: GridSearchCV(
            finetune(seed), {"freeze": [0, "all"]}, cv=3, refit=prefer_freeze_0
        ),
        # The small-data recipe of the user guide: 5 folds, repeated twice, so
        # every image is scored twice and no fold has 3 images per class.
        "grid_repeated": lambda seed, epochs: GridSearchCV(
            finetune(seed),
            {"freeze": [0, "all"]},
            cv=RepeatedStratifiedKFold(n_splits=5, n_repeats=2, random_state=seed),
        ),
    }


def prefer_freeze_0(cv_results) -> int:
    """GridSearchCV ``refit`` rule: ``freeze=0`` unless another candidate wins clearly.

    Clearly: the mean of its per-split score differences to ``freeze=0`` (the
    same folds) exceeds one standard error of those differences. A
    benchmark-only rule, measured against the plain best mean.
    """
    params = cv_results["params"]
    best = int(np.argmax(cv_results["mean_test_score"]))
    default = next(i for i, p in enumerate(params) if p["freeze"] == 0)
    n_splits = sum(
        key.startswith("split") and key.endswith("_test_score") for key in cv_results
    )
    splits = np.array(
        [cv_results[f"split{i}_test_score"] for i in range(n_splits)], dtype=float
    )
    difference = splits[:, best] - splits[:, default]
    standard_error = difference.std(ddof=1) / np.sqrt(n_splits)
    return best if difference.mean() > standard_error else default


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
        ks=(10,) if quick else (10, 50, 250),
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
        if name
        in (
            "defaults",
            "tutorial",
            "lr",
            "lr_final",
            "ft_all",
            "ft_0",
            "auto",
            "grid",
            "grid_prefer",
            "grid_repeated",
        )
    }
    return task


def digits_task(quick: bool) -> Task:
    digits = load_digits()
    task = Task(
        name="digits",
        title="shipped fmnist_resnet (clothes) -> 8x8 digits (test: all other digits)",
        X_pool=digits.images / 16.0,
        y_pool=digits.target,
        ks=(10,) if quick else (5, 10, 50),
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
