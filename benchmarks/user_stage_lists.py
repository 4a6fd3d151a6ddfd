"""A user's own CNN listed three ways: the defaults must not depend on the listing.

Hypothesis
----------
A user hands over their pretrained 3-block CNN as ``(name, module)`` stages in
whichever form is at hand: with its pooling stage (the form of
``transfer_vs_scratch``), as the bare convolutional blocks, or as the whole
network with its old classifier. ``layer="mid"`` counts blocks (stages with
weights that output a feature map), so the three listings give the same taps,
the same kept stages and the same accuracy. Counting stages instead (the rule
before) put the head on block 1 alone for the bare blocks and on blocks 2 and 3
for the whole network.

Tasks: the user CNN of ``transfer_vs_scratch`` (pretrained on Fashion-MNIST
classes 0-4) -> classes 5-9 (``user_cnn``, 2,000 test images) and -> 8x8 digits
(``user_cnn_digits``, every other digit as test); k labels per class, 3 seeds,
the splits of ``recipe_ablation``. Rows: ``FineTuneClassifier(stages,
weights=None, image_size=28)`` with no other argument, for each listing; the
"counting stages" rows pin the taps the previous rule chose (``layer=``). On
the whole network those are blocks 2 and 3: that row also says what the last
block is worth to a shallow network on each target. ``tutorial`` is the
hand-written loop.

Run: ``./dev bench user_stage_lists``.
Results: ``benchmarks/results/user_stage_lists.{json,md}``.
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
from _handwritten import UserCNN, pretrain_user_cnn

NAME = "user_stage_lists"
TASKS = ["user_cnn", "user_cnn_digits"]


def listings(state: dict) -> dict:
    """Stage lists of the pretrained user CNN, by how a user might write them."""

    def named(drop):
        def make():
            model = UserCNN(5)
            model.load_state_dict(state)
            return [(n, m) for n, m in model.named_children() if n not in drop]

        return make

    return {
        "with its pooling stage": named(("fc",)),
        "bare blocks": named(("pool", "fc")),
        "whole, old classifier included": named(()),
    }


# The taps the previous rule (the fourth- and third-last *stages*) chose.
STAGE_COUNTING = {
    "bare blocks": ["block1"],
    "whole, old classifier included": ["block2", "block3"],
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--ks", nargs="+", type=int, default=[10, 50])
    parser.add_argument("--test-size", type=int, default=2000)
    args = parser.parse_args()
    warnings.filterwarnings("ignore", category=ConvergenceWarning)
    start = time.perf_counter()
    state = load_file(pretrain_user_cnn(epochs=3)["checkpoint"])
    tasks = [t for t in recipe_ablation.tasks(args.test_size) if t.name in TASKS]
    records = []
    for task in tasks:
        print(f"\n== {task.title}")
        for listing, make in listings(state).items():
            rows = {f"defaults, {listing}": {}}
            if listing in STAGE_COUNTING:
                taps = STAGE_COUNTING[listing]
                rows[f"counting stages, {listing}"] = {"layer": taps}
            task.methods = {**task.methods, "backbone": make}
            # Undo the ablation's RECIPE row: these rows are the library's defaults.
            defaults = {"layer": "auto", "pooling": "grid"}
            records += recipe_ablation.run(
                task,
                args.ks,
                recipe_ablation.SEEDS,
                {name: {**defaults, **p} for name, p in rows.items()},
                tutorial=listing == "bare blocks",
            )
    recipe_ablation.save(
        NAME,
        "user_stage_lists",
        __doc__,
        records,
        TASKS,
        recipe_ablation.SEEDS,
        args.ks,
        start,
    )


if __name__ == "__main__":
    main()
