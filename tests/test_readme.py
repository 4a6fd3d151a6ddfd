"""The README stays a front page; its code blocks run as tests (see conftest.py)."""

from pathlib import Path

README = Path(__file__).resolve().parents[1] / "README.md"


def test_readme_is_a_short_front_page_with_the_two_commands():
    text = README.read_text(encoding="utf-8")
    assert len(text.splitlines()) <= 150, "move details to docs/"
    assert "./dev quickstart" in text and "./dev test" in text


def test_readme_headline_tables_are_generated_from_the_results_files():
    """The front page's numbers are exactly what the results files hold."""
    import importlib.util

    path = README.parent / "benchmarks" / "_headline.py"
    spec = importlib.util.spec_from_file_location("_headline", path)
    headline = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(headline)
    block = headline.readme_block(README.read_text(encoding="utf-8"))
    assert block is not None, "README.md lost its generated headline block"
    assert block == headline.headline(), (
        "README.md's headline differs from benchmarks/results: run "
        "./dev python benchmarks/_headline.py"
    )
    plot = README.parent / headline.PLOT
    assert plot.is_file(), f"the README links {plot.name}, which is missing"
