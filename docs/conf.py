"""Sphinx configuration of gradflow's documentation.

Build from the repository root (warnings are errors)::

    python -m sphinx -W --keep-going -b html docs docs/_build/html
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

DOCS = Path(__file__).resolve().parent
ROOT = DOCS.parent
# the repository's gradflow, not an installed copy; docs/_ext holds the build's helpers
sys.path.insert(0, str(ROOT))
sys.path.insert(1, str(DOCS / "_ext"))
# figures without a display; the gallery's scraper collects pyplot's figures
os.environ.setdefault("MPLBACKEND", "Agg")

import gradflow  # noqa: E402

project = "gradflow"
author = "gradflow contributors"
copyright = "gradflow contributors"
release = gradflow.__version__
version = ".".join(release.split(".")[:2])

extensions = [
    "sphinx.ext.autodoc",
    "sphinx.ext.autosummary",
    "sphinx.ext.mathjax",
    "sphinx.ext.viewcode",
    "numpydoc",
    "sphinx_gallery.gen_gallery",
    "myst_parser",
    "gradflow_refs",
]

source_suffix = {".rst": "restructuredtext", ".md": "markdown"}
root_doc = "index"
templates_path = ["_templates"]
exclude_patterns = ["_build", "examples/GALLERY_HEADER.rst", "**.ipynb_checkpoints"]
default_role = "autolink"

# -- API reference ------------------------------------------------------------------
autosummary_generate = True
autosummary_imported_members = False
autodoc_typehints = "none"           # the numpydoc sections say the types
autodoc_member_order = "bysource"
numpydoc_show_class_members = False  # the class template lists the members itself
numpydoc_class_members_toctree = False
numpydoc_xref_param_type = False
numpydoc_attributes_as_param_list = True

# -- Markdown pages (references.md, internals.md) -----------------------------------
myst_enable_extensions = ["dollarmath"]
myst_heading_anchors = 3

# -- the gallery ----------------------------------------------------------------------
sphinx_gallery_conf = {
    "examples_dirs": "examples",
    "gallery_dirs": "auto_examples",
    "filename_pattern": r"/plot_",
    "within_subsection_order": "gallery_order.ExampleOrder",
    "doc_module": ("gradflow",),
    "backreferences_dir": "gen_modules/backreferences",
    "reference_url": {"gradflow": None},
    "remove_config_comments": True,
    "download_all_examples": False,
    "show_memory": False,
    "capture_repr": (),
    "min_reported_time": 1,
    "matplotlib_animations": False,
}

# -- HTML -----------------------------------------------------------------------------
html_theme = "pydata_sphinx_theme"
html_title = f"gradflow {release}"
html_theme_options = {
    "navigation_with_keys": False,
    "show_toc_level": 2,
    "header_links_before_dropdown": 6,
    "secondary_sidebar_items": ["page-toc", "sourcelink"],
}
html_sidebars = {"index": [], "guide/index": []}
html_static_path = []
html_show_sourcelink = True
html_last_updated_fmt = None

# -- references -----------------------------------------------------------------------
# every cross-reference must resolve (no network: other projects' names stay unlinked)
nitpicky = True
nitpick_ignore_regex = [
    # `name` in a numpydoc docstring is a parameter; the default role links it only when
    # it names an object
    ("py:obj", r"[a-z_][a-z0-9_]*"),
    # other projects' objects (no inventories are fetched)
    (r"py:.*", r"(numpy|scipy|sympy|numba|hypothesis|torch|keras|matplotlib|pandas|ast|json"
               r"|zipfile|tempfile|pathlib)(\..*)?"),
]
