"""Execution time of each chapter with `supersim.train`, and with the plain autograd loop.

How much of each chapter's time the fast trainer saves: each chapter is executed twice in a
fresh kernel, once as it is and once with `supersim.train` forced onto the loop it keeps for other modules
(the same sampling and thread settings, but an autograd backward and `torch.optim.AdamW` over
all instances at once instead of hand-written gradients, fused AdamW and cache-sized chunks
in worker threads). Nothing else changes, so the difference is what those levers buy a
reader of each chapter. Prints one row per chapter:

    chapter | seconds, plain autograd loop | seconds, supersim.train | ratio | failed cells

    python benchmarks/bench_chapters.py                  # every chapter (slow: the plain loop)
    python benchmarks/bench_chapters.py 04_toy_superposition 05_absolute_value
    python benchmarks/bench_chapters.py --fast-only      # just today's times
"""

from __future__ import annotations

import argparse
import os
import pathlib
import time

import nbformat
from nbclient import NotebookClient

ROOT = pathlib.Path(__file__).resolve().parents[1]

# Run first in the kernel: the trainer takes its fast path only for these exact classes, so
# swapping in stand-ins sends every model through the plain autograd loop of
# `supersim/training.py` (what `train(..., fast=False)` runs).
FORCE_AUTOGRAD = """\
import supersim.training as _t
_t.ToyModel, _t.AbsModel = type("NotToyModel", (), {}), type("NotAbsModel", (), {})
"""


def run(name: str, plain: bool) -> tuple[float, int]:
    """Seconds to execute the chapter, and how many of its cells raised.

    The plain loop trains on the same batches as the fast trainer, but its float rounding
    differs, so a long run can land on another local optimum and a chapter's asserts, written
    for the fast trainer, can fail; the run goes on and counts them.
    """
    nb = nbformat.read(ROOT / "book" / f"{name}.ipynb", as_version=4)
    if plain:
        nb.cells.insert(0, nbformat.v4.new_code_cell(FORCE_AUTOGRAD))
    client = NotebookClient(nb, timeout=3600, kernel_name="python3", allow_errors=True,
                            resources={"metadata": {"path": str(ROOT / "book")}})
    start = time.perf_counter()
    client.execute()
    seconds = time.perf_counter() - start
    errors = sum(out.output_type == "error" for cell in nb.cells if cell.cell_type == "code"
                 for out in cell.outputs)
    return seconds, errors


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("chapters", nargs="*", help="notebook names without .ipynb (default: all)")
    parser.add_argument("--fast-only", action="store_true", help="skip the plain-loop runs")
    args = parser.parse_args()
    os.environ["SUPERSIM_PROGRESS"] = "0"
    names = args.chapters or sorted(p.stem for p in (ROOT / "book").glob("[0-9]*.ipynb"))
    print("| chapter | plain autograd loop (s) | supersim.train (s) | ratio | failed cells (plain / fast) |")
    print("|---|---|---|---|---|")
    for name in names:
        fast, fast_err = run(name, plain=False)
        if args.fast_only:
            print(f"| {name} | - | {fast:.1f} | - | - / {fast_err} |", flush=True)
            continue
        plain, plain_err = run(name, plain=True)
        print(f"| {name} | {plain:.1f} | {fast:.1f} | {plain / fast:.1f}x | {plain_err} / {fast_err} |",
              flush=True)


if __name__ == "__main__":
    main()
