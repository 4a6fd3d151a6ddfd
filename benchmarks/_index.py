"""The benchmark index: ``./dev bench`` with no name lists every benchmark.

For each ``benchmarks/NAME.py`` (files starting with ``_`` are helpers): the
first line of its docstring (the question it answers), how long its last full
run took here and the commit that run started from, both read from
``results/NAME.json``. Run one with ``./dev bench NAME``; ``--help`` lists its
options.
"""

from __future__ import annotations

import ast
import json
from pathlib import Path

HERE = Path(__file__).resolve().parent
RESULTS = HERE / "results"


def first_docstring_line(script: Path) -> str:
    """The first line of ``script``'s module docstring (empty if none)."""
    doc = ast.get_docstring(ast.parse(script.read_text(encoding="utf-8"))) or ""
    return doc.strip().splitlines()[0] if doc.strip() else ""


def wall_time(result: dict) -> float | None:
    """Seconds the run took: recorded by ``write_results``, or by older scripts."""
    for key in ("wall_seconds", "total_seconds", "wall_s"):
        if isinstance(result.get(key), int | float):
            return float(result[key])
    return None


def last_run(name: str) -> dict:
    """Wall time and commit of ``results/NAME.json`` (``{}`` if never run)."""
    path = RESULTS / f"{name}.json"
    if not path.is_file():
        return {}
    result = json.loads(path.read_text())
    commit = result.get("commit")
    # A 40-digit hash, maybe "+dirty": the short form git shows.
    short = commit[:7] + commit[40:] if commit else "not recorded"
    return {"seconds": wall_time(result), "commit": short}


def _minutes(seconds: float | None) -> str:
    if seconds is None:
        return "not recorded"
    return f"{seconds / 60:.0f} min" if seconds >= 90 else f"{seconds:.0f} s"


def index() -> list[dict]:
    """One row per benchmark script: name, question, last wall time, commit."""
    rows = []
    for script in sorted(HERE.glob("[!_]*.py")):
        run = last_run(script.stem)
        rows.append(
            {
                "name": script.stem,
                "question": first_docstring_line(script),
                "wall": _minutes(run.get("seconds")) if run else "never run",
                "commit": run.get("commit", "—"),
            }
        )
    return rows


def main() -> None:
    rows = index()
    width = max(len(row["name"]) for row in rows)
    print("Benchmarks (./dev bench NAME [--help]); last run's wall time and commit:\n")
    for row in rows:
        print(f"  {row['name']:<{width}}  {row['question']}")
        print(f"  {'':<{width}}  last run: {row['wall']}, commit {row['commit']}")
    print(
        "\nResults: benchmarks/results/NAME.json (tables in the docs' benchmarks page)"
    )


if __name__ == "__main__":
    main()
