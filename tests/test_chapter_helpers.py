"""One home per concept: a chapter defines no function the package or another chapter has.

Functions a chapter writes because they are its lesson (a loss shown to the reader, an
experiment's measurement, an explorer's draw callback) may stay in the chapter; a helper
that two chapters need, or that repeats a package function, belongs in `supersim/`.

Names alone do not tell a copy: a renamed copy of a package function is still a copy. So
functions are compared by their code, normalised: the function's own name, its docstring and
its type annotations are dropped, and the names it binds (its arguments and local variables)
are numbered in order of first use, so that renaming them does not hide a copy either. Names
it does not bind (modules, other functions) and attribute names are kept: `np.mean(x)` and
`torch.mean(x)` differ.
"""

from __future__ import annotations

import ast
import functools
import json
from collections import defaultdict
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
BOOK = ROOT / "book"
PACKAGE = ROOT / "supersim"

# a function this small ("return x") says nothing about where its code came from
MIN_NODES = 12


def _cell_tree(source: str) -> ast.Module:
    """A code cell's syntax tree, IPython's magics and shell escapes left out."""
    lines = [ln for ln in source.splitlines() if not ln.lstrip().startswith(("%", "!"))]
    return ast.parse("\n".join(lines))


def _functions(tree: ast.AST) -> list[ast.FunctionDef | ast.AsyncFunctionDef]:
    """Every function defined in the tree, nested ones and methods included."""
    return [n for n in ast.walk(tree) if isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef))]


class _Normalise(ast.NodeTransformer):
    """Drop names, annotations and docstrings; number the names the function binds."""

    def __init__(self, bound: set[str]):
        self.bound, self.numbers, self.depth = bound, {}, 0

    def _number(self, name: str) -> str:
        if name not in self.bound:
            return name
        return self.numbers.setdefault(name, f"v{len(self.numbers)}")

    def visit_FunctionDef(self, node):
        node.name = self._number(node.name) if self.depth else "f"
        node.returns, node.decorator_list = None, []
        node.body = _without_docstring(node.body) or [ast.Pass()]
        self.depth += 1
        self.generic_visit(node)
        self.depth -= 1
        return node

    visit_AsyncFunctionDef = visit_FunctionDef

    def visit_arg(self, node):
        node.arg, node.annotation, node.type_comment = self._number(node.arg), None, None
        return node

    def visit_Name(self, node):
        node.id = self._number(node.id)
        return node

    def visit_AnnAssign(self, node):
        self.generic_visit(node)
        if node.value is None:
            return None
        return ast.Assign(targets=[node.target], value=node.value, lineno=node.lineno)


def _without_docstring(body: list[ast.stmt]) -> list[ast.stmt]:
    first = body[0] if body else None
    if isinstance(first, ast.Expr) and isinstance(first.value, ast.Constant) \
            and isinstance(first.value.value, str):
        return body[1:]
    return body


def _bound_names(fn: ast.FunctionDef | ast.AsyncFunctionDef) -> set[str]:
    """The names the function binds: arguments, assigned names, nested functions' names."""
    names = set()
    for node in ast.walk(fn):
        if isinstance(node, ast.arg):
            names.add(node.arg)
        elif isinstance(node, ast.Name) and isinstance(node.ctx, (ast.Store, ast.Del)):
            names.add(node.id)
        elif isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)) and node is not fn:
            names.add(node.name)
    return names


def normalised(fn: ast.FunctionDef | ast.AsyncFunctionDef) -> str | None:
    """The function's code with its name, docstring, annotations and bound names normalised.

    None for a function too small to compare.
    """
    copy = ast.parse(ast.unparse(fn)).body[0]  # a fresh tree: the transformer edits in place
    if sum(1 for _ in ast.walk(copy)) < MIN_NODES:
        return None
    return ast.dump(_Normalise(_bound_names(copy)).visit(copy), annotate_fields=False)


@functools.cache
def _chapter_functions() -> list[tuple[str, ast.FunctionDef, bool]]:
    """(chapter, function, defined at the top of its cell) for every function in the chapters."""
    found = []
    for path in sorted(BOOK.glob("*.ipynb")):
        for cell in json.loads(path.read_text())["cells"]:
            if cell["cell_type"] == "code":
                tree = _cell_tree("".join(cell["source"]))
                found += [(path.stem, fn, fn in tree.body) for fn in _functions(tree)]
    return found


@functools.cache
def _package_trees() -> dict[str, ast.Module]:
    """module name -> syntax tree, for every source file of supersim/ (`real` needs no extra)."""
    return {path.relative_to(PACKAGE).with_suffix("").as_posix().replace("/", "."):
            ast.parse(path.read_text()) for path in sorted(PACKAGE.rglob("*.py"))}


@functools.cache
def _package_functions() -> dict[str, str]:
    """normalised code -> `module.function` for every function in supersim/, private ones too."""
    bodies = {}
    for module, tree in _package_trees().items():
        for fn in _functions(tree):
            code = normalised(fn)
            if code is not None:
                bodies.setdefault(code, f"{module}.{fn.name}")
    return bodies


def _package_names() -> set[str]:
    """The public functions and classes the package's modules define at their top level."""
    return {node.name for tree in _package_trees().values() for node in tree.body
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef))
            and not node.name.startswith("_")}


def _copies(chapters: list[tuple[str, ast.FunctionDef, bool]], package: dict[str, str]) -> list[str]:
    return [f"{chapter}: {fn.name} is a copy of supersim.{package[code]}"
            for chapter, fn, _ in chapters if (code := normalised(fn)) in package]


def _renamed_copy(fn: ast.FunctionDef) -> ast.FunctionDef:
    """`fn` under another name, with another docstring, no annotations, every variable renamed."""
    copy = ast.parse(ast.unparse(fn)).body[0]
    bound = _bound_names(copy)
    copy.name = f"my_own_{copy.name}"
    copy.body = [ast.Expr(ast.Constant("Written here, honest.")), *_without_docstring(copy.body)]
    copy.returns = None
    for node in ast.walk(copy):
        if isinstance(node, ast.arg) and node.arg in bound:
            node.arg, node.annotation = f"my_{node.arg}", None
        elif isinstance(node, ast.Name) and node.id in bound:
            node.id = f"my_{node.id}"
    return ast.parse(ast.unparse(copy)).body[0]


def test_the_scan_sees_chapter_and_package_functions():
    # guards the tests below against passing because they parsed nothing
    assert "draw_readback" in {fn.name for _, fn, _ in _chapter_functions()}
    assert "training.reconstruction_loss" in _package_functions().values()


def test_a_renamed_copy_is_caught():
    """The comparison sees through a new name, docstring, annotations and variable names."""
    package = _package_functions()
    tree = _package_trees()["training"]
    original = next(fn for fn in tree.body if getattr(fn, "name", "") == "reconstruction_loss")
    planted = _renamed_copy(original)
    assert ast.unparse(planted) != ast.unparse(original)
    assert _copies([("99_planted", planted, True)], package) == [
        f"99_planted: {planted.name} is a copy of supersim.training.reconstruction_loss"]
    # a function that computes something else is not taken for a copy
    changed = ast.parse(ast.unparse(planted).replace("return ", "return 2 * ", 1)).body[0]
    assert not _copies([("99_planted", changed, True)], package)


def test_no_chapter_repeats_a_package_function_or_another_chapter():
    chapters, package = _chapter_functions(), _package_functions()
    named = sorted({fn.name for _, fn, top in chapters if top} & _package_names())
    assert not named, f"chapters define functions the package has, by name: {named}"
    copies = _copies(chapters, package)
    assert not copies, "chapters copy package functions:\n" + "\n".join(copies)
    # a helper two chapters need belongs in the package; explorers' draw callbacks are per
    # figure, so their names may repeat, but not their code
    by_name, by_code = defaultdict(set), defaultdict(set)
    for chapter, fn, top in chapters:
        if top and not fn.name.startswith("draw"):
            by_name[fn.name].add(chapter)
        if (code := normalised(fn)) is not None:
            by_code[code].add(f"{chapter}.{fn.name}")
    shared = {n: sorted(c) for n, c in by_name.items() if len(c) > 1}
    assert not shared, f"functions defined in more than one chapter: {shared}"
    twins = [sorted(where) for where in by_code.values() if len({w.split(".")[0] for w in where}) > 1]
    assert not twins, f"the same function written in more than one chapter: {twins}"
