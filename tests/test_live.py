"""The in-page trainer (supersim/live/toy_model.js) against torch and against supersim.train.

Runs Node: first its own tests (tests/js/*.test.js) with numbers torch and `supersim.train`
compute here, so the JavaScript and torch cannot drift apart and the panel's seeds form the
pentagon as often as `supersim.train`'s runs; then the JavaScript trainer on the toy model of
chapter 4, whose geometry and loss must match what `supersim.train` reaches.
"""

from __future__ import annotations

import importlib
import inspect
import json
import math
import os
import pathlib
import re
import shutil
import subprocess

import pytest
import torch

import supersim as ss

ROOT = pathlib.Path(__file__).resolve().parents[1]
JS_TESTS = sorted((ROOT / "tests" / "js").glob("*.test.js"))
CLI = ROOT / "tests" / "js" / "train_cli.js"
train_module = importlib.import_module("supersim._fast")  # BETAS, EPS of the trainer


@pytest.fixture(scope="module")
def node() -> str:
    """Node.js; skipped without it on a reader's machine, required in CI (CI set)."""
    path = shutil.which("node")
    if path is None:
        if os.environ.get("CI", "").lower() not in ("", "0", "false", "no"):
            pytest.fail("Node.js is missing (CI is set, so the in-page trainer's tests are required)")
        pytest.skip("Node.js is missing: the in-page trainer's tests are skipped. "
                    "To run them, install Node.js 18 or newer (Debian/Ubuntu: apt-get install nodejs)")
    return path


def _torch_fixture() -> dict:
    """Loss, gradients and AdamW steps computed by torch in float64 on fixed inputs."""
    gen = torch.Generator().manual_seed(0)
    m, n, batch = 2, 5, 64
    W = torch.randn(m, n, generator=gen, dtype=torch.float64).requires_grad_()
    b = (0.2 * torch.randn(n, generator=gen, dtype=torch.float64)).requires_grad_()
    x = ss.sample_features(batch, 0.4, n_features=n, generator=gen)[:, 0].double()  # (B, F)
    imp = ss.importance_decay(n, 0.9).double()
    out = torch.relu(x @ W.T @ W + b)  # the ToyModel forward pass
    loss = (imp * (out - x).square()).mean()  # supersim.train's loss
    loss.backward()
    grads = {"m": m, "n": n, "batch": batch, "W": W.flatten().tolist(), "b": b.tolist(),
             "x": x.flatten().tolist(), "importance": imp.tolist(), "loss": loss.item(),
             "gW": W.grad.flatten().tolist(), "gb": b.grad.tolist()}

    # AdamW with supersim.train's betas and eps, a few steps on made-up gradients
    p = torch.randn(12, generator=gen, dtype=torch.float64, requires_grad=True)
    param0 = p.detach().clone()
    lr, wd = 0.01, 0.1
    opt = torch.optim.AdamW([p], lr=lr, betas=train_module.BETAS, eps=train_module.EPS, weight_decay=wd)
    steps, params = [], []
    for k in range(4):
        g = torch.randn(12, generator=gen, dtype=torch.float64) * 10.0 ** (k - 2)
        p.grad = g.clone()
        opt.step()
        steps.append(g.tolist())
        params.append(p.detach().tolist())
    adamw = {"param0": param0.tolist(), "grads": steps, "params": params, "lr": lr, "weight_decay": wd}
    return {"grads": grads, "adamw": adamw}


PANEL_SEEDS = 32  # seeds 0 to 31 of the panel against as many runs of supersim.train


def _seeds_fixture() -> dict:
    """The panel's starting settings, and in how many of PANEL_SEEDS runs `ss.train` forms
    the pentagon at them, for tests/js/seeds.test.js to compare the panel's seeds with."""
    options = ss.widgets.live_toy_model().config["options"]
    steps = inspect.signature(ss.train).parameters["steps"].default
    model = ss.ToyModel(options["n"], options["m"], n_instances=PANEL_SEEDS, seed=0)
    ss.train(model, feature_probability=options["density"],
             importance=ss.importance_decay(options["n"], options["decay"]), steps=steps,
             batch_size=options["batch"], lr=options["lr"], weight_decay=options["weightDecay"], seed=0)
    count = sum(not _geometry_problems(W, 0.1) for W in model.W.detach())
    return {"options": options, "steps": steps, "seeds": PANEL_SEEDS, "train_count": count}


def test_javascript_unit_tests_pass_against_torch(node, tmp_path):
    fixture, seeds = tmp_path / "torch_fixture.json", tmp_path / "seeds_fixture.json"
    fixture.write_text(json.dumps(_torch_fixture()))
    seeds.write_text(json.dumps(_seeds_fixture()))
    run = subprocess.run(
        [node, "--test", *map(str, JS_TESTS)], capture_output=True, text=True, timeout=900,
        env={**os.environ, "SUPERSIM_TORCH_FIXTURE": str(fixture), "SUPERSIM_SEEDS_FIXTURE": str(seeds)},
    )
    report = run.stdout + run.stderr
    assert run.returncode == 0, f"node --test failed:\n{report[-6000:]}"
    # every test ran, the torch comparisons included
    assert re.search(r"^# fail 0$", report, re.M) and re.search(r"^# skipped 0$", report, re.M), report
    passed = int(re.search(r"^# pass (\d+)$", report, re.M).group(1))
    assert passed == sum(len(re.findall(r"^test\(", f.read_text(), re.M)) for f in JS_TESTS), report


def test_javascript_constants_are_supersim_trains():
    source = (ROOT / "supersim" / "live" / "toy_model.js").read_text()
    betas = re.search(r"var BETA1 = ([\d.e-]+), BETA2 = ([\d.e-]+), EPS = ([\d.e-]+);", source)
    assert betas, "toy_model.js must define BETA1, BETA2 and EPS on one line"
    assert (float(betas[1]), float(betas[2])) == train_module.BETAS
    assert float(betas[3]) == train_module.EPS


# ---- the same geometry as supersim.train ----------------------------------------------------

DENSITIES = [1.0, 0.3, 0.2, 0.1]  # 1 - S: PCA-like, antipodal pairs (two), pentagon
RESTARTS = 4  # best of four, as the paper keeps the best of several fits
STEPS = 10_000  # supersim.train's default, lr 1e-3, batch 1024: the paper's settings
# From the same initial weights the two trainers see different random batches, yet land in
# the same minimum; their losses on one large evaluation batch then agree within this
# fraction (measured: at most 0.6%).
LOSS_TOLERANCE = 0.02


def _angle_gaps(W: torch.Tensor) -> torch.Tensor:
    keep = W.norm(dim=0) > 0.5
    angles = torch.atan2(W[1, keep], W[0, keep]).sort().values
    return torch.rad2deg(torch.diff(torch.cat([angles, angles[:1] + 2 * math.pi])))


def _geometry_problems(W: torch.Tensor, density: float) -> list[str]:
    """What is wrong with a (2, 5) W for the regime chapter 4 describes at this density."""
    norms = W.norm(dim=0)
    unit = W / norms.clamp_min(1e-9)
    cos = unit.T @ unit
    problems = []
    if density == 1.0:
        if not (norms[:2].min() > 0.95 and norms[2:].max() < 0.2):
            problems.append(f"not two unit features and three dropped: norms {norms.tolist()}")
        if not cos[0, 1].abs() < 0.05:
            problems.append(f"the two features are not orthogonal: cos {cos[0, 1]:.3f}")
    elif density in (0.3, 0.2):
        keep = norms > 0.5
        if not (keep.sum() == 4 and norms[keep].min() > 0.9):
            problems.append(f"not four unit features: norms {norms.tolist()}")
        elif not cos[keep][:, keep].min(dim=1).values.max() < -0.98:
            problems.append("the four features are not two antipodal pairs")
    else:
        if not norms.min() > 0.9:
            problems.append(f"not all five features: norms {norms.tolist()}")
        elif not (_angle_gaps(W) - 72).abs().max() < 5:
            problems.append(f"not a pentagon: gaps {_angle_gaps(W).tolist()}")
    return problems


def _train_in_node(node: str, runs: list[dict]) -> ss.ToyModel:
    """Train each run with the JavaScript trainer; return the weights as one ToyModel."""
    run = subprocess.run([node, str(CLI)], input=json.dumps(runs), capture_output=True, text=True,
                         timeout=900)
    assert run.returncode == 0, run.stderr[-3000:]
    out = json.loads(run.stdout)
    assert [o["steps"] for o in out] == [r["steps"] for r in runs]
    model = ss.ToyModel(runs[0]["options"]["n"], runs[0]["options"]["m"], n_instances=len(runs))
    with torch.no_grad():
        model.W.copy_(torch.tensor([o["W"] for o in out]))
        model.b.copy_(torch.tensor([o["b"] for o in out]))
    return model


def _options(density: float, seed: int) -> dict:
    return {"n": 5, "m": 2, "density": density, "decay": 0.9, "lr": 1e-3, "weightDecay": 0.01,
            "batch": 1024, "seed": seed}


def test_javascript_trainer_matches_supersim_train_from_the_same_start(node):
    importance = ss.importance_decay(5, 0.9)
    p = torch.tensor(DENSITIES).repeat_interleave(RESTARTS)[:, None]  # (instances, 1)
    ref = ss.ToyModel(5, 2, n_instances=len(p), seed=0)
    start = [(ref.W[k].tolist(), ref.b[k].tolist()) for k in range(len(p))]
    runs = [{"options": _options(float(p[k]), k), "steps": STEPS, "W": w, "b": b}
            for k, (w, b) in enumerate(start)]
    js = _train_in_node(node, runs)
    ss.train(ref, feature_probability=p, importance=importance, steps=STEPS, seed=0)

    kw = dict(feature_probability=p, importance=importance, batch_size=200_000)
    loss_js, loss_ref = ss.evaluate(js, **kw), ss.evaluate(ref, **kw)
    report = []
    for k in range(len(p)):
        kept_js, kept_ref = js.W[k].norm(dim=0) > 0.5, ref.W[k].norm(dim=0) > 0.5
        if not torch.equal(kept_js, kept_ref):
            report.append(f"instance {k}: JavaScript kept {kept_js.tolist()}, supersim {kept_ref.tolist()}")
        gap = abs(loss_js[k].item() / loss_ref[k].item() - 1)
        if gap > LOSS_TOLERANCE:
            report.append(f"instance {k} (1 - S = {p[k].item():.2g}): losses differ by {gap:.1%}: "
                          f"{loss_js[k]:.5f} in JavaScript, {loss_ref[k]:.5f} in supersim.train")
    best = ss.best_of_restarts(loss_js, RESTARTS)
    for k, density in enumerate(DENSITIES):
        report += [f"1 - S = {density}: {msg}" for msg in _geometry_problems(js.W.detach()[best[k]], density)]
    assert not report, "\n".join(report)


def test_javascript_trainer_finds_each_regime_from_its_own_seeds(node):
    """What the page does: the JavaScript initialisation and data, best of four seeds."""
    densities = [1.0, 0.2, 0.1]
    runs = [{"options": _options(d, seed), "steps": STEPS} for d in densities for seed in range(RESTARTS)]
    js = _train_in_node(node, runs)
    p = torch.tensor(densities).repeat_interleave(RESTARTS)[:, None]
    loss = ss.evaluate(js, feature_probability=p, importance=ss.importance_decay(5, 0.9), batch_size=200_000)
    best = ss.best_of_restarts(loss, RESTARTS)
    report = []
    for k, density in enumerate(densities):
        report += [f"1 - S = {density}: {msg}" for msg in _geometry_problems(js.W.detach()[best[k]], density)]
    assert not report, "\n".join(report)
    # chapter 4: some seeds settle for two antipodal pairs and a dropped feature instead
    D = ss.feature_dimensionality(js.W.detach()[-RESTARTS:]).sort(dim=1).values  # 1 - S = 0.1
    stuck = (D[:, 0] < 0.05) & ((D[:, 1:] - 0.5).abs() < 0.05).all(dim=1)
    assert stuck.any() and not stuck.all(), f"dimensionalities at 1 - S = 0.1, by seed: {D}"


# ---- the Python side: one self-contained HTML output ----------------------------------------


def test_live_panel_html_is_self_contained():
    panel = ss.widgets.live_toy_model(5, 2, feature_probability=0.1, seed=3, title="a </script> title")
    page = panel._repr_html_()
    # a fresh element id per display, the same markup otherwise
    assert re.sub(r"sl-\w{8}", "ID", page) == re.sub(r"sl-\w{8}", "ID", panel.to_html())
    assert page.count("<script") == 1 and page.count("</script>") == 1, "one inline script only"
    for name in ("toy_model.js", "panel.js"):
        body = (ROOT / "supersim" / "live" / name).read_text()
        assert body in page, f"{name} is not inlined"
    assert not re.search(r"(src|href)=|https?://|import\(|fetch\(", page), "the panel must load nothing"
    config = json.loads(re.search(r"mount\(document\.getElementById\(\"sl-\w+\"\), (.*)\);", page)[1]
                        .replace("<\\/", "</"))
    assert config["options"] == {"n": 5, "m": 2, "density": 0.1, "decay": 0.9, "lr": 1e-3,
                                 "weightDecay": 0.01, "batch": 1024, "seed": 3}
    assert config["title"] == "a </script> title"
    assert repr(panel) == ("<LiveToyModel 'a </script> title', n=5, m=2, feature_probability=0.1, "
                           "importance 0.9^i, lr=0.001, seed=3>")


def test_live_panel_colours_are_the_static_figures():
    colors = ss.widgets.live_toy_model().config["colors"]
    imp = ss.importance_decay(5, 0.9)
    from matplotlib.colors import to_hex

    static = [to_hex(c) for c in ss.plot._importance_colors(5, imp)]
    # the most and least important features get exactly the static figure's colours
    assert colors["importance"][-1] == static[0] and colors["importance"][0] == static[-1]
    assert len(colors["gram"]) % 2 == 1, "W^T W = 0 must have a colour of its own (the middle)"
    # W^T W as in plot.wtw: -1 at the blue end, +1 at the red end
    from matplotlib import colormaps
    from matplotlib.colors import to_rgb

    sign = colormaps[ss.plot._SIGN_CMAP]
    assert colors["gram"][0] == to_hex(sign(0.0)) and colors["gram"][-1] == to_hex(sign(1.0))
    red, blue = to_rgb(colors["gram"][-1]), to_rgb(colors["gram"][0])
    assert red[0] > red[2] and blue[2] > blue[0], "positive must be red, negative blue"


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [({"n_features": 9}, "n_features"), ({"n_features": 2.0}, "n_features"), ({"d_hidden": 4}, "d_hidden"),
     ({"feature_probability": 0.001}, "feature_probability"), ({"importance_decay": 0.5}, "importance_decay"),
     ({"lr": 0.5}, "lr"), ({"fast_lr": 0}, "fast_lr"), ({"seed": -1}, "seed"),
     ({"batch_size": 0}, "batch_size"), ({"title": 3}, "title"),
     ({"feature_probability": True}, "feature_probability")],
)
def test_live_panel_bad_input(kwargs, match):
    with pytest.raises(ValueError, match=match):
        ss.widgets.live_toy_model(**kwargs)


# the Python argument of live_toy_model for each of the panel's settings (panel.js's RANGES)
_ARGUMENTS = {"n": "n_features", "m": "d_hidden", "density": "feature_probability",
              "decay": "importance_decay", "lr": "lr", "weightDecay": "weight_decay",
              "batch": "batch_size", "seed": "seed"}


def test_live_panel_takes_what_the_page_can_show(node):
    """live_toy_model accepts exactly the ranges the panel's JavaScript accepts (RANGES)."""
    panel = json.dumps(str(ROOT / "supersim" / "live" / "panel.js"))
    script = f"process.stdout.write(JSON.stringify(require({panel}).RANGES))"
    run = subprocess.run([node, "-e", script], capture_output=True, text=True, check=True)
    ranges = json.loads(run.stdout)
    assert set(ranges) == set(_ARGUMENTS)
    for key, (low, high) in ranges.items():
        name = _ARGUMENTS[key]
        integer = key in ("n", "m", "batch", "seed")
        step = 1 if integer else 1e-9 * max(1.0, high)
        for good in (low, high):
            assert ss.widgets.live_toy_model(**{name: good}).config["options"][key] == good
        for bad in (low - step, high + step):
            with pytest.raises(ValueError, match=rf"^{name} must be .* in \[") as err:
                ss.widgets.live_toy_model(**{name: bad})
            said = re.search(r"in \[([^,]+), ([^\]]+)\]", str(err.value))  # names the allowed range
            assert (float(said[1]), float(said[2])) == (low, high), str(err.value)
    # the faster preset is a learning rate too
    with pytest.raises(ValueError, match="fast_lr"):
        ss.widgets.live_toy_model(fast_lr=ranges["lr"][1] * 2)


def test_chapter_4_counts_as_many_runs_as_the_panel_seeds_tested():
    """Chapter 4 says the tests train "as many" of the panel's seeds as it trains runs."""
    cells = json.loads((ROOT / "book" / "04_toy_superposition.ipynb").read_text())["cells"]
    source = "".join(next(c for c in cells if c.get("id") == "cell-13-live-seeds")["source"])
    assert re.search(rf"ss\.ToyModel\([^)]*n_instances={PANEL_SEEDS}\b", source), source
