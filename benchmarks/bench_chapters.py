"""Execution time of each chapter, its slowest cell, and its budget; with the plain loop too.

The budget: a chapter executes in at most 90 s on 2 CPU cores (150 s where an issue allowed
more: chapter 9, and a chapter 10). The build's per-cell timeout (`_config.yml`, nbval's
`--nbval-cell-timeout`) is only a guard against hangs, far above any honest cell, so this
script is where the budgets are kept: it prints each chapter's time and its slowest cell,
marks a chapter over its budget and exits with status 1 when one is.

It also shows how much of each chapter's time the fast trainer saves: by default each chapter
is executed twice in a fresh kernel, once as it is and once with `supersim.train` forced onto
the loop it keeps for other modules (the same sampling and thread settings, but an autograd
backward and `torch.optim.AdamW` over all instances at once instead of hand-written gradients,
fused AdamW and cache-sized chunks in worker threads). Nothing else changes, so the difference
is what those levers buy a reader of each chapter. Prints one row per chapter:

    chapter | s, plain loop | s, supersim.train | ratio | failed cells | slowest cell | budget

    python benchmarks/bench_chapters.py                  # every chapter (slow: the plain loop)
    python benchmarks/bench_chapters.py 04_toy_superposition 05_absolute_value
    python benchmarks/bench_chapters.py --fast-only      # just today's times and budgets
    python benchmarks/bench_chapters.py --quick          # chapter 2, fast only (seconds)
"""

from __future__ import annotations

import argparse
import datetime
import os
import pathlib
import sys
import time

import nbformat
import yaml
from nbclient import NotebookClient
from traitlets.config import Config

ROOT = pathlib.Path(__file__).resolve().parents[1]
BUDGET = 90  # seconds per chapter on 2 CPU cores
LONGER_BUDGETS = {"09": 150, "10": 150}  # by chapter number: chapters an issue allowed more
QUICK_CHAPTER = "02_privileged_basis"  # the shortest chapter
# The book build's per-cell timeout: only a guard against a hung kernel; the budgets above
# are the limit.
CELL_TIMEOUT = yaml.safe_load((ROOT / "_config.yml").read_text())["execute"]["timeout"]
# The kernels this script starts encrypt their connection (CurveZMQ, as ipykernel asks).
KERNEL_CONFIG = Config({"KernelManager": {"transport_encryption": "auto"}})

# Run first in the kernel: the trainer takes its fast path only for these exact classes, so
# swapping in stand-ins sends every model through the plain autograd loop of
# `supersim/training.py` (what `train(..., fast=False)` runs).
FORCE_AUTOGRAD = """\
import supersim.training as _t
_t.ToyModel, _t.AbsModel = type("NotToyModel", (), {}), type("NotAbsModel", (), {})
"""


def budget(name: str) -> int:
    """The chapter's budget in seconds."""
    return LONGER_BUDGETS.get(name[:2], BUDGET)


def cell_seconds(cell) -> float:
    """How long a code cell ran, from the timestamps nbclient records in its metadata."""
    stamps = cell.metadata.get("execution", {})
    start, end = stamps.get("iopub.execute_input"), stamps.get("shell.execute_reply")
    if not (start and end):
        return 0.0
    parse = lambda s: datetime.datetime.fromisoformat(s.replace("Z", "+00:00"))  # noqa: E731
    return (parse(end) - parse(start)).total_seconds()


def run(name: str, plain: bool) -> tuple[float, int, tuple[float, int]]:
    """Seconds to execute the chapter, how many of its cells raised, and its slowest cell.

    The slowest cell is (seconds, its number among the code cells, from 1: Jupyter's In [n] for
    a run from the top). The plain loop trains on
    the same batches as the fast trainer, but its float rounding differs, so a long run can
    land on another local optimum and a chapter's asserts, written for the fast trainer, can
    fail; the run goes on and counts them.
    """
    nb = nbformat.read(ROOT / "book" / f"{name}.ipynb", as_version=4)
    if plain:
        nb.cells.insert(0, nbformat.v4.new_code_cell(FORCE_AUTOGRAD))
    client = NotebookClient(nb, timeout=CELL_TIMEOUT, kernel_name="python3", allow_errors=True,
                            record_timing=True, config=KERNEL_CONFIG,
                            resources={"metadata": {"path": str(ROOT / "book")}})
    start = time.perf_counter()
    client.execute()
    seconds = time.perf_counter() - start
    code = [cell for cell in nb.cells if cell.cell_type == "code"][int(plain):]
    errors = sum(out.output_type == "error" for cell in code for out in cell.outputs)
    slowest = max((cell_seconds(cell), n) for n, cell in enumerate(code, start=1))
    return seconds, errors, slowest


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("chapters", nargs="*", help="notebook names without .ipynb (default: all)")
    parser.add_argument("--fast-only", action="store_true", help="skip the plain-loop runs")
    parser.add_argument("--quick", action="store_true",
                        help=f"only {QUICK_CHAPTER}, fast only: checks the script in seconds")
    args = parser.parse_args()
    os.environ["SUPERSIM_PROGRESS"] = "0"
    names = args.chapters or sorted(p.stem for p in (ROOT / "book").glob("[0-9]*.ipynb"))
    if args.quick:
        names, args.fast_only = args.chapters or [QUICK_CHAPTER], True
    missing = [n for n in names if not (ROOT / "book" / f"{n}.ipynb").is_file()]
    if missing:
        parser.error(f"chapters must name notebooks in book/ without .ipynb, got {missing}")
    print("| chapter | plain autograd loop (s) | supersim.train (s) | ratio "
          "| failed cells (plain / fast) | slowest cell (s) | budget (s) |")
    print("|---|---|---|---|---|---|---|")
    over = []
    for name in names:
        fast, fast_err, (slow_s, slow_i) = run(name, plain=False)
        mark = "" if fast <= budget(name) else " OVER"
        over += [name] if mark else []
        slowest, limit = f"{slow_s:.1f} (code cell {slow_i})", f"{budget(name)}{mark}"
        if args.fast_only:
            print(f"| {name} | - | {fast:.1f} | - | - / {fast_err} | {slowest} | {limit} |", flush=True)
            continue
        plain, plain_err, _ = run(name, plain=True)
        print(f"| {name} | {plain:.1f} | {fast:.1f} | {plain / fast:.1f}x | {plain_err} / {fast_err} "
              f"| {slowest} | {limit} |", flush=True)
    if over:
        print(f"over budget: {', '.join(over)}")
    return int(bool(over))


if __name__ == "__main__":
    sys.exit(main())
