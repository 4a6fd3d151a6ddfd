"""The built documentation site renders in a real browser (headless Chromium).

Needs the site (``./dev docs``, which ``.ci/run`` runs first) and Chromium
(``apt-get install chromium``); skipped, saying which is missing, otherwise.
Chromium loads each page from disk, runs its scripts and dumps the resulting
DOM, which must hold the page's real content, not just a frame. Layout is
measured by Chromium too: a copy of the site gets a small script that writes
what it measured into the page, and the dumped DOM carries it back.
"""

from __future__ import annotations

import html
import json
import re
import shutil
import subprocess
from pathlib import Path

import pytest

SITE = Path(__file__).resolve().parents[1] / "docs" / "_build" / "html"
BROWSER = next(
    filter(None, map(shutil.which, ("chromium", "chromium-browser", "google-chrome"))),
    None,
)

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(
        not (SITE / "index.html").is_file(),
        reason="the documentation is not built: run ./dev docs first",
    ),
    pytest.mark.skipif(BROWSER is None, reason="no Chromium: apt-get install chromium"),
]


def dumped_dom(page: Path, *flags: str) -> str:
    """The DOM of ``page`` (a file) once Chromium has loaded it and run its scripts."""
    return subprocess.run(
        [
            BROWSER,
            "--headless",
            "--no-sandbox",  # CI runs as root
            "--disable-gpu",
            "--virtual-time-budget=3000",
            *flags,
            "--dump-dom",
            page.as_uri(),
        ],
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    ).stdout


def visible_text(dom: str) -> str:
    """The text a reader sees in ``dom``: no tags, scripts or styles."""
    body = re.sub(r"<(script|style)\b.*?</\1>", " ", dom, flags=re.S)
    return " ".join(html.unescape(re.sub(r"<[^>]+>", " ", body)).split())


def rendered_text(page: str) -> str:
    """Visible text of ``page`` once Chromium has loaded it and run its scripts."""
    return visible_text(dumped_dom(SITE / page))


@pytest.mark.parametrize(
    "page, content",
    [
        (
            "generated_api/sktransfer.PretrainedFeatureExtractor.html",
            [
                "with a frozen pretrained backbone",
                "efficientnet_lite0",
                "n_features_out_",
                "transform",
            ],
        ),
        (
            "generated_api/sktransfer.FineTuneClassifier.html",
            [
                "Fine-tune a pretrained backbone with a new head",
                "freeze",
                "partial_fit",
                "predict_proba",
            ],
        ),
        (
            "auto_examples/quickstart.html",
            ["Quick start", "labels/class", "default extractor", "held-out digits"],
        ),
    ],
)
def test_pages_render_with_their_content(page, content):
    text = rendered_text(page)
    missing = [snippet for snippet in content if snippet not in text]
    assert not missing, f"{page} rendered without {missing}"


def test_quickstart_gallery_page_shows_its_plot():
    dom = dumped_dom(SITE / "auto_examples/quickstart.html")
    images = re.findall(r'<img[^>]+src="([^"]+)"', dom)
    plots = [src for src in images if "sphx_glr_quickstart_001" in src]
    assert plots and (SITE / "auto_examples" / plots[0]).resolve().is_file()


def test_benchmarks_page_renders_its_tables_and_figures_in_the_theme():
    dom = dumped_dom(SITE / "user_guide/benchmarks.html")
    article = re.search(r'<article class="bd-article".*?</article>', dom, flags=re.S)
    assert article, "the benchmarks page has no article of the PyData theme"
    text = visible_text(article.group())
    assert "Benchmarks" in text and "Generated from" in text
    # Every figure the page shows is a file of the built site, the learning
    # curves of transfer_vs_scratch among them.
    images = re.findall(r'<img[^>]+src="([^"]+)"', article.group())
    assert any("transfer_vs_scratch_" in src for src in images), images
    missing = [
        src
        for src in images
        if not (SITE / "user_guide" / html.unescape(src)).resolve().is_file()
    ]
    assert not missing, f"figures that are not files of the built site: {missing}"


def test_front_page_code_blocks_have_copy_buttons():
    dom = dumped_dom(SITE / "index.html")
    blocks = re.findall(r'<div class="highlight"><pre\b', dom)
    buttons = re.findall(r'<button class="copybtn\b', dom)
    assert blocks and len(buttons) == len(blocks)


# Appended to a copy of a page: after layout, the longest line of every <pre>
# wider than its box (scrollWidth > clientWidth) goes into a data attribute.
MEASURE_CODE_BLOCKS = """<script>
window.addEventListener("load", () => {
  const wide = [...document.querySelectorAll("pre")]
    .filter((pre) => pre.scrollWidth > pre.clientWidth)
    .map((pre) => pre.textContent.split("\\n")
      .reduce((a, b) => (b.length > a.length ? b : a)));
  document.body.dataset.overflowingCode = JSON.stringify(wide);
});
</script>"""


def overflowing_code_blocks(copy: Path, page: str, width: int = 1280) -> list[str]:
    """Longest line of each code block of ``page`` that overflows its box.

    ``copy`` is a copy of the built site: the measuring script goes into its
    ``page``, never into the site itself.
    """
    path = copy / page
    path.write_text(
        path.read_text().replace("</body>", MEASURE_CODE_BLOCKS + "</body>", 1)
    )
    dom = dumped_dom(path, f"--window-size={width},900")
    found = re.search(r'data-overflowing-code="([^"]*)"', dom)
    assert found, f"the measuring script did not run on {page}"
    return json.loads(html.unescape(found.group(1)))


@pytest.fixture
def site_copy(tmp_path):
    return Path(shutil.copytree(SITE, tmp_path / "html"))


def test_front_page_code_blocks_fit_a_desktop_window(site_copy):
    assert overflowing_code_blocks(site_copy, "index.html") == []


def test_an_overlong_code_line_is_measured_as_overflowing(site_copy):
    index = site_copy / "index.html"
    overlong = "overlong = " + "x" * 300
    index.write_text(index.read_text().replace("<pre>", f"<pre>{overlong}\n", 1))
    assert overflowing_code_blocks(site_copy, "index.html") == [overlong]
