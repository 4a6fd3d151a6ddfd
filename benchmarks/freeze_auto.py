"""``freeze="auto"`` against ``freeze=0`` and ``freeze="all"`` on every few-shot task.

Hypothesis
----------
Neither the exact probe (``freeze="all"``) nor full fine-tuning (``freeze=0``)
wins everywhere: on ImageNet's EfficientNet-Lite0 with 10 labels per class the
probe did, on the shipped backbone and on text fine-tuning did. ``"auto"``
measures it inside ``fit`` on a held-out fifth of the rows, and should come
within 0.5 point of the better of the two on every task and label budget, at
no more than 1.2 times the fit time of ``freeze=0``.

Runs, one at a time (two torch threads, passive OpenMP waiting), the methods
``auto``, ``ft_0`` and ``ft_all`` of three benchmarks, 3 seeds each:

* ``transfer_vs_scratch`` (images: every task and k);
* ``speech_few_shot`` (the ``keyword_cnn`` backbone on its three tasks at 2, 5
  and 20 clips per class; the GE2E encoder's fine-tuning takes minutes per fit
  here and is left out);
* ``text_few_shot`` (MiniLM, both tasks at 8 and 50 texts per class, one
  results file each);

then writes ``results/freeze_auto.json``: per task and k, the mean accuracy
of each, what "auto" chose per seed, its gap to the better of the other two
with the standard error of that gap over the seeds (paired by seed: a miss
within two standard errors is one that 3 seeds cannot tell from none), and its
fit time over that of ``freeze=0`` (same run, same machine); and, by the
number of rows "auto" held out, how often it kept the one of the two that was
better on the test set, in the seeds where they differ by more than a point.
Run with
``./dev bench freeze_auto`` (about two hours on 2 cores), or
``--summarise`` to rebuild the table from the three results files.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import subprocess
import sys
from pathlib import Path
from statistics import mean, stdev

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import RESULTS_DIR, write_results

HERE = Path(__file__).resolve().parent
TRANSFER = "freeze_auto_images"
SPEECH, TEXT, TEXT_50 = "freeze_auto_speech", "freeze_auto_text", "freeze_auto_text_k50"
RUNS = [
    ["transfer_vs_scratch.py", "--methods", "auto,ft_0,ft_all", "--name", TRANSFER],
    ["speech_few_shot.py", "--tasks", "digits", "language", "speaker"]
    + ["--ks", "2", "5", "20", "--ft-ks", "2", "5", "20"]
    + ["--backbones", "keyword_cnn", "--freeze", "0", "all", "auto", "--name", SPEECH],
    ["text_few_shot.py", "--tasks", "sentiment", "genre", "--ks", "8"]
    + ["--freeze", "0", "auto", "--no-setfit", "--name", TEXT],
    ["text_few_shot.py", "--tasks", "sentiment", "genre", "--ks", "50"]
    + ["--freeze", "0", "auto", "--no-setfit", "--name", TEXT_50],
]
# Method labels of the speech and text benchmarks, by freeze value.
LABELS = {"'auto'": "auto", "=0)": "0", "=0": "0", "'all'": "all"}
MARGIN = 0.005


def _freeze_of(method: str) -> str | None:
    if "FineTune" not in method:
        return None
    for tail, freeze in LABELS.items():
        if method.endswith(tail) or method.endswith(tail + ")"):
            return freeze
    return None


def _rows() -> list[dict]:
    """(benchmark, task, k, seed, freeze, accuracy, seconds, chosen) rows."""
    rows = []
    transfer = json.loads((RESULTS_DIR / f"{TRANSFER}.json").read_text())
    names = {"auto": "auto", "ft_0": "0", "ft_all": "all"}
    for r in transfer["records"]:
        if r["method"] in names:
            rows.append(
                {
                    "benchmark": "images",
                    "task": r["task"],
                    "k": r["k"],
                    "seed": r["seed"],
                    "freeze": names[r["method"]],
                    "accuracy": r["accuracy"],
                    "seconds": r["fit_seconds"],
                    "chosen": r.get("best_freeze"),
                    "held_out": (r.get("freeze_scores") or {}).get("n_held_out"),
                    "commit": transfer.get("commit"),
                }
            )
    for bench, name in (("speech", SPEECH), ("text", TEXT), ("text", TEXT_50)):
        path = RESULTS_DIR / f"{name}.json"
        if not path.exists():
            continue
        doc = json.loads(path.read_text())
        for r in doc["rows"]:
            freeze = _freeze_of(r["method"])
            if freeze is not None:
                rows.append(
                    {
                        "benchmark": bench,
                        "task": r["task"],
                        "k": r["per_class"],
                        "seed": r["seed"],
                        "freeze": freeze,
                        "accuracy": r["accuracy"],
                        "seconds": r["fit_seconds"],
                        "chosen": r.get("chosen_freeze"),
                        "held_out": (r.get("freeze_scores") or {}).get("n_held_out"),
                        "commit": doc.get("commit"),
                    }
                )
    return rows


def _paired_se(auto: list[dict], other: list[dict]) -> float:
    """Standard error of the mean per-seed gap ``auto - other`` (paired by seed).

    With 3 seeds a cell's gap is a mean of three differences; where it is
    within two standard errors of 0, three seeds cannot tell it from no gap.
    """
    by_seed = {r["seed"]: r["accuracy"] for r in other}
    gaps = [r["accuracy"] - by_seed[r["seed"]] for r in auto if r["seed"] in by_seed]
    return stdev(gaps) / math.sqrt(len(gaps)) if len(gaps) > 1 else float("nan")


# Held-out sizes grouped for :func:`held_out_agreement`, and the test-set gap
# between freeze=0 and freeze="all" beyond which one seed counts as decisive.
HELD_OUT_GROUPS = ((1, 12), (13, 40), (41, None))
DECISIVE_GAP = 0.01


def held_out_agreement(rows: list[dict]) -> list[dict]:
    """How often "auto" kept the one of the two that was better on the test set.

    Per seed of every cell where ``freeze=0`` and ``freeze="all"`` differ by more
    than :data:`DECISIVE_GAP` on the test set, grouped by how many rows "auto"
    held out to judge them.
    """
    runs: dict[tuple, dict] = {}
    for r in rows:
        key = (r["benchmark"], r["task"], r["k"], r["seed"])
        runs.setdefault(key, {})[r["freeze"]] = r
    groups = []
    for low, high in HELD_OUT_GROUPS:
        decisive = right = 0
        for run in runs.values():
            auto = run.get("auto", {})
            held = auto.get("held_out")
            if "0" not in run or "all" not in run or held is None:
                continue
            if held < low or (high is not None and held > high):
                continue
            gap = run["0"]["accuracy"] - run["all"]["accuracy"]
            if abs(gap) > DECISIVE_GAP:
                decisive += 1
                right += (str(auto["chosen"]) == "0") == (gap > 0)
        groups.append(
            {
                "rows held out": f"{low}-{high}" if high else f"{low} or more",
                "seeds with a test gap over 1 pt": decisive,
                "auto kept the better": right,
                "share": round(right / decisive, 2) if decisive else None,
            }
        )
    return groups


def summarise() -> dict:
    rows = _rows()
    cells = []
    for key in dict.fromkeys((r["benchmark"], r["task"], r["k"]) for r in rows):
        mine = [r for r in rows if (r["benchmark"], r["task"], r["k"]) == key]
        by = {f: [r for r in mine if r["freeze"] == f] for f in ("auto", "0", "all")}
        if not all(by.values()):
            continue
        acc = {f: mean(r["accuracy"] for r in by[f]) for f in by}
        best = max(acc["0"], acc["all"])
        gap_se = _paired_se(by["auto"], by["0" if acc["0"] >= acc["all"] else "all"])
        cells.append(
            {
                "benchmark": key[0],
                "task": key[1],
                "k": key[2],
                "freeze=0": round(acc["0"], 3),
                'freeze="all"': round(acc["all"], 3),
                'freeze="auto"': round(acc["auto"], 3),
                "auto chose": "/".join(str(r["chosen"]) for r in by["auto"]),
                "auto - better": round(acc["auto"] - best, 3),
                "within 0.5 pt": acc["auto"] >= best - MARGIN - 1e-9,
                "s.e. of the gap": round(gap_se, 3),
                "miss beyond 2 s.e.": acc["auto"] < best - max(MARGIN, 2 * gap_se),
                "time auto / freeze=0": round(
                    mean(r["seconds"] for r in by["auto"])
                    / mean(r["seconds"] for r in by["0"]),
                    2,
                ),
                "seconds auto": round(mean(r["seconds"] for r in by["auto"]), 1),
                "seconds freeze=0": round(mean(r["seconds"] for r in by["0"]), 1),
            }
        )
    return {
        "hypothesis": __doc__.split("Hypothesis\n----------\n")[1].split("\n\n")[0],
        "sources": {
            bench: sorted({r["commit"] for r in rows if r["benchmark"] == bench})
            for bench in ("images", "speech", "text")
        },
        "seeds": sorted({r["seed"] for r in rows}),
        "cells": cells,
        "held_out_agreement": held_out_agreement(rows),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--summarise", action="store_true", help="only rebuild the summary table"
    )
    args = parser.parse_args()
    if not args.summarise:
        env = {**os.environ, "OMP_NUM_THREADS": "2", "OMP_WAIT_POLICY": "PASSIVE"}
        for run in RUNS:
            subprocess.run(
                [sys.executable, str(HERE / run[0]), *run[1:]], check=True, env=env
            )
    payload = summarise()
    for cell in payload["cells"]:
        print(cell)
    write_results("freeze_auto", payload)


if __name__ == "__main__":
    main()
