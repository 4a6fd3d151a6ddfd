"""Benchmark results carry their provenance; part files merge only at one commit."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

BENCHMARKS = Path(__file__).resolve().parents[1] / "benchmarks"
sys.path.insert(0, str(BENCHMARKS))

import _common  # noqa: E402
import _parts  # noqa: E402

HASH = "0123456789abcdef0123456789abcdef01234567"


@pytest.fixture
def results_dir(tmp_path, monkeypatch):
    monkeypatch.setattr(_common, "RESULTS_DIR", tmp_path)
    monkeypatch.setattr(_parts, "RESULTS_DIR", tmp_path)
    return tmp_path


def write_part(folder: Path, name: str, commit: str, records: list[dict]) -> None:
    document = {
        "commit": commit,
        "command": f"./dev bench demo --tasks {name}",
        "machine": {"date": f"2026-12-03T10:00:0{len(name) % 10}"},
        "tasks": [name],
        "records": records,
        "total_seconds": 10.0,
        "total_cpu_seconds": 12.0,
    }
    (folder / f"demo.part-{name}.json").write_text(json.dumps(document))


def test_write_results_records_commit_command_versions_and_machine(
    results_dir, monkeypatch
):
    monkeypatch.setattr(sys, "argv", ["benchmarks/demo.py", "--ks", "10", "a b"])
    path = _common.write_results("demo", {"command": "stale", "rows": [1]})
    document = json.loads(path.read_text())
    assert document["command"] == "./dev bench demo --ks 10 'a b'"
    assert document["commit"] == _common.COMMIT_AT_START
    assert document["dirty"] == document["commit"].endswith("+dirty")
    assert {"numpy", "torch", "scikit-learn", "sktransfer"} <= set(document["versions"])
    machine = set(document["machine"])
    assert {"cpu_count", "OMP_NUM_THREADS", "loadavg_at_end"} <= machine
    assert document["wall_seconds"] >= 0 and document["rows"] == [1]


def test_parts_of_one_commit_merge(results_dir):
    write_part(results_dir, "a", HASH, [{"task": "a", "seed": 0}])
    write_part(results_dir, "b", HASH, [{"task": "b", "seed": 0}])
    merged = _parts.read_parts("demo", key=("task", "seed"))
    assert merged["commit"] == HASH and merged["tasks"] == ["a", "b"]
    assert [p["command"] for p in merged["parts"]] == [
        "./dev bench demo --tasks a",
        "./dev bench demo --tasks b",
    ]


@pytest.mark.parametrize(
    "second, message",
    [
        ("f" * 40, "different commits"),
        (HASH + "+dirty", "without a clean commit"),
    ],
)
def test_parts_from_other_commits_or_a_dirty_tree_are_refused(
    results_dir, second, message
):
    write_part(results_dir, "a", HASH, [{"task": "a", "seed": 0}])
    write_part(results_dir, "b", second, [{"task": "b", "seed": 0}])
    with pytest.raises(ValueError, match=message):
        _parts.read_parts("demo", key=("task", "seed"))


def test_a_row_measured_by_two_parts_is_refused(results_dir):
    write_part(results_dir, "a", HASH, [{"task": "a", "seed": 0}])
    write_part(results_dir, "b", HASH, [{"task": "a", "seed": 0}])
    with pytest.raises(ValueError, match="measures .* again"):
        _parts.read_parts("demo", key=("task", "seed"))


def test_every_benchmark_is_listed_with_the_question_it_answers():
    import _index

    rows = {row["name"]: row for row in _index.index()}
    scripts = {p.stem for p in BENCHMARKS.glob("[!_]*.py")}
    assert set(rows) == scripts
    assert all(row["question"] for row in rows.values())


def test_results_folder_holds_only_what_the_docs_show_or_the_readme_cites():
    """Superseded results leave the tree (git keeps them)."""
    import freeze_auto

    root = BENCHMARKS.parent
    pages = [root / "README.md", *sorted((root / "docs").rglob("*.md"))]
    text = "\n".join(p.read_text(encoding="utf-8") for p in pages)
    # The results freeze_auto.json is computed from (shown through it).
    inputs = {freeze_auto.TRANSFER, freeze_auto.SPEECH, freeze_auto.TEXT}
    inputs.add(freeze_auto.TEXT_50)
    unshown = [
        path.name
        for path in sorted((BENCHMARKS / "results").iterdir())
        if path.stem not in inputs
        and f"generated/{path.stem}.md" not in text
        and f"results/{path.name}" not in text
    ]
    assert not unshown, f"results no page shows: {unshown}; delete or show them"


def test_a_results_name_reruns_the_command_it_records(results_dir, monkeypatch):
    import _index

    monkeypatch.setattr(_index, "RESULTS", results_dir)
    (results_dir / "demo_variant.json").write_text(
        json.dumps({"command": "./dev bench demo --name demo_variant --ks 10 50"})
    )
    calls = []
    monkeypatch.setattr(_index.os, "execv", lambda *args: calls.append(args))
    _index.rerun("demo_variant")
    ((python, argv),) = calls
    assert argv[1:] == [str(BENCHMARKS / "demo.py"), "--name", "demo_variant"] + [
        "--ks",
        "10",
        "50",
    ]
    (results_dir / "old.json").write_text(json.dumps({"rows": []}))
    with pytest.raises(SystemExit, match="records the command"):
        _index.rerun("old")


def test_every_committed_result_records_a_clean_commit_its_command_and_versions():
    """Each results file names the one clean commit and command that made it."""
    incomplete = []
    for path in sorted((BENCHMARKS / "results").glob("*.json")):
        result = json.loads(path.read_text())
        commit = result.get("commit") or ""
        if not (
            len(commit) == 40
            and result.get("dirty") is False
            and str(result.get("command", "")).startswith("./dev bench ")
            and result.get("versions", {}).get("torch")
            and isinstance(result.get("wall_seconds"), int | float)
        ):
            incomplete.append(path.name)
    assert not incomplete, f"results without full provenance: {incomplete}"
