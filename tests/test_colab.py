"""The Colab path, simulated: a fresh environment like Colab's runs the chapters from their first cell.

Colab has torch, numpy, matplotlib and ipywidgets preinstalled, at versions of its own, but
not supersim. We build such an environment in a temporary virtualenv (on this machine's
Python, the one for which a CPU torch wheel is at hand: the registry's default torch pulls
gigabytes of CUDA libraries), pretend to be Colab (a stand-in `google.colab` module), point
each chapter's first cell at a copy of this checkout instead of GitHub, and run from a
directory holding nothing but the notebook. Then:

- the first cell installs supersim, and pip leaves the preinstalled torch, numpy, matplotlib
  and ipywidgets as they were (a reader's Colab must not be "upgraded" by our install);
- every chapter's setup and imports cells run in a fresh kernel there;
- one chapter runs end to end, and its explorers display as live widgets under Colab's
  ipywidgets 7.

The end-to-end chapter is a short one (chapter 2): chapter 4 already runs twice per `make
test` (nbval and the book build), and the install path is the same for every chapter.
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
from conftest import CELL_TIMEOUT, plain_env

ROOT = pathlib.Path(__file__).resolve().parents[1]
CHAPTERS = sorted((ROOT / "book").glob("*.ipynb"))
END_TO_END = "02_privileged_basis"

# Versions as Colab ships them (late 2025), where they differ from this project's own.
COLAB_PREINSTALLED = {
    "numpy": "2.0.2",
    "matplotlib": "3.10.0",
    "ipywidgets": "7.7.1",
    "ipykernel": "6.17.1",
}

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
    f"""
    import json, sys, nbformat
    from nbclient import NotebookClient
    nb = nbformat.read(sys.argv[1], as_version=4)
    NotebookClient(nb, timeout={CELL_TIMEOUT}, kernel_name="python3").execute()
    mimes = [m for c in nb.cells if c.cell_type == "code" for o in c.outputs
             for m in o.get("data", {{}})]
    print(json.dumps({{"ok": True, "mimes": sorted(set(mimes))}}))
    """
)


def _run(cmd, **kw):
    out = subprocess.run(cmd, capture_output=True, text=True, env=plain_env(), **kw)
    assert out.returncode == 0, f"{cmd[:4]} failed:\n{out.stdout[-3000:]}\n{out.stderr[-3000:]}"
    return out.stdout


def _versions(py: str) -> dict:
    names = ["torch", *COLAB_PREINSTALLED]
    code = ("import importlib.metadata as m, json, sys; "
            "print(json.dumps({n: m.version(n) for n in sys.argv[1:]}))")
    return json.loads(_run([py, "-c", code, *names]))


@pytest.fixture(scope="module")
def colab(tmp_path_factory):
    """A Colab-like virtualenv without supersim, and a copy of the package to install from."""
    tmp = tmp_path_factory.mktemp("colab")
    venv = tmp / "venv"
    _run([sys.executable, "-m", "venv", str(venv)])
    py = str(venv / "bin" / "python")
    # what Colab already has; torch pinned to this machine's CPU build by constraints.txt
    pins = [f"{name}=={version}" for name, version in COLAB_PREINSTALLED.items()]
    _run([py, "-m", "pip", "install", "-q", "-c", str(ROOT / "constraints.txt"),
          "torch", *pins, "tqdm", "nbclient", "nbformat"], timeout=1200)
    missing = subprocess.run([py, "-c", "import supersim"], capture_output=True, cwd=tmp)
    assert missing.returncode != 0, "the fresh environment must start without supersim"

    source = tmp / "source"  # the package as it would be fetched from the repository
    source.mkdir()
    for name in ("pyproject.toml", "README.md"):
        shutil.copy(ROOT / name, source / name)
    shutil.copytree(ROOT / "supersim", source / "supersim", ignore=shutil.ignore_patterns("__pycache__"))
    return {"tmp": tmp, "py": py, "venv": venv, "source": source, "before": _versions(py)}


def _as_in_colab(chapter: pathlib.Path, source: pathlib.Path, n_code_cells: int | None) -> dict:
    """The chapter with a stand-in google.colab, its install pointed at `source`, cut short."""
    nb = json.loads(chapter.read_text())
    url = yaml.safe_load((ROOT / "_config.yml").read_text())["repository"]["url"]
    code = [c for c in nb["cells"] if c["cell_type"] == "code"]
    first = "".join(code[0]["source"])
    assert f'"git+{url}' in first, f"{chapter.name}: the first cell must install from {url}"
    # a file: URL, not a bare path: chapter 9's cell also installs "supersim[real] @ <source>"
    code[0]["source"] = first.replace(f'"git+{url}', f'"{source.as_uri()}')
    if n_code_cells is not None:
        keep = {id(c) for c in code[:n_code_cells]}
        nb["cells"] = [c for c in nb["cells"] if c["cell_type"] != "code" or id(c) in keep]
    fake = {"cell_type": "code", "metadata": {}, "outputs": [], "execution_count": None,
            "source": FAKE_COLAB, "id": "fake-colab"}
    nb["cells"].insert(0, fake)
    return nb


def _execute(colab: dict, nb: dict, name: str) -> dict:
    workdir = colab["tmp"] / name
    workdir.mkdir()
    (workdir / "chapter.ipynb").write_text(json.dumps(nb))
    (workdir / "run.py").write_text(RUNNER)
    out = _run([colab["py"], "run.py", "chapter.ipynb"], cwd=workdir, timeout=1200)
    return json.loads(out.strip().splitlines()[-1])


def test_a_chapter_runs_end_to_end_and_leaves_colabs_packages_alone(colab):
    chapter = ROOT / "book" / f"{END_TO_END}.ipynb"
    result = _execute(colab, _as_in_colab(chapter, colab["source"], None), "end-to-end")
    assert result["ok"]
    where = _run([colab["py"], "-c", "import supersim; print(supersim.__file__)"], cwd=colab["tmp"])
    assert str(colab["venv"]) in where, f"supersim should now be installed in the fresh env, found {where}"
    assert _versions(colab["py"]) == colab["before"], "installing supersim changed Colab's packages"
    # Colab's ipywidgets 7 shows the explorers as live widgets
    assert "application/vnd.jupyter.widget-view+json" in result["mimes"], result["mimes"]


@pytest.mark.parametrize("chapter", CHAPTERS, ids=[c.stem for c in CHAPTERS])
def test_every_chapters_setup_and_imports_run_in_colab(colab, chapter):
    result = _execute(colab, _as_in_colab(chapter, colab["source"], 2), f"setup-{chapter.stem}")
    assert result["ok"]


def test_the_live_panel_displays_in_colab(colab):
    """The in-page trainer ships inside the installed package and displays as inline HTML."""
    chapter = ROOT / "book" / "04_toy_superposition.ipynb"
    nb = _as_in_colab(chapter, colab["source"], 2)  # the install and the imports
    nb["cells"].append({"cell_type": "code", "metadata": {}, "outputs": [], "execution_count": None,
                        "source": "ss.widgets.live_toy_model()", "id": "live-panel"})
    result = _execute(colab, nb, "live-panel")
    assert "text/html" in result["mimes"], result["mimes"]
    check = ("import supersim; page = supersim.widgets.live_toy_model().to_html(); "
             "assert 'SupersimToyModel' in page and 'SupersimLive.mount' in page, page[:500]")
    _run([colab["py"], "-c", check], cwd=colab["tmp"])
