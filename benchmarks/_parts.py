"""Benchmark runs split into part files, one process per core, then merged.

A script run on a subset of its work writes ``results/<name>.part-<what>.json``
(the usual payload: ``records``, ``tasks``, timings, ``machine``);
:func:`read_parts` combines every part of ``<name>`` into one payload. Parts
only split one run across cores: they must all come from the same clean commit,
so that the merged table is what one code version measured.
"""

from __future__ import annotations

import json
from collections.abc import Sequence

from _common import RESULTS_DIR

__all__ = ["read_parts"]

_TIMINGS = ("seconds_", "cpu_seconds_")


def read_parts(name: str, *, key: Sequence[str]) -> dict:
    """One payload from the part files of ``name``; ``key`` names a record.

    Per-task timings (``seconds_<task>``, ``cpu_seconds_<task>``) are summed over
    the parts that ran the task; ``parts`` lists each file with its machine.
    """
    paths = sorted(RESULTS_DIR.glob(f"{name}.part-*.json"))
    if not paths:
        raise FileNotFoundError(f"No part files {RESULTS_DIR}/{name}.part-*.json")
    docs = [json.loads(p.read_text()) for p in paths]
    check_one_commit(name, paths, docs)
    order = sorted(range(len(docs)), key=lambda i: docs[i]["machine"]["date"])
    paths, docs = [paths[i] for i in order], [docs[i] for i in order]
    records = {}
    for path, doc in zip(paths, docs):
        for record in doc["records"]:
            row = tuple(str(record[k]) for k in key)
            if row in records:
                raise ValueError(
                    f"{path.name} measures {dict(zip(key, row))} again: each part "
                    "must run different work; delete the stale part files."
                )
            records[row] = record
    payload = {k: v for k, v in docs[0].items() if not k.startswith(_TIMINGS)}
    payload["records"] = list(records.values())
    payload["tasks"] = list(dict.fromkeys(t for d in docs for t in d["tasks"]))
    for doc in docs:
        for k, value in doc.items():
            if k.startswith(_TIMINGS):
                payload[k] = round(payload.get(k, 0) + value, 1)
    payload["parts"] = [
        {
            "file": path.name,
            "tasks": doc["tasks"],
            "command": doc.get("command"),
            "machine": doc["machine"],
            "total_seconds": doc["total_seconds"],
            "total_cpu_seconds": doc["total_cpu_seconds"],
        }
        for path, doc in zip(paths, docs)
    ]
    payload["total_seconds"] = max(d["total_seconds"] for d in docs)
    # The parts ran side by side: the run took as long as the longest.
    payload["wall_seconds"] = max(d.get("wall_seconds", 0) for d in docs)
    payload["total_cpu_seconds"] = round(sum(d["total_cpu_seconds"] for d in docs), 1)
    payload.pop("machine", None)
    payload.pop("benchmark", None)
    return payload


def check_one_commit(name: str, paths: Sequence, docs: Sequence[dict]) -> None:
    """Refuse parts made at different commits, or from a modified tree."""
    commits = {p.name: doc.get("commit", "unknown") for p, doc in zip(paths, docs)}
    unusable = {
        file: commit
        for file, commit in commits.items()
        if commit == "unknown" or commit.endswith("+dirty")
    }
    if unusable:
        raise ValueError(
            f"Parts of {name} without a clean commit: {unusable}. Re-run them from "
            "a clean checkout (commit first)."
        )
    if len(set(commits.values())) > 1:
        raise ValueError(
            f"Parts of {name} come from different commits: {commits}. Re-run every "
            "part at one commit, or delete the stale ones, then --merge."
        )
