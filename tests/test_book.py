"""The whole book builds with warnings as errors, and its pages hold what the chapters promise.

This is the `make book` build (into _build/html), run inside the test suite so that CI fails
when a chapter stops building. Marked slow: it executes every notebook once (cached
afterwards by jupyter-cache).
"""

import pathlib
import re

import pytest
import yaml

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


def _numbered_chapters() -> list[tuple[int, list[str]]]:
    """(chapter number, its pages) for the numbered part of _toc.yml, sections included."""
    toc = yaml.safe_load((ROOT / "_toc.yml").read_text())
    numbered = [p for p in toc["parts"] if p.get("numbered")]
    assert len(numbered) == 1, "one numbered part, the chapters"

    def files(entry):
        return [entry["file"], *(f for s in entry.get("sections", []) for f in files(s))]

    return [(k, files(e)) for k, e in enumerate(numbered[0]["chapters"], start=1)]


CAPTION_NUMBER = re.compile(r'<span class="caption-number">(Fig\.|Table) ([\d.]+) </span>')
EQUATION_NUMBER = re.compile(r'<span class="eqno">\(([\d.]+)\)')
# the page's title heading (the one with a permalink; the page header repeats the bare title)
TITLE_NUMBER = re.compile(
    r'<h1>(?:<span class="section-number">([\d.]+) </span>)?(?:(?!</h1>).)*?<a class="headerlink"'
)


@pytest.mark.slow
def test_figures_equations_and_tables_are_numbered_per_chapter(built_book):
    """Fig. 4.2, (4.1), Table 4.1 as in a printed book; 04b and 04c go on counting chapter 4."""
    for k, docs in _numbered_chapters():
        numbers = {"Fig.": [], "Table": [], "eq": []}
        for doc in docs:
            page = (HTML / f"{doc}.html").read_text()
            title = TITLE_NUMBER.search(page)
            # a chapter's first page carries its number; the pages under it carry none
            want = f"{k}." if doc == docs[0] else None
            assert title and title.group(1) == want, f"{doc}: title number {title and title.group(1)}"
            for kind, number in CAPTION_NUMBER.findall(page):
                numbers[kind].append(number)
            numbers["eq"] += EQUATION_NUMBER.findall(page)
        assert numbers["Fig."], f"chapter {k} ({docs[0]}): no numbered figures"
        for kind, found in numbers.items():
            # k.1, k.2, ... in page order across the chapter's pages, none skipped or repeated
            assert found == [f"{k}.{i}" for i in range(1, len(found) + 1)], f"chapter {k} {kind}: {found}"
        # the references in the text read the same numbers (not the book-wide count)
        for doc in docs:
            page = (HTML / f"{doc}.html").read_text()
            refs = re.findall(r'<span class="std std-numref">(?:Fig\.|Table) ([^<]+)</span>', page)
            assert all(re.fullmatch(r"\d+\.\d+", r) for r in refs), f"{doc}: references {refs}"


@pytest.mark.slow
def test_pages_outside_the_chapters_have_no_chapter_number(built_book):
    toc = yaml.safe_load((ROOT / "_toc.yml").read_text())
    others = [toc["root"]] + [c["file"] for p in toc["parts"] if not p.get("numbered")
                              for c in p["chapters"]]
    assert "book/closing" in others
    for doc in others:
        title = TITLE_NUMBER.search((HTML / f"{doc}.html").read_text())
        assert title and title.group(1) is None, f"{doc}: numbered like a chapter"


@pytest.mark.slow
def test_every_table_in_the_chapters_has_a_numbered_caption(built_book):
    """Tables are captioned like figures: a <caption> with its number, and a name to cite."""
    toc = yaml.safe_load((ROOT / "_toc.yml").read_text())
    docs = [f for _, files in _numbered_chapters() for f in files] + [
        c["file"] for p in toc["parts"] if p["caption"] == "Open questions" for c in p["chapters"]
    ]
    tables = 0
    for doc in docs:
        page = (HTML / f"{doc}.html").read_text()
        for match in re.finditer(r"<table\b([^>]*)>\s*(<caption>)?", page):
            tables += 1
            assert match.group(2), f"{doc}: a table without a caption: {page[match.start():][:200]}"
            caption = page[match.end():][:300]
            assert caption.startswith('<span class="caption-number">Table '), f"{doc}: {caption}"
            assert re.search(r'id="tbl-', match.group(1)), f"{doc}: a table without a tbl- name"
    # the tables the chapters have today: chapter 3's packings, 4b's polytopes, closing's list
    assert tables >= 3, f"only {tables} tables found"
