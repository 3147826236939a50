"""A small Sphinx extension that keeps the book's pages clean offline.

sphinx-thebe (loaded by Jupyter Book whether or not thebe is used) adds its inline config
script twice, which throws "Identifier 'THEBE_JS_URL' has already been declared" in every
page's console. The book does not use thebe, so its scripts are dropped from the pages. And the theme's
layout leaves `data-default-mode` empty unless told otherwise, which logs "Got invalid theme
mode" on every load; pages default to the light mode instead.

It also turns off supersim's training progress bars for the notebooks this build executes
(their kernels inherit this process's environment), so a plain `jupyter-book build .` gives
the same clean pages as `make book`.
"""

from __future__ import annotations

import os


def _clean_page(app, pagename, templatename, context, doctree):
    if not context.get("default_mode"):
        context["default_mode"] = "light"
    scripts = context.get("script_files")
    if not scripts:
        return
    kept = []
    for js in scripts:
        name = str(js)
        body = getattr(js, "attributes", {}).get("body", "") or ""
        if "thebe" in name.lower() or "THEBE_JS_URL" in body:
            continue
        kept.append(js)
    context["script_files"] = kept


def setup(app):
    os.environ.setdefault("SUPERSIM_PROGRESS", "0")
    app.connect("html-page-context", _clean_page)
    return {"parallel_read_safe": True, "parallel_write_safe": True}
