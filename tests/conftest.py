"""Shared test setup: the repository root, no progress bars, and kernels that claim a GPU.

Every kernel the tests start (nbval's, one per chapter) runs an IPython startup file that
makes `torch.cuda.is_available()` say True on this CPU-only machine: a chapter whose code
picks CUDA by itself then fails here, as it would on a Colab GPU runtime, instead of later
for a reader. The book build (`built_book`) runs without it, as `make book` does.

The kernels' connections are encrypted, as in the book build (book/_ext/encrypted_kernels.py),
and a kernel that executes a notebook gets the build's per-cell timeout (`CELL_TIMEOUT`, from
`_config.yml`; pyproject.toml gives nbval the same): a guard against hangs, not a budget.
"""

import importlib.util
import os
import pathlib
import subprocess
import sys
import tempfile

import pytest
import yaml

ROOT = pathlib.Path(__file__).resolve().parents[1]
os.environ.setdefault("SUPERSIM_PROGRESS", "0")
CELL_TIMEOUT = yaml.safe_load((ROOT / "_config.yml").read_text())["execute"]["timeout"]

_ext = ROOT / "book" / "_ext" / "encrypted_kernels.py"
_spec = importlib.util.spec_from_file_location("encrypted_kernels", _ext)
_kernels = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(_kernels)
_kernels.encrypt_kernel_connections()

CLAIM_CUDA = """\
# Written by supersim's tests/conftest.py: claim a GPU, so that code which picks CUDA by
# itself fails in the tests instead of on a reader's GPU runtime.
import torch
torch.cuda.is_available = lambda: True
"""
_ipython_dir = tempfile.TemporaryDirectory(prefix="supersim-ipython-")
_startup = pathlib.Path(_ipython_dir.name, "profile_default", "startup")
_startup.mkdir(parents=True)
(_startup / "00-claim-cuda.py").write_text(CLAIM_CUDA)
os.environ["IPYTHONDIR"] = _ipython_dir.name


def plain_env() -> dict:
    """The environment without the test harness's settings, as a reader's shell has it."""
    return {k: v for k, v in os.environ.items() if k not in ("SUPERSIM_PROGRESS", "IPYTHONDIR")}


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
    env = plain_env()
    run = subprocess.run(
        [str(jb), "build", str(ROOT), "-W", "--keep-going"],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=7200,  # cells have their own
    )
    log = run.stdout + run.stderr
    assert run.returncode == 0, f"jupyter-book build failed:\n{log[-6000:]}"
    return log
