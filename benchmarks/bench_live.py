"""How fast the in-page trainer (supersim/live/) trains in headless Chromium.

The panel of `supersim.widgets.live_toy_model` (n = 5, m = 2, batch 1024, lr 1e-3) is written
to a page on disk and opened in Debian's Chromium, offline. Measured in one run:

- steps/s when the page trains as fast as it can (`liveToyModel.steps(k)`, synchronous);
- steps/s while playing, when training shares each animation frame with drawing, and the
  longest gap between frames then (what a reader feels as responsiveness);
- seconds from pressing play to a pentagon at 1 - S = 0.1 with the faster preset;
- the baseline: `supersim.train` on the same single model on this machine's CPU (torch, one
  thread), steps/s, measured in the same run.

Reproduce: `.venv/bin/python benchmarks/bench_live.py` (about a minute);
`--quick` (fewer, shorter rounds: a few seconds) checks that the script still runs.
"""

from __future__ import annotations

import argparse
import os
import pathlib
import statistics
import tempfile
import time

import torch

import supersim as ss

# Debian's Chromium, or the binary SUPERSIM_CHROMIUM names (as for tests/test_browser.py)
CHROMIUM = os.environ.get("SUPERSIM_CHROMIUM", "/usr/bin/chromium")
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--no-first-run"]


def torch_baseline(steps: int) -> float:
    """supersim.train steps/s on one n=5, m=2 model, batch 1024 (one thread, as the page)."""
    model = ss.ToyModel(5, 2, seed=0)
    imp = ss.importance_decay(5, 0.9)
    ss.train(model, feature_probability=0.1, importance=imp, steps=50, threads=1, progress=False)
    t0 = time.perf_counter()
    ss.train(model, feature_probability=0.1, importance=imp, steps=steps, threads=1, progress=False)
    return steps / (time.perf_counter() - t0)


def browser_numbers(rounds: int, steps: int, play_seconds: float) -> dict:
    from playwright.sync_api import sync_playwright

    panel = ss.widgets.live_toy_model(5, 2, feature_probability=0.1, importance_decay=0.9, seed=1)
    with tempfile.TemporaryDirectory() as tmp:
        page_path = pathlib.Path(tmp) / "live.html"
        page_path.write_text(f"<!doctype html><meta charset='utf-8'><body>{panel.to_html()}</body>")
        with sync_playwright() as p:
            browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
            page = browser.new_page(viewport={"width": 1000, "height": 700})
            page.route("**/*", lambda r: r.continue_() if r.request.url.startswith("file:") else r.abort())
            page.goto(page_path.as_uri())
            el = page.locator(".supersim-live").element_handle()
            page.evaluate("el => el.liveToyModel.steps(500)", el)  # let the JIT warm up
            sync = []
            for _ in range(rounds):
                ms = page.evaluate(
                    "([el, k]) => { const t = performance.now(); el.liveToyModel.steps(k);"
                    " return performance.now() - t; }", [el, steps])
                sync.append(1000 * steps / ms)

            # playing: steps per second of wall time, and the gaps between animation frames
            page.evaluate("el => el.liveToyModel.reset()", el)
            page.evaluate(
                "() => { window.gaps = []; let last = performance.now();"
                " const tick = (t) => { window.gaps.push(t - last); last = t;"
                " requestAnimationFrame(tick); }; requestAnimationFrame(tick); }")
            page.evaluate("el => el.liveToyModel.play()", el)
            t0 = time.perf_counter()
            page.wait_for_timeout(1000 * play_seconds)
            played = page.evaluate(
                "el => { el.liveToyModel.pause(); return el.liveToyModel.stepCount(); }", el)
            wall = time.perf_counter() - t0
            gaps = page.evaluate("() => window.gaps.slice(2)")

            # pressing play with the faster preset until the five features form a pentagon
            page.evaluate("el => { const a = el.liveToyModel; a.reset(); a.set({lr: 0.01}); a.play(); }", el)
            t0 = time.perf_counter()
            page.wait_for_function(
                "el => { const a = el.liveToyModel, W = a.weights();"
                " return a.dimensionality().every(d => Math.abs(d - 0.4) < 0.03)"
                " && W[0].every((_, i) => Math.hypot(W[0][i], W[1][i]) > 0.9); }",
                arg=el, timeout=60_000, polling=50)
            to_pentagon = time.perf_counter() - t0
            pentagon_steps = page.evaluate("el => el.liveToyModel.stepCount()", el)
            browser.close()
    return {"sync": statistics.median(sync), "sync_all": sync, "play": played / wall,
            "gap_median": statistics.median(gaps), "gap_max": max(gaps),
            "to_pentagon": to_pentagon, "pentagon_steps": pentagon_steps}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--steps", type=int, default=5000, help="steps per timed round")
    parser.add_argument("--quick", action="store_true", help="2 short rounds, 1 s of play")
    args = parser.parse_args()
    if args.quick:
        args.rounds, args.steps = 2, 1000
    torch.set_num_threads(1)
    base = statistics.median(torch_baseline(args.steps // 2) for _ in range(1 if args.quick else 3))
    b = browser_numbers(args.rounds, args.steps, play_seconds=1.0 if args.quick else 3.0)
    print("n=5, m=2, batch 1024, one model")
    print(f"  supersim.train (torch, 1 thread)      {base:8.0f} steps/s   1.00x")
    print(f"  page, as fast as it can (steps(k))    {b['sync']:8.0f} steps/s   {b['sync'] / base:.2f}x"
          f"   (rounds: {', '.join(f'{s:.0f}' for s in b['sync_all'])})")
    print(f"  page, playing (training + drawing)    {b['play']:8.0f} steps/s   {b['play'] / base:.2f}x")
    print(f"  frame gaps while playing: median {b['gap_median']:.1f} ms, longest {b['gap_max']:.1f} ms")
    print(f"  play to pentagon (faster preset, seed 1): {b['to_pentagon']:.1f} s, "
          f"{b['pentagon_steps']} steps")


if __name__ == "__main__":
    main()
