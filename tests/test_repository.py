"""Repository hygiene: one source of truth for dependencies, stripped notebooks, the Colab cell."""

import json
import pathlib
import re

import pytest
import yaml

try:
    import tomllib
except ImportError:  # Python 3.10
    tomllib = pytest.importorskip("tomli")

ROOT = pathlib.Path(__file__).resolve().parents[1]
NOTEBOOKS = sorted((ROOT / "book").glob("*.ipynb"))


def _name(req: str) -> str:
    return re.split(r"[<>=!~ \[]", req.strip(), maxsplit=1)[0].lower().replace("_", "-")


def _spec(req: str) -> str:
    return re.sub(r"\s+", "", req[len(_name(req)):]) if not req.startswith("-e") else ""


def test_environment_yml_mirrors_pyproject():
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    wanted = list(project["dependencies"])
    for extra in project["optional-dependencies"].values():
        wanted += extra
    env = yaml.safe_load((ROOT / "environment.yml").read_text())
    have = []
    for dep in env["dependencies"]:
        if isinstance(dep, dict):
            have += [d for d in dep["pip"] if not d.startswith("-e")]
        elif not dep.startswith(("python", "pip")):
            have.append(dep)
    # conda calls torch "pytorch"
    norm = {("torch" if _name(d) == "pytorch" else _name(d)): _spec(d) for d in have}
    want = {_name(d): _spec(d) for d in wanted}
    assert norm == want, f"environment.yml and pyproject.toml disagree: {norm} vs {want}"


def test_torch_is_pinned_for_installs_but_loose_for_the_package():
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    torch_dep = [d for d in project["dependencies"] if _name(d) == "torch"]
    assert torch_dep == ["torch>=2.2"], "the package keeps torch loose so Colab keeps its own"
    assert "torch==2.13.0" in (ROOT / "constraints.txt").read_text().split()
    assert "-c constraints.txt" in (ROOT / "Makefile").read_text()


def test_there_are_notebooks():
    assert NOTEBOOKS, "book/ has no chapters"


def test_notebooks_are_stored_without_outputs():
    for nb in NOTEBOOKS:
        data = json.loads(nb.read_text())
        dirty = [
            i for i, c in enumerate(data["cells"])
            if c["cell_type"] == "code" and (c.get("outputs") or c.get("execution_count"))
        ]
        assert not dirty, f"{nb.name}: cells {dirty} have stored outputs"


def _colab_cell(block: int = 1) -> str:
    """The `block`-th python block of CONTRIBUTING.md: 1 the Colab cell, 2 its lines for an extra."""
    text = (ROOT / "CONTRIBUTING.md").read_text()
    code = text.split("```python\n")[block].split("```", 1)[0]
    return "\n".join(line[3:] if line.startswith("   ") else line for line in code.splitlines())


def test_every_notebook_starts_with_the_colab_cell():
    cell = _colab_cell().strip()
    url = yaml.safe_load((ROOT / "_config.yml").read_text())["repository"]["url"]
    assert f'"git+{url}"' in cell, "the Colab cell must install from the repository in _config.yml"
    # the variant for a chapter that needs the `real` extra: the documented lines, inserted
    # after the install line
    install = next(line for line in cell.splitlines() if "subprocess.run" in line) + "\n"
    with_extra = cell.replace(install, install + _colab_cell(2).strip("\n") + "\n")
    assert with_extra != cell
    for nb in NOTEBOOKS:
        code = [c for c in json.loads(nb.read_text())["cells"] if c["cell_type"] == "code"]
        assert "".join(code[0]["source"]).strip() in (cell, with_extra), f"{nb.name}: first code cell differs"


def test_every_toc_file_exists_and_every_notebook_is_in_the_toc():
    toc = (ROOT / "_toc.yml").read_text()
    files = re.findall(r"file:\s*(\S+)", toc) + re.findall(r"root:\s*(\S+)", toc)
    for f in files:
        assert any((ROOT / (f + ext)).exists() for ext in (".md", ".ipynb")), f"{f} is missing"
    for nb in NOTEBOOKS:
        assert f"book/{nb.stem}" in files, f"{nb.name} is not in _toc.yml"


def test_launch_buttons_point_at_main():
    config = yaml.safe_load((ROOT / "_config.yml").read_text())
    assert config["repository"]["branch"] == "main"
    assert config["repository"]["path_to_book"] == ""
    assert config["launch_buttons"]["colab_url"] == "https://colab.research.google.com"
    assert config["execute"]["raise_on_error"] is True


def test_one_cell_timeout_far_above_any_honest_cell():
    """The book build and nbval share one per-cell timeout, a guard against hangs (10+ minutes).

    It is not the speed budget (benchmarks/bench_chapters.py keeps that): a slow or busy
    machine must still build the book.
    """
    build = yaml.safe_load((ROOT / "_config.yml").read_text())["execute"]["timeout"]
    addopts = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["pytest"]["ini_options"]["addopts"]
    nbval = re.findall(r"--nbval-cell-timeout[= ](\d+)", addopts)
    assert nbval == [str(build)], f"pyproject's --nbval-cell-timeout {nbval} is not _config.yml's {build}"
    assert build >= 600, f"a per-cell timeout of {build} s would fail a busy machine's build"


def test_ci_runs_the_readme_test_command():
    readme = (ROOT / "README.md").read_text()
    ci = (ROOT / ".ci" / "run").read_text()
    assert "make test" in readme and "make book" in readme
    assert re.search(r"^make test$", ci, re.M), ".ci/run must call the README's test command"


@pytest.mark.parametrize("ci", ["", "true"])
def test_browser_tests_skip_without_chromium_unless_ci(tmp_path, ci):
    """On a machine without Chromium `make test` still runs; CI (CI=true) insists on it."""
    import os
    import subprocess
    import sys

    env = {**os.environ, "SUPERSIM_CHROMIUM": str(tmp_path / "no-chromium"), "CI": ci,
           "PLAYWRIGHT_BROWSERS_PATH": str(tmp_path / "no-playwright-browsers")}
    run = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-rs", "-p", "no:cacheprovider",
         "tests/test_browser.py", "-k", "offline and intro"],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=300,
    )
    out = run.stdout + run.stderr
    if ci:
        assert run.returncode != 0 and "CI is set, so the browser tests are required" in out, out
    else:
        assert run.returncode == 0 and "1 skipped" in out and "install Chromium" in out, out


LITERAL_SEED = re.compile(r"\bseed\s*=\s*\d+|manual_seed\(\s*\d+\s*\)")


@pytest.mark.parametrize("nb", NOTEBOOKS, ids=[n.stem for n in NOTEBOOKS])
def test_every_chapter_has_one_seed_knob(nb):
    """One `SEED = 0` in the imports cell, and every other seed derived from it."""
    code = [c for c in json.loads(nb.read_text())["cells"] if c["cell_type"] == "code"]
    sources = ["".join(c["source"]) for c in code]
    knobs = [i for i, s in enumerate(sources) if re.search(r"^SEED = 0\b", s, re.MULTILINE)]
    assert knobs == [1], f"{nb.name}: one `SEED = 0` line, in the imports cell (found in {knobs})"
    literal = sorted({m for s in sources for m in LITERAL_SEED.findall(s)})
    assert not literal, f"{nb.name}: literal seeds {literal}; derive them from SEED"
