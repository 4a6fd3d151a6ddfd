"""A user's own CNN pretrained on inputs normalised their way, fine-tuned with ours.

Hypothesis
----------
sktransfer cannot know how a user's own module normalised its inputs in
pretraining; it feeds 1-channel images as ``(x - 0.5) / 0.5``. A network
pretrained on pixels in ``[0, 1]`` (``ToTensor()`` alone, the most common
tutorial) or on the dataset's mean and std then sees shifted and rescaled
activations, and its BatchNorm running statistics no longer standardise them:
the probe and the first steps start from distorted features. Re-estimating
every BatchNorm layer's statistics on the training images before training
(``bn_stats="refit"``, what ``"auto"`` does for a user's module) removes the
mismatch, and costs nothing when the conventions agree. A network without
BatchNorm has nothing to refit: there only stating the pretraining's
normalisation (``image_mean``/``image_std``) removes the mismatch, and with
BatchNorm stating it is as good as the refit.

Tasks: the 3-block user CNN of ``transfer_vs_scratch``, pretrained (3 epochs,
Fashion-MNIST classes 0-4) under three input conventions, then k labels per
class of Fashion-MNIST 5-9 (2,000 test images) and of the 8x8 digits (every
other digit as test), 3 seeds, the splits of ``recipe_ablation``. Rows:
``FineTuneClassifier(stages, weights=None, image_size=28)`` with
``bn_stats="pretrained"`` (the library before), with nothing else set
(``"auto"``: refit) and with ``image_mean``/``image_std`` set to the
pretraining's; ``tutorial`` is the hand-written loop, given the user's own
normalisation. ``--no-batchnorm``: the same CNN without BatchNorm layers.

Run: ``./dev bench user_input_scale`` (``--tasks user_cnn`` or
``user_cnn_digits`` for one target; ``--no-batchnorm``).
Results: ``benchmarks/results/user_input_scale.{json,md}``.
"""

from __future__ import annotations

import argparse
import sys
import time
import warnings
from pathlib import Path

from safetensors.torch import load_file
from sklearn.exceptions import ConvergenceWarning

sys.path.insert(0, str(Path(__file__).resolve().parent))
import recipe_ablation
from _handwritten import TutorialFineTune, UserCNN, pretrain_user_cnn, user_cnn_stages

NAME = "user_input_scale"
TASKS = ["user_cnn", "user_cnn_digits"]
# How the user normalised inputs in pretraining: (mean, std) of x in [0, 1].
CONVENTIONS = {
    "[0, 1]": ((0.0,), (1.0,)),
    "(x - 0.5) / 0.5": ((0.5,), (0.5,)),
    "Fashion-MNIST mean, std": ((0.286,), (0.353,)),
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--tasks", nargs="+", default=TASKS, choices=TASKS)
    parser.add_argument("--ks", nargs="+", type=int, default=[10, 50])
    parser.add_argument("--name", default=NAME)
    parser.add_argument(
        "--no-batchnorm", action="store_true", help="the CNN without BatchNorm"
    )
    args = parser.parse_args()
    batchnorm = not args.no_batchnorm
    warnings.filterwarnings("ignore", category=ConvergenceWarning)
    start = time.perf_counter()
    tasks = [t for t in recipe_ablation.tasks(2000) if t.name in args.tasks]
    records = []
    for convention, (mean, std) in CONVENTIONS.items():
        meta = pretrain_user_cnn(epochs=3, mean=mean, std=std, batchnorm=batchnorm)
        state = load_file(meta["checkpoint"])
        for task in tasks:
            print(f"\n== {task.title}, pretrained on {convention}")
            task.methods = {
                "backbone": lambda state=state: user_cnn_stages(
                    state, batchnorm=batchnorm
                ),
                "weights": None,
                "image_size": 28,
                "tutorial": lambda seed, state=state, mean=mean, std=std: (
                    TutorialFineTune(
                        lambda: state,
                        5,
                        mean,
                        std,
                        seed=seed,
                        build=lambda n: UserCNN(n, batchnorm=batchnorm),
                    )
                ),
            }
            # Undo the ablation's RECIPE row: these rows are the library's defaults.
            defaults = {"layer": "auto", "pooling": "grid"}
            stated = {**defaults, "image_mean": mean[0], "image_std": std[0]}
            rows = (
                {
                    "bn_stats='pretrained'": {**defaults, "bn_stats": "pretrained"},
                    "defaults (bn_stats='auto': refit)": defaults,
                    "image_mean, image_std = the pretraining's": stated,
                }
                if batchnorm
                else {
                    "defaults": defaults,
                    "image_mean, image_std = the pretraining's": stated,
                }
            )
            for record in recipe_ablation.run(
                task, args.ks, recipe_ablation.SEEDS, rows
            ):
                record["task"] = f"{task.name}, {convention}"
                records.append(record)
    conventions = {name: [m[0], s[0]] for name, (m, s) in CONVENTIONS.items()}
    columns = list(dict.fromkeys(r["task"] for r in records))
    recipe_ablation.save(
        args.name,
        "user_input_scale",
        __doc__,
        records,
        columns,
        recipe_ablation.SEEDS,
        args.ks,
        start,
        conventions=conventions,
        batchnorm=batchnorm,
    )


if __name__ == "__main__":
    main()
