"""Small helpers the chapters use to talk to the page: glue numbers into prose, show source.

`glue` writes the same output as myst-nb's `glue` (so `{glue:text}` roles in the book pick the
value up) without importing myst-nb, which Colab does not have. `floor_to` and `ceil_to` round
a bound quoted in the prose ("at least", "at most") the safe way, so it is never overstated.
"""

from __future__ import annotations

import inspect
import math

from . import _util

__all__ = [
    "glue",
    "show_source",
    "floor_to",
    "ceil_to",
]

_GLUE_PREFIX = "application/papermill.record/"


def glue(name: str, value: object, display: bool = False) -> None:
    """Store `value`'s display form under `name` for `{glue:text}` / `{glue:}` in the book."""
    name, display = _util.text(name, "name", empty=False), _util.flag(display, "display")
    from IPython.core.formatters import format_display_data
    from IPython.display import display as ipy_display

    bundle, metadata = format_display_data(value)
    prefix = "" if display else _GLUE_PREFIX
    metadata["scrapbook"] = dict(name=name, mime_prefix=prefix)
    ipy_display({prefix + k: v for k, v in bundle.items()}, raw=True, metadata=metadata)


def show_source(obj: object) -> None:
    """Display the source of a supersim function or class as highlighted Python.

    Chapters show the code that teaches from the package itself rather than keep a copy.
    """
    try:
        source = inspect.getsource(obj)
    except (TypeError, OSError):  # not a module, class or function, or one without source
        raise ValueError(f"obj must be a function or class written in Python, got {obj!r}") from None
    from IPython.display import Markdown, display

    display(Markdown(f"```python\n{source.rstrip()}\n```"))


# a float holds about 15 significant decimal digits: rounding to more decimals changes nothing
_MAX_DIGITS = 15


def _round(x: float, digits: int, direction) -> float:
    x = _util.number(x, "x")
    digits = _util.integer(digits, "digits", low=-_MAX_DIGITS, high=_MAX_DIGITS)
    scaled = x * 10.0**digits
    if not math.isfinite(scaled):  # so large that it has no digits at that place to round
        return x
    return direction(scaled) / 10.0**digits


def floor_to(x: float, digits: int) -> float:
    """`x` rounded down to `digits` decimals: a lower bound the prose may quote as "at least"."""
    return _round(x, digits, math.floor)


def ceil_to(x: float, digits: int) -> float:
    """`x` rounded up to `digits` decimals: an upper bound the prose may quote as "at most"."""
    return _round(x, digits, math.ceil)
