"""Sphinx configuration of the hsi_stats documentation (``nox -s docs`` builds it into ``docs/_build/html``)."""

from __future__ import annotations

import os
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path.insert(0, str(ROOT))  # document the source tree this file belongs to, not another install
sys.path.insert(0, str(HERE / "_ext"))
os.environ.setdefault("MPLBACKEND", "Agg")

import hsi_stats  # noqa: E402

project = "hsi_stats"
author = "the hsi_stats authors"
copyright = "the hsi_stats authors"
release = hsi_stats.__version__
version = ".".join(release.split(".")[:2])

extensions = [
    "sphinx.ext.autodoc",
    "sphinx.ext.autosummary",
    "sphinx.ext.mathjax",
    "sphinx-mathjax-offline",  # MathJax served with the pages: the formulas render offline too
    "sphinx.ext.viewcode",
    "numpydoc",
    "myst_parser",
    "sphinx_gallery.gen_gallery",
    "cli_help",
]
# No intersphinx: the build machines reach package registries only, so no inventory could be fetched. numpy, scipy
# and statsmodels are linked by plain URLs in the text.

source_suffix = {".rst": "restructuredtext", ".md": "markdown"}
root_doc = "index"
exclude_patterns = ["_build", "Thumbs.db", ".DS_Store", "auto_examples/*.ipynb", "auto_examples/*.py",
                    "auto_examples/*.zip", "auto_examples/*.md5", "auto_examples/*.json"]
templates_path = ["_templates"]
html_static_path = ["_static"]
html_css_files = ["custom.css"]

# --- MyST ------------------------------------------------------------------------------------------------------------
myst_enable_extensions = ["colon_fence", "dollarmath", "deflist"]
myst_heading_anchors = 3

# --- autodoc, autosummary, numpydoc --------------------------------------------------------------------------------
autosummary_generate = True
autosummary_imported_members = True
autodoc_default_options = {"member-order": "bysource"}
autodoc_typehints = "none"  # numpydoc's Parameters sections give the types
# The capture modules import torch and highway-env at import; the documentation is built without them (they are
# large, and no example page executes them), so autodoc reads those modules against stand-ins.
autodoc_mock_imports = ["torch", "highway_env", "gymnasium"]
numpydoc_show_class_members = False  # the class template lists the members with autodoc instead
numpydoc_class_members_toctree = False
numpydoc_attributes_as_param_list = True
numpydoc_xref_param_type = False

# --- sphinx-gallery -------------------------------------------------------------------------------------------------
sphinx_gallery_conf = {
    "examples_dirs": str(ROOT / "examples" / "gallery"),
    "gallery_dirs": "auto_examples",
    "filename_pattern": r"/plot_",
    "ignore_pattern": r"__init__\.py",
    "download_all_examples": False,
    "remove_config_comments": True,
    "within_subsection_order": "FileNameSortKey",
    "capture_repr": ("_repr_html_", "__repr__"),
    "matplotlib_animations": False,
    "image_scrapers": ("matplotlib",),
    "show_memory": False,
    "min_reported_time": 1,
    "reset_modules": ("matplotlib",),
}

# --- HTML -------------------------------------------------------------------------------------------------------------
html_theme = "pydata_sphinx_theme"
html_title = f"hsi_stats {release}"
html_theme_options = {
    "navigation_with_keys": False,
    "show_toc_level": 2,
    "header_links_before_dropdown": 6,
    "secondary_sidebar_items": ["page-toc"],
    "footer_start": ["copyright"],
    "footer_end": ["sphinx-version"],
}
html_sidebars = {page: [] for page in ("index", "install", "cli", "development", "changelog")}
html_show_sourcelink = False
pygments_style = "default"

# Docstrings write the absolute correlation as |rho| in plain text (the same text is the command line's help):
# reStructuredText would read it as a substitution, so it is defined as itself.
rst_prolog = r"""
.. |rho| replace:: \|rho\|
"""
