"""Never recomputing frozen layers: how much time does it save?

Hypothesis: with the first k stages frozen and no augmentation, every epoch of
plain skorch (``NeuralNetClassifier`` + ``Freezer``), fastai or Keras pushes each
training image through the frozen stages again, although their output never
changes. sktransfer computes it once per image (``cache_frozen=True``) and, with
``cache=<dir>``, once per image across all grid-search candidates and folds. So:

1. with ``freeze="all"``, epochs after the first are >= 5x faster than plain skorch
   at equal accuracy;
2. a 3 head sizes x 3 learning rates x 3 folds grid search is >= 4x faster;
3. for partial freezing the saving grows with the number of frozen stages.

Target task: Fashion-MNIST classes 5-9 (real images; the first N training images
of those classes, tested on all 5000 test images of those classes), with the
shipped ``fmnist_resnet`` (28x28) and with ``resnet18`` at 64x64 (random weights:
timing does not depend on them, and ImageNet weights cannot be downloaded here).

Run: ``./dev bench frozen_cache`` (``--quick`` for a smoke run).
"""

from __future__ import annotations

import argparse
import copy
import statistics
import tempfile
import time

import numpy as np
import torch
from _common import markdown_table, write_results
from sklearn.model_selection import GridSearchCV, StratifiedKFold
from skorch import NeuralNetClassifier
from skorch.callbacks import Freezer
from torch import nn

from sktransfer import FineTuneClassifier, resolve_backbone
from sktransfer.datasets import load_fashion_mnist


def target_task(n_train: int):
    X, y = load_fashion_mnist("train")
    X_test, y_test = load_fashion_mnist("test")
    keep = np.flatnonzero(y >= 5)[:n_train]
    test = y_test >= 5
    return X[keep], y[keep] - 5, X_test[test], y_test[test] - 5


class PlainTransferNet(nn.Module):
    """What a skorch user writes: pretrained stages, then a new head."""

    def __init__(self, backbone: nn.Module, hidden: int = 0, n_classes: int = 5):
        super().__init__()
        self.backbone = copy.deepcopy(backbone)
        width = self.backbone.embedding_dim
        layers = [nn.Linear(width, hidden), nn.ReLU()] if hidden else []
        layers.append(nn.Linear(hidden or width, n_classes))
        self.head = nn.Sequential(*layers)

    def forward(self, x):
        return self.head(self.backbone(x))


def plain_inputs(net, X: np.ndarray) -> torch.Tensor:
    """Preprocess once up front, as a plain skorch user would."""
    x = torch.from_numpy(X).float().div(255).unsqueeze(1)
    return net.preprocessing(x)


def plain_skorch(backbone, hidden, lr, epochs, batch_size):
    return NeuralNetClassifier(
        PlainTransferNet,
        module__backbone=backbone,
        module__hidden=hidden,
        criterion=nn.CrossEntropyLoss,
        optimizer=torch.optim.AdamW,
        lr=lr,
        max_epochs=epochs,
        batch_size=batch_size,
        train_split=None,
        callbacks=[("freeze", Freezer("backbone.*"))],
        iterator_train__shuffle=True,
        verbose=0,
    )


def ours(backbone, image_size, *, epochs, batch_size, **params):
    return FineTuneClassifier(
        backbone,
        image_size=image_size,
        max_epochs=epochs,
        batch_size=batch_size,
        schedule=None,
        layer=None,  # freeze=1 ... 6 over all six stages, as measured
        device="cpu",
        random_state=0,
        **params,
    )


def epoch_times(history) -> tuple[float, float]:
    durations = [row["dur"] for row in history]
    later = statistics.median(durations[1:]) if len(durations) > 1 else float("nan")
    return durations[0], later


def per_epoch_comparison(name, image_size, data, epochs, batch_size):
    X, y, X_test, y_test = data
    net = resolve_backbone(
        name, "DEFAULT" if name == "fmnist_resnet" else None, image_size=image_size
    )
    weights = "DEFAULT" if name == "fmnist_resnet" else None
    rows = []
    for label, cache_frozen in (
        ("sktransfer, cached", True),
        ("sktransfer, uncached", False),
    ):
        torch.manual_seed(0)
        clf = ours(
            name,
            image_size,
            epochs=epochs,
            batch_size=batch_size,
            weights=weights,
            freeze="all",
            head_hidden=(64,),
            cache_frozen=cache_frozen,
        )
        start = time.perf_counter()
        clf.fit(X, y)
        total = time.perf_counter() - start
        first, later = epoch_times(clf.history_)
        setup = total - sum(row["dur"] for row in clf.history_)
        rows.append(
            {
                "backbone": name,
                "method": label,
                "first_epoch_s": first + setup,
                "later_epoch_s": later,
                "fit_s": total,
                "accuracy": clf.score(X_test, y_test),
            }
        )
    torch.manual_seed(0)
    plain = plain_skorch(net, 64, 1e-3, epochs, batch_size)
    inputs = plain_inputs(net, X)
    start = time.perf_counter()
    plain.fit(inputs, torch.as_tensor(y))
    total = time.perf_counter() - start
    first, later = epoch_times(plain.history_)
    accuracy = float((plain.predict(plain_inputs(net, X_test)) == y_test).mean())
    rows.append(
        {
            "backbone": name,
            "method": "plain skorch + Freezer",
            "first_epoch_s": first,
            "later_epoch_s": later,
            "fit_s": total,
            "accuracy": accuracy,
        }
    )
    baseline = rows[-1]["later_epoch_s"]
    for row in rows:
        row["speedup_later_epochs"] = baseline / row["later_epoch_s"]
    return rows


def grid_comparison(data, epochs, batch_size, folds):
    X, y, X_test, y_test = data
    net = resolve_backbone("fmnist_resnet", "DEFAULT")
    hidden, lrs = [32, 64, 128], [3e-4, 1e-3, 3e-3]
    cv = StratifiedKFold(folds, shuffle=True, random_state=0)
    results = []
    with tempfile.TemporaryDirectory() as cache_dir:
        grid = GridSearchCV(
            ours(
                "fmnist_resnet",
                None,
                epochs=epochs,
                batch_size=batch_size,
                freeze="all",
                cache=cache_dir,
            ),
            {"head_hidden": [(h,) for h in hidden], "lr": lrs},
            cv=cv,
        )
        start = time.perf_counter()
        grid.fit(X, y)
        results.append(
            {
                "method": "sktransfer, cache=dir",
                "wall_s": time.perf_counter() - start,
                "best_params": {
                    "hidden": grid.best_params_["head_hidden"][0],
                    "lr": grid.best_params_["lr"],
                },
                "cv_score": grid.best_score_,
                "test_accuracy": grid.score(X_test, y_test),
            }
        )
    plain = GridSearchCV(
        plain_skorch(net, 32, 1e-3, epochs, batch_size),
        {"module__hidden": hidden, "lr": lrs},
        cv=cv,
    )
    inputs = plain_inputs(net, X)
    start = time.perf_counter()
    plain.fit(inputs, y)
    results.append(
        {
            "method": "plain skorch + Freezer",
            "wall_s": time.perf_counter() - start,
            "best_params": {
                "hidden": plain.best_params_["module__hidden"],
                "lr": plain.best_params_["lr"],
            },
            "cv_score": plain.best_score_,
            "test_accuracy": float(
                (plain.predict(plain_inputs(net, X_test)) == y_test).mean()
            ),
        }
    )
    for row in results:
        row["speedup"] = results[-1]["wall_s"] / row["wall_s"]
    return results


def partial_freezing(data, epochs, batch_size):
    X, y, _, _ = data
    rows = []
    for freeze in range(1, 7):
        times = {}
        for cache_frozen in (True, False):
            clf = ours(
                "fmnist_resnet",
                None,
                epochs=epochs,
                batch_size=batch_size,
                freeze=freeze,
                head_init="random",
                cache_frozen=cache_frozen,
            )
            clf.fit(X, y)
            times[cache_frozen] = epoch_times(clf.history_)[1]
        stage = clf.module_.backbone.stage_names[freeze - 1]
        rows.append(
            {
                "freeze": freeze,
                "frozen up to": stage,
                "cached_epoch_s": times[True],
                "uncached_epoch_s": times[False],
                "speedup": times[False] / times[True],
                "cache_MiB": clf_cache_mib(X, freeze),
            }
        )
    return rows


def clf_cache_mib(X, freeze) -> float:
    from sktransfer._cache import bytes_per_image

    net = resolve_backbone("fmnist_resnet", "DEFAULT")
    return bytes_per_image(net, freeze) * len(X) / 2**20


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true")
    args = parser.parse_args()
    torch.set_num_threads(max(torch.get_num_threads(), 1))
    n_train, epochs, folds = (600, 3, 2) if args.quick else (2000, 5, 3)
    batch_size = 64
    data = target_task(n_train)
    small = tuple(part[: n_train // 4] for part in data[:2]) + data[2:]

    start = time.perf_counter()
    epochs_rows = per_epoch_comparison("fmnist_resnet", None, data, epochs, batch_size)
    epochs_rows += per_epoch_comparison("resnet18", 64, small, epochs, batch_size)
    print("\n## Time per epoch, freeze='all' (head with 64 hidden units)\n")
    print(
        markdown_table(
            epochs_rows,
            [
                "backbone",
                "method",
                "first_epoch_s",
                "later_epoch_s",
                "speedup_later_epochs",
                "accuracy",
            ],
        )
    )
    grid_rows = grid_comparison(data, epochs, batch_size, folds)
    print(f"\n## GridSearchCV: 3 head sizes x 3 learning rates x {folds} folds\n")
    print(
        markdown_table(
            grid_rows,
            ["method", "wall_s", "speedup", "best_params", "cv_score", "test_accuracy"],
        )
    )
    partial_rows = partial_freezing(data, epochs, batch_size)
    print("\n## Partial freezing, fmnist_resnet (median epoch after the first)\n")
    print(
        markdown_table(
            partial_rows,
            [
                "freeze",
                "frozen up to",
                "cached_epoch_s",
                "uncached_epoch_s",
                "speedup",
                "cache_MiB",
            ],
        )
    )
    path = write_results(
        "frozen_cache",
        {
            "n_train": n_train,
            "epochs": epochs,
            "folds": folds,
            "per_epoch": epochs_rows,
            "grid_search": grid_rows,
            "partial_freezing": partial_rows,
            "wall_s": time.perf_counter() - start,
        },
    )
    print(f"\nwrote {path} ({time.perf_counter() - start:.0f}s)")


if __name__ == "__main__":
    main()
