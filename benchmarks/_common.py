"""Helpers shared by the benchmark scripts: timing, memory, results and tables.

Run a benchmark with ``./dev bench NAME`` (it executes ``benchmarks/NAME.py``).
Every script prints a markdown table and writes the same numbers, with their
provenance (commit, command line, package versions) and a description of the
machine, to ``benchmarks/results/NAME.json``.
"""

from __future__ import annotations

import datetime
import json
import os
import platform
import resource
import sys
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from pathlib import Path

import numpy as np

RESULTS_DIR = Path(__file__).resolve().parent / "results"
# When the benchmark started (this module is imported first): its wall time.
_STARTED = time.perf_counter()


def time_once(fn: Callable[[], object]) -> float:
    """Seconds one call of ``fn`` takes (wall clock)."""
    return time_and_cpu(fn)[0]


def cpu_seconds() -> float:
    """CPU time used so far by this process and its finished children.

    Children count once they have been waited for (DataLoader workers are joined
    when their iterator ends), so the work they did is included.
    """
    children = resource.getrusage(resource.RUSAGE_CHILDREN)
    return time.process_time() + children.ru_utime + children.ru_stime


def time_and_cpu(fn: Callable[[], object]) -> tuple[float, float]:
    """Wall-clock and CPU seconds of one call of ``fn``."""
    wall, cpu = time.perf_counter(), cpu_seconds()
    fn()
    return time.perf_counter() - wall, cpu_seconds() - cpu


def best_time(fn: Callable[[], object], repeat: int = 3) -> float:
    """Fastest of ``repeat`` calls of ``fn``, in seconds.

    The minimum is the least noisy estimate on a shared machine: other load only
    ever makes a run slower.
    """
    return min(time_once(fn) for _ in range(repeat))


def interleaved_timings(
    fns: Mapping[str, Callable[[], object]], repeat: int = 3
) -> dict[str, list[tuple[float, float]]]:
    """``(wall, cpu)`` seconds of each of ``fns``, timed in interleaved rounds.

    Round ``r`` runs every function once, so slow phases of a shared machine hit
    all of them alike and ratios between them stay meaningful.
    """
    timings: dict[str, list[tuple[float, float]]] = {name: [] for name in fns}
    for _ in range(repeat):
        for name, fn in fns.items():
            timings[name].append(time_and_cpu(fn))
    return timings


def interleaved_best(
    fns: Mapping[str, Callable[[], object]], repeat: int = 3
) -> dict[str, float]:
    """Best wall-clock time of each of ``fns`` over interleaved rounds."""
    timings = interleaved_timings(fns, repeat)
    return {name: min(wall for wall, _ in runs) for name, runs in timings.items()}


def current_rss_mb() -> float:
    """Resident set size of this process now, in MiB (Linux ``/proc``)."""
    return _proc_status_mb("VmRSS")


def peak_rss_mb() -> float:
    """Peak resident set size of this process, in MiB.

    Reads ``VmHWM`` (which :func:`reset_peak_rss` can reset) and falls back on
    ``getrusage``, which only ever grows.
    """
    try:
        return _proc_status_mb("VmHWM")
    except (OSError, KeyError):
        return _maxrss_mb(resource.RUSAGE_SELF)


def children_peak_rss_mb() -> float:
    """Largest peak RSS of any finished child process, in MiB (``getrusage``)."""
    return _maxrss_mb(resource.RUSAGE_CHILDREN)


def reset_peak_rss() -> bool:
    """Reset this process's peak RSS to its current RSS (Linux 4.0+).

    Returns False where the kernel does not allow it; :func:`peak_rss_mb` then
    reports the peak since the process started.
    """
    try:
        with open("/proc/self/clear_refs", "w") as handle:
            handle.write("5")
    except OSError:
        return False
    return True


def _maxrss_mb(who: int) -> float:
    # ru_maxrss is in KiB on Linux and in bytes on macOS.
    scale = 1 if sys.platform == "darwin" else 1024
    return resource.getrusage(who).ru_maxrss * scale / 2**20


def _proc_status_mb(field: str) -> float:
    with open("/proc/self/status") as handle:
        for line in handle:
            if line.startswith(field + ":"):
                return int(line.split()[1]) / 1024  # reported in kB
    raise KeyError(field)


def machine_info() -> dict:
    """What the numbers depend on: CPU, threads and library versions."""
    import numpy
    import torch

    info = {
        "date": datetime.datetime.now().isoformat(timespec="seconds"),
        "python": platform.python_version(),
        "platform": platform.platform(),
        "cpu": _cpu_model(),
        "cpu_count": os.cpu_count(),
        "torch_threads": torch.get_num_threads(),
        "OMP_NUM_THREADS": os.environ.get("OMP_NUM_THREADS"),
        "OMP_WAIT_POLICY": os.environ.get("OMP_WAIT_POLICY"),
        "numpy": numpy.__version__,
        "torch": torch.__version__,
    }
    try:
        import torchvision

        info["torchvision"] = torchvision.__version__
    except ImportError:
        pass
    info["loadavg_at_end"] = load_average()
    return info


def load_average() -> list[float] | None:
    """1, 5 and 15 minute load averages: how busy a shared machine was."""
    try:
        return [round(value, 2) for value in os.getloadavg()]
    except OSError:
        return None


def _cpu_model() -> str:
    try:
        with open("/proc/cpuinfo") as handle:
            for line in handle:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor()


def git_commit() -> str:
    """The commit the run started from, with ``+dirty`` when its code differs.

    Results files do not count: a run writes them, and the next run of the same
    checkout is still the committed code.
    """
    root = Path(__file__).resolve().parent
    try:
        head = _git(root, "rev-parse", "HEAD")
        dirty = _git(
            root,
            "status",
            "--porcelain",
            "--untracked-files=no",
            "--",
            ":(top)",
            ":(top,exclude)benchmarks/results",
        )
    except OSError:
        return "unknown"
    return (head or "unknown") + ("+dirty" if dirty else "")


def _git(root: Path, *args: str) -> str:
    import subprocess

    return subprocess.run(
        ["git", *args], cwd=root, capture_output=True, text=True
    ).stdout.strip()


# The commit the benchmark started from (a commit made while it ran is not it).
COMMIT_AT_START = git_commit()
# The packages whose versions a result can depend on (those installed are recorded).
_VERSIONED = (
    "sktransfer",
    "numpy",
    "scipy",
    "scikit-learn",
    "skorch",
    "torch",
    "torchvision",
    "timm",
    "transformers",
    "sentence-transformers",
    "setfit",
    "skada",
    "soundfile",
    "pillow",
)


def command_line() -> str:
    """The command that re-runs this benchmark: ``./dev bench NAME ARGS``."""
    import shlex

    script = Path(sys.argv[0]).stem
    return " ".join(["./dev bench", script, *map(shlex.quote, sys.argv[1:])])


def installed_versions() -> dict[str, str]:
    """Versions of the installed packages among ``_VERSIONED``."""
    from importlib import metadata

    versions = {}
    for package in _VERSIONED:
        try:
            versions[package] = metadata.version(package)
        except metadata.PackageNotFoundError:
            pass
    return versions


def provenance() -> dict:
    """Where a result comes from: commit (dirty or not), command and versions."""
    return {
        "commit": COMMIT_AT_START,
        "dirty": COMMIT_AT_START.endswith("+dirty"),
        "command": command_line(),
        "versions": installed_versions(),
    }


def write_results(name: str, payload: dict) -> Path:
    """Write ``payload`` to ``results/NAME.json`` with its provenance.

    The provenance (:func:`provenance`: commit, command line, package versions),
    :func:`machine_info` (CPU, threads, load) and the wall time since the script
    started are recorded in every file; a ``command`` in ``payload`` is replaced
    by the command line that ran.
    """
    RESULTS_DIR.mkdir(parents=True, exist_ok=True)
    path = RESULTS_DIR / f"{name}.json"
    payload = {k: v for k, v in payload.items() if k != "command"}
    document = {
        "benchmark": name,
        **provenance(),
        "machine": machine_info(),
        "wall_seconds": round(time.perf_counter() - _STARTED, 1),
        **payload,
    }
    path.write_text(json.dumps(document, indent=2, default=str) + "\n")
    return path


def markdown_table(
    rows: Iterable[Mapping[str, object]],
    columns: Sequence[str],
    *,
    align: Mapping[str, str] | None = None,
) -> str:
    """Format ``rows`` (dicts) as a markdown table with the given ``columns``.

    Floats are shown with 2 decimals unless already formatted as strings;
    ``align`` maps a column to ``"left"`` or ``"right"`` (numbers default right).
    """
    rows = list(rows)
    align = dict(align or {})
    cells = [[_cell(row.get(column, "")) for column in columns] for row in rows]
    widths = [
        max([3, len(column)] + [len(line[i]) for line in cells])
        for i, column in enumerate(columns)
    ]
    right = [
        align.get(
            column,
            "right"
            if rows and all(isinstance(r.get(column), (int, float)) for r in rows)
            else "left",
        )
        == "right"
        for column in columns
    ]

    def line(values):
        padded = [
            value.rjust(width) if is_right else value.ljust(width)
            for value, width, is_right in zip(values, widths, right)
        ]
        return "| " + " | ".join(padded) + " |"

    rule = [
        "-" * (width - 1) + ":" if is_right else "-" * width
        for width, is_right in zip(widths, right)
    ]
    return "\n".join([line(columns), line(rule)] + [line(c) for c in cells])


def _cell(value: object) -> str:
    if isinstance(value, float):
        return f"{value:.2f}"
    return str(value)


def few_shot_table(rows: list[dict]) -> str:
    """One markdown table per task: methods x labels per class, mean ± std of
    ``accuracy`` over seeds (rows carry task, method, per_class, accuracy)."""
    lines = []
    for task in dict.fromkeys(row["task"] for row in rows):
        ks = sorted({row["per_class"] for row in rows if row["task"] == task})
        methods = list(
            dict.fromkeys(row["method"] for row in rows if row["task"] == task)
        )
        lines += [
            f"### {task} (accuracy, mean ± std over seeds)",
            "",
            "| method | " + " | ".join(f"{k}/class" for k in ks) + " |",
            "| --- | " + " | ".join("---:" for _ in ks) + " |",
        ]
        for method in methods:
            cells = []
            for k in ks:
                values = [
                    row["accuracy"]
                    for row in rows
                    if row["task"] == task
                    and row["method"] == method
                    and row["per_class"] == k
                ]
                cells.append(
                    f"{np.mean(values):.3f} ± {np.std(values):.3f}" if values else "–"
                )
            lines.append(f"| {method} | " + " | ".join(cells) + " |")
        lines.append("")
    return "\n".join(lines)


def freeze_value(text: str):
    """A ``--freeze`` command-line value: "all", "auto" or a stage count."""
    return text if text in ("all", "auto") else int(text)


def chosen_freeze(model) -> dict:
    """What ``freeze="auto"`` chose and the held-out scores why (else nothing)."""
    if getattr(model, "freeze", None) != "auto":
        return {}
    return {"chosen_freeze": model.freeze_, "freeze_scores": model.freeze_scores_}
