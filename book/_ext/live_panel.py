"""The book's live toy-model panels: a directive for markdown pages, fresh JavaScript for all.

Notebooks display the panel from a code cell (`ss.widgets.live_toy_model(...)`); a markdown
page such as the intro has no cell to run, so the `live-toy-model` directive puts the same
HTML (the trainer and panel inlined, nothing to fetch) into the page at build time. Options
follow the function's keyword arguments, with dashes:

    ```{live-toy-model}
    :feature-probability: 0.1
    :seed: 1
    ```

A notebook's panel comes out of jupyter-cache, which re-executes a notebook only when its
code changes, so an edit to supersim/live/*.js alone would leave the old JavaScript in the
page. Every panel read into a page therefore gets the package's current JavaScript, and the
page is rebuilt when those files change.
"""

from __future__ import annotations

import re
from importlib import resources

from docutils import nodes
from docutils.parsers.rst import Directive, directives

# the markup of supersim.widgets.LiveToyModel.to_html, around the inlined JavaScript
_PANEL_SCRIPT = re.compile(r'(class="supersim-live">.*?<script>\n).*?(\nSupersimLive\.mount\()', re.S)


def _note_javascript(env) -> None:
    from supersim.widgets import _LIVE_FILES

    for name in _LIVE_FILES:
        env.note_dependency(str(resources.files("supersim") / "live" / name))


class LiveToyModel(Directive):
    option_spec = {
        "n-features": directives.positive_int,
        "d-hidden": directives.positive_int,
        "feature-probability": float,
        "importance-decay": float,
        "lr": float,
        "fast-lr": float,
        "seed": directives.nonnegative_int,
        "title": directives.unchanged,
    }

    def run(self):
        from supersim.widgets import live_toy_model

        kwargs = {key.replace("-", "_"): value for key, value in self.options.items()}
        try:
            panel = live_toy_model(**kwargs)
        except ValueError as err:
            raise self.error(f"live-toy-model: {err}") from None
        _note_javascript(self.state.document.settings.env)
        return [nodes.raw("", panel.to_html(), format="html")]


def _refresh_panels(app, doctree) -> None:
    panels = [n for n in doctree.findall(nodes.raw) if 'class="supersim-live"' in n.astext()]
    if not panels:
        return
    from supersim.widgets import _live_script

    script = _live_script()
    _note_javascript(app.env)
    for node in panels:
        fresh = _PANEL_SCRIPT.sub(lambda m: m[1] + script + m[2], node.astext())
        node.replace_self(nodes.raw("", fresh, format=node.get("format", "html"), classes=node["classes"]))


def setup(app):
    app.add_directive("live-toy-model", LiveToyModel)
    app.connect("doctree-read", _refresh_panels)
    return {"parallel_read_safe": True, "parallel_write_safe": True}
