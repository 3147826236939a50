"""Build the book from scratch while other programs keep every core busy, and time its cells.

A reader's laptop is often busy with other work. The book's per-cell timeout (`_config.yml`,
`execute.timeout`) is a guard against hangs, set far above any honest cell, so that such a
machine still builds the book; this script checks that it does. It

1. starts `--busy` processes (default 2, one per core here) running `while True: pass`;
2. builds the book with `jupyter-book build . -W --keep-going` into a temporary directory, with
   a fresh execution cache there, so that every notebook executes;
3. ends the busy processes by their process ids, whatever happened;
4. prints whether the build passed, then one row per chapter: its execution time, its slowest
   cell, and the chapter's quiet-machine budget (benchmarks/bench_chapters.py) for scale.

The cell times come from an IPython startup file (in a temporary IPYTHONDIR) that notes how
long each cell of each kernel ran; a kernel is matched to its notebook by the cells it ran.

    .venv/bin/python tools/busy_build.py              # 20-40 minutes on 2 busy cores
    .venv/bin/python tools/busy_build.py --busy 0     # the same on a quiet machine

It takes as long as a full build, so `make test` does not run it. Exit status 0 when the build
passes.
"""

from __future__ import annotations

import argparse
import collections
import importlib.util
import json
import os
import pathlib
import re
import subprocess
import sys
import tempfile
import time

ROOT = pathlib.Path(__file__).resolve().parents[1]
BOOK = ROOT / "book"

# Run by every kernel at start (IPython's startup directory): note each cell's wall time and
# source. Everything is inside a function that is deleted after, so the notebook's namespace
# stays as it would be without it.
CELL_TIMER = """\
def _supersim_cell_timer():
    import json, os, time

    log, started = os.environ.get("SUPERSIM_CELL_LOG"), {}
    if not log:
        return

    def pre(info):
        started.update(time=time.perf_counter(), source=info.raw_cell)

    def post(result):
        record = {"pid": os.getpid(), "source": started.get("source", ""),
                  "seconds": time.perf_counter() - started.get("time", time.perf_counter())}
        with open(log, "a") as f:
            f.write(json.dumps(record) + "\\n")

    get_ipython().events.register("pre_run_cell", pre)
    get_ipython().events.register("post_run_cell", post)


_supersim_cell_timer()
del _supersim_cell_timer
"""


def _bench_chapters():
    spec = importlib.util.spec_from_file_location("bench_chapters", ROOT / "benchmarks" / "bench_chapters.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def chapter_cells() -> dict[str, list[str]]:
    """notebook name -> the sources of its code cells, in order."""
    cells = {}
    for path in sorted(BOOK.glob("*.ipynb")):
        nb = json.loads(path.read_text())
        cells[path.stem] = ["".join(c["source"]) for c in nb["cells"] if c["cell_type"] == "code"]
    return cells


def slowest_cells(records: list[dict]) -> dict[str, tuple[float, int]]:
    """notebook name -> (seconds, code cell number from 1) of its slowest cell, from the kernels' notes.

    The number counts code cells from 1, as Jupyter's In [n] does for a run from the top.
    """
    by_kernel = collections.defaultdict(list)
    for r in records:
        by_kernel[r["pid"]].append(r)
    cells, slowest = chapter_cells(), {}
    for runs in by_kernel.values():
        sources = [r["source"] for r in runs]
        # the notebook whose code cells this kernel ran (every chapter shares its first cell)
        name = max(cells, key=lambda n: sum(s in cells[n] for s in sources))
        if not any(s in cells[name] for s in sources):
            continue  # not a chapter's kernel
        worst = max(runs, key=lambda r: r["seconds"])
        index = cells[name].index(worst["source"]) + 1 if worst["source"] in cells[name] else 0
        slowest[name] = (worst["seconds"], index)
    return slowest


def build(out: pathlib.Path, ipython_dir: pathlib.Path, cell_log: pathlib.Path) -> tuple[int, str]:
    """Run the book build into `out`; return its exit status and its log."""
    jb = pathlib.Path(sys.executable).with_name("jupyter-book")
    env = {**os.environ, "IPYTHONDIR": str(ipython_dir), "SUPERSIM_CELL_LOG": str(cell_log)}
    run = subprocess.run([str(jb), "build", str(ROOT), "--path-output", str(out), "-W", "--keep-going"],
                         cwd=ROOT, env=env, capture_output=True, text=True)
    return run.returncode, run.stdout + run.stderr


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--busy", type=int, default=2, help="busy processes to start (default 2)")
    parser.add_argument("--log", type=pathlib.Path, default=None, help="also write the build log here")
    args = parser.parse_args()
    if args.busy < 0:
        parser.error(f"--busy must be 0 or more, got {args.busy}")
    budget = _bench_chapters().budget
    with tempfile.TemporaryDirectory(prefix="supersim-busy-build-") as tmp:
        tmp = pathlib.Path(tmp)
        startup = tmp / "ipython" / "profile_default" / "startup"
        startup.mkdir(parents=True)
        (startup / "00-cell-timer.py").write_text(CELL_TIMER)
        cell_log = tmp / "cells.jsonl"
        busy = [subprocess.Popen([sys.executable, "-c", "while True: pass"]) for _ in range(args.busy)]
        print(f"busy processes: {[p.pid for p in busy] or 'none'}; building into {tmp / '_build'}",
              flush=True)
        start = time.perf_counter()
        try:
            status, log = build(tmp, tmp / "ipython", cell_log)
        finally:
            for p in busy:  # by their ids, and only these
                p.kill()
                p.wait()
        seconds = time.perf_counter() - start
        lines = cell_log.read_text().splitlines() if cell_log.exists() else []
        records = [json.loads(line) for line in lines]
    if args.log:
        args.log.write_text(log)
    executed = dict(re.findall(r"book/(\w+)\.ipynb: Executed notebook in ([\d.]+) seconds", log))
    slowest = slowest_cells(records)
    verdict = "PASSED" if status == 0 else f"FAILED (exit status {status})"
    print(f"book build with {args.busy} busy processes: {verdict} in {seconds:.0f} s; "
          f"{len(executed)} notebooks executed")
    print("| chapter | executed in (s) | slowest cell (s) | quiet budget (s) |")
    print("|---|---|---|---|")
    for name in chapter_cells():
        cell = slowest.get(name)
        cell_text = f"{cell[0]:.1f} (code cell {cell[1]})" if cell else "-"
        print(f"| {name} | {executed.get(name, '-')} | {cell_text} | {budget(name)} |")
    if slowest:
        name, (cell_s, index) = max(slowest.items(), key=lambda kv: kv[1][0])
        print(f"slowest cell of the book: {name}, code cell {index}, {cell_s:.1f} s")
    if status != 0:
        print(log[-6000:])
    return int(status != 0)


if __name__ == "__main__":
    sys.exit(main())
