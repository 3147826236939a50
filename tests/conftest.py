"""Shared test setup: the repository root, and no progress bars in test output."""

import os
import pathlib

import pytest

ROOT = pathlib.Path(__file__).resolve().parents[1]
os.environ.setdefault("SUPERSIM_PROGRESS", "0")


@pytest.fixture
def root() -> pathlib.Path:
    return ROOT
