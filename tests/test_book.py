"""The whole book builds with warnings as errors, and its pages hold what the chapters promise.

This is the `make book` build (into _build/html), run inside the test suite so that CI fails
when a chapter stops building. Marked slow: it executes every notebook once (cached
afterwards by jupyter-cache).
"""

import pathlib
import re

import pytest

ROOT = pathlib.Path(__file__).resolve().parents[1]
HTML = ROOT / "_build" / "html"


@pytest.mark.slow
def test_book_builds_without_warnings(built_book):
    # Sphinx's own warnings ("file: WARNING: ..."); kernels' "[IPKernelApp] WARNING |" lines about
    # local TCP transport are not the book's
    assert not re.search(r"\bWARNING:", built_book), built_book[-4000:]
    assert (HTML / "index.html").exists()


@pytest.mark.slow
def test_every_chapter_page_has_figures_and_no_errors(built_book):
    chapters = sorted((ROOT / "book").glob("*.ipynb"))
    for nb in chapters:
        page = (HTML / "book" / f"{nb.stem}.html").read_text()
        assert "<img" in page, f"{nb.stem}: no figures rendered"
        assert "Traceback (most recent call last)" not in page, f"{nb.stem}: a traceback in the page"
        # the precomputed explorers must not depend on a kernel or a CDN
        assert "widget-view+json" not in page, f"{nb.stem}: a live widget leaked into the page"
        # training progress bars belong to a live kernel, not to the page
        assert not re.search(r"it/s\]|HBox\(children", page), f"{nb.stem}: a progress bar in the page"


@pytest.mark.slow
def test_toy_model_chapter_shows_its_regimes(built_book):
    page = (HTML / "book" / "04_toy_superposition.html").read_text()
    for label in ("fig-c4-pentagon", "fig-c4-sweep20", "fig-c4-tangled"):
        assert f'id="{label}"' in page, f"figure {label} missing from the page"
    assert page.count('type="range"') >= 1, "the sparsity explorer's static slider is missing"
    colab = "colab.research.google.com/github/supersim-book/supersim/blob/main/book/"
    assert colab + "04_toy_superposition.ipynb" in page
