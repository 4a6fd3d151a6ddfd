"""The README stays a front page; its code blocks run as tests (see conftest.py)."""

from pathlib import Path

README = Path(__file__).resolve().parents[1] / "README.md"


def test_readme_is_a_short_front_page_with_the_two_commands():
    text = README.read_text(encoding="utf-8")
    assert len(text.splitlines()) <= 150, "move details to docs/"
    assert "./dev quickstart" in text and "./dev test" in text
