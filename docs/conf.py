"""Sphinx configuration of the sktransfer documentation (``./dev docs``).

Builds offline: no intersphinx inventories are fetched, the example gallery runs
only the fast examples (``SKTRANSFER_GALLERY_RUN`` overrides the pattern, e.g.
``.*`` to run every example), and benchmark tables are generated from
``benchmarks/results/*.json`` by ``_ext/benchmark_tables.py``.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE / "_ext"))
sys.path.insert(0, str(HERE.parent))

import sktransfer  # noqa: E402

project = "sktransfer"
author = "the sktransfer developers"
copyright = "the sktransfer developers, BSD-3-Clause"
release = version = sktransfer.__version__

extensions = [
    "sphinx.ext.autodoc",
    "sphinx.ext.autosummary",
    "numpydoc",
    "sphinx_gallery.gen_gallery",
    "myst_parser",
    "sphinx_copybutton",
    "benchmark_tables",
]
source_suffix = {".rst": "restructuredtext", ".md": "markdown"}
exclude_patterns = ["_build", "generated", "auto_examples/*.ipynb", "**/*.py"]
myst_heading_anchors = 3
suppress_warnings = ["myst.header"]

templates_path = ["_templates"]
autosummary_generate = True
autodoc_default_options = {"members": True, "inherited-members": False}
numpydoc_show_class_members = False
numpydoc_class_members_toctree = False

# The PyData theme (scikit-learn's, imbalanced-learn's, skada's) bundles its
# fonts, icons and scripts: building the site needs no network.
html_theme = "pydata_sphinx_theme"
html_title = f"sktransfer {release}"
html_theme_options = {
    "navbar_end": ["theme-switcher"],  # no icon links (GitHub etc.)
    "show_toc_level": 2,
    "navigation_with_keys": False,
}
html_static_path = ["_static"]
html_css_files = ["custom.css"]

# Copy buttons leave out doctest prompts (">>> ", "... ") and their output.
copybutton_prompt_text = r">>> |\.\.\. "
copybutton_prompt_is_regexp = True

# Examples run in CI must take under a minute: the others are rendered, not run.
sphinx_gallery_conf = {
    "examples_dirs": str(HERE.parent / "examples"),
    "gallery_dirs": "auto_examples",
    "filename_pattern": os.environ.get(
        "SKTRANSFER_GALLERY_RUN",
        r"/(quickstart|image_folder|domain_adaptation|own_network)\.py",
    ),
    "ignore_pattern": r"__init__\.py",
    "download_all_examples": False,
    "remove_config_comments": True,
    "plot_gallery": "True",
    "abort_on_example_error": True,
    "within_subsection_order": "FileNameSortKey",
    "doc_module": ("sktransfer",),
    "backreferences_dir": "generated_api/backreferences",
}
