"""Sphinx extension: benchmark tables generated from ``benchmarks/results/*.json``.

At every build, each results file becomes ``docs/generated/<name>.md`` (MyST
Markdown: the machine it ran on, then its tables), which the user guide pulls in
with ``{include}``. Numbers are never copied into the documentation by hand, so
they cannot drift from what the benchmark scripts measured.

A results file without a dedicated layout below still gets a table of every list
of records it holds.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Iterable
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
RESULTS = ROOT / "benchmarks" / "results"
OUT = ROOT / "docs" / "generated"

# The benchmark index reads commits and wall times the same way; one copy.
sys.path.insert(0, str(ROOT / "benchmarks"))
from _index import minutes, short_commit, wall_time  # noqa: E402


def _cell(value: object) -> str:
    if isinstance(value, float):
        return f"{value:.3g}"
    if isinstance(value, dict):
        return ", ".join(f"{k}={_cell(v)}" for k, v in value.items())
    if isinstance(value, list | tuple):
        return ", ".join(_cell(v) for v in value) if value else "()"
    if value is None:
        return "—"
    return str(value).replace("|", "\\|")


def table(rows: Iterable[dict], columns: Iterable[str] | None = None) -> str:
    """A Markdown table of ``rows`` (dicts), one column per key in ``columns``."""
    rows = list(rows)
    columns = list(columns or dict.fromkeys(k for row in rows for k in row))
    lines = ["| " + " | ".join(columns) + " |", "|" + "---|" * len(columns)]
    for row in rows:
        lines.append("| " + " | ".join(_cell(row.get(c)) for c in columns) + " |")
    return "\n".join(lines) + "\n"


def _pivot(rows, index, column, value, columns=None) -> str:
    """Rows ``index`` x columns ``column``, cells ``value(row)``."""
    keys = list(dict.fromkeys(index(r) for r in rows))
    heads = columns or list(dict.fromkeys(r[column] for r in rows))
    cells = {(index(r), r[column]): value(r) for r in rows}
    out = [
        {"": key, **{str(h): cells.get((key, h), "") for h in heads}} for key in keys
    ]
    return table(out, ["", *map(str, heads)])


def _arguments(params: dict) -> str:
    """``params`` as Python keyword arguments: ``a=1, b=None, c='x'``."""
    return ", ".join(f"{key}={value!r}" for key, value in params.items())


def _transfer_vs_scratch(doc: dict) -> str:
    parts = [f"Hypothesis: {' '.join(doc['hypothesis'].split())}\n"]
    names = doc["methods"]
    for task in dict.fromkeys(r["task"] for r in doc["summary"]):
        rows = [r for r in doc["summary"] if r["task"] == task]
        parts.append(f"**{task}**, test accuracy (mean ± std over seeds, fit time):\n")
        parts.append(
            _pivot(
                rows,
                lambda r: names.get(r["method"], r["method"]),
                "k",
                lambda r: (
                    f"{r['accuracy_mean']:.3f} ± {r['accuracy_std']:.3f} "
                    f"({r['fit_seconds_mean']:.3g} s)"
                ),
            )
        )
    anchor = doc.get("anchor")
    if anchor:
        parts.append(
            f"Anchor: `FineTuneClassifier({_arguments(anchor['params'])})` on "
            f"{anchor['n_train']} Fashion-MNIST images: test accuracy "
            f"{anchor['test_accuracy']} in {anchor['fit_seconds']:.0f} s.\n"
        )
    return "\n".join(parts)


def _imagenet_features(doc: dict) -> str:
    return _pivot(
        doc["rows"],
        lambda r: f"{r['task']}, k={r['k']}",
        "method",
        lambda r: r["accuracy"],
    )


def _small_image_size(doc: dict) -> str:
    return _pivot(
        doc["rows"],
        lambda r: r["task"],
        "image_size",
        lambda r: f"{r['accuracy']:.3f} ({r['seconds_per_100_images']:.3g} s)",
    )


def _extractor_throughput(doc: dict) -> str:
    columns = ["case", "best_batch_size", "ceiling_img_per_s"]
    columns += ["serial_prediction_img_per_s", "files_img_per_s", "decode_img_per_s"]
    return table(doc["cases"], columns)


def _frozen_cache(doc: dict) -> str:
    return "\n".join(
        [
            "Per epoch:\n",
            table(doc["per_epoch"]),
            "Grid search:\n",
            table(doc["grid_search"]),
            "Partial freezing:\n",
            table(doc["partial_freezing"]),
        ]
    )


def _scale_out(doc: dict) -> str:
    columns = ["mode", "wall_s", "speedup", "speedup_vs_1_thread", "mean_task_s"]
    columns += ["overhead_per_task_s", "best_params", "loadavg_1min_before"]
    return table(doc["runs"], columns)


def _stage_memory(doc: dict) -> str:
    return table(doc["rows"], ["backbone", "input", "stages"])


def _hypothesis_and_pivot(doc: dict, intro: str, rows, row_name, cell) -> str:
    """The hypothesis, one sentence, then ``rows`` pivoted on their "column"."""
    hypothesis = " ".join(doc["hypothesis"].split())
    table = _pivot(rows, row_name, "column", cell)
    return f"Hypothesis: {hypothesis}\n\n{intro}\n\n{table}"


def _variants_table(doc: dict, intro: str) -> str:
    """The hypothesis, ``intro``, then one row per variant (mean ± std)."""
    return _hypothesis_and_pivot(
        doc,
        intro,
        doc["summary"],
        lambda r: r["variant"],
        lambda r: f"{r['accuracy_mean']:.3f} ± {r['accuracy_std']:.3f}",
    )


def _recipe_ablation(doc: dict) -> str:
    intro = (
        f"Each row changes one parameter of `FineTuneClassifier("
        f"{_cell(doc['recipe'])})`; test accuracy, mean ± std over "
        f"{len(doc['seeds'])} seeds:"
    )
    return _variants_table(doc, intro)


def _embedding_defaults(doc: dict) -> str:
    return _hypothesis_and_pivot(
        doc,
        "LogisticRegression test accuracy (mean over splits/seeds):",
        doc["records"],
        lambda r: r["candidate"],
        lambda r: f"{r['accuracy_mean']:.3f}",
    )


def _pinned(doc: dict) -> str:
    """What the fine-tuned rows fixed beyond the library's defaults."""
    # Results written before "pinned" was recorded all used these settings.
    pinned = doc.get("pinned", {"backbone_lr": 1e-3, "layer": None, "pooling": "avg"})
    if not pinned:
        return "fine-tuned rows use the library's defaults."
    return f"fine-tuned rows with {_cell(pinned)}."


def _domain_adaptation(doc: dict) -> str:
    def cell(r):
        text = f"{r['target_mean']:.3f} ± {r['target_std']:.3f}"
        if "gap_recovered" in r:
            text += f" ({100 * r['gap_recovered']:.0f}% of the gap)"
        return text

    intro = (
        f"Target test accuracy, mean ± std over {len(doc['seeds'])} seeds; in "
        "brackets, the share of the source-only -> oracle gap recovered. "
        f"{doc['n_images']} source, {doc['n_images']} unlabelled target and "
        f"{doc['n_images']} test images per seed; max_epochs={doc['max_epochs']}; "
        + _pinned(doc)
    )
    rows = [{**r, "column": r["shift"]} for r in doc["summary"]]
    names = doc["methods"]
    return _hypothesis_and_pivot(
        doc, intro, rows, lambda r: names.get(r["method"], r["method"]), cell
    )


def _few_shot(doc: dict) -> str:
    """Per task: methods x labels per class, accuracy mean ± std over seeds."""
    rows = doc.get("rows", [])
    out = []
    for task in dict.fromkeys(r["task"] for r in rows):
        mine = [r for r in rows if r["task"] == task]
        ks = sorted({r["per_class"] for r in mine})
        cells = []
        for method in dict.fromkeys(r["method"] for r in mine):
            cell = {"method": method}
            for k in ks:
                values = [
                    r["accuracy"]
                    for r in mine
                    if r["method"] == method and r["per_class"] == k
                ]
                mean = sum(values) / len(values) if values else None
                spread = (
                    (sum((v - mean) ** 2 for v in values) / len(values)) ** 0.5
                    if values
                    else None
                )
                cell[f"{k}/class"] = f"{mean:.3f} ± {spread:.3f}" if values else "–"
            cells.append(cell)
        out.append(f"**{task}** (accuracy, mean ± std over seeds)\n\n{table(cells)}")
    return "\n".join(out)


def _speech_throughput(doc: dict) -> str:
    speed = [
        {
            "backbone": r["backbone"],
            "clips": r["n"],
            **{path: v["clips_per_s"] for path, v in r["rows"].items()},
            "transform / sorted loop": r["ratio_vs_sorted_raw"],
        }
        for r in doc.get("speed", [])
    ]
    intro = f"Clips per second ({doc.get('clips', '')}):\n\n"
    return intro + table(speed) + "\nPeak memory:\n\n" + table(doc.get("memory", []))


# The table layout of each results file; files named after a prefix of
# PREFIX_LAYOUTS (text_few_shot_sentiment, speech_few_shot_...) use its layout.
def _freeze_auto(doc: dict) -> str:
    agreement = ""
    if doc.get("held_out_agreement"):
        agreement = (
            '\nSeeds where `freeze=0` and `freeze="all"` differ by more than a '
            'point on the test set: how often `"auto"` kept the better one, by '
            "the number of rows it held out to judge them.\n\n"
            + table(doc["held_out_agreement"])
        )
    sources = "; ".join(
        f"{bench} at {', '.join(commits) or '—'}"
        for bench, commits in doc.get("sources", {}).items()
    )
    hypothesis = " ".join(doc["hypothesis"].split())
    return (
        f"Hypothesis: {hypothesis}\n\nRuns: {sources}; seeds "
        f"{_cell(doc.get('seeds', []))}; accuracy is the mean over seeds, "
        "fit time the mean seconds of one fit.\n\n" + table(doc["cells"]) + agreement
    )


def _beyond_one_label(doc: dict) -> str:
    """One table per task: rows x training sizes, mean ± std over seeds."""
    metric = {"fashion_zoom": "r2", "vader_rating": "r2", "debtags": "micro_f1"}
    parts = []
    for task, name in metric.items():
        rows = [r for r in doc["summary"] if r["task"] == task]
        if not rows:
            continue

        seeds = max(r["seeds"] for r in rows)

        def cell(r, name=name, seeds=seeds):
            seconds = f"{r['fit_seconds']:.1f} s"
            fewer = f", {r['seeds']} seed(s)" if r["seeds"] < seeds else ""
            return f"{r[name]:.3f} ± {r[name + '_std']:.3f} ({seconds}{fewer})"

        extra = ""
        if name == "micro_f1":
            macro = _pivot(
                rows, lambda r: r["row"], "n", lambda r: f"{r['macro_f1']:.3f}"
            )
            extra = f"\nMacro-F1:\n\n{macro}"
        parts.append(
            f"**{task}**: {name} on the test set (fit time); columns: "
            "training rows\n\n" + _pivot(rows, lambda r: r["row"], "n", cell) + extra
        )
    gaps = [
        {
            "task": g["task"],
            "n": g["n"],
            "defaults row": g["row"],
            "frozen row": g["against"],
            "metric": g["metric"],
            "seeds": g["seeds"],
            "gap ± s.e.": f"{g['mean_gap']:+.4f} ± {g['se_gap']:.4f}",
            "seeds ahead / behind": f"{g['seeds_ahead']} / {g['seeds_behind']}",
        }
        for g in doc.get("paired_gaps", [])
    ]
    if gaps:
        parts.append(
            "**Fine-tuning defaults minus frozen embeddings of the same "
            "backbone, seed by seed** (mean and standard error of the "
            "per-seed gaps)\n\n" + table(gaps)
        )
    failed = "".join(f"- {row}: {why}\n" for row, why in doc.get("skipped", {}).items())
    if failed:
        parts.append(
            f"Rows that failed in this run (skipped from then on):\n\n{failed}"
        )
    return f"Seeds {doc['summary'][0]['seeds']}.\n\n" + "\n".join(parts)


def _ridge_probe_scaling(doc: dict) -> str:
    summary = doc["summary"]
    rows = [
        {"row": name, **{k.replace("_", " "): v for k, v in totals.items()}}
        for name, totals in summary["overall"].items()
    ]
    return (
        "Test R^2, mean of 3 seeds per cell.\n\n"
        + table(summary["cells"])
        + f"\nOver the {summary['n_cells']} cells:\n\n"
        + table(rows)
    )


def _fixed(rows, places: int = 3, **key_places) -> list[dict]:
    """``rows`` with floats as strings of ``places`` decimals (per key if given)."""
    return [
        {
            k: f"{v:.{key_places.get(k, places)}f}" if isinstance(v, float) else v
            for k, v in row.items()
        }
        for row in rows
    ]


def _speech_channels(doc: dict) -> str:
    rows = _fixed(doc["summary"])
    return (
        f"Accuracy on {doc['test_clips']} test clips of {len(doc['classes'])} "
        "speakers, mean of 3 seeds.\n\n" + table(rows)
    )


def _label_set_weights(doc: dict) -> str:
    rows = _fixed(doc["summary"], fit_seconds=1)
    columns = ["task", "n", "row", "micro_f1", "macro_f1", "labels_per_row"]
    columns += ["fit_seconds", "seeds_ahead_of_unweighted_on_both"]
    return (
        "Test micro- and macro-F1, mean of the seeds; labels per row is the "
        "mean number `predict` turned on (the test sets: "
        + ", ".join(
            f"{task} {info['test_labels_per_row']:.2f}"
            for task, info in doc["data"].items()
        )
        + ").\n\n"
        + table(rows, columns)
    )


LAYOUTS = {
    "freeze_auto": _freeze_auto,
    "freeze_auto_speech": _few_shot,
    "freeze_auto_text": _few_shot,
    "freeze_auto_text_k50": _few_shot,
    "domain_adaptation": _domain_adaptation,
    "domain_adaptation_defaults": _domain_adaptation,
    "embedding_defaults": _embedding_defaults,
    "transfer_vs_scratch": _transfer_vs_scratch,
    "imagenet_features": _imagenet_features,
    "small_image_size": _small_image_size,
    "extractor_throughput": _extractor_throughput,
    "frozen_cache": _frozen_cache,
    "scale_out": _scale_out,
    "stage_memory": _stage_memory,
    "speech_throughput": _speech_throughput,
    "ridge_probe_scaling": _ridge_probe_scaling,
    "speech_channels": _speech_channels,
    "label_set_weights": _label_set_weights,
}
PREFIX_LAYOUTS = {
    "beyond_one_label": _beyond_one_label,
    "recipe_ablation": _recipe_ablation,
    "speech_few_shot": _few_shot,
    "text_few_shot": _few_shot,
}


def _generic(doc: dict) -> str:
    lists = [v for v in doc.values() if isinstance(v, list) and v]
    return "\n".join(table(v) for v in lists if all(isinstance(r, dict) for r in v))


def provenance(doc: dict, path: Path) -> str:
    """The line under a table: command, commit, date, machine, versions, load."""
    machine = doc.get("machine", {})
    commit = doc.get("commit")
    if commit:
        at = f"commit `{short_commit(commit)}`"
    else:
        at = "commit not recorded (measured before results recorded it)"
    facts = [
        f"`{doc.get('command', path.stem)}`",
        at,
        machine.get("date", ""),
        f"{machine.get('cpu', '?')} x {machine.get('cpu_count', '?')}",
        f"torch {machine.get('torch', '?')}",
    ]
    if doc.get("versions", {}).get("scikit-learn"):
        facts.append(f"scikit-learn {doc['versions']['scikit-learn']}")
    threads = machine.get("OMP_NUM_THREADS") or machine.get("torch_threads")
    if threads:
        facts.append(f"{threads} thread(s)")
    load = machine.get("loadavg_at_end")
    if load:
        facts.append(f"load average at the end {load[0]}")
    wall = wall_time(doc)
    if wall:
        facts.append(f"{minutes(wall)} wall time")
    source = f"`benchmarks/results/{path.name}`"
    return f"*Generated from {source}: {', '.join(f for f in facts if f)}.*"


def render(path: Path) -> str:
    """The Markdown page of one results file: its tables, then their provenance."""
    doc = json.loads(path.read_text())
    default = next(
        (layout for p, layout in PREFIX_LAYOUTS.items() if path.stem.startswith(p)),
        _generic,
    )
    body = LAYOUTS.get(path.stem, default)(doc)
    return f"{body}\n\n{provenance(doc, path)}\n"


def generate(app=None) -> list[Path]:
    OUT.mkdir(exist_ok=True)
    written = []
    for path in sorted(RESULTS.glob("*.json")):
        target = OUT / f"{path.stem}.md"
        text = render(path)
        if not target.exists() or target.read_text() != text:
            target.write_text(text)  # unchanged files keep Sphinx's cache valid
        written.append(target)
    return written


def setup(app):
    app.connect("builder-inited", generate)
    return {"parallel_read_safe": True, "version": "1"}
