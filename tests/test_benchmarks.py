"""No benchmark can rot: every script in benchmarks/ runs in its quick mode and prints figures.

The benchmarks measure speed and are not run in full by the tests (see benchmarks/README.md),
so a change of the package could break one unnoticed. Each script found in benchmarks/ (a new
one is covered without being listed here) must take `--quick`, run in seconds to a minute with
it, exit with status 0 and print its numbers, all finite. A benchmark that drives Chromium
(it imports Playwright) is skipped without one, as the browser tests are, except in CI.
"""

from __future__ import annotations

import math
import os
import pathlib
import re
import subprocess
import sys

import pytest

ROOT = pathlib.Path(__file__).resolve().parents[1]
SCRIPTS = sorted((ROOT / "benchmarks").glob("*.py"))
CHROMIUM = pathlib.Path(os.environ.get("SUPERSIM_CHROMIUM", "/usr/bin/chromium"))
NUMBER = re.compile(r"(?<![\w.])[-+]?(?:\d+\.?\d*|\.\d+|nan|inf)(?![\w.])", re.IGNORECASE)

pytestmark = pytest.mark.slow


def test_the_benchmarks_are_found():
    # guards the test below against passing because the glob found nothing
    assert {"bench_train.py", "bench_chapters.py"} <= {s.name for s in SCRIPTS}


@pytest.mark.parametrize("script", SCRIPTS, ids=[s.stem for s in SCRIPTS])
def test_benchmark_runs_in_quick_mode(script):
    source = script.read_text()
    assert "--quick" in source, f"{script.name}: every benchmark needs a --quick mode for this test"
    if "playwright" in source and not CHROMIUM.exists():
        if os.environ.get("CI", "").lower() not in ("", "0", "false", "no"):
            pytest.fail(f"{script.name} needs Chromium at {CHROMIUM} (CI is set, so it is required)")
        pytest.skip(f"{script.name} needs Chromium at {CHROMIUM} (`make browser` installs it)")
    env = {**os.environ, "SUPERSIM_PROGRESS": "0"}
    run = subprocess.run([sys.executable, str(script), "--quick"], cwd=ROOT, env=env,
                         capture_output=True, text=True, timeout=600)
    assert run.returncode == 0, f"{script.name} --quick failed:\n{run.stdout[-3000:]}\n{run.stderr[-3000:]}"
    # its figures: lines with numbers on them, every number finite
    figures = [line for line in run.stdout.splitlines() if NUMBER.search(line)]
    assert figures, f"{script.name} --quick printed no figures:\n{run.stdout}"
    bad = [line for line in figures if any(not math.isfinite(float(n)) for n in NUMBER.findall(line))]
    assert not bad, f"{script.name} --quick printed numbers that are not finite:\n" + "\n".join(bad)
