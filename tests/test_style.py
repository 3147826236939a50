"""The code a reader studies is held to one lint standard (ruff, configured in pyproject.toml)
and fits the book's code column."""

import importlib.util
import json
import pathlib
import subprocess
import sys

import pytest

ROOT = pathlib.Path(__file__).resolve().parents[1]
NOTEBOOKS = sorted((ROOT / "book").glob("*.ipynb"))


def test_ruff_is_clean():
    ruff = pathlib.Path(sys.executable).with_name("ruff")
    run = subprocess.run(
        [str(ruff), "check", "--output-format", "concise",
         "supersim", "tests", "benchmarks", "tools", "book"],
        cwd=ROOT, capture_output=True, text=True,
    )
    assert run.returncode == 0, f"ruff found problems:\n{run.stdout}{run.stderr}"


# The longest code line a chapter may have: at a 1280-pixel-wide window a code block in the
# book holds about 90 characters (_static/supersim.css; tests/test_browser.py measures it).
# tools/fit_code.py formats the notebooks to this width and lists what it cannot break.
CODE_LINE_LENGTH = 88


def test_code_line_length_matches_the_formatting_tool():
    spec = importlib.util.spec_from_file_location("fit_code", ROOT / "tools" / "fit_code.py")
    fit_code = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(fit_code)
    assert fit_code.LINE_LENGTH == CODE_LINE_LENGTH


@pytest.mark.parametrize("nb", NOTEBOOKS, ids=[n.stem for n in NOTEBOOKS])
def test_chapter_code_fits_the_column(nb):
    """No code line longer than CODE_LINE_LENGTH: the book would scroll it sideways.

    Fix with `.venv/bin/python tools/fit_code.py`, then shorten by hand the lines it lists.
    """
    cells = json.loads(nb.read_text())["cells"]
    long = [
        f"cell {c.get('id')} line {k} ({len(line)} chars): {line.strip()[:60]}"
        for c in cells if c["cell_type"] == "code"
        for k, line in enumerate("".join(c["source"]).splitlines(), start=1)
        if len(line) > CODE_LINE_LENGTH
    ]
    assert not long, f"{nb.name}: code lines over {CODE_LINE_LENGTH} characters:\n" + "\n".join(long)
