"""The Colab path, simulated: a fresh environment without supersim runs a chapter from its first cell.

Colab has torch, numpy, matplotlib and ipywidgets but not supersim. We build such an
environment in a temporary virtualenv, pretend to be Colab (a stand-in `google.colab` module),
point the first cell's install source at a copy of this checkout instead of GitHub, and run
the notebook from a directory holding nothing but the notebook. The first cell must install
supersim and the rest must run with nothing else.
"""

from __future__ import annotations

import json
import pathlib
import shutil
import subprocess
import sys
import textwrap

import pytest
import yaml

ROOT = pathlib.Path(__file__).resolve().parents[1]
# The lightest chapter keeps this test short; the install path is the same for every chapter.
CHAPTER = "04_toy_superposition"

pytestmark = pytest.mark.slow

FAKE_COLAB = textwrap.dedent(
    """
    import sys, types
    google = types.ModuleType("google")
    google.colab = types.ModuleType("google.colab")
    google.colab.output = types.SimpleNamespace(enable_custom_widget_manager=lambda: None)
    sys.modules.update({"google": google, "google.colab": google.colab})
    """
)

RUNNER = textwrap.dedent(
    """
    import sys, nbformat
    from nbclient import NotebookClient
    nb = nbformat.read(sys.argv[1], as_version=4)
    NotebookClient(nb, timeout=600, kernel_name="python3").execute()
    print('{"ok": true}')
    """
)


def _run(cmd, **kw):
    out = subprocess.run(cmd, capture_output=True, text=True, **kw)
    assert out.returncode == 0, f"{cmd[:4]} failed:\n{out.stdout[-3000:]}\n{out.stderr[-3000:]}"
    return out.stdout


def test_chapter_runs_in_a_fresh_colab_like_environment(tmp_path):
    venv = tmp_path / "venv"
    _run([sys.executable, "-m", "venv", str(venv)])
    py = str(venv / "bin" / "python")
    # what Colab already has; constraints keep torch on this machine's build
    _run([py, "-m", "pip", "install", "-q", "-c", str(ROOT / "constraints.txt"),
          "torch", "numpy", "matplotlib", "ipywidgets", "tqdm", "ipykernel", "nbclient", "nbformat"],
         timeout=1200)
    missing = subprocess.run([py, "-c", "import supersim"], capture_output=True, cwd=tmp_path)
    assert missing.returncode != 0, "the fresh environment must start without supersim"

    # a copy of the package as it would be fetched from the repository
    source = tmp_path / "source"
    source.mkdir()
    for name in ("pyproject.toml", "README.md"):
        shutil.copy(ROOT / name, source / name)
    shutil.copytree(ROOT / "supersim", source / "supersim",
                    ignore=shutil.ignore_patterns("__pycache__"))

    nb = json.loads((ROOT / "book" / f"{CHAPTER}.ipynb").read_text())
    code = [c for c in nb["cells"] if c["cell_type"] == "code"]
    url = yaml.safe_load((ROOT / "_config.yml").read_text())["repository"]["url"]
    first = "".join(code[0]["source"])
    assert f'"git+{url}"' in first
    code[0]["source"] = first.replace(f'"git+{url}"', repr(str(source)))
    fake = {"cell_type": "code", "metadata": {}, "outputs": [], "execution_count": None,
            "source": FAKE_COLAB, "id": "fake-colab"}
    nb["cells"].insert(0, fake)
    workdir = tmp_path / "colab"
    workdir.mkdir()
    (workdir / "chapter.ipynb").write_text(json.dumps(nb))
    (workdir / "run.py").write_text(RUNNER)

    out = _run([py, "run.py", "chapter.ipynb"], cwd=workdir, timeout=1200)
    assert '"ok": true' in out
    where = _run([py, "-c", "import supersim; print(supersim.__file__)"], cwd=tmp_path)
    assert str(venv) in where, f"supersim should now be installed in the fresh env, found {where}"
