"""The code a reader studies is held to one lint standard (ruff, configured in pyproject.toml)."""

import pathlib
import subprocess
import sys

ROOT = pathlib.Path(__file__).resolve().parents[1]


def test_ruff_is_clean():
    ruff = pathlib.Path(sys.executable).with_name("ruff")
    run = subprocess.run(
        [str(ruff), "check", "--output-format", "concise",
         "supersim", "tests", "benchmarks", "tools", "book"],
        cwd=ROOT, capture_output=True, text=True,
    )
    assert run.returncode == 0, f"ruff found problems:\n{run.stdout}{run.stderr}"
