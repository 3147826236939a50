"""The package's layout, as issue 18 set it: one home per concept, nothing said twice.

- no public function or class has the name of a module of the package (a function called
  `train` in a module called `train` made `supersim.train` the function, and a patch of "the
  module" silently patched nothing);
- no block of six or more code lines appears twice in `supersim/`.

(That no chapter defines a helper the package or another chapter has is checked in
test_chapter_helpers.py.)
"""

from __future__ import annotations

import ast
import importlib
import pathlib
import pkgutil
import types

import supersim

ROOT = pathlib.Path(__file__).resolve().parents[1]
PACKAGE = ROOT / "supersim"
WINDOW = 6  # lines: the size of block the issue counts as repeated


def _modules() -> list[str]:
    return [m.name for m in pkgutil.iter_modules([str(PACKAGE)])]


def test_no_public_name_shadows_a_module():
    modules = set(_modules())
    clashes = []
    for name in modules:
        module = importlib.import_module(f"supersim.{name}")
        clashes += [f"supersim.{name}.{attr}" for attr in vars(module)
                    if attr in modules and not isinstance(getattr(module, attr), types.ModuleType)]
    clashes += [f"supersim.{n}" for n in supersim.__all__ if n in modules]
    assert not clashes, f"these names hide a module of the same name: {clashes}"
    for name in modules:
        if not name.startswith("_"):
            assert isinstance(getattr(supersim, name), types.ModuleType), name


def _code_lines(path: pathlib.Path) -> list[tuple[int, str]]:
    """(line number, stripped text) of the lines that are code: no blanks, comments or docstrings."""
    source = path.read_text()
    doc_lines: set[int] = set()
    for node in ast.walk(ast.parse(source)):
        body = getattr(node, "body", None)
        if isinstance(body, list) and body and isinstance(body[0], ast.Expr) \
                and isinstance(body[0].value, ast.Constant) and isinstance(body[0].value.value, str):
            doc_lines.update(range(body[0].lineno, body[0].end_lineno + 1))
    out = []
    for number, line in enumerate(source.splitlines(), 1):
        text = line.strip()
        if text and not text.startswith("#") and number not in doc_lines:
            out.append((number, text))
    return out


def test_no_six_line_block_is_repeated_in_the_package():
    seen: dict[tuple[str, ...], str] = {}
    repeats = []
    for path in sorted(PACKAGE.glob("*.py")):
        lines = _code_lines(path)
        last = None  # overlapping windows of one repeat count once
        for i in range(len(lines) - WINDOW + 1):
            block = tuple(text for _, text in lines[i:i + WINDOW])
            # runs of closing brackets and keyword lines are shape, not logic
            if sum(len(t) > 12 for t in block) < WINDOW - 1:
                continue
            where = f"{path.name}:{lines[i][0]}"
            if block in seen and seen[block] != where:
                if last is None or i > last + WINDOW:
                    repeats.append(f"{where} repeats {seen[block]}")
                last = i
            else:
                seen.setdefault(block, where)
    assert not repeats, "blocks of six code lines that appear twice:\n" + "\n".join(repeats)
