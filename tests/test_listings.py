"""The package code a chapter shows with `show_source` fits the book's code column and has
public names.

`ss.notebook.show_source(obj)` renders `inspect.getsource(obj)` as a code block, so a line of
the package longer than the chapters' CODE_LINE_LENGTH scrolls or wraps on the page, however
well the chapter's own cells are formatted. And a name with a leading underscore on the page
tells the reader it is not theirs to call. These tests find every `show_source(...)` target
in the chapters by parsing their code cells, evaluate it against the chapter's own supersim
imports, and check the source the reader sees.
"""

from __future__ import annotations

import ast
import importlib
import inspect
import json
import pathlib

import pytest
from test_style import CODE_LINE_LENGTH

ROOT = pathlib.Path(__file__).resolve().parents[1]
NOTEBOOKS = sorted((ROOT / "book").glob("*.ipynb"))


def _code_cells(nb: pathlib.Path) -> list[ast.Module]:
    """The chapter's code cells, parsed (IPython magics and shell lines left out)."""
    trees = []
    for cell in json.loads(nb.read_text())["cells"]:
        if cell["cell_type"] != "code":
            continue
        lines = "".join(cell["source"]).splitlines()
        trees.append(ast.parse("\n".join(ln for ln in lines if not ln.lstrip().startswith(("%", "!")))))
    return trees


def _supersim_namespace(trees: list[ast.Module]) -> dict[str, object]:
    """What the chapter's `import supersim as ss` and `from supersim... import ...` lines bind."""
    namespace: dict[str, object] = {}
    for tree in trees:
        for node in ast.walk(tree):
            if isinstance(node, ast.Import):
                for alias in node.names:
                    if alias.name.split(".")[0] == "supersim":
                        module = importlib.import_module(alias.name)
                        if alias.asname:
                            namespace[alias.asname] = module
                        else:
                            namespace["supersim"] = importlib.import_module("supersim")
            elif isinstance(node, ast.ImportFrom) and (node.module or "").split(".")[0] == "supersim":
                module = importlib.import_module(node.module)
                for alias in node.names:
                    name = alias.asname or alias.name
                    if hasattr(module, alias.name):
                        namespace[name] = getattr(module, alias.name)
                    else:  # a submodule: `from supersim import basis`
                        namespace[name] = importlib.import_module(f"{node.module}.{alias.name}")
    return namespace


def _shown_expressions(trees: list[ast.Module]) -> list[str]:
    """The source text of each `show_source(<expr>)` argument, in the chapter's order."""
    shown = []
    for tree in trees:
        for node in ast.walk(tree):
            if not isinstance(node, ast.Call):
                continue
            func = node.func
            name = func.attr if isinstance(func, ast.Attribute) else getattr(func, "id", None)
            if name == "show_source":
                assert len(node.args) == 1, f"show_source takes one object: {ast.unparse(node)}"
                shown.append(ast.unparse(node.args[0]))
    return shown


def _listings() -> list[tuple[str, str, object]]:
    """(chapter stem, expression, object) for every object a chapter shows."""
    found = []
    for nb in NOTEBOOKS:
        trees = _code_cells(nb)
        expressions = _shown_expressions(trees)
        if not expressions:
            continue
        namespace = _supersim_namespace(trees)
        for expression in expressions:
            found.append((nb.stem, expression, eval(expression, {}, dict(namespace))))
    return found


LISTINGS = _listings()


def test_the_chapters_show_package_code():
    # Guards the collection itself: parsing that found nothing would pass every test below.
    assert len(LISTINGS) >= 20, f"found only {len(LISTINGS)} show_source calls in book/*.ipynb"
    chapters = {stem for stem, _, _ in LISTINGS}
    assert {"04_toy_superposition", "06_sae_recovery"} <= chapters, sorted(chapters)


def _long_lines(source: str) -> list[str]:
    return [
        f"line {k} ({len(line)} chars): {line.strip()[:70]}"
        for k, line in enumerate(source.splitlines(), start=1)
        if len(line) > CODE_LINE_LENGTH
    ]


def test_long_lines_are_found():
    # The check below must be able to fail: one line over the width is reported, one at it is not.
    assert _long_lines("x = 1\n" + "y" * (CODE_LINE_LENGTH + 1)) == [
        f"line 2 ({CODE_LINE_LENGTH + 1} chars): {'y' * 70}"
    ]
    assert _long_lines("z" * CODE_LINE_LENGTH) == []


@pytest.mark.parametrize(
    "stem, expression, obj", LISTINGS, ids=[f"{stem}:{expr}" for stem, expr, _ in LISTINGS]
)
def test_shown_source_fits_the_column(stem, expression, obj):
    """Every line the chapter shows fits CODE_LINE_LENGTH, docstrings and comments included.

    The package is written at ruff's 110 columns; a function a chapter shows is wrapped to the
    chapters' width instead.
    """
    long = _long_lines(inspect.getsource(obj))
    assert not long, (
        f"{stem} shows {expression} ({inspect.getsourcefile(obj)}), which has lines over "
        f"{CODE_LINE_LENGTH} characters:\n" + "\n".join(long)
    )


@pytest.mark.parametrize(
    "stem, expression, obj", LISTINGS, ids=[f"{stem}:{expr}" for stem, expr, _ in LISTINGS]
)
def test_shown_names_are_public(stem, expression, obj):
    """What a chapter shows is the reader's to call: no part of its name starts with `_`."""
    private = [part for part in expression.split(".") if part.startswith("_")]
    assert not private, f"{stem} shows {expression}: {private} is private"
    qualified = f"{obj.__module__}.{obj.__qualname__}"
    hidden = [part for part in obj.__qualname__.split(".") if part.startswith("_")]
    assert not hidden, f"{stem} shows {expression}, defined as {qualified}, a private name"
