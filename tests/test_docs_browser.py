"""The built documentation site renders in a real browser (headless Chromium).

Needs the site (``./dev docs``, which ``.ci/run`` runs first) and Chromium
(``apt-get install chromium``); skipped, saying which is missing, otherwise.
Chromium loads each page from disk, runs its scripts and dumps the resulting
DOM, which must hold the page's real content, not just a frame.
"""

from __future__ import annotations

import html
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


def rendered_text(page: str) -> str:
    """Visible text of ``page`` once Chromium has loaded it and run its scripts."""
    dom = subprocess.run(
        [
            BROWSER,
            "--headless",
            "--no-sandbox",  # CI runs as root
            "--disable-gpu",
            "--virtual-time-budget=3000",
            "--dump-dom",
            (SITE / page).as_uri(),
        ],
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    ).stdout
    body = re.sub(r"<(script|style)\b.*?</\1>", " ", dom, flags=re.S)
    return " ".join(html.unescape(re.sub(r"<[^>]+>", " ", body)).split())


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
    dom = subprocess.run(
        [
            BROWSER,
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--dump-dom",
            (SITE / "auto_examples/quickstart.html").as_uri(),
        ],
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    ).stdout
    images = re.findall(r'<img[^>]+src="([^"]+)"', dom)
    plots = [src for src in images if "sphx_glr_quickstart_001" in src]
    assert plots and (SITE / "auto_examples" / plots[0]).resolve().is_file()
