"""The benchmark index: ``./dev bench`` with no name lists every benchmark.

For each ``benchmarks/NAME.py`` (files starting with ``_`` are helpers): the
first line of its docstring (the question it answers), how long its last full
run took here and the commit that run started from, both read from
``results/NAME.json``. Run one with ``./dev bench NAME``; ``--help`` lists its
options. A results file made by a script with options (``domain_adaptation_defaults``
is ``domain_adaptation --library-defaults ...``) is regenerated whole by
``./dev bench`` with its name too: :func:`rerun` runs the command it records.
"""

from __future__ import annotations

import ast
import json
import os
import shlex
import sys
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
    return {"seconds": wall_time(result), "commit": short_commit(result.get("commit"))}


def short_commit(commit: str | None) -> str:
    """A 40-digit hash, maybe "+dirty", in the short form git shows."""
    return commit[:7] + commit[40:] if commit else "not recorded"


def minutes(seconds: float | None) -> str:
    """A wall time as people read it: "45 s" or "26 min"."""
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
                "wall": minutes(run.get("seconds")) if run else "never run",
                "commit": run.get("commit", "—"),
            }
        )
    return rows


def rerun(name: str) -> None:
    """Run the command that wrote ``results/NAME.json`` again, in this process."""
    path = RESULTS / f"{name}.json"
    command = json.loads(path.read_text()).get("command") if path.is_file() else None
    words = shlex.split(command) if command else []
    if words[:2] != ["./dev", "bench"] or len(words) < 3:
        sys.exit(
            f"[dev] no benchmark named '{name}', and no results/{name}.json that "
            "records the command which wrote it (see the list above)"
        )
    print(f"[dev] results/{name}.json was written by: {command}", file=sys.stderr)
    script = str(HERE / f"{words[2]}.py")
    os.execv(sys.executable, [sys.executable, script, *words[3:]])


def main() -> None:
    if len(sys.argv) == 3 and sys.argv[1] == "--rerun":
        return rerun(sys.argv[2])
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
