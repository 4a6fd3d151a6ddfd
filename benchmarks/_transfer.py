"""Helpers of the transfer benchmarks: data, the source backbone, running, reports.

Kept out of the benchmark script so that it reads as the experiment: which tasks,
which label budgets, which methods. Everything here is plain torch/scikit-learn.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from safetensors.torch import load_file, save_file
from torch import nn

from sktransfer.backbones._fmnist_training import train_fmnist_resnet
from sktransfer.backbones._shipped import FMNIST_PREPROCESSING, build_fmnist_resnet
from sktransfer.datasets import load_fashion_mnist

CACHE_DIR = Path(__file__).resolve().parent / ".cache"
# Normalisation the library applies to a custom 1-channel module (see
# sktransfer/backbones/_resolve.py): (x - 0.5) / 0.5. The source backbone is
# pretrained with exactly this, so it sees the same inputs when transferred.
CUSTOM_MEAN, CUSTOM_STD = (0.5,), (0.5,)
FMNIST_MEAN, FMNIST_STD = FMNIST_PREPROCESSING.mean, FMNIST_PREPROCESSING.std


# --------------------------------------------------------------------- data
@dataclass
class Task:
    """A target task: a pool to draw labelled images from, and a test set.

    With ``test_rest=True`` the test set is every pool image not drawn for
    training (digits); otherwise it is the fixed ``X_test, y_test``.
    """

    name: str
    title: str
    X_pool: np.ndarray
    y_pool: np.ndarray
    ks: Sequence[int | str]
    X_test: np.ndarray | None = None
    y_test: np.ndarray | None = None
    test_rest: bool = False
    methods: dict[str, Callable] = field(default_factory=dict)

    def split(self, k: int | str, seed: int):
        """Training images: ``k`` per class (or all), drawn with ``seed``."""
        if k == "all":
            train = np.arange(len(self.y_pool))
        else:
            rng = np.random.RandomState(seed)
            train = np.sort(
                np.concatenate(
                    [
                        rng.choice(np.flatnonzero(self.y_pool == c), k, replace=False)
                        for c in np.unique(self.y_pool)
                    ]
                )
            )
        X_train, y_train = self.X_pool[train], self.y_pool[train]
        if self.test_rest:
            rest = np.setdiff1d(np.arange(len(self.y_pool)), train)
            return X_train, y_train, self.X_pool[rest], self.y_pool[rest]
        return X_train, y_train, self.X_test, self.y_test


def fashion_mnist_split(classes: Sequence[int], subset: str):
    """Fashion-MNIST images (uint8) and labels of ``classes`` only."""
    X, y = load_fashion_mnist(subset)
    keep = np.isin(y, classes)
    return X[keep], y[keep]


def stratified_subset(y: np.ndarray, n: int, seed: int = 0) -> np.ndarray:
    """Indices of ``n`` images with classes in proportion (for ``--quick``)."""
    rng = np.random.RandomState(seed)
    classes = np.unique(y)
    per_class = n // len(classes)
    picks = [
        rng.choice(np.flatnonzero(y == c), per_class, replace=False) for c in classes
    ]
    return np.sort(np.concatenate(picks))


def to_tensor(X: np.ndarray, mean, std, size: int = 28) -> torch.Tensor:
    """Images ``(n, H, W)``, uint8 or floats in [0, 1] -> ``(n, 1, size, size)``."""
    x = torch.as_tensor(np.asarray(X)).float()
    if np.asarray(X).dtype == np.uint8:
        x = x / 255
    x = x.unsqueeze(1)
    if tuple(x.shape[-2:]) != (size, size):
        x = F.interpolate(x, size=(size, size), mode="bilinear", align_corners=False)
    return (x - mean[0]) / std[0]


# ------------------------------------------------------------ source backbone
def predict_batched(model: nn.Module, x: torch.Tensor, batch_size=500) -> np.ndarray:
    model.eval()
    with torch.inference_mode():
        logits = [model(x[i : i + batch_size]) for i in range(0, len(x), batch_size)]
    return torch.cat(logits).argmax(1).numpy()


def pretrain_source(classes=(0, 1, 2, 3, 4), *, epochs=3, seed=0, lr=4e-3) -> dict:
    """Train ``build_fmnist_resnet(len(classes))`` on those Fashion-MNIST classes.

    The recipe of the shipped backbone (``train_fmnist_resnet``, also used by
    ``scripts/train_shipped_backbone.py``: AdamW, one-cycle, label smoothing 0.1,
    2-px shifts and flips, batch 128) with the custom-module normalisation.
    Cached under ``benchmarks/.cache``: the full checkpoint (what a hand-written
    loop loads) and the backbone without ``fc`` (what sktransfer loads as
    ``weights=<file>`` for the stages list).
    """
    tag = f"fmnist{''.join(map(str, classes))}_resnet_e{epochs}_s{seed}"
    full, stem = CACHE_DIR / f"{tag}.safetensors", CACHE_DIR / f"{tag}_backbone"
    backbone, meta_path = stem.with_suffix(".safetensors"), CACHE_DIR / f"{tag}.json"
    if full.is_file() and backbone.is_file() and meta_path.is_file():
        return {**json.loads(meta_path.read_text()), "cached": True}
    X, y = fashion_mnist_split(classes, "train")
    X_test, y_test = fashion_mnist_split(classes, "test")
    x, x_test = (
        to_tensor(X, CUSTOM_MEAN, CUSTOM_STD),
        to_tensor(X_test, CUSTOM_MEAN, CUSTOM_STD),
    )
    y = torch.as_tensor(np.searchsorted(classes, y))
    start = time.perf_counter()
    print(f"Pretraining the source backbone on {len(x)} images ({epochs} epochs)")
    model = train_fmnist_resnet(
        x,
        y,
        n_classes=len(classes),
        epochs=epochs,
        seed=seed,
        lr=lr,
        on_epoch=lambda epoch, model, loss: print(
            f"  epoch {epoch}: {time.perf_counter() - start:.0f} s", flush=True
        ),
    )
    seconds = time.perf_counter() - start
    accuracy = float(
        (predict_batched(model, x_test) == np.searchsorted(classes, y_test)).mean()
    )
    CACHE_DIR.mkdir(parents=True, exist_ok=True)
    state = {key: value.contiguous() for key, value in model.state_dict().items()}
    save_file(state, str(full))
    save_file({k: v for k, v in state.items() if not k.startswith("fc.")}, backbone)
    meta = {
        "classes": list(classes),
        "n_images": len(x),
        "recipe": (
            f"AdamW lr={lr} wd=5e-4, one-cycle, {epochs} epochs, batch 128, label "
            f"smoothing 0.1, 2-px shifts + flips, inputs (x-0.5)/0.5, seed {seed}"
        ),
        "test_accuracy_source_classes": round(accuracy, 4),
        "train_seconds": round(seconds, 1),
        "checkpoint": str(full),
        "backbone_weights": str(backbone),
    }
    meta_path.write_text(json.dumps(meta, indent=2) + "\n")
    print(f"  source test accuracy {accuracy:.4f} ({seconds:.0f} s)")
    return {**meta, "cached": False}


def stages(n_classes: int, seed: int | None = None) -> list[tuple[str, nn.Module]]:
    """Stages of a fresh ``build_fmnist_resnet`` (everything but ``fc``)."""
    with torch.random.fork_rng():
        if seed is not None:
            torch.manual_seed(seed)
        model = build_fmnist_resnet(n_classes)
    return [(name, child) for name, child in model.named_children() if name != "fc"]


def shipped_checkpoint() -> dict:
    """State dict of the shipped ``fmnist_resnet`` (10-class head included)."""
    path = resources.files("sktransfer._data").joinpath("fmnist_resnet.safetensors")
    with resources.as_file(path) as file:
        return load_file(str(file))


# ------------------------------------------------------------------ running
def epochs_for(n_train: int, *, images_per_fit: int, max_epochs: int) -> int:
    """Epochs so that a fit sees about ``images_per_fit`` images (1..max)."""
    return int(np.clip(round(images_per_fit / n_train), 1, max_epochs))


def run_task(task: Task, seeds: Sequence[int], epoch_budget: dict, log=print) -> list:
    """Fit every method on every (k, seed) split; one record per fit."""
    records = []
    for k in task.ks:
        # k="all" trains on the same images whatever the seed: one seed only.
        for seed in seeds[:1] if k == "all" else seeds:
            X_train, y_train, X_test, y_test = task.split(k, seed)
            epochs = epochs_for(len(y_train), **epoch_budget)
            for method, make in task.methods.items():
                if make is None or (k == "all" and method == "grid"):
                    continue
                model = make(seed=seed, epochs=epochs)
                start = time.perf_counter()
                model.fit(X_train, y_train)
                fit_seconds = time.perf_counter() - start
                accuracy = float(np.mean(model.predict(X_test) == y_test))
                record = {
                    "task": task.name,
                    "method": method,
                    "k": k,
                    "seed": seed,
                    "n_train": len(y_train),
                    "n_test": len(y_test),
                    "epochs": epochs,
                    "accuracy": accuracy,
                    "fit_seconds": round(fit_seconds, 2),
                }
                if hasattr(model, "best_params_"):
                    record["best_freeze"] = model.best_params_["freeze"]
                    cv = model.cv_results_
                    record["cv_mean_accuracy"] = {
                        str(params["freeze"]): round(float(mean), 4)
                        for params, mean in zip(
                            cv["params"], cv["mean_test_score"], strict=True
                        )
                    }
                if getattr(model, "freeze", None) == "auto":
                    # What freeze="auto" chose, and the held-out scores why.
                    record["best_freeze"] = model.freeze_
                    record["freeze_scores"] = model.freeze_scores_
                records.append(record)
                best = record.get("best_freeze", "")
                log(
                    f"  {task.name} k={k} seed={seed} {method:<10} "
                    f"acc {accuracy:.3f}  fit {fit_seconds:6.1f} s  "
                    f"({epochs} epochs){f' best freeze={best}' if best != '' else ''}"
                )
    return records


def summarise(records: list) -> list:
    """Mean and std of accuracy and fit time per (task, method, k)."""
    groups: dict = {}
    for r in records:
        groups.setdefault((r["task"], r["method"], r["k"]), []).append(r)
    summary = []
    for (task, method, k), rows in groups.items():
        acc = np.array([r["accuracy"] for r in rows])
        secs = np.array([r["fit_seconds"] for r in rows])
        entry = {
            "task": task,
            "method": method,
            "k": k,
            "n_seeds": len(rows),
            "accuracy_mean": round(float(acc.mean()), 4),
            "accuracy_std": round(float(acc.std()), 4),
            "fit_seconds_mean": round(float(secs.mean()), 2),
            "epochs": rows[0]["epochs"],
        }
        if "best_freeze" in rows[0]:
            entry["best_freeze"] = [r["best_freeze"] for r in rows]
        summary.append(entry)
    return summary


def results_table(summary: list, task: Task, labels: dict) -> str:
    """Markdown: one row per method, one column per label budget."""
    cells = {(s["method"], s["k"]): s for s in summary if s["task"] == task.name}
    best = {
        k: max(s["accuracy_mean"] for (m, kk), s in cells.items() if kk == k)
        for k in task.ks
        if any(kk == k for _, kk in cells)
    }
    header = ["method"] + [f"k={k}" for k in task.ks if k in best]
    lines = ["| " + " | ".join(header) + " |", "|---" + "|---:" * len(best) + "|"]
    for method in task.methods:
        row = [labels[method]]
        if not any(m == method for m, _ in cells):
            continue
        for k in best:
            s = cells.get((method, k))
            if s is None:
                row.append("—")
                continue
            text = f"{s['accuracy_mean']:.3f}"
            if s["n_seeds"] > 1:
                text += f" ± {s['accuracy_std']:.3f}"
            if s["accuracy_mean"] == best[k]:
                text = f"**{text}**"
            chosen = "/".join(map(str, s.get("best_freeze", [])))
            chosen = f", freeze {chosen}" if chosen else ""
            row.append(f"{text} ({_seconds(s['fit_seconds_mean'])}{chosen})")
        lines.append("| " + " | ".join(row) + " |")
    return "\n".join(lines)


def _seconds(value: float) -> str:
    return f"{value:.1f} s" if value < 10 else f"{value:.0f} s"


def plot(summary: list, tasks: Sequence[Task], labels: dict, path: Path, all_as):
    """Accuracy vs labels per class, one line per method, one panel per task.

    Each method keeps its colour in every panel; baselines are dashed. ``all_as``
    maps a task name to the x position of k="all" (its images per class).
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    colours = dict(zip(labels, plt.get_cmap("tab20").colors))  # up to 20 methods
    fig, axes = plt.subplots(1, len(tasks), figsize=(7 * len(tasks), 6.4))
    handles = {}
    for ax, task in zip(np.atleast_1d(axes), tasks):
        for method in task.methods:
            rows = [
                s for s in summary if (s["task"], s["method"]) == (task.name, method)
            ]
            if not rows:
                continue
            x = [all_as.get(task.name, 0) if s["k"] == "all" else s["k"] for s in rows]
            handles[method] = ax.errorbar(
                x,
                [s["accuracy_mean"] for s in rows],
                yerr=[s["accuracy_std"] for s in rows],
                color=colours[method],
                ls="--" if method in ("scratch", "tutorial") else "-",
                marker="o",
                ms=4,
                capsize=3,
            )
        ks = [all_as.get(task.name, 0) if k == "all" else k for k in task.ks]
        ax.set_xscale("log")
        ax.set_xticks(ks)
        ax.set_xticklabels(
            [f"all ({v})" if k == "all" else str(k) for k, v in zip(task.ks, ks)]
        )
        ax.minorticks_off()
        ax.set_xlabel("labelled training images per class")
        ax.set_ylabel("test accuracy")
        ax.set_title(task.title, fontsize=11)
        ax.grid(alpha=0.3)
    order = [m for m in labels if m in handles]
    fig.legend(
        [handles[m] for m in order],
        [labels[m] for m in order],
        loc="lower center",
        ncol=1,  # the labels are sentences: one per line, never cut off
        fontsize=9,
        frameon=False,
    )
    fig.tight_layout(rect=(0, 0.3, 1, 1))
    fig.savefig(path, dpi=120)
    plt.close(fig)
