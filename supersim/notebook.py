"""Small helpers the chapters use to talk to the page: glue numbers into prose, show source.

`glue` writes the same output as myst-nb's `glue` (so `{glue:text}` roles in the book pick the
value up) without importing myst-nb, which Colab does not have.
"""

from __future__ import annotations

import inspect

_GLUE_PREFIX = "application/papermill.record/"


def glue(name: str, value, display: bool = False) -> None:
    """Store `value`'s display form under `name` for `{glue:text}` / `{glue:}` in the book."""
    from IPython.core.formatters import format_display_data
    from IPython.display import display as ipy_display

    bundle, metadata = format_display_data(value)
    prefix = "" if display else _GLUE_PREFIX
    metadata["scrapbook"] = dict(name=name, mime_prefix=prefix)
    ipy_display({prefix + k: v for k, v in bundle.items()}, raw=True, metadata=metadata)


def show_source(obj) -> None:
    """Display the source of a supersim function or class as highlighted Python.

    Chapters show the code that teaches from the package itself rather than keep a copy.
    """
    from IPython.display import Markdown, display

    display(Markdown(f"```python\n{inspect.getsource(obj).rstrip()}\n```"))
