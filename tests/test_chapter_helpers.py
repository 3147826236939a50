"""One home per concept: a chapter defines no function the package or another chapter has.

Functions a chapter writes because they are its lesson (a loss shown to the reader, an
experiment's measurement, an explorer's draw callback) may stay in the chapter; a helper
that two chapters need, or that repeats a package function, belongs in `supersim/`.
"""

import ast
import importlib
import json
import pkgutil
from collections import defaultdict
from pathlib import Path

import supersim

BOOK = Path(__file__).resolve().parents[1] / "book"


def _chapter_functions() -> dict[str, list[str]]:
    """function name -> the chapters whose code cells define it at top level."""
    found = defaultdict(list)
    for path in sorted(BOOK.glob("*.ipynb")):
        cells = json.loads(path.read_text())["cells"]
        for cell in cells:
            if cell["cell_type"] != "code":
                continue
            source = "".join(cell["source"])
            lines = [ln for ln in source.splitlines() if not ln.lstrip().startswith(("%", "!"))]
            for node in ast.parse("\n".join(lines)).body:
                if isinstance(node, ast.FunctionDef):
                    found[node.name].append(path.stem)
    return found


def _package_functions() -> set[str]:
    names = set()
    for info in pkgutil.iter_modules(supersim.__path__):
        if info.name.startswith("_") or info.name in ("real",):  # real needs the optional extra
            continue
        module = importlib.import_module(f"supersim.{info.name}")
        names |= {n for n, v in vars(module).items() if callable(v) and not n.startswith("_")}
    return names


def test_the_scan_sees_chapter_functions():
    # guards the test below against passing because it parsed nothing
    assert "draw_readback" in _chapter_functions()


def test_no_chapter_repeats_a_package_function_or_another_chapter():
    chapters, package = _chapter_functions(), _package_functions()
    in_package = sorted(n for n in chapters if n in package)
    assert not in_package, f"chapters define functions the package has: {in_package}"
    # explorers' draw callbacks are per figure, not shared helpers
    shared = {n: c for n, c in chapters.items() if len(set(c)) > 1 and not n.startswith("draw")}
    assert not shared, f"functions defined in more than one chapter: {shared}"
