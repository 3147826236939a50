"""Explorers and figures: the static slider carries every frame, the live one updates."""

import re

import matplotlib
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


def test_sparsity_explorer_frames_follow_densities():
    W = ss.ToyModel(5, 2, 3).W
    ex = ss.widgets.sparsity_explorer(W, [1.0, 0.3, 0.1])
    assert list(ex.params) == ["1 - S"] and len(ex.params["1 - S"]) == 3
    assert ex.frame((0,)) != ex.frame((2,))
    with pytest.raises(ValueError, match="densities"):
        ss.widgets.sparsity_explorer(W, [1.0])


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
