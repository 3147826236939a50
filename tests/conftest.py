"""Shared test setup: the repository root, and no progress bars in test output."""

import os
import pathlib
import subprocess
import sys

import pytest

ROOT = pathlib.Path(__file__).resolve().parents[1]
os.environ.setdefault("SUPERSIM_PROGRESS", "0")


@pytest.fixture
def root() -> pathlib.Path:
    return ROOT


@pytest.fixture(scope="session")
def built_book():
    """Build the book as `make book` does (once per session); return the build log.

    Built without SUPERSIM_PROGRESS in the environment, as a plain `jupyter-book build .`
    would be: the book's own Sphinx extension must keep progress bars out of the pages.
    """
    jb = pathlib.Path(sys.executable).with_name("jupyter-book")
    env = {k: v for k, v in os.environ.items() if k != "SUPERSIM_PROGRESS"}
    run = subprocess.run(
        [str(jb), "build", str(ROOT), "-W", "--keep-going"],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=1800,
    )
    log = run.stdout + run.stderr
    assert run.returncode == 0, f"jupyter-book build failed:\n{log[-6000:]}"
    return log
