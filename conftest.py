"""Run every Python code block of the README and the documentation as a test.

Each file is one test item: its blocks run in order in one namespace, the way a
reader runs them (a later block may use names an earlier one defined). Blocks that
cannot run here are marked just above the block, with the reason, which the test
report shows as a skip:

- Markdown: ``<!-- skip-example: needs the internet (downloads weights) -->``
- reStructuredText: ``.. skip-example: needs a dask scheduler``

Python blocks are ```` ```python ```` fences in Markdown and ``.. code-block::
python`` directives in reStructuredText; ``bash`` and ``text`` blocks are not run.
Everything runs in a temporary working directory.
"""

from __future__ import annotations

import re
import textwrap
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent
# Sphinx's configuration and extensions are run by the docs build, not imported
# by pytest's doctest collection.
collect_ignore_glob = [
    "docs/conf.py",
    "docs/_ext/*",
    "docs/_build/*",
    "docs/auto_examples/*",
    "docs/generated*",
]
# Written by the docs build: copies of the sources, and the example gallery (whose
# scripts the build runs).
_GENERATED = ("_build", "generated", "generated_api", "auto_examples")

_SKIP = re.compile(r"(?:<!--|\.\.)\s*skip-example:\s*(.+?)\s*(?:-->)?\s*$")
_MD_FENCE = re.compile(r"^```\s*(\S*).*$")
_RST_DIRECTIVE = re.compile(r"^(\s*)\.\. code-block::\s*(\w+)\s*$")


def extract_blocks(path: Path) -> list[tuple[int, str, str | None]]:
    """``(line number, code, skip reason or None)`` of each Python block."""
    lines = path.read_text(encoding="utf-8").splitlines()
    blocks, skip = [], None
    i = 0
    while i < len(lines):
        line = lines[i]
        marker = _SKIP.match(line.strip())
        if marker:
            skip = marker.group(1)
            i += 1
            continue
        if path.suffix == ".md":
            fence = _MD_FENCE.match(line)
            if fence:
                closing = (j for j in range(i + 1, len(lines)) if lines[j] == "```")
                end = next(closing, len(lines))
                if fence.group(1) == "python":
                    blocks.append((i + 1, "\n".join(lines[i + 1 : end]), skip))
                skip, i = None, end + 1
                continue
        else:
            directive = _RST_DIRECTIVE.match(line)
            if directive:
                indent = len(directive.group(1))
                j = i + 1
                while j < len(lines) and (
                    not lines[j].strip()
                    or len(lines[j]) - len(lines[j].lstrip()) > indent
                ):
                    j += 1
                body = [t for t in lines[i + 1 : j] if not t.strip().startswith(":")]
                if directive.group(2) == "python":
                    code = textwrap.dedent("\n".join(body)).strip("\n")
                    blocks.append((i + 1, code, skip))
                skip, i = None, j
                continue
        if line.strip():
            skip = None  # a marker applies to the block right below it only
        i += 1
    return blocks


def pytest_configure(config):
    config.addinivalue_line(
        "markers",
        "slow: end-to-end tests of several seconds each (other processes, a dask "
        "cluster, the default ImageNet fit, the built site in a browser). CI runs "
        "them; ./dev test -m 'not slow' skips them locally.",
    )


def pytest_collect_file(parent, file_path):
    if file_path.suffix in (".md", ".rst") and (
        file_path == ROOT / "README.md" or (ROOT / "docs") in file_path.parents
    ):
        generated = set(file_path.relative_to(ROOT).parts) & set(_GENERATED)
        if not generated and extract_blocks(file_path):
            return CodeBlocksFile.from_parent(parent, path=file_path)
    return None


class CodeBlocksFile(pytest.File):
    """One file's Python blocks: one test each, run in order in one namespace."""

    def collect(self):
        self.namespace = {"__name__": "__main__"}
        for line, code, skip in extract_blocks(self.path):
            yield CodeBlockItem.from_parent(
                self, name=f"line {line}", line=line, code=code, skip=skip
            )

    def setup(self):
        self._cwd = pytest.MonkeyPatch()
        self._cwd.chdir(self.config._tmp_path_factory.mktemp("docs"))

    def teardown(self):
        self._cwd.undo()


class CodeBlockItem(pytest.Item):
    def __init__(self, *, line: int, code: str, skip: str | None, **kwargs):
        super().__init__(**kwargs)
        self.line, self.code, self.skip = line, code, skip

    def runtest(self):
        if self.skip:
            pytest.skip(self.skip)
        compiled = compile(self.code, f"{self.path}:{self.line}", "exec")
        exec(compiled, self.parent.namespace)  # the documentation's own code

    def repr_failure(self, excinfo):
        where = f"{self.path.relative_to(ROOT)}, block at line {self.line}"
        return f"{where} failed:\n{excinfo.getrepr(style='short')}"

    def reportinfo(self):
        return self.path, self.line - 1, f"code block at line {self.line}"
