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
    """Build the book exactly as `make book` does (once per session); return the build log."""
    jb = pathlib.Path(sys.executable).with_name("jupyter-book")
    env = {**os.environ, "SUPERSIM_PROGRESS": "0"}
    run = subprocess.run(
        [str(jb), "build", str(ROOT), "-W", "--keep-going"],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=1800,
    )
    log = run.stdout + run.stderr
    assert run.returncode == 0, f"jupyter-book build failed:\n{log[-6000:]}"
    return log
