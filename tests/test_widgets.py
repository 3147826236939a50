"""Explorers and figures: the static slider carries every frame, the live one updates."""

import re
import subprocess
import sys

import matplotlib
import numpy as np
import pytest
import torch

import supersim as ss
from supersim.widgets import Explorer

matplotlib.use("Agg")


def _draw(fig, a, b):
    ax = fig.subplots()
    ax.plot([0, 1], [a, b])
    ax.set_title(f"{a}-{b}")


def test_static_html_has_one_frame_per_combination_and_sliders():
    ex = Explorer(_draw, {"a": [0, 1, 2], "b": [0.5, 1.5]})
    page = ex.to_html()
    frames = re.findall(r"data:image/png;base64,[A-Za-z0-9+/=]+", page)
    assert len(set(frames)) == 6 + 0 and len(frames) == 7  # 6 in the list + the first shown
    assert page.count('type="range"') == 2
    assert "http" not in page, "the static explorer must not load anything"


def test_frames_differ_and_are_cached():
    ex = Explorer(_draw, {"a": [0, 1], "b": [0.0]})
    f0, f1 = ex.frame((0, 0)), ex.frame((1, 0))
    assert f0 != f1 and f0.startswith(b"\x89PNG")
    assert ex.frame((0, 0)) is f0


def test_live_widget_updates_its_image():
    ex = Explorer(_draw, {"a": [0, 1], "b": [0.0, 2.0]})
    box = ex.widget()
    sliders = [c for c in box.children if hasattr(c, "options")]
    image = box.children[-1]
    first = image.value
    sliders[1].value = 1
    assert image.value != first and image.value == ex.frame((0, 1))


def test_mimebundle_carries_both_views():
    bundle = Explorer(_draw, {"a": [0], "b": [1]})._repr_mimebundle_()
    assert "text/html" in bundle and "application/vnd.jupyter.widget-view+json" in bundle


def test_explorer_bad_input():
    with pytest.raises(ValueError, match="params"):
        Explorer(_draw, {})
    with pytest.raises(ValueError, match="frames"):
        Explorer(_draw, {"a": list(range(20)), "b": list(range(20))})


def test_sparsity_explorer_frames_follow_feature_probabilities():
    W = ss.ToyModel(5, 2, 3).W
    ex = ss.widgets.sparsity_explorer(W, feature_probabilities=[1.0, 0.3, 0.1])
    assert list(ex.params) == ["1 - S"] and len(ex.params["1 - S"]) == 3
    assert ex.frame((0,)) != ex.frame((2,))
    with pytest.raises(ValueError, match="feature_probabilities"):
        ss.widgets.sparsity_explorer(W, [1.0])


def test_explorer_repr_names_sliders_and_frames_not_bytes():
    ex = Explorer(_draw, {"a": [0, 1, 2], "b": [0.5, 1.5]}, title="demo")
    assert repr(ex) == "<Explorer 'demo', a: 3 values 0..2, b: 2 values 0.5..1.5; 6 frames, 0 drawn>"
    ex.frame((1, 1))
    assert repr(ex).endswith("6 frames, 1 drawn>")
    assert repr(Explorer(_draw, {"a": [7], "b": [0.25]})) == "<Explorer a: 7, b: 0.25; 1 frames, 0 drawn>"
    text = ex._repr_mimebundle_()["text/plain"]
    assert text == repr(ex) and text.endswith("6 frames, 6 drawn>")


def test_import_supersim_leaves_pyplot_unloaded_until_plot_is_used():
    code = """
import sys
import supersim
assert "matplotlib.pyplot" not in sys.modules, "import supersim loaded pyplot"
assert "supersim.plot" not in sys.modules and "supersim.widgets" not in sys.modules
assert {"plot", "widgets", "phase", "ToyModel"} <= set(dir(supersim)), "tab completion lost names"
import matplotlib
matplotlib.use("Agg")  # still possible: pyplot has not picked a backend yet
fig = supersim.plot.wtw(supersim.ToyModel(3, 2).W[0])
assert "matplotlib.pyplot" in sys.modules and len(fig.axes) == 1
assert supersim.widgets.Explorer and matplotlib.get_backend().lower() == "agg"
try:
    supersim.no_such_module
except AttributeError as err:
    assert "no_such_module" in str(err)
else:
    raise AssertionError("a missing attribute must raise AttributeError")
print("ok")
"""
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert out.returncode == 0 and out.stdout.strip() == "ok", out.stderr


def test_plots_draw_one_artist_per_feature():
    W = ss.ToyModel(5, 2, 2).W.detach()
    fig = ss.plot.feature_directions(W[0])
    assert len(fig.axes[0].lines) >= 5
    fig = ss.plot.sweep_panels(ss.ToyModel(6, 3, 3).W, titles=["a", "b", "c"])
    assert len(fig.axes) == 6
    bars = [a for a in fig.axes if a.patches]
    assert len(bars) == 3 and all(len(a.patches) == 6 for a in bars)
    with pytest.raises(ValueError, match="W must be"):
        ss.plot.feature_directions(torch.zeros(3, 4))
    matplotlib.pyplot.close("all")


def test_feature_directions_options():
    W = ss.ToyModel(4, 2, 1, seed=0).W.detach()[0]  # (2, 4)
    ax = ss.plot.feature_directions(W, colors="k").axes[0]
    assert len(ax.lines) == 2 + 4 and not ax.texts  # two axis lines, one spoke per feature
    ax = ss.plot.feature_directions(W, arrows=True, labels=list("abcd"),
                                    colors=["C0", "C1", "C2", "C3"]).axes[0]
    assert len(ax.lines) == 2, "arrows are annotations, not lines"
    assert [t.get_text() for t in ax.texts] == ["", "a", "", "b", "", "c", "", "d"]  # arrow, label
    learned = torch.randn(6, 2, generator=torch.Generator().manual_seed(0))
    alive = torch.tensor([True, True, True, True, False, False])
    ax = ss.plot.feature_directions(W, arrows=True, learned=learned, alive=alive).axes[0]
    spokes = ax.lines[2:]
    assert len(spokes) == 6 and [s.get_linestyle() for s in spokes] == ["--"] * 4 + [":"] * 2
    tips = np.array([s.get_xydata()[1] for s in spokes])
    assert np.allclose(np.linalg.norm(tips, axis=1), 1), "learned rows not unit"
    with pytest.raises(ValueError, match="colors"):
        ss.plot.feature_directions(W, colors=["C0", "C1"])
    with pytest.raises(ValueError, match="learned"):
        ss.plot.feature_directions(W, learned=torch.zeros(3, 3))
    matplotlib.pyplot.close("all")
