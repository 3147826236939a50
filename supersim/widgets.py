"""Explorers: sliders over a figure, live in a kernel and still movable in the static book.

An `Explorer` draws a figure for each combination of slider values. Displayed in Jupyter or
Colab it is an ipywidgets slider panel that draws frames on demand; in the rendered book,
where no kernel runs, the same output carries a plain-HTML fallback: every frame rendered in
advance as a PNG behind `<input type="range">` sliders and twenty lines of inline JavaScript,
so it works offline and needs no widget manager. The book's config drops the widget view for
HTML builds, so the fallback is what pages show.

Chapter 4 introduces the sparsity explorer; later chapters reuse `Explorer`. It also shows
`live_toy_model`, a panel that trains the toy model in the reader's browser, in plain
JavaScript shipped with the package (`supersim/live/`), with no kernel and no network.

Like `supersim.plot`, this module is loaded on first use, not by `import supersim`.
"""

from __future__ import annotations

import base64
import html
import io
import itertools
import json
import uuid
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING

from matplotlib.figure import Figure

from . import _util

if TYPE_CHECKING:  # for the type hints only: ipywidgets is optional and imported on use
    import ipywidgets
    import numpy as np
    import torch

__all__ = [
    "figure_png",
    "Explorer",
    "sparsity_explorer",
    "LiveToyModel",
    "live_toy_model",
]


def figure_png(fig: Figure, dpi: int = 90) -> bytes:
    """PNG bytes of a matplotlib figure (drawn without pyplot, so nothing is shown twice)."""
    fig, dpi = _util.figure(fig, optional=False), _util.size(dpi, "dpi")
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=dpi, bbox_inches="tight")
    return buf.getvalue()


def _fmt(value: object) -> str:
    return f"{value:.3g}" if isinstance(value, float) else str(value)


class Explorer:
    """Sliders over `draw(fig, *values)`, one slider per entry of `params` (label -> values).

    `draw` receives a fresh matplotlib Figure and one value per slider, in the order of `params`.

    The static version holds every combination, so keep the product of the value lists small
    (a few dozen frames).
    """

    def __init__(
        self,
        draw: Callable[..., None],
        params: dict[str, Sequence],
        *,
        figsize: tuple[float, float] = (7.0, 3.5),
        dpi: int = 90,
        title: str = "",
    ) -> None:
        draw = _util.function(draw, "draw")
        if not isinstance(params, dict) or not params:
            raise ValueError(f"params must be a dict naming at least one slider, got {params!r}")
        for name, values in params.items():
            _util.text(name, "params' slider names")
            if isinstance(values, (str, bytes)) or not isinstance(values, Sequence) or len(values) < 1:
                raise ValueError(f"params[{name!r}] must be a list of at least one value, got {values!r}")
        if not isinstance(figsize, (tuple, list)) or len(figsize) != 2:
            raise ValueError(f"figsize must be (width, height) in inches, got {figsize!r}")
        figsize = tuple(_util.number(v, "figsize", low=0, low_open=True) for v in figsize)
        dpi, title = _util.size(dpi, "dpi"), _util.text(title, "title")
        n_frames = 1
        for values in params.values():
            n_frames *= len(values)
        if n_frames > 200:
            raise ValueError(f"params give {n_frames} frames; at most 200 are allowed")
        self.draw, self.params = draw, {k: list(v) for k, v in params.items()}
        self.figsize, self.dpi, self.title = figsize, dpi, title
        self._cache: dict[tuple[int, ...], bytes] = {}

    def frame(self, index: tuple[int, ...]) -> bytes:
        """PNG of the figure at slider positions `index` (one position per slider), cached."""
        if not isinstance(index, (tuple, list)) or len(index) != len(self.params):
            raise ValueError(f"index must be a tuple of {len(self.params)} slider positions, one per"
                             f" slider, got {index!r}")
        index = tuple(_util.integer(i, "index", low=0, high=len(v) - 1)
                      for i, v in zip(index, self.params.values(), strict=True))
        if index not in self._cache:
            values = [v[i] for v, i in zip(self.params.values(), index, strict=True)]
            fig = Figure(figsize=self.figsize)
            self.draw(fig, *values)
            self._cache[index] = figure_png(fig, self.dpi)
        return self._cache[index]

    def __repr__(self) -> str:
        # the sliders and their ranges, not the draw function or the cached PNG bytes
        sliders = ", ".join(
            f"{name}: {len(v)} values {_fmt(v[0])}..{_fmt(v[-1])}" if len(v) > 1 else f"{name}: {_fmt(v[0])}"
            for name, v in self.params.items()
        )
        frames = 1
        for values in self.params.values():
            frames *= len(values)
        title = f"{self.title!r}, " if self.title else ""
        return f"<Explorer {title}{sliders}; {frames} frames, {len(self._cache)} drawn>"

    def _indices(self) -> itertools.product:
        return itertools.product(*(range(len(v)) for v in self.params.values()))

    def to_html(self) -> str:
        """Kernel-free version: every frame precomputed behind HTML range sliders."""
        uid = "sx-" + uuid.uuid4().hex[:8]
        sizes = [len(v) for v in self.params.values()]
        frames = [
            "data:image/png;base64," + base64.b64encode(self.frame(ix)).decode()
            for ix in self._indices()
        ]
        labels = [[_fmt(x) for x in v] for v in self.params.values()]
        rows = []
        for s, (name, values) in enumerate(self.params.items()):
            rows.append(
                f'<label style="display:block;margin:2px 0">{html.escape(name)} '
                f'<input type="range" class="sx-slider" data-axis="{s}" min="0" '
                f'max="{len(values) - 1}" step="1" value="0" style="vertical-align:middle">'
                f' <span class="sx-value">{html.escape(labels[s][0])}</span></label>'
            )
        title = f"<div><b>{html.escape(self.title)}</b></div>" if self.title else ""
        return f"""<div id="{uid}" class="supersim-explorer">{title}{''.join(rows)}
<img class="sx-frame" src="{frames[0]}" alt="{html.escape(self.title or 'explorer frame')}"
 style="max-width:100%">
<script>
(function() {{
  var root = document.getElementById("{uid}");
  var frames = {json.dumps(frames)};
  var sizes = {json.dumps(sizes)}, labels = {json.dumps(labels)};
  var sliders = root.querySelectorAll(".sx-slider"), spans = root.querySelectorAll(".sx-value");
  function update() {{
    var index = 0;
    for (var s = 0; s < sliders.length; s++) {{
      var i = parseInt(sliders[s].value, 10);
      index = index * sizes[s] + i;
      spans[s].textContent = labels[s][i];
    }}
    root.querySelector(".sx-frame").src = frames[index];
  }}
  sliders.forEach(function(el) {{ el.addEventListener("input", update); }});
}})();
</script></div>"""

    def widget(self) -> ipywidgets.VBox:
        """Live version: ipywidgets sliders that draw frames on demand."""
        import ipywidgets as widgets

        sliders = [
            widgets.SelectionSlider(
                options=[(_fmt(x), i) for i, x in enumerate(values)],
                value=0,
                description=name,
                continuous_update=False,
                style={"description_width": "initial"},
                layout=widgets.Layout(width="420px"),
            )
            for name, values in self.params.items()
        ]
        image = widgets.Image(value=self.frame(tuple(0 for _ in sliders)), format="png")

        def update(_change=None):
            image.value = self.frame(tuple(s.value for s in sliders))

        for s in sliders:
            s.observe(update, names="value")
        children = ([widgets.HTML(f"<b>{html.escape(self.title)}</b>")] if self.title else [])
        return widgets.VBox([*children, *sliders, image])

    def _repr_mimebundle_(self, include=None, exclude=None) -> dict:
        bundle = {"text/html": self.to_html()}
        try:
            bundle.update(_widget_bundle(self.widget()))
        except Exception:  # no widget support (e.g. plain IPython): the HTML still works
            pass
        bundle["text/plain"] = repr(self)  # ours, not the widget's long VBox(children=...)
        return bundle


def _widget_bundle(widget: object) -> dict:
    """The display data of a live widget, under ipywidgets 8 and under 7 (Colab's)."""
    if hasattr(widget, "_repr_mimebundle_"):  # ipywidgets >= 8
        return widget._repr_mimebundle_() or {}
    # ipywidgets 7 displays itself through _ipython_display_; the view it sends is this
    view = {"version_major": 2, "version_minor": 0, "model_id": widget.model_id}
    return {"application/vnd.jupyter.widget-view+json": view}


def sparsity_explorer(
    W: torch.Tensor | np.ndarray,
    feature_probabilities: Sequence[float] | torch.Tensor | np.ndarray,
    *,
    importance: torch.Tensor | np.ndarray | None = None,
    title: str = "",
) -> Explorer:
    """A slider over sparsity for a sweep with one trained instance per feature probability.

    W is (instances, hidden, features) with instance k trained at feature probability
    `feature_probabilities[k]` (1 - S). With two hidden dimensions the frame shows the feature
    directions; otherwise W^T W. Either way the per-feature norms sit beside it, coloured by
    superposition.
    """
    from . import plot

    W = _util.float_tensor(W, "W", min_dim=3, max_dim=3, shape="(instances, hidden, features)")
    W = W.detach().cpu()
    feature_probabilities = _util.float_tensor(
        feature_probabilities, "feature_probabilities", max_dim=1, low=0, high=1, low_open=True
    ).tolist()
    if len(feature_probabilities) != W.shape[0]:
        raise ValueError(
            f"feature_probabilities must give one value per instance ({W.shape[0]}), "
            f"got {len(feature_probabilities)}"
        )
    if importance is not None:
        importance = _util.float_tensor(importance, "importance", max_dim=1, low=0)
        if len(importance) != W.shape[-1]:
            got = len(importance)
            raise ValueError(f"importance must give one value per feature ({W.shape[-1]}), got {got}")
    title = _util.text(title, "title")
    index = {float(p): k for k, p in enumerate(feature_probabilities)}

    def draw(fig: Figure, p: float) -> None:
        k = index[float(p)]
        left, right = fig.subplots(1, 2, gridspec_kw={"width_ratios": [1.3, 1]})
        if W.shape[1] == 2:
            plot.feature_directions(W[k], left, importance=importance)
        else:
            plot.wtw(W[k], left)
        plot.norm_bars(W[k], right)
        fig.suptitle(f"1 - S = {float(p):.3g}", fontsize=10)

    sliders = {"1 - S": [float(p) for p in feature_probabilities]}
    return Explorer(draw, sliders, figsize=(5.5, 2.8), title=title)


# ---- The toy model trained live in the page (chapter 4, and the intro) ---------------------

_LIVE_FILES = ("toy_model.js", "panel.js")  # the trainer, then the panel that drives it


def _live_script() -> str:
    """The panel's JavaScript, read from the package data in supersim/live/."""
    from importlib import resources

    folder = resources.files("supersim") / "live"
    return "\n".join((folder / name).read_text(encoding="utf-8") for name in _LIVE_FILES)


def _hex_colors(cmap: str, low: float, high: float, count: int) -> list[str]:
    from matplotlib import colormaps
    from matplotlib.colors import to_hex

    return [to_hex(colormaps[cmap](low + (high - low) * k / (count - 1))) for k in range(count)]


# What the panel can show, by its JavaScript names: RANGES in supersim/live/panel.js, which
# tests/test_live.py checks these against. The directions view needs m >= 2 and the density
# slider is log-scaled, so neither m = 1 nor density 0 is a setting the panel can show.
_LIVE_RANGES = {
    "n": (2, 8), "m": (2, 3), "density": (0.01, 1.0), "decay": (0.7, 1.0), "lr": (1e-4, 3e-2),
    "weightDecay": (0.0, 1.0), "batch": (1, 65536), "seed": (0, 2**32 - 1),
}


def _live_integer(value: object, name: str, key: str) -> int:
    low, high = _LIVE_RANGES[key]
    return _util.integer(value, name, low=low, high=high)


def _live_number(value: object, name: str, key: str) -> float:
    low, high = _LIVE_RANGES[key]
    return _util.number(value, name, low=low, high=high)


class LiveToyModel:
    """A panel that trains the ReLU toy model in the browser; display it in a notebook.

    `to_html()` is self-contained: a <div> and one inline <script> holding the trainer and the
    panel, so it works in the built book (offline, from file:// too), Jupyter and Colab. The
    trainer follows `supersim.train`; tests/test_live.py checks it against the package.
    """

    def __init__(self, config: dict) -> None:
        self.config = config

    def to_html(self) -> str:
        """The panel as one <div> and one inline <script> (trainer and panel inlined)."""
        uid = "sl-" + uuid.uuid4().hex[:8]
        # "</" must not end the script early, whatever the config holds
        config = json.dumps(self.config).replace("</", "<\\/")
        title = html.escape(self.config.get("title") or "the toy model, trained in your browser")
        return (
            f'<div id="{uid}" class="supersim-live">'
            f"<noscript>{title}: this panel needs JavaScript.</noscript></div>\n"
            f"<script>\n{_live_script()}\n"
            f'SupersimLive.mount(document.getElementById("{uid}"), {config});\n</script>'
        )

    def _repr_html_(self) -> str:
        return self.to_html()

    def __repr__(self) -> str:
        o = self.config["options"]
        title = f"{self.config['title']!r}, " if self.config.get("title") else ""
        return (
            f"<LiveToyModel {title}n={o['n']}, m={o['m']}, feature_probability={o['density']:g}, "
            f"importance {o['decay']:g}^i, lr={o['lr']:g}, seed={o['seed']}>"
        )


def live_toy_model(
    n_features: int = 5,
    d_hidden: int = 2,
    *,
    feature_probability: float = 0.1,
    importance_decay: float = 0.9,
    lr: float = 1e-3,
    fast_lr: float = 1e-2,
    batch_size: int = 1024,
    weight_decay: float = 0.01,
    seed: int = 0,
    title: str = "",
) -> LiveToyModel:
    """A panel that trains x' = ReLU(W^T W x + b) live in the reader's browser.

    The defaults are `supersim.train`'s (AdamW, lr 1e-3, weight decay 0.01, batches of 1024)
    and chapter 4's pentagon: 5 features in 2 dimensions, feature probability 1 - S = 0.1,
    importance 0.9^i. The reader can change n (2 to 8), m (2 or 3), the feature probability
    (1 to 0.01; the panel's slider says "density"), the importance decay (0.7 to 1), the
    learning rate (with a button for `fast_lr`) and the seed. Each argument must lie in the
    range the panel can show (`RANGES` in supersim/live/panel.js, which its controls and its
    JavaScript `set` keep to as well); anything else raises ValueError.

    At these defaults only some seeds form the pentagon within supersim.train's 10,000 steps;
    the others settle for two antipodal pairs and drop a feature (chapter 4 counts how many).
    """
    # the JavaScript's option names (supersim/live/toy_model.js), which say "density"
    options = {
        "n": _live_integer(n_features, "n_features", "n"),
        "m": _live_integer(d_hidden, "d_hidden", "m"),
        "density": _live_number(feature_probability, "feature_probability", "density"),
        "decay": _live_number(importance_decay, "importance_decay", "decay"),
        "lr": _live_number(lr, "lr", "lr"),
        "weightDecay": _live_number(weight_decay, "weight_decay", "weightDecay"),
        "batch": _live_integer(batch_size, "batch_size", "batch"),
        "seed": _live_integer(seed, "seed", "seed"),  # the page's generator takes 32-bit seeds
    }
    fast = _live_number(fast_lr, "fast_lr", "lr")
    if not isinstance(title, str):
        raise ValueError(f"title must be a string, got {title!r}")
    colors = {
        # as supersim.plot: importance on viridis from 0.15 (least) to 0.95 (most important),
        # W^T W on RdBu_r from -1 (blue) to 1 (red)
        "importance": _hex_colors("viridis", 0.15, 0.95, 33),
        "gram": _hex_colors("RdBu_r", 0.0, 1.0, 65),
        "line": "#1f77b4",  # matplotlib's first colour, C0
    }
    return LiveToyModel({"options": options, "fastLr": fast, "title": title, "colors": colors})
