"""The built book in a real browser, offline, as a reader meets it.

Serves _build/html on localhost, blocks every request that leaves localhost, and opens every
page in headless Chromium (Debian's /usr/bin/chromium, driven by Playwright): no console
errors, math typeset by the local MathJax, figures present, the Colab button pointing at the
chapter's notebook on main, and every precomputed slider changing its figure when moved.
A screenshot of each page lands in test-artifacts/screenshots/.

Without Chromium these tests are skipped with the reason and how to install it, except in
CI (the CI variable set), where a missing browser fails the run.
"""

from __future__ import annotations

import functools
import http.server
import importlib.util
import json
import os
import pathlib
import re
import shutil
import threading
import urllib.parse

import pytest
import yaml

ROOT = pathlib.Path(__file__).resolve().parents[1]
HTML = ROOT / "_build" / "html"
SHOTS = ROOT / "test-artifacts" / "screenshots"
# Debian's Chromium; SUPERSIM_CHROMIUM names another binary (e.g. on macOS)
CHROMIUM = pathlib.Path(os.environ.get("SUPERSIM_CHROMIUM", "/usr/bin/chromium"))
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]

pytestmark = pytest.mark.slow


def _entries(entries: list[dict]) -> list[str]:
    """The files of a _toc.yml list of chapters, each followed by its sections."""
    return [f for e in entries for f in [e["file"], *_entries(e.get("sections", []))]]


def _pages(captions: tuple[str, ...] | None = None) -> list[str]:
    """Every page of the book, or only those of the parts with these captions (no root)."""
    toc = yaml.safe_load((ROOT / "_toc.yml").read_text())
    files = [] if captions else [toc["root"]]
    for part in toc.get("parts", []):
        if captions is None or part["caption"] in captions:
            files += _entries(part["chapters"])
    return files


@pytest.fixture(scope="module")
def server(built_book):
    class Quiet(http.server.SimpleHTTPRequestHandler):
        def log_message(self, *args):
            pass

    handler = functools.partial(Quiet, directory=str(HTML))
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}"
    httpd.shutdown()


def _missing(reason: str):
    """Skip without a browser on a reader's machine; in CI (CI set) the browser is required."""
    if os.environ.get("CI", "").lower() not in ("", "0", "false", "no"):
        pytest.fail(f"{reason} (CI is set, so the browser tests are required)")
    pytest.skip(f"{reason}: browser tests skipped. {INSTALL_HINT}")


INSTALL_HINT = (
    "To run them, install Chromium: `sudo apt-get install chromium` (Debian/Ubuntu; or "
    "`make browser`), or `.venv/bin/python -m playwright install chromium` (any platform)"
)


def _chromium(playwright) -> str | None:
    """Debian's Chromium, else a Chromium that Playwright downloaded itself, else None."""
    if CHROMIUM.exists():
        return str(CHROMIUM)
    try:
        path = playwright.chromium.executable_path
    except Exception:  # noqa: BLE001 - no Playwright-managed browser either
        return None
    return path if path and pathlib.Path(path).exists() else None


# session-scoped, so that it comes before the book build (`built_book`, also session-scoped):
# without a browser the tests skip at once instead of building the book first
@pytest.fixture(scope="session")
def browser():
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        _missing("Playwright is not installed")
    with sync_playwright() as p:
        path = _chromium(p)
        if path is None:
            _missing(f"No Chromium found (neither {CHROMIUM} nor a Playwright-managed one)")
        b = p.chromium.launch(executable_path=path, args=CHROMIUM_ARGS, headless=True)
        yield b
        b.close()


@pytest.fixture(scope="module", autouse=True)
def fresh_screenshots():
    shutil.rmtree(SHOTS, ignore_errors=True)
    SHOTS.mkdir(parents=True)


def _open(browser, url: str, width: int = 1280):
    """Open `url` with the network cut off beyond localhost; return page, errors, blocked."""
    page = browser.new_page(viewport={"width": width, "height": 900})
    errors: list[str] = []
    blocked: list[str] = []
    page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
    page.on("pageerror", lambda e: errors.append(str(e)))

    def route(r):
        host = urllib.parse.urlparse(r.request.url).hostname
        if r.request.url.startswith("data:") or host in ("127.0.0.1", "localhost"):
            r.continue_()
        else:
            blocked.append(r.request.url)
            r.abort()

    page.route("**/*", route)
    page.goto(url, wait_until="load")
    return page, errors, blocked


@pytest.mark.parametrize("doc", _pages())
def test_page_works_offline(browser, server, doc):
    page, errors, blocked = _open(browser, f"{server}/{doc}.html")
    try:
        if page.locator(".math").count():
            page.wait_for_selector("mjx-container", timeout=20_000)
            assert page.locator("mjx-container").count() >= page.locator(".math").count() * 0.9
            assert not page.locator("mjx-merror").count(), f"{doc}: MathJax reports a TeX error"
        if doc.endswith("ipynb") or (ROOT / f"{doc}.ipynb").exists():
            images = page.locator("img[src^='data:image'], .cell_output img, figure img")
            assert images.count() > 0, f"{doc}: no figures"
            broken = page.evaluate(
                "() => [...document.images].filter(i => !i.complete || i.naturalWidth === 0)"
                ".map(i => i.src.slice(0, 80))"
            )
            assert not broken, f"{doc}: images that did not load: {broken}"
            colab = page.locator("a[href^='https://colab.research.google.com']")
            assert colab.count() >= 1, f"{doc}: no Colab launch button"
            url = yaml.safe_load((ROOT / "_config.yml").read_text())["repository"]["url"]
            repo = url.removeprefix("https://github.com/")
            want = f"https://colab.research.google.com/github/{repo}/blob/main/{doc}.ipynb"
            assert colab.first.get_attribute("href") == want
        page.screenshot(path=str(SHOTS / f"{doc.replace('/', '_')}.png"), full_page=False)
        assert not errors, f"{doc}: console errors: {errors}"
        assert not blocked, f"{doc}: tried to reach the network: {blocked}"
    finally:
        page.close()


@pytest.mark.parametrize("doc", [d for d in _pages() if (ROOT / f"{d}.ipynb").exists()])
def test_static_sliders_move_their_figures(browser, server, doc):
    page, errors, _ = _open(browser, f"{server}/{doc}.html")
    try:
        explorers = page.locator(".supersim-explorer")
        assert explorers.count() >= 1, f"{doc}: every chapter has at least one explorer"
        for e in range(explorers.count()):
            explorer = explorers.nth(e)
            explorer.scroll_into_view_if_needed()
            frame = explorer.locator("img.sx-frame")
            sliders = explorer.locator("input[type=range]")
            assert sliders.count() >= 1
            for s in range(sliders.count()):
                before = frame.get_attribute("src")
                slider = sliders.nth(s)
                slider.fill(slider.get_attribute("max"))  # fires an input event, like a drag
                after = frame.get_attribute("src")
                assert after != before, f"{doc}: explorer {e}, slider {s} did not change the figure"
            page.screenshot(path=str(SHOTS / f"{doc.replace('/', '_')}-explorer{e}.png"))
        assert not errors, f"{doc}: console errors while moving sliders: {errors}"
    finally:
        page.close()


# ---- the page's menu and contents: the chapter list within reach at every width --------------

# Whether a reader sees the element and can click it: it has a box inside the window, and the
# topmost element at its centre is it or inside it (not a backdrop, not another panel).
REACHABLE = """el => {
  const r = el.getBoundingClientRect();
  if (!el.getClientRects().length || r.width < 1 || r.height < 1) return false;
  const x = r.left + r.width / 2, y = r.top + r.height / 2;
  if (x < 0 || y < 0 || x >= innerWidth || y >= innerHeight) return false;
  const top = document.elementFromPoint(x, y);
  return !!top && (top === el || el.contains(top));
}"""
MENU_PAGE, OTHER_CHAPTER = "book/01_features", "02_privileged_basis.html"


def _reachable(page, locator) -> bool:
    return locator.evaluate(REACHABLE)


def _until(page, locator, reachable: bool, what: str) -> None:
    """Wait (the sidebars slide) until the element is, or is no longer, within a reader's reach."""
    js = f"el => ({REACHABLE})(el) === {str(reachable).lower()}"
    try:
        page.wait_for_function(js, arg=locator.element_handle(), timeout=5_000)
    except Exception as error:  # noqa: BLE001 - say what the reader could not do
        raise AssertionError(what) from error


def _button(page, selector: str, doc: str):
    """The one button of this kind a reader sees (themes also keep hidden copies of it)."""
    shown = page.locator(f"{selector}:visible")
    assert shown.count() == 1, f"{doc}: {shown.count()} visible {selector} buttons"
    return shown.first


@pytest.mark.parametrize("width", [390, 800])
def test_menu_and_contents_open_at_phone_and_tablet_width(browser, server, width):
    """The menu button shows the chapter list and takes the reader to another chapter; the
    contents button shows the page's sections."""
    page, errors, _ = _open(browser, f"{server}/{MENU_PAGE}.html", width=width)
    try:
        chapter = page.locator(f"nav.bd-docs-nav a[href$='{OTHER_CHAPTER}']").first
        assert not _reachable(page, chapter), f"{width} px: the chapter list shows before the menu opens"
        _button(page, ".primary-toggle", f"{width} px").click()
        _until(page, chapter, True, f"{width} px: the menu button does not show the chapter list")
        page.screenshot(path=str(SHOTS / f"menu-{width}px.png"))
        chapter.click()
        page.wait_for_url(f"**/{OTHER_CHAPTER}", timeout=10_000)

        page.goto(f"{server}/{MENU_PAGE}.html")
        section = page.locator("nav.page-toc a").first
        assert not _reachable(page, section), f"{width} px: the contents show before they are opened"
        _button(page, ".secondary-toggle", f"{width} px").click()
        _until(page, section, True, f"{width} px: the contents button does not show the page's sections")
        page.screenshot(path=str(SHOTS / f"contents-{width}px.png"))
        assert not errors, f"{width} px: console errors: {errors}"
    finally:
        page.close()


def test_sidebar_toggle_hides_and_shows_the_chapter_list_at_1280_pixels(browser, server):
    page, errors, _ = _open(browser, f"{server}/{MENU_PAGE}.html", width=1280)
    try:
        chapter = page.locator(f"nav.bd-docs-nav a[href$='{OTHER_CHAPTER}']").first
        assert _reachable(page, chapter), "1280 px: the chapter list is not shown beside the page"
        toggle = _button(page, ".primary-toggle", "1280 px")
        toggle.click()
        _until(page, chapter, False, "1280 px: the sidebar toggle does not hide the chapter list")
        page.screenshot(path=str(SHOTS / "sidebar-hidden-1280px.png"))
        toggle.click()
        _until(page, chapter, True, "1280 px: the sidebar toggle does not bring the chapter list back")
        assert not errors, f"1280 px: console errors: {errors}"
    finally:
        page.close()


# ---- the live panel: the toy model trained in the page (supersim/live/) ----------------------

LIVE_PAGES = ["book/intro", "book/04_toy_superposition"]


def _canvases(page, panel) -> list[str]:
    return page.evaluate("el => [...el.querySelectorAll('canvas')].map(c => c.toDataURL())", panel)


@pytest.mark.parametrize("doc", LIVE_PAGES)
def test_live_panel_trains_in_the_page(browser, server, doc):
    import playwright.sync_api

    page, errors, blocked = _open(browser, f"{server}/{doc}.html")
    try:
        panels = page.locator(".supersim-live")
        assert panels.count() == 1, f"{doc}: the live panel is missing"
        panels.first.scroll_into_view_if_needed()
        panel = panels.first.element_handle()
        api = "el.liveToyModel"
        call = lambda js: page.evaluate(f"el => {js}", panel)  # noqa: E731
        assert panels.first.locator("canvas").count() == 4
        start, first_views = call(f"{api}.weights()"), _canvases(page, panel)
        initial = call(f"{api}.options()")  # the settings a reader finds on the page

        # play trains in the background and redraws every view; pause stops it
        play = panels.first.locator("[data-action=play]")
        play.click()
        page.wait_for_function(f"el => {api}.stepCount() > 300 && {api}.frames() > 5", arg=panel,
                               timeout=30_000)
        play.click()
        stopped = call(f"{api}.stepCount()")
        page.wait_for_timeout(300)
        assert call(f"{api}.stepCount()") == stopped and not call(f"{api}.isPlaying()")
        changed = [a != b for a, b in zip(first_views, _canvases(page, panel), strict=True)]
        assert all(changed), f"{doc}: views that did not update while training: {changed}"

        # the buttons: +100 steps, reset to the seed's fresh weights, the faster preset
        panels.first.locator("[data-action=step]").click()
        assert call(f"{api}.stepCount()") == stopped + 100
        panels.first.locator("[data-action=reset]").click()
        assert call(f"{api}.stepCount()") == 0 and call(f"{api}.weights()") == start
        panels.first.locator("[data-action=fast]").click()
        assert call(f"{api}.options().lr") == 0.01

        # the controls change the model and carry on from the current weights
        call(f"{api}.steps(50)")
        weights = call(f"{api}.weights()")
        panels.first.locator("input[data-control=density]").fill("0")  # the left end: 1 - S = 1
        assert call(f"{api}.options().density") == 1 and call(f"{api}.weights()") == weights
        panels.first.locator("input[data-control=decay]").fill("1")
        assert call(f"{api}.options().decay") == 1
        panels.first.locator("input[data-control=n]").fill("7")
        grown = call(f"{api}.weights()")
        assert len(grown[0]) == 7 and [row[:5] for row in grown] == weights
        panels.first.locator("select[data-control=m]").select_option("3")
        assert len(call(f"{api}.weights()")) == 3 and call(f"{api}.stepCount()") == 50
        seed = panels.first.locator("input[data-control=seed]")
        seed.fill("5")
        seed.dispatch_event("change")
        assert call(f"{api}.options().seed") == 5 and call(f"{api}.stepCount()") == 0
        assert 0 < call(f"{api}.steps(20)") < 1

        # settings the panel cannot show are refused, and change nothing
        before = call(f"{api}.options()"), call(f"{api}.weights()")
        for bad, message in (("{m: 1}", "m must be an integer in [2, 3], got 1"),
                             ("{density: 0}", "density must be a number in [0.01, 1], got 0"),
                             ("{n: 3, lr: 1}", "lr must be a number in [0.0001, 0.03], got 1")):
            with pytest.raises(playwright.sync_api.Error, match=re.escape(message)):
                call(f"{api}.set({bad})")
            assert (call(f"{api}.options()"), call(f"{api}.weights()")) == before, bad
        # and the controls offer none: each end of every control is a setting the panel shows
        density = panels.first.locator("input[data-control=density]")
        density.fill(density.get_attribute("max"))
        assert call(f"{api}.options().density") == 0.01
        n = panels.first.locator("input[data-control=n]")
        assert (n.get_attribute("min"), n.get_attribute("max")) == ("2", "8")
        m_options = panels.first.locator("select[data-control=m] option")
        assert m_options.all_inner_texts() == ["2", "3"]

        # what the prose promises: press play and, from the page's own seed, a pentagon
        # forms within supersim.train's 10,000 steps at the paper's learning rate; then
        # 1 - S = 0.3 gives antipodal pairs and 1 - S = 1 two orthogonal features
        call(f"{api}.set({json.dumps(initial)})")
        call(f"{api}.reset()")
        call(f"{api}.steps(10000)")
        D, norms = call(f"{api}.dimensionality()"), _norms(call(f"{api}.weights()"))
        assert all(abs(d - 0.4) < 0.05 for d in D) and min(norms) > 0.9, f"{doc}: no pentagon: {D}"
        call(f"{api}.set({{density: 0.3}})")
        call(f"{api}.steps(5000)")
        D = sorted(call(f"{api}.dimensionality()"))
        assert D[0] < 0.05 and all(abs(d - 0.5) < 0.05 for d in D[1:]), f"{doc}: no antipodal pairs: {D}"
        call(f"{api}.set({{density: 1}})")
        call(f"{api}.steps(5000)")
        D = sorted(call(f"{api}.dimensionality()"))
        assert max(D[:3]) < 0.05 and min(D[3:]) > 0.95, f"{doc}: not two orthogonal features: {D}"
        # ... but not every seed reaches the pentagon (the intro and chapter 4 say so)
        call(f"{api}.set({json.dumps(initial)})")
        missed = call(f"""(() => {{ for (let seed = 0; seed < 8; seed++) {{
            {api}.set({{seed}}); {api}.steps(10000);
            if ({api}.dimensionality().some(d => d < 0.2)) return seed; }} return null; }})()""")
        assert missed is not None, f"{doc}: seeds 0-7 all form a pentagon, unlike the prose says"
        # the faster preset forms the pentagon in a fraction of those steps
        call(f"{api}.set({json.dumps(initial)})")
        panels.first.locator("[data-action=reset]").click()
        panels.first.locator("[data-action=fast]").click()
        call(f"{api}.steps(1000)")
        D = call(f"{api}.dimensionality()")
        assert all(abs(d - 0.4) < 0.05 for d in D), f"{doc}: no pentagon with the faster preset: {D}"

        page.screenshot(path=str(SHOTS / f"{doc.replace('/', '_')}-live.png"))
        assert not errors, f"{doc}: console errors: {errors}"
        assert not blocked, f"{doc}: the panel tried to reach the network: {blocked}"
    finally:
        page.close()


def _norms(W: list[list[float]]) -> list[float]:
    return [sum(row[i] ** 2 for row in W) ** 0.5 for i in range(len(W[0]))]


# Play for a while and record, once per animation frame, the panel's height, the top of what
# follows it, its status line, and the steps and steps/s against the page's own clock.
WATCH_PLAY = """async ([el, ms]) => {
  const api = el.liveToyModel;
  const next = [...document.querySelectorAll('body *')].find(n => !el.contains(n) &&
    (el.compareDocumentPosition(n) & Node.DOCUMENT_POSITION_FOLLOWING) && n.getClientRects().length);
  const look = () => ({ height: el.getBoundingClientRect().height,
    below: next ? next.getBoundingClientRect().top - el.getBoundingClientRect().top : null,
    status: el.querySelector('[data-role=status]').textContent,
    t: performance.now(), steps: api.stepCount(), rate: api.rate() });
  const seen = [look()];
  el.querySelector('[data-action=play]').click();
  const t0 = performance.now();
  await new Promise(done => { const frame = () => { seen.push(look());
    if (performance.now() - t0 < ms) requestAnimationFrame(frame); else done(); };
    requestAnimationFrame(frame); });
  el.querySelector('[data-action=play]').click();
  seen.push(look());
  return seen;
}"""


@pytest.mark.parametrize("width", [390, 1280])
@pytest.mark.parametrize("doc", LIVE_PAGES)
def test_live_panel_holds_still_while_it_trains(browser, server, doc, width):
    """Nothing moves while the panel plays (a fixed-layout status line), and its steps/s is
    the wall-clock rate: steps done over real time, drawing included."""
    page, errors, _ = _open(browser, f"{server}/{doc}.html")
    try:
        page.set_viewport_size({"width": width, "height": 900})
        panel = page.locator(".supersim-live").first
        panel.scroll_into_view_if_needed()
        page.wait_for_timeout(200)  # let the page settle at its new width
        seen = page.evaluate(WATCH_PLAY, [panel.element_handle(), 3000])
        # a busy machine draws fewer frames: a handful is enough to see the status count
        statuses = {s["status"] for s in seen}
        assert len(statuses) > 5, f"{doc} at {width} px: the status line did not count: {statuses}"
        heights = sorted({s["height"] for s in seen})
        assert len(heights) == 1, f"{doc} at {width} px: the panel's height changed while playing: {heights}"
        below = sorted({s["below"] for s in seen})
        assert below[0] is not None and len(below) == 1, (
            f"{doc} at {width} px: what follows the panel moved: {below}")

        # steps/s against the steps done and the time taken over the last second of play
        last = seen[-2]  # the last frame before the pause
        first = next(s for s in seen if s["t"] >= last["t"] - 1000)
        measured = 1000 * (last["steps"] - first["steps"]) / (last["t"] - first["t"])
        # (the panel measures from its own frame starts, so the two windows differ by a frame;
        # the training-only rate it showed before was 1.5 times the wall-clock rate)
        assert abs(last["rate"] / measured - 1) < 0.25, (
            f"{doc} at {width} px: {last['rate']:.0f} steps/s shown, {measured:.0f} done")
        shown = seen[-2]["status"].split("\u00b7")[-1].split()[0]
        assert shown == f"{round(last['rate']):,}", f"the status shows {shown}, the rate is {last['rate']}"
        assert not errors, f"{doc}: console errors: {errors}"
    finally:
        page.close()


# ---- code fits the column: nothing scrolls sideways at a 1280-pixel-wide window -------------

# the longest code line a chapter may have (tools/fit_code.py formats to it; test_style checks)
_spec = importlib.util.spec_from_file_location("fit_code", ROOT / "tools" / "fit_code.py")
_fit_code = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(_fit_code)
CODE_LINE_LENGTH = _fit_code.LINE_LENGTH

# Every visible <pre> in the article, hidden code inputs opened first (a reader can open them):
# where it is (code input, output, or a code block in the text), whether its lines wrap, how
# far it scrolls sideways, how many characters a line of it can hold, and its first line.
MEASURE_CODE = """() => {
  document.querySelectorAll('article details').forEach(d => { d.open = true; });
  return [...document.querySelectorAll('article pre')]
    .filter(pre => pre.getClientRects().length && pre.innerText.trim())
    .map(pre => {
      const style = getComputedStyle(pre);
      const probe = document.createElement('span');
      probe.textContent = 'x'.repeat(100);
      pre.appendChild(probe);
      const char = probe.getBoundingClientRect().width / 100;
      probe.remove();
      const inner = pre.clientWidth - parseFloat(style.paddingLeft) - parseFloat(style.paddingRight);
      return {
        where: pre.closest('.cell_input') ? 'input' : pre.closest('.cell_output') ? 'output' : 'text',
        wraps: !['pre', 'nowrap'].includes(style.whiteSpace),
        scroll: pre.scrollWidth - pre.clientWidth,
        holds: Math.floor(inner / char + 1e-6),
        first: pre.innerText.split('\\n')[0].slice(0, 70),
      };
    });
}"""


@pytest.mark.parametrize("doc", _pages(("Chapters", "Open questions")))
def test_code_blocks_fit_at_1280_pixels(browser, server, doc):
    """No code block scrolls sideways: code inputs fit as lines, outputs wrap as in Jupyter.

    Inputs are held to CODE_LINE_LENGTH characters (test_style.py), and every input block
    must hold that many; outputs (printed numbers, package listings from show_source) wrap
    their long lines instead of scrolling. The window is 1280 pixels wide (see `_open`).
    """
    page, errors, _ = _open(browser, f"{server}/{doc}.html")
    try:
        blocks = page.evaluate(MEASURE_CODE)
        if (ROOT / f"{doc}.ipynb").exists():
            assert any(b["where"] == "input" for b in blocks), f"{doc}: no code cells measured"
        scrolling = [f"{b['where']} block starting {b['first']!r} scrolls by {b['scroll']} px"
                     for b in blocks if b["scroll"] > 0]
        assert not scrolling, f"{doc}: code blocks that scroll sideways:\n" + "\n".join(scrolling)
        narrow = [f"{b['first']!r} holds {b['holds']}" for b in blocks
                  if b["where"] == "input" and b["holds"] < CODE_LINE_LENGTH]
        assert not narrow, f"{doc}: code cells narrower than {CODE_LINE_LENGTH} characters: {narrow}"
        wrapped = [b["first"] for b in blocks if b["where"] == "input" and b["wraps"]]
        assert not wrapped, f"{doc}: code inputs must keep their lines, not wrap: {wrapped}"
    finally:
        page.close()
