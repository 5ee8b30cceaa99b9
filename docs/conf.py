"""Sphinx configuration for the itersolve documentation.

The API lists and the benchmark-claim tables are generated at build time from each
family's ``__all__`` and from the suite registry, so the pages cannot drift from the
code: a name removed from ``__all__`` disappears, a renamed one fails the build.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

import matplotlib

matplotlib.use("Agg")

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

import sphinx.ext.autosummary as _autosummary  # noqa: E402
from _apigen import write_generated  # noqa: E402

import itersolve  # noqa: E402

project = "itersolve"
author = "the itersolve authors"
copyright = "itersolve authors, BSD-3-Clause"
release = version = itersolve.__version__

extensions = [
    "sphinx.ext.autodoc",
    "sphinx.ext.autosummary",
    "sphinx.ext.mathjax",
    "numpydoc",
    "sphinx_gallery.gen_gallery",
]

write_generated(HERE)

_first_sentence = _autosummary.extract_summary


def _extract_summary(doc: list[str], document: object) -> str:
    """Autosummary cuts at the first period, also inside ````a . b````; a cut
    that leaves an inline literal open falls back to the whole first paragraph."""
    summary = _first_sentence(doc, document)
    if summary.count("``") % 2 == 0:
        return summary
    lines = [line.strip() for line in doc]
    while lines and not lines[0]:
        lines.pop(0)
    paragraph = lines[: lines.index("")] if "" in lines else lines
    return " ".join(paragraph)


_autosummary.extract_summary = _extract_summary

autosummary_generate = True
autosummary_imported_members = True
autodoc_default_options = {"members": False}
autodoc_typehints = "none"
numpydoc_show_class_members = False
numpydoc_class_members_toctree = False
numpydoc_xref_param_type = False
numpydoc_attributes_as_param_list = False

templates_path = ["_templates"]
exclude_patterns = ["_build", "**.ipynb_checkpoints", "auto_examples/*.ipynb"]
html_theme = "pydata_sphinx_theme"
html_title = f"itersolve {release}"
html_theme_options = {"navigation_with_keys": False, "show_toc_level": 2}
html_static_path: list[str] = []

sphinx_gallery_conf = {
    "examples_dirs": str(HERE.parent / "examples"),
    "gallery_dirs": str(HERE / "auto_examples"),
    "filename_pattern": r"/plot_",
    "download_all_examples": False,
    "remove_config_comments": True,
    "within_subsection_order": "FileNameSortKey",
    "image_scrapers": ("matplotlib",),
    "default_thumb_file": None,
    "show_memory": False,
    "plot_gallery": os.environ.get("ITERSOLVE_DOCS_GALLERY", "True"),
}
