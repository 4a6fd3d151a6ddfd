"""Benchmark runs split into part files, one process per core, then merged.

A script run on a subset of its work writes ``results/<name>.part-<what>.json``
(the usual payload: ``records``, ``tasks``, timings, ``machine``);
:func:`read_parts` combines every part of ``<name>`` into one payload. A record
measured again in a newer part (after a change of defaults, say) replaces the
older one, so only the affected rows need re-running.
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
    order = sorted(range(len(docs)), key=lambda i: docs[i]["machine"]["date"])
    paths, docs = [paths[i] for i in order], [docs[i] for i in order]
    newest = {}
    for doc in docs:
        for record in doc["records"]:
            newest[tuple(str(record[k]) for k in key)] = record
    payload = {k: v for k, v in docs[0].items() if not k.startswith(_TIMINGS)}
    payload["records"] = list(newest.values())
    payload["tasks"] = list(dict.fromkeys(t for d in docs for t in d["tasks"]))
    for doc in docs:
        for k, value in doc.items():
            if k.startswith(_TIMINGS):
                payload[k] = round(payload.get(k, 0) + value, 1)
    payload["parts"] = [
        {
            "file": path.name,
            "tasks": doc["tasks"],
            "machine": doc["machine"],
            "total_seconds": doc["total_seconds"],
            "total_cpu_seconds": doc["total_cpu_seconds"],
        }
        for path, doc in zip(paths, docs)
    ]
    payload["total_seconds"] = max(d["total_seconds"] for d in docs)
    payload["total_cpu_seconds"] = round(sum(d["total_cpu_seconds"] for d in docs), 1)
    payload.pop("machine", None)
    payload.pop("benchmark", None)
    return payload
