"""Fit the chapters' code to the book's column: format it at LINE_LENGTH, list what is left.

At a 1280-pixel-wide window a code block in the rendered book holds a little more than
LINE_LENGTH characters (see _static/supersim.css); a longer line makes the block scroll
sideways. This tool runs `ruff format --line-length LINE_LENGTH` over the notebooks (ruff
rewrites only the code cells' sources: markdown cells, cell ids, metadata and IPython magics
stay as they are), then lists every code line still longer than LINE_LENGTH, which no
formatter can break (a long string, comment or URL), as

    book/NN_name.ipynb cell <id> line <k> (<length> chars): <the line>

and exits with status 1 when there is any, 0 when every line fits. Shorten those by hand:
split the string, move the comment above the line.

    .venv/bin/python tools/fit_code.py            # format book/*.ipynb, then report
    .venv/bin/python tools/fit_code.py --check    # report only, change nothing
    .venv/bin/python tools/fit_code.py book/04_toy_superposition.ipynb

tests/test_style.py holds every notebook to the same limit.
"""

from __future__ import annotations

import argparse
import json
import pathlib
import subprocess
import sys

ROOT = pathlib.Path(__file__).resolve().parents[1]
# The longest code line a chapter may have; tests/test_style.py and _static/supersim.css
# are tied to it.
LINE_LENGTH = 88


def long_lines(path: pathlib.Path, limit: int = LINE_LENGTH) -> list[tuple[str, int, int, str]]:
    """Every code line over `limit` characters: (cell id, line number from 1, length, line)."""
    if limit < 1:
        raise ValueError(f"limit must be a positive number of characters, got {limit!r}")
    cells = json.loads(path.read_text())["cells"]
    found = []
    for index, cell in enumerate(cells):
        if cell["cell_type"] != "code":
            continue
        for k, line in enumerate("".join(cell["source"]).splitlines(), start=1):
            if len(line) > limit:
                found.append((cell.get("id", f"#{index}"), k, len(line), line))
    return found


def ruff_format(paths: list[pathlib.Path], limit: int = LINE_LENGTH) -> None:
    """Format the code cells of `paths` in place at `limit` characters a line."""
    ruff = pathlib.Path(sys.executable).with_name("ruff")
    subprocess.run(
        [str(ruff), "format", "--line-length", str(limit), *map(str, paths)],
        cwd=ROOT,
        check=True,
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("notebooks", nargs="*", type=pathlib.Path,
                        help="notebooks to fit (default: every book/*.ipynb)")
    parser.add_argument("--check", action="store_true",
                        help="only list the long lines; do not reformat")
    args = parser.parse_args(argv)
    paths = args.notebooks or sorted((ROOT / "book").glob("*.ipynb"))
    not_notebooks = [str(p) for p in paths if p.suffix != ".ipynb" or not p.exists()]
    if not_notebooks:
        parser.error(f"notebooks must be existing .ipynb files, got {not_notebooks}")
    if not args.check:
        ruff_format(paths)
    left = 0
    for path in paths:
        for cell_id, k, length, line in long_lines(path):
            left += 1
            name = path.resolve().relative_to(ROOT) if path.resolve().is_relative_to(ROOT) else path
            print(f"{name} cell {cell_id} line {k} ({length} chars): {line.strip()}")
    if left:
        print(f"{left} code lines are longer than {LINE_LENGTH} characters: shorten them by hand")
        return 1
    print(f"every code line fits in {LINE_LENGTH} characters")
    return 0


if __name__ == "__main__":
    sys.exit(main())
