"""Unsupervised domain adaptation on two offline shifts of Fashion-MNIST.

Hypothesis
----------
A classifier fine-tuned on clean Fashion-MNIST collapses on images blended into
photo crops (MNIST-M's recipe). Aligning source and target features while
fine-tuning (Deep CORAL, DANN), or aligning frozen features with skada's CORAL,
recovers part of the gap to an oracle trained on labelled target images,
without any target label.

Shifts
------
* ``fashion_m``: Fashion-MNIST -> "Fashion-MNIST-M": each image becomes
  ``|photo crop - image|`` per channel, crops of the natural colour photos shipped
  with scikit-learn (2) and scikit-image (astronaut, chelsea, coffee, rocket)
  (:func:`sktransfer.datasets.blend_with_photos`).
* ``textures``: Fashion-MNIST -> the same blend with scikit-image's grey texture
  photos (brick, grass, gravel): clean scans deployed on textured backgrounds.

Each seed draws 2,000 labelled source images and 2,000 other training images
that become the unlabelled target rows; the test set is 2,000 blended test
images. The backbone is the shipped ``fmnist_resnet``. Every fine-tuned row
trains ``max_epochs=5`` epochs (an epoch is one pass over the labelled rows) with
the head on the final embedding and ``backbone_lr=1e-3`` (``PINNED``: the
defaults when ``domain_adaptation.json`` was measured); everything else is the
library's defaults. ``--library-defaults`` drops the pins: the fine-tuned rows
are then exactly what a user gets (``layer="auto"``: the mid-level head without
``adaptation``, the final embedding with it).

Rows
----
* ``source_only``: ``FineTuneClassifier`` on the source rows (target rows given
  with ``sample_domain`` and left out, ``adaptation=None``);
* ``frozen_lr``: frozen embeddings (the extractor's defaults) + LR, source only;
* ``skada_coral``: ``make_da_pipeline(extractor, CORALAdapter(), LR)``;
* ``deep_coral``: ``adaptation="coral"`` (default weight 1);
* ``deep_coral_w10``: ``adaptation="coral", adaptation_weight=10``;
* ``dann``: ``adaptation="dann"``;
* ``oracle``: ``FineTuneClassifier`` on the target rows *with* their labels.

Run: ``./dev bench domain_adaptation`` (``--quick``: 1 seed, 500 images each,
1 epoch; ``--methods`` a comma-separated subset of the rows, which must include
``source_only`` and ``oracle`` for the gap). Results:
``benchmarks/results/domain_adaptation.{json,md,png}`` (``--name`` changes the
file name).
"""

from __future__ import annotations

import argparse
import sys
import time
import warnings
from pathlib import Path

import numpy as np
import torch
from sklearn.datasets import load_sample_images
from sklearn.exceptions import ConvergenceWarning
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import make_pipeline

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import RESULTS_DIR, markdown_table, write_results

from sktransfer import FineTuneClassifier, PretrainedFeatureExtractor
from sktransfer.datasets import blend_with_photos, load_fashion_mnist

NAME = "domain_adaptation"
SEEDS = (0, 1, 2)
LABELS = {
    "source_only": "source only: FineTuneClassifier (adaptation=None)",
    "frozen_lr": "source only: PretrainedFeatureExtractor + LogisticRegression",
    "skada_coral": "skada CORALAdapter on frozen features + LogisticRegression",
    "deep_coral": 'Deep CORAL: FineTuneClassifier(adaptation="coral")',
    "deep_coral_w10": "Deep CORAL, adaptation_weight=10",
    "dann": 'DANN: FineTuneClassifier(adaptation="dann")',
    "oracle": "oracle: FineTuneClassifier on labelled target images",
}
GAP_ROWS = ("frozen_lr", "skada_coral", "deep_coral", "deep_coral_w10", "dann")


def photos(shift: str) -> list[np.ndarray]:
    import skimage.data as data

    if shift == "fashion_m":
        names = ("astronaut", "chelsea", "coffee", "rocket")
        return list(load_sample_images().images) + [getattr(data, n)() for n in names]
    return [getattr(data, n)() for n in ("brick", "grass", "gravel")]


def grey_rgb(images: np.ndarray) -> np.ndarray:
    """Grey images as 3 equal channels: the target's layout, same content."""
    return np.repeat(images[..., None], 3, axis=3)


# What the committed results pinned: backbone_lr=1e-3 (lr / 3) and the head on
# the final embedding, the defaults when they were measured (see
# recipe_ablation*). ``--library-defaults`` drops the pins.
PINNED = {"backbone_lr": 1e-3, "layer": None, "pooling": "avg"}


def make_rows(seed: int, epochs: int, pinned: dict = PINNED) -> dict:
    from skada import CORALAdapter, make_da_pipeline

    def finetune(**params):
        return FineTuneClassifier(
            "fmnist_resnet", max_epochs=epochs, device="cpu", random_state=seed,
            **pinned, **params,
        )  # fmt: skip

    def extractor():
        return PretrainedFeatureExtractor("fmnist_resnet", device="cpu")

    return {
        "source_only": finetune,
        "frozen_lr": lambda: make_pipeline(
            extractor(), LogisticRegression(max_iter=3000)
        ),
        "skada_coral": lambda: make_da_pipeline(
            extractor(), CORALAdapter(), LogisticRegression(max_iter=3000)
        ),
        "deep_coral": lambda: finetune(adaptation="coral"),
        "deep_coral_w10": lambda: finetune(adaptation="coral", adaptation_weight=10),
        "dann": lambda: finetune(adaptation="dann"),
        "oracle": finetune,
    }


def run(
    shift: str, seeds, n: int, epochs: int, pinned: dict = PINNED, methods=LABELS
) -> list[dict]:
    X, y = load_fashion_mnist("train")
    X_test, y_test = load_fashion_mnist("test")
    pictures = photos(shift)
    records = []
    for seed in seeds:
        rng = np.random.RandomState(seed)
        order = rng.permutation(len(y))
        source, target = order[:n], order[n : 2 * n]
        test = rng.permutation(len(y_test))[:n]
        X_source = grey_rgb(X[source])
        X_target = blend_with_photos(X[target], pictures, random_state=seed)
        X_eval = blend_with_photos(X_test[test], pictures, random_state=1000 + seed)
        X_all = np.concatenate([X_source, X_target])
        y_all = np.concatenate([y[source], np.full(n, -1)])
        domain = np.concatenate([np.ones(n, int), -np.ones(n, int)])
        for row, make in make_rows(seed, epochs, pinned).items():
            if row not in methods:
                continue
            model = make()
            start = time.perf_counter()
            if row == "oracle":
                model.fit(X_target, y[target])
            elif row == "frozen_lr":
                model.fit(X_source, y[source])
            else:
                model.fit(X_all, y_all.copy(), sample_domain=domain)
            seconds = time.perf_counter() - start
            accuracy = float(np.mean(model.predict(X_eval) == y_test[test]))
            source_accuracy = float(
                np.mean(model.predict(grey_rgb(X_test[test])) == y_test[test])
            )
            records.append(
                {
                    "shift": shift,
                    "method": row,
                    "seed": seed,
                    "target_accuracy": round(accuracy, 4),
                    "source_accuracy": round(source_accuracy, 4),
                    "fit_seconds": round(seconds, 1),
                }
            )
            print(
                f"{shift} seed={seed} {row:15s} target {accuracy:.3f} "
                f"source {source_accuracy:.3f} ({seconds:.0f} s)",
                flush=True,
            )
    return records


def summarise(records: list[dict]) -> list[dict]:
    out = []
    for shift in dict.fromkeys(r["shift"] for r in records):
        rows = [r for r in records if r["shift"] == shift]

        def mean(method, key="target_accuracy", rows=rows):
            return float(np.mean([r[key] for r in rows if r["method"] == method]))

        low, high = mean("source_only"), mean("oracle")
        for method in LABELS:
            values = [r["target_accuracy"] for r in rows if r["method"] == method]
            if not values:
                continue
            entry = {
                "shift": shift,
                "method": method,
                "target_mean": round(float(np.mean(values)), 4),
                "target_std": round(float(np.std(values)), 4),
                "source_mean": round(mean(method, "source_accuracy"), 4),
                "fit_seconds": round(mean(method, "fit_seconds"), 1),
                "n_seeds": len(values),
            }
            if method in GAP_ROWS and high > low:
                entry["gap_recovered"] = round(
                    (entry["target_mean"] - low) / (high - low), 3
                )
            out.append(entry)
    return out


def table(summary: list[dict], shift: str) -> str:
    rows = [
        {
            "method": LABELS[s["method"]],
            "target accuracy": f"{s['target_mean']:.3f} ± {s['target_std']:.3f}",
            "gap recovered": (
                f"{100 * s['gap_recovered']:.0f}%" if "gap_recovered" in s else ""
            ),
            "source accuracy": f"{s['source_mean']:.3f}",
            "fit (s)": f"{s['fit_seconds']:.0f}",
        }
        for s in summary
        if s["shift"] == shift
    ]
    return markdown_table(
        rows,
        ["method", "target accuracy", "gap recovered", "source accuracy", "fit (s)"],
    )


def plot(summary: list[dict], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    shifts = list(dict.fromkeys(s["shift"] for s in summary))
    fig, axes = plt.subplots(
        1, len(shifts), figsize=(6 * len(shifts), 4), squeeze=False
    )
    for ax, shift in zip(axes[0], shifts):
        rows = [s for s in summary if s["shift"] == shift]
        ax.barh(
            [r["method"] for r in rows],
            [r["target_mean"] for r in rows],
            xerr=[r["target_std"] for r in rows],
        )
        ax.set_xlim(0, 1)
        ax.invert_yaxis()
        ax.set_title(f"{shift}: target test accuracy")
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="1 seed, 500 images")
    parser.add_argument("--shifts", default="fashion_m,textures")
    parser.add_argument("--methods", default=",".join(LABELS))
    parser.add_argument(
        "--library-defaults",
        action="store_true",
        help="fine-tune with today's defaults, not the pinned head and rates",
    )
    parser.add_argument("--name", default=NAME)
    args = parser.parse_args()
    warnings.filterwarnings("ignore", category=ConvergenceWarning)
    torch.manual_seed(0)
    name = args.name + ("_quick" if args.quick else "")
    pinned = {} if args.library_defaults else PINNED
    methods = args.methods.split(",")
    seeds = SEEDS[:1] if args.quick else SEEDS
    n, epochs = (500, 1) if args.quick else (2000, 5)
    start, cpu = time.perf_counter(), time.process_time()
    records = []
    for shift in args.shifts.split(","):
        records += run(shift, seeds, n, epochs, pinned, methods)
    summary = summarise(records)
    payload = {
        "pinned": pinned,
        "hypothesis": __doc__.split("Hypothesis\n----------\n")[1].split("\n\n")[0],
        "methods": LABELS,
        "seeds": list(seeds),
        "n_images": n,
        "max_epochs": epochs,
        "records": records,
        "summary": summary,
        "total_seconds": round(time.perf_counter() - start, 1),
        "total_cpu_seconds": round(time.process_time() - cpu, 1),
        "torch_threads": torch.get_num_threads(),
    }
    write_results(name, payload)
    plot(summary, RESULTS_DIR / f"{name}.png")
    text = "\n\n".join(
        f"### {shift}\n\n{table(summary, shift)}"
        for shift in dict.fromkeys(s["shift"] for s in summary)
    )
    text += (
        f"\n\nTarget test accuracy, mean ± std over {len(seeds)} seed(s); gap "
        "recovered = (method - source only) / (oracle - source only). "
        f"{n} source, {n} unlabelled target and {n} test images per seed, "
        f"max_epochs={epochs}. Whole run {payload['total_seconds'] / 60:.1f} min "
        f"wall, {payload['total_cpu_seconds'] / 60:.1f} min CPU "
        f"({payload['torch_threads']} torch threads).\n"
    )
    (RESULTS_DIR / f"{name}.md").write_text(text)
    print("\n" + text)


if __name__ == "__main__":
    main()
