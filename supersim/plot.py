"""The book's figure families, after the figures of Elhage et al. (2022), in chapter order.

Every function draws into axes it is given (or a new figure) and returns the figure; none
changes matplotlib's global state. Every argument is checked before anything is drawn, so a
bad one raises ValueError and leaves no half-drawn figure behind. Colours: features coloured
by importance (viridis, bright = important); signed values red for positive, blue for
negative (RdBu_r); superposition from dark indigo (a direction of its own) to yellow (shared).

`import supersim` does not load this module (it pulls in matplotlib.pyplot): the first use of
`supersim.plot` does.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import matplotlib.pyplot as plt
import numpy as np
import torch
from matplotlib.colors import ListedColormap, Normalize
from matplotlib.patches import Patch
from matplotlib.ticker import FuncFormatter, NullFormatter

from . import _util
from .metrics import (
    REPRESENTED_NORM,
    dimensions_per_feature,
    feature_dimensionality,
    represented,
    superposition,
)

if TYPE_CHECKING:
    from collections.abc import Sequence

    from matplotlib.axes import Axes
    from matplotlib.figure import Figure, SubFigure

__all__ = [
    "readback_histogram",
    "neuron_responses",
    "response_matrix",
    "cosine_histogram",
    "line_packing_3d",
    "feature_directions",
    "feature_directions_grid",
    "wtw",
    "norm_bars",
    "sweep_panels",
    "superposition_colorbar",
    "phase_diagram",
    "closed_form_loss_curves",
    "dimensionality_scatter",
    "dimensionality_histogram",
    "neuron_matrix",
    "neuron_stack",
    "neuron_graph",
    "neuron_stack_grid",
    "polysemanticity_bars",
    "cosine_match",
    "max_cosine_bars",
    "recovery_curve",
    "seed_dots",
]

_SIGN_CMAP = "RdBu_r"  # positive red, negative blue
_SUPERPOSITION_CMAP = "plasma"


# ---- Shared by every figure ---------------------------------------------------------------------


def _array(value, name: str, dims: int | tuple[int, int], shape: str = "", **limits) -> np.ndarray:
    """`value` checked by `_util.float_tensor` (finite, non-empty, `dims` axes, within
    `limits`), as a float64 NumPy array."""
    low, high = (dims, dims) if isinstance(dims, int) else dims
    t = _util.float_tensor(value, name, min_dim=low, max_dim=high, shape=shape, dtype=torch.float64, **limits)
    return t.numpy()


def _per_item(value, name: str, n: int, what: str = "feature", **limits) -> np.ndarray | None:
    """None, or one finite value per feature (neuron, ...): an (n,) array."""
    if value is None:
        return None
    a = _array(value, name, (0, 1), **limits).reshape(-1)
    if len(a) != n:
        raise ValueError(f"{name} must give one value per {what} ({n}), got {len(a)}")
    return a


def _colors(colors, n: int, name: str = "colors") -> list | None:
    """None, or one matplotlib colour per feature."""
    if colors is None:
        return None
    if isinstance(colors, str) or not isinstance(colors, (list, tuple, np.ndarray)) or len(colors) != n:
        raise ValueError(f"{name} must give one colour per feature ({n}), got {colors!r}")
    return [_util.color(c, name) for c in colors]


def _order(order, n: int, name: str = "order") -> np.ndarray:
    """A permutation of range(n) (a neuron order); None is the identity."""
    if order is None:
        return np.arange(n)
    order = _util.index_tensor(order, name, max_dim=1).numpy()
    if sorted(order.tolist()) != list(range(n)):
        raise ValueError(f"{name} must be a permutation of the {n} neurons, got {order.tolist()}")
    return order


def _axes(ax: Axes | None, figsize: tuple[float, float]) -> tuple[Figure, Axes]:
    """The axes to draw into: `ax` itself, or the only axes of a new figure of `figsize`.

    Called once every argument is checked: the new figure is the first thing drawn."""
    if ax is None:
        fig, ax = plt.subplots(figsize=figsize)
        return fig, ax
    return ax.figure, ax


def _finish(
    ax: Axes, title: str = "", *, xlabel: str = "", ylabel: str = "", ticks: bool = True,
    title_pad: float | None = None, **settings,
) -> Figure:
    """What every figure ends with, so that all of them share one look.

    `settings` go to `ax.set` (limits, aspect, ...); axis labels are 8 pt, tick labels 7 pt
    (`ticks=False` removes the ticks), the title 9 pt.
    """
    if settings:
        ax.set(**settings)
    if ticks:
        ax.tick_params(labelsize=7)
    else:
        ax.set(xticks=[], yticks=[])
    if xlabel:
        ax.set_xlabel(xlabel, fontsize=8)
    if ylabel:
        ax.set_ylabel(ylabel, fontsize=8)
    if title:
        ax.set_title(title, fontsize=9, pad=title_pad)
    return ax.figure


def _grid(
    n: int, ncols: int | None, fig: Figure | SubFigure | None, panel: tuple[float, float],
    top: float, **subplots,
) -> tuple[Figure | SubFigure, np.ndarray]:
    """`n` panels of size `panel` in rows of `ncols` (plus `top` inches for titles), the spare
    axes of the last row hidden; a new figure unless `fig` is given."""
    ncols = ncols or n
    nrows = -(-n // ncols)
    if fig is None:
        fig = plt.figure(figsize=(panel[0] * ncols, panel[1] * nrows + top))
    axes = fig.subplots(nrows, ncols, squeeze=False, **subplots)
    for ax in axes.flat[n:]:
        ax.set_axis_off()
    return fig, axes


def _importance_colors(n_features: int, importance=None) -> np.ndarray:
    """One viridis colour per feature from its (checked) importance; all alike without one."""
    imp = np.ones(n_features) if importance is None else np.asarray(importance, dtype=float).reshape(-1)
    span = imp.max() - imp.min()
    level = (imp - imp.min()) / span if span > 0 else np.ones(n_features)
    return plt.get_cmap("viridis")(0.15 + 0.8 * level)


def _unit_rows(V: np.ndarray) -> np.ndarray:
    return V / np.maximum(np.linalg.norm(V, axis=-1, keepdims=True), 1e-12)


def _alive(alive, n_latents: int) -> np.ndarray:
    """Which of a dictionary's latents are alive: all of them, or as the (latents,) mask says."""
    if alive is None:
        return np.ones(n_latents, bool)
    return _util.mask(alive, "alive", shape=(n_latents,)).numpy()


def _learned_and_truth(learned, truth) -> tuple[np.ndarray, np.ndarray]:
    """A dictionary (latents, d) and the true directions (features, d), as unit rows."""
    L = _array(learned, "learned", 2, "(latents, d)")
    T = _array(truth, "truth", 2, "(features, d)")
    if L.shape[1] != T.shape[1]:
        raise ValueError(f"learned and truth must have the same width d, got {L.shape} and {T.shape}")
    return _unit_rows(L), _unit_rows(T)


# ---- Chapter 1 ("Features"): read-back errors -------------------------------------------------


def readback_histogram(
    errors: torch.Tensor | np.ndarray, ax: Axes | None = None, *,
    predicted_std: float | None = None, span: float | None = None, bins: int = 60,
    color: str = "C0", label: str | None = None, fill: bool = True, title: str = "",
) -> Figure:
    """Histogram (density, log scale) of read-back errors, with the predicted Gaussian if given.

    `bins` equal bins over [-`span`, `span`] (by default 4 predicted standard deviations, or 4
    of the errors'); errors beyond are piled into the outermost bins, so no mass silently
    disappears. `fill=False` draws an outline, to overlay a second histogram on a filled one.
    """
    e = _array(errors, "errors", (1, None)).ravel()
    ax, bins, color = _util.axes(ax), _util.size(bins, "bins"), _util.color(color)
    predicted_std = _util.optional(_util.number, predicted_std, "predicted_std", low=0, low_open=True)
    span = _util.optional(_util.number, span, "span", low=0, low_open=True)
    label = _util.optional(_util.text, label, "label")
    fill, title = _util.flag(fill, "fill"), _util.text(title, "title")
    fig, ax = _axes(ax, (3.2, 2.4))
    scale = predicted_std or e.std()
    span = span or max(4 * scale, 1e-3)
    edges = np.linspace(-span, span, bins + 1)
    counts, _ = np.histogram(np.clip(e, -span, span), bins=edges, density=True)
    # one filled step artist instead of a patch per bar: much faster to draw in explorers
    ax.stairs(counts, edges, fill=fill, color=color, alpha=0.6 if fill else 1.0, lw=1.2, label=label)
    if predicted_std:
        g = np.linspace(-span, span, 200)
        pdf = np.exp(-0.5 * (g / predicted_std) ** 2) / (predicted_std * np.sqrt(2 * np.pi))
        ax.plot(g, pdf, color="k", lw=1, label="predicted Gaussian")
    ax.set_yscale("log")
    # plain tick labels: the default log labels go through mathtext, slow for explorer frames
    ax.yaxis.set_major_formatter(FuncFormatter(lambda v, _: f"{v:g}"))
    ax.yaxis.set_minor_formatter(NullFormatter())
    return _finish(ax, title, xlabel="read-back error")


# ---- Chapter 2 ("Privileged bases"): neuron responses -----------------------------------------


def neuron_responses(
    R: torch.Tensor | np.ndarray, ax: Axes | None = None, *, title: str = "",
    ymax: float | None = None,
) -> Figure:
    """Grouped bars of a (neurons, features) table: how strongly each neuron fires per feature."""
    R = _array(R, "R", 2, "(neurons, features)")
    ax, title = _util.axes(ax), _util.text(title, "title")
    ymax = _util.optional(_util.number, ymax, "ymax")
    fig, ax = _axes(ax, (3, 2.4))
    n_units, n_features = R.shape
    width = 0.8 / n_features
    colors = plt.get_cmap("tab10")(np.arange(n_features) % 10)
    for i in range(n_features):
        x = np.arange(n_units) + (i - (n_features - 1) / 2) * width
        ax.bar(x, R[:, i], width=width, color=colors[i], label=f"feature {i + 1}")
    ax.set_xticks(np.arange(n_units), [f"neuron {u + 1}" for u in range(n_units)], fontsize=8)
    ax.axhline(0, color="0.5", lw=0.6)
    if ymax is not None:
        ax.set_ylim(min(0.0, float(R.min()) * 1.1), ymax)
    ax.legend(fontsize=7, frameon=False)
    return _finish(ax, title)


def response_matrix(
    R: torch.Tensor | np.ndarray, ax: Axes | None = None, *, title: str = "",
    xlabel: str = "feature", ylabel: str = "unit",
) -> Figure:
    """Heatmap of abs(R) for a (units, features) table: one bright cell per row is monosemantic."""
    R = np.abs(_array(R, "R", 2, "(units, features)"))
    ax, title = _util.axes(ax), _util.text(title, "title")
    xlabel, ylabel = _util.text(xlabel, "xlabel"), _util.text(ylabel, "ylabel")
    fig, ax = _axes(ax, (2.6, 2.6))
    ax.imshow(R, cmap="Greys", vmin=0, vmax=max(float(R.max()), 1e-12))
    return _finish(ax, title, xlabel=xlabel, ylabel=ylabel, ticks=False)


# ---- Chapter 3 ("Johnson-Lindenstrauss packing"): cosines of many directions -----------------


def cosine_histogram(
    V: torch.Tensor | np.ndarray, ax: Axes | None = None, *, bins: int | None = None,
    title: str = "", normal: bool = True,
) -> Figure:
    """Histogram of the cosines between distinct rows of a (k, n) V, with the N(0, 1/n) density
    (when `normal`) and dashed lines at +- the largest absolute cosine; `bins` defaults to ~sqrt(pairs)."""
    from .geometry import cosine_matrix

    V = _array(V, "V", 2, "(k, n)")
    ax, title, normal = _util.axes(ax), _util.text(title, "title"), _util.flag(normal, "normal")
    bins = _util.optional(_util.size, bins, "bins")
    C = cosine_matrix(V).numpy()
    k, n = V.shape
    pairs = C[np.triu_indices(k, 1)]
    if bins is None:
        bins = int(np.clip(np.sqrt(len(pairs)), 10, 80))
    fig, ax = _axes(ax, (3.2, 2.4))
    ax.hist(pairs, bins=np.linspace(-1, 1, bins + 1), density=True, color="#8ab6d6")
    if normal:
        x = np.linspace(-1, 1, 401)
        ax.plot(x, np.sqrt(n / (2 * np.pi)) * np.exp(-n * x**2 / 2), color="#c0392b", lw=1.2,
                label="N(0, 1/n)")
    if len(pairs):
        mu = np.abs(pairs).max()
        for s in (-1, 1):
            ax.axvline(s * mu, color="0.25", lw=0.9, ls="--")
    return _finish(ax, title, xlabel="cosine between two vectors", xlim=(-1, 1), yticks=[])


def line_packing_3d(
    V: torch.Tensor | np.ndarray, ax: Axes | None = None, *, title: str = "",
    color: str = "#1f4e79",
) -> Figure:
    """The lines +-v_i through the origin of a (k, 3) V, inside a wire-frame unit sphere.

    `ax` must be a 3-D axes (`projection="3d"`); a new figure is made when it is None.
    """
    V = _array(V, "V", 2, "(k, 3)")
    norms = np.linalg.norm(V, axis=-1, keepdims=True)
    if V.shape[1] != 3 or not norms.all():
        raise ValueError(f"V must be (k, 3) with no zero row (a line needs a direction), got {V.shape}")
    if _util.axes(ax) is not None and getattr(ax, "name", "") != "3d":
        raise ValueError(f"ax must be None or a 3-D axes (projection='3d'), got {ax!r}")
    title, color = _util.text(title, "title"), _util.color(color)
    if ax is None:
        fig = plt.figure(figsize=(2.6, 2.6))
        ax = fig.add_subplot(projection="3d")
    V = V / norms
    u, w = np.meshgrid(np.linspace(0, 2 * np.pi, 25), np.linspace(0, np.pi, 13))
    ax.plot_wireframe(np.cos(u) * np.sin(w), np.sin(u) * np.sin(w), np.cos(w), color="0.88", lw=0.3)
    for v in V:
        ax.plot(*np.stack([-v, v]).T, color=color, lw=1.6)
        ax.scatter(*np.stack([-v, v]).T, color=color, s=10, depthshade=False)
    ax.set(xlim=(-1, 1), ylim=(-1, 1), zlim=(-1, 1))
    ax.set_box_aspect((1, 1, 1))
    ax.set_axis_off()
    return _finish(ax, title)


# ---- Chapter 4 ("Toy models of superposition"): directions, W^T W, norms ---------------------


def feature_directions(
    W: torch.Tensor | np.ndarray, ax: Axes | None = None, *,
    importance: torch.Tensor | np.ndarray | None = None, colors: str | Sequence | None = None,
    arrows: bool = False, labels: Sequence[str] | None = None,
    learned: torch.Tensor | np.ndarray | None = None, alive: torch.Tensor | np.ndarray | None = None,
    title: str = "", lim: float = 1.5,
) -> Figure:
    """The columns of a (2, features) W as spokes from the origin of the hidden plane.

    Colours come from `importance` (viridis, bright = important) or from `colors`, one colour
    for all or one per feature (e.g. one hue per set of correlated features). A spoke ends in
    a dot, or in an arrowhead with `arrows=True`; `labels` writes a name past each tip.
    `learned` (latents, 2) adds a sparse autoencoder's decoder rows, scaled to length 1, as
    red dashed spokes; latents whose `alive` entry is False are grey and dotted (chapter 6).
    """
    W = _array(W, "W", 2, "(2, features) for a 2-D picture")
    if W.shape[0] != 2:
        raise ValueError(f"W must be (2, features) for a 2-D picture, got {W.shape}")
    n = W.shape[1]
    importance = _per_item(importance, "importance", n, low=0)
    colors = [_util.color(colors, "colors")] * n if isinstance(colors, str) else _colors(colors, n)
    if colors is None:
        colors = _importance_colors(n, importance)
    ax, arrows, title = _util.axes(ax), _util.flag(arrows, "arrows"), _util.text(title, "title")
    labels = _util.optional(_util.texts, labels, "labels", count=n)
    lim = _util.number(lim, "lim", low=0, low_open=True)
    if learned is not None:
        L = _unit_rows(_array(learned, "learned", 2, "(latents, 2)"))
        if L.shape[1] != 2:
            raise ValueError(f"learned must be (latents, 2), got {L.shape}")
        alive = _alive(alive, len(L))
    elif alive is not None:
        raise ValueError("alive marks the rows of learned: give learned too")
    fig, ax = _axes(ax, (2.4, 2.4))
    ax.axhline(0, color="0.88", lw=0.6, zorder=0)
    ax.axvline(0, color="0.88", lw=0.6, zorder=0)
    if learned is not None:
        for j, (x, y) in enumerate(L):
            color, style = ("#d62828", "--") if alive[j] else ("0.65", ":")
            ax.plot([0, x], [0, y], color=color, ls=style, lw=1.2, zorder=2)
            ax.scatter(x, y, color=color, s=14, marker="o" if alive[j] else "x", zorder=4)
    for i in range(n):
        if arrows:
            ax.annotate("", (W[0, i], W[1, i]), (0, 0),
                        arrowprops=dict(arrowstyle="->", color=colors[i], lw=1.8))
        else:
            ax.plot([0, W[0, i]], [0, W[1, i]], color=colors[i], lw=1.5)
            ax.scatter(W[0, i], W[1, i], color=colors[i], s=18, zorder=3)
        if labels is not None:
            ax.text(1.18 * W[0, i], 1.18 * W[1, i], labels[i], color=colors[i], fontsize=8,
                    ha="center", va="center")
    return _finish(ax, title, ticks=False, xlim=(-lim, lim), ylim=(-lim, lim), aspect="equal")


def feature_directions_grid(
    W: torch.Tensor | np.ndarray, *, titles: Sequence[str] | None = None,
    importance: torch.Tensor | np.ndarray | None = None, ncols: int | None = None,
    fig: Figure | SubFigure | None = None,
) -> Figure | SubFigure:
    """One `feature_directions` panel per instance of a (instances, 2, features) W."""
    W = _array(W, "W", 3, "(instances, 2, features)")
    if W.shape[1] != 2:
        raise ValueError(f"W must be (instances, 2, features) for 2-D pictures, got {W.shape}")
    titles = _util.optional(_util.texts, titles, "titles", count=W.shape[0])
    importance = _per_item(importance, "importance", W.shape[-1], low=0)
    ncols, fig = _util.optional(_util.size, ncols, "ncols"), _util.figure(fig)
    fig, axes = _grid(W.shape[0], ncols, fig, (1.9, 1.9), 0.2)
    for k, ax in enumerate(axes.flat[: W.shape[0]]):
        feature_directions(W[k], ax, importance=importance, title=titles[k] if titles else "")
    return fig


def wtw(
    W: torch.Tensor | np.ndarray, ax: Axes | None = None, *, title: str = "",
    colorbar: bool = False,
) -> Figure:
    """Heatmap of W^T W for one (hidden, features) W: the diagonal is ||W_i||^2, the rest
    interference (red positive, blue negative)."""
    W = _array(W, "W", 2, "(hidden, features)")
    ax, title, colorbar = _util.axes(ax), _util.text(title, "title"), _util.flag(colorbar, "colorbar")
    fig, ax = _axes(ax, (3, 3))
    im = ax.imshow(W.T @ W, cmap=_SIGN_CMAP, vmin=-1, vmax=1)
    if colorbar:
        fig.colorbar(im, ax=ax, shrink=0.8)
    return _finish(ax, title, ticks=False)


def norm_bars(
    W: torch.Tensor | np.ndarray, ax: Axes | None = None, *, title: str = "",
    max_norm: float = 1.3,
) -> Figure:
    """Horizontal bars of ||W_i|| per feature, coloured by superposition (dark indigo: none, yellow: much)."""
    W = _array(W, "W", 2, "(hidden, features)")
    ax, title = _util.axes(ax), _util.text(title, "title")
    max_norm = _util.number(max_norm, "max_norm", low=0, low_open=True)
    fig, ax = _axes(ax, (2.2, 3))
    norms = np.linalg.norm(W, axis=0)
    sup = superposition(W).numpy()
    cmap, norm = plt.get_cmap(_SUPERPOSITION_CMAP), Normalize(0, 1)
    ax.barh(np.arange(W.shape[1]), norms, color=cmap(norm(np.clip(sup, 0, 1))), height=0.8)
    return _finish(ax, title, xlabel="‖W_i‖", xlim=(0, max_norm),
                   ylim=(W.shape[1] - 0.5, -0.5), yticks=[])


def sweep_panels(
    W: torch.Tensor | np.ndarray, *, titles: Sequence[str], fig: Figure | SubFigure | None = None
) -> Figure | SubFigure:
    """For each instance of a (instances, hidden, features) W: W^T W above, norm bars below."""
    W = _array(W, "W", 3, "(instances, hidden, features)")
    n = W.shape[0]
    titles, fig = _util.texts(titles, "titles", count=n), _util.figure(fig)
    if fig is None:
        fig = plt.figure(figsize=(1.6 * n, 3.6))
    axes = fig.subplots(2, n, squeeze=False, gridspec_kw={"height_ratios": [1, 1.1]})
    for k in range(n):
        wtw(W[k], axes[0, k], title=titles[k])
        norm_bars(W[k], axes[1, k])
    axes[0, 0].set_ylabel("W^T W", fontsize=8)
    axes[1, 0].set_ylabel("features", fontsize=8)
    return fig


def superposition_colorbar(
    fig: Figure | SubFigure, ax: Axes, label: str = "superposition"
) -> Figure | SubFigure:
    """Add the colour key for `norm_bars` to a figure."""
    fig, label = _util.figure(fig, optional=False), _util.text(label, "label")
    if _util.axes(ax) is None:
        raise ValueError("ax must be the matplotlib Axes the colour bar goes beside, got None")
    sm = plt.cm.ScalarMappable(norm=Normalize(0, 1), cmap=_SUPERPOSITION_CMAP)
    fig.colorbar(sm, ax=ax, label=label, shrink=0.6)
    return fig


# ---- Chapter 4, the page "The geometry of superposition and phase changes" ----------------------

_PHASE_COLORS = ("#d9d9d9", "#f4a261", "#2a6f97")  # ignored, superposed, dedicated
_STICKY = ((1.0, "1: own dimension"), (3 / 4, "3/4: tetrahedron"), (2 / 3, "2/3: triangle"),
           (1 / 2, "1/2: digon"), (2 / 5, "2/5: pentagon"), (3 / 8, "3/8: square antiprism"))


def _log_edges(values: np.ndarray) -> np.ndarray:
    """Cell edges for log-spaced centres: geometric midpoints, extended by half a step.

    A single value gets a cell half a decade wide on either side of it: a grid of one row or
    one column is a valid grid."""
    v = np.log(values)
    if len(v) == 1:
        return np.exp(v[0] + np.array([-0.5, 0.5]) * np.log(10))
    mid = (v[1:] + v[:-1]) / 2
    return np.exp(np.concatenate([[v[0] - (mid[0] - v[0])], mid, [v[-1] + (v[-1] - mid[-1])]]))


def _n_features(n_features) -> int:
    """The phase diagrams' models: n = 2 features in m = 1 dimension, or 3 in 2."""
    return _util.integer(n_features, "n_features", low=2, high=3)


def phase_diagram(
    phase: torch.Tensor | np.ndarray, importances: torch.Tensor | np.ndarray,
    feature_probabilities: torch.Tensor | np.ndarray, ax: Axes | None = None, *,
    n_features: int = 2, boundaries: bool = True, marks: torch.Tensor | np.ndarray | None = None,
    title: str = "", legend: bool = True,
) -> Figure:
    """Phase-diagram cells (importance rows, feature-probability columns) coloured by what the
    extra feature got.

    Grey: ignored, orange: superposed, blue: dedicated. Feature probabilities 1 - S run from
    dense (left) to sparse (right). `boundaries` overlays the closed-form boundaries of
    `phase.superposition_window` for `n_features` (2 or 3); `marks` is an optional (R, P)
    boolean grid of cells to cross out.
    """
    from . import phase as _phase

    P = _util.index_tensor(phase, "phase", high=len(_phase.PHASES) - 1, shape="(R, P) indices").numpy()
    r = _array(importances, "importances", (0, 1), low=0, low_open=True).ravel()
    p = _array(feature_probabilities, "feature_probabilities", (0, 1), low=0, high=1, low_open=True).ravel()
    if P.shape != (len(r), len(p)):
        raise ValueError(f"phase must be (importances, feature_probabilities) = ({len(r)}, {len(p)}), "
                         f"got {P.shape}")
    ax, n_features = _util.axes(ax), _n_features(n_features)
    boundaries, legend = _util.flag(boundaries, "boundaries"), _util.flag(legend, "legend")
    marks = _util.optional(_util.mask, marks, "marks", shape=P.shape)
    title = _util.text(title, "title")
    fig, ax = _axes(ax, (3.4, 3.0))
    ax.pcolormesh(_log_edges(p), _log_edges(r), P, cmap=ListedColormap(_PHASE_COLORS), vmin=-0.5,
                  vmax=2.5, shading="flat", edgecolors="white", linewidth=0.3)
    ax.set(xscale="log", yscale="log")
    ax.set_xlim(_log_edges(p)[[0, -1]])  # dense on the left
    ax.set_ylim(_log_edges(r)[[0, -1]])
    if boundaries:
        t = _phase.TRIPLE_POINT[0]
        fine = np.geomspace(min(p.min(), t) * 0.5, t, 200)
        low, high = (x.numpy() for x in _phase.superposition_window(fine, n_features))
        ax.plot(fine, low, color="k", lw=1.2)
        ax.plot(fine, np.broadcast_to(high, fine.shape), color="k", lw=1.2)
        ax.plot([t, max(p.max(), 1.0) * 2], [1.0, 1.0], color="k", lw=1.2)
        ax.scatter([t], [_phase.TRIPLE_POINT[1]], color="k", s=14, zorder=4)
    if marks is not None:
        ii, jj = np.nonzero(marks.numpy())
        ax.scatter(p[jj], r[ii], marker="x", color="k", s=16, lw=0.9, zorder=5)
    if legend:
        handles = [Patch(color=c, label=n) for c, n in zip(_PHASE_COLORS, _phase.PHASES, strict=True)]
        ax.legend(handles=handles, fontsize=7, frameon=False, loc="upper left", bbox_to_anchor=(1.02, 1.0))
    return _finish(ax, title, xlabel="density 1 - S", ylabel="importance of the extra feature")


def closed_form_loss_curves(
    feature_probability: float, ax: Axes | None = None, *, n_features: int = 2,
    empirical: tuple | None = None, title: str = "",
) -> Figure:
    """The three hand-built solutions' losses against the extra feature's importance, at one
    feature probability 1 - S.

    `empirical` is an optional pair (importances, losses) of trained models' losses (summed over
    features, like the closed forms), drawn as dots on top of the lines.
    """
    from . import phase as _phase

    p = _util.number(feature_probability, "feature_probability", low=0, high=1, low_open=True)
    ax, n_features, title = _util.axes(ax), _n_features(n_features), _util.text(title, "title")
    if empirical is not None:
        if not isinstance(empirical, (tuple, list)) or len(empirical) != 2:
            raise ValueError(f"empirical must be a pair (importances, losses), got {empirical!r}")
        er = _array(empirical[0], "empirical importances", (0, 1), low=0, low_open=True).ravel()
        el = _array(empirical[1], "empirical losses", (0, 1), low=0).ravel()
        if len(er) != len(el):
            got = f"{len(er)} and {len(el)}"
            raise ValueError(f"empirical must pair one loss with each importance, got {got}")
    fig, ax = _axes(ax, (3.4, 2.6))
    r = np.geomspace(0.1, 10, 200)
    L = _phase.closed_form_losses(p, r, n_features).numpy()  # (200, 3)
    for k, name in enumerate(_phase.PHASES):
        ax.plot(r, L[:, k], color=_PHASE_COLORS[k] if k else "0.45", lw=1.6, label=name)
    if empirical is not None:
        ax.scatter(er, el, color="k", s=12, zorder=4, label="trained (best restart)")
    ax.set(xscale="log", yscale="log")
    ax.legend(fontsize=7, frameon=False)
    return _finish(ax, title, xlabel="importance of the extra feature", ylabel="expected loss")


def dimensionality_scatter(
    W: torch.Tensor | np.ndarray, feature_probabilities: torch.Tensor | np.ndarray | Sequence[float],
    ax: Axes | None = None, *, title: str = "", legend: bool = True,
) -> Figure:
    """Feature dimensionality D_i of every feature (dots) and D* (line) against 1 / (1 - S).

    W is (instances, hidden, features) with instance k trained at feature probability
    `feature_probabilities[k]`; instances sharing one (seeds) are pooled, and the line joins
    their mean D*. Dotted lines mark the values of small polytopes: 1, 3/4, 2/3, 1/2, 2/5, 3/8.
    """
    W = _util.float_tensor(W, "W", min_dim=3, max_dim=3, shape="(instances, hidden, features)")
    p = _array(feature_probabilities, "feature_probabilities", (0, 1), low=0, high=1, low_open=True).ravel()
    if len(p) != W.shape[0]:
        raise ValueError(f"feature_probabilities must give one feature probability per instance of W "
                         f"{tuple(W.shape)}, got {len(p)}")
    ax, title, legend = _util.axes(ax), _util.text(title, "title"), _util.flag(legend, "legend")
    D, Dstar = feature_dimensionality(W).numpy(), dimensions_per_feature(W).numpy()
    fig, ax = _axes(ax, (5.0, 3.0))
    rng = np.random.default_rng(0)  # jitter only spreads the dots sideways; fixed for the page
    x = 1 / p
    for k in range(len(p)):
        spread = np.exp(rng.uniform(-0.06, 0.06, D.shape[1]))
        ax.scatter(x[k] * spread, D[k], s=5, color="#2a6f97", alpha=0.35, lw=0)
    uniq = np.unique(x)
    ax.plot(uniq, [Dstar[x == u].mean() for u in uniq], color="k", lw=1.4, marker="o", ms=3,
            label="dimensions per feature D*")
    for value, name in _STICKY:
        ax.axhline(value, color="0.5", lw=0.6, ls=":", zorder=0)
        # neighbouring values (3/4 and 2/3, 2/5 and 3/8) get their labels pushed apart
        va = {3 / 4: "bottom", 2 / 3: "top", 2 / 5: "bottom", 3 / 8: "top"}.get(value, "center")
        ax.text(x.max() * 1.25, value, name, fontsize=6.5, va=va, color="0.3")
    ax.set_xscale("log")
    ax.set_xlim(x.min() / 1.15, x.max() * 1.15)
    if legend:
        ax.legend(fontsize=7, frameon=False, loc="upper right")
    return _finish(ax, title, xlabel="1 / (1 - S)", ylabel="feature dimensionality D_i",
                   ylim=(-0.03, 1.08))


def dimensionality_histogram(
    W: torch.Tensor | np.ndarray, ax: Axes | None = None, *,
    norm_threshold: float = REPRESENTED_NORM, title: str = "",
) -> Figure:
    """Histogram of D_i over the represented features (||W_i|| > `norm_threshold`) of one
    (hidden, features) or more (models, hidden, features) models."""
    W, _ = _util.batched(W, "W", "(hidden, features)")
    norm_threshold = _util.number(norm_threshold, "norm_threshold", low=0)
    ax, title = _util.axes(ax), _util.text(title, "title")
    D = feature_dimensionality(W)[represented(W, norm_threshold)].numpy()
    fig, ax = _axes(ax, (3.4, 2.4))
    ax.hist(D, bins=np.arange(-0.01, 1.06, 0.02), color="#2a6f97")  # bins centred on k/50
    for value, name in _STICKY:
        ax.axvline(value, color="0.5", lw=0.6, ls=":")
        ha = {3 / 8: "right", 2 / 5: "left", 2 / 3: "right", 3 / 4: "left"}.get(value, "center")
        ax.text(value, 1.0, name.split(":")[0], transform=ax.get_xaxis_transform(), fontsize=7,
                ha=ha, va="bottom", color="0.3")
    return _finish(ax, title, xlabel="feature dimensionality D_i (represented features)",
                   ylabel="features", title_pad=12, xlim=(0, 1.05))


# ---- Chapter 4, the page "Non-uniform superposition and the privileged basis", and chapter 5
# ("Computing absolute value in superposition"): reading neurons ------------------------------


def _feature_palette(n_features: int, importance=None, colors=None) -> np.ndarray:
    """One colour per feature: as given, by importance (viridis), or distinct for a few features."""
    if colors is not None:
        return np.asarray(colors)
    if importance is not None:
        return _importance_colors(n_features, importance)
    if n_features <= 10:
        return plt.get_cmap("tab10")(np.arange(n_features))
    return plt.get_cmap("viridis")(np.linspace(0.95, 0.15, n_features))


def neuron_matrix(
    W1: torch.Tensor | np.ndarray, ax: Axes | None = None, *, title: str = "",
    colorbar: bool = False, vmax: float | None = None,
) -> Figure:
    """W1 as a heatmap, one row per neuron and one column per feature (red +, blue -)."""
    W1 = _array(W1, "W1", 2, "(neurons, features)")
    ax, title, colorbar = _util.axes(ax), _util.text(title, "title"), _util.flag(colorbar, "colorbar")
    vmax = _util.optional(_util.number, vmax, "vmax", low=0, low_open=True)
    fig, ax = _axes(ax, (0.35 * W1.shape[1] + 1.2, 0.3 * W1.shape[0] + 0.8))
    vmax = vmax or float(np.abs(W1).max()) or 1.0
    im = ax.imshow(W1, cmap=_SIGN_CMAP, vmin=-vmax, vmax=vmax, aspect="auto")
    if colorbar:
        cbar = fig.colorbar(im, ax=ax, shrink=0.8)
        cbar.ax.tick_params(labelsize=7)
    return _finish(ax, title, xlabel="feature", ylabel="neuron")


def neuron_stack(
    W1: torch.Tensor | np.ndarray,
    ax: Axes | None = None,
    *,
    importance: torch.Tensor | np.ndarray | None = None,
    colors: Sequence | None = None,
    signed: bool = False,
    order: torch.Tensor | np.ndarray | Sequence[int] | None = None,
    shade: torch.Tensor | np.ndarray | Sequence[bool] | None = None,
    min_share: float | None = None,
    title: str = "",
    legend: bool = False,
) -> Figure:
    """A neuron stack plot: one bar per neuron, stacking abs(W1[k, i]), one colour per feature.

    `signed=True` stacks positive weights up and negative ones down. `order` is a neuron order
    (e.g. `neurons.sort_neurons`); `shade` a per-neuron boolean that puts a pale band behind
    the neurons it marks (e.g. the polysemantic ones). With `min_share`, the features with less
    than that share of a neuron's squared weight are lumped into one grey block on top.
    Draws one bar container per feature (with `min_share`: per feature left after lumping,
    plus one for the lump).
    """
    W1 = _array(W1, "W1", 2, "(neurons, features)")
    n_neurons, n_features = W1.shape
    order = _order(order, n_neurons)
    shade = _util.optional(_util.mask, shade, "shade", shape=(n_neurons,))
    importance = _per_item(importance, "importance", n_features, low=0)
    colors = _colors(colors, n_features)
    min_share = _util.optional(_util.number, min_share, "min_share", low=0, high=1, low_open=True)
    ax, signed, legend = _util.axes(ax), _util.flag(signed, "signed"), _util.flag(legend, "legend")
    title = _util.text(title, "title")
    W1 = W1[order]
    small = np.zeros_like(W1, dtype=bool)
    if min_share is not None:
        sq = W1**2
        small = sq < min_share * sq.sum(1, keepdims=True)
    palette = _feature_palette(n_features, importance, colors)
    fig, ax = _axes(ax, (max(2.5, 0.18 * n_neurons + 1), 2.4))
    x = np.arange(n_neurons)
    if shade is not None:
        marked = shade.numpy()[order]
        for k in np.flatnonzero(marked):
            ax.axvspan(k - 0.5, k + 0.5, color="#fbe3e3", zorder=0, lw=0)
    up, down = np.zeros(n_neurons), np.zeros(n_neurons)
    for i in range(n_features):
        w = np.where(small[:, i], 0.0, W1[:, i])
        if min_share is not None and not w.any():
            continue  # lumped everywhere: nothing to draw (and 100 empty bar sets are slow)
        if signed:
            pos, neg = np.clip(w, 0, None), np.clip(w, None, 0)
            height, bottom = np.where(w >= 0, pos, neg), np.where(w >= 0, up, down)
            up, down = up + pos, down + neg
        else:
            height, bottom = np.abs(w), up
            up = up + height
        ax.bar(x, height, bottom=bottom, width=0.8, color=palette[i], lw=0, label=f"x{i}", zorder=2)
    if min_share is not None:
        rest = np.where(small, np.abs(W1), 0.0).sum(1)
        ax.bar(x, rest, bottom=up, width=0.8, color="0.85", lw=0, label="other", zorder=2)
    if signed:
        ax.axhline(0, color="0.3", lw=0.6, zorder=3)
    if legend:
        ax.legend(fontsize=7, frameon=False, loc="upper left", bbox_to_anchor=(1.0, 1.0))
    return _finish(ax, title, xlabel="neuron", ylabel="W1 (stacked)" if signed else "|W1| (stacked)",
                   xlim=(-0.6, n_neurons - 0.4), xticks=[])


def neuron_graph(
    W1: torch.Tensor | np.ndarray, W2: torch.Tensor | np.ndarray, ax: Axes | None = None, *,
    min_weight: float = 0.1, labels: bool = True, title: str = "",
) -> Figure:
    """The network as a graph: inputs, neurons, outputs; edges for weights beyond `min_weight`.

    Edge width grows with the absolute weight; red edges are positive, blue negative. One line
    per edge.
    """
    W1 = _array(W1, "W1", 2, "(neurons, features)")
    W2 = _array(W2, "W2", 2, "(features, neurons)")
    if W2.shape != W1.T.shape:
        raise ValueError(f"W2 must be (features, neurons) = {W1.T.shape} to match W1, got {W2.shape}")
    ax, labels, title = _util.axes(ax), _util.flag(labels, "labels"), _util.text(title, "title")
    min_weight = _util.number(min_weight, "min_weight", low=0)
    n_neurons, n_features = W1.shape
    fig, ax = _axes(ax, (3.2, 2.6))
    y_in = np.linspace(0, 1, n_features + 2)[1:-1][::-1]
    y_hid = np.linspace(0, 1, n_neurons + 2)[1:-1][::-1]
    scale = max(np.abs(W1).max(), np.abs(W2).max(), 1e-12)
    cmap = plt.get_cmap(_SIGN_CMAP)
    for w, x0, y0, x1, y1 in [(W1, 0.0, y_in, 1.0, y_hid), (W2, 1.0, y_hid, 2.0, y_in)]:
        for a in range(w.shape[0]):  # w[a, b] joins node b on the left to node a on the right
            for b in range(w.shape[1]):
                v = w[a, b]
                if abs(v) <= min_weight:
                    continue
                ax.plot(
                    [x0, x1], [y0[b], y1[a]], color=cmap(0.85 if v > 0 else 0.15),
                    lw=0.5 + 3 * abs(v) / scale, alpha=0.85, zorder=1,
                )
    for x, ys, name in [(0.0, y_in, "x"), (1.0, y_hid, "h"), (2.0, y_in, "y")]:
        ax.scatter(np.full(len(ys), x), ys, s=60, color="white", edgecolor="0.2", zorder=3)
        if labels:
            ax.text(x, 1.0, name, ha="center", va="bottom", fontsize=9)
    for spine in ax.spines.values():
        spine.set_visible(False)
    return _finish(ax, title, ticks=False, xlim=(-0.2, 2.2), ylim=(-0.02, 1.08))


def neuron_stack_grid(
    W1: torch.Tensor | np.ndarray, *, titles: Sequence[str],
    importance: torch.Tensor | np.ndarray | None = None, orders: Sequence | None = None,
    shades: Sequence | None = None, min_share: float | None = None, ncols: int | None = None,
    fig: Figure | SubFigure | None = None,
) -> Figure | SubFigure:
    """One `neuron_stack` panel of abs(W1) per instance of a (instances, neurons, features) W1."""
    W1 = _array(W1, "W1", 3, "(instances, neurons, features)")
    n, n_neurons, n_features = W1.shape
    titles = _util.texts(titles, "titles", count=n)
    for name, per_panel in (("orders", orders), ("shades", shades)):
        if per_panel is not None and (isinstance(per_panel, str) or not hasattr(per_panel, "__len__")
                                      or len(per_panel) != n):
            raise ValueError(f"{name} must give one entry per instance ({n}), got {per_panel!r}")
    for k in range(n):  # every panel's arguments, checked before the first is drawn
        _order(None if orders is None else orders[k], n_neurons, "orders")
        _util.optional(_util.mask, None if shades is None else shades[k], "shades", shape=(n_neurons,))
    _per_item(importance, "importance", n_features, low=0)
    _util.optional(_util.number, min_share, "min_share", low=0, high=1, low_open=True)
    ncols, fig = _util.optional(_util.size, ncols, "ncols"), _util.figure(fig)
    fig, axes = _grid(n, ncols, fig, (2.3, 2.1), 0.3, sharey=True, gridspec_kw={"hspace": 0.5})
    for k, ax in enumerate(axes.flat[:n]):
        neuron_stack(
            W1[k], ax, importance=importance, title=titles[k], min_share=min_share,
            order=None if orders is None else orders[k],
            shade=None if shades is None else shades[k],
        )
        if k % axes.shape[1]:
            ax.set_ylabel("")
    return fig


def polysemanticity_bars(
    values: torch.Tensor | np.ndarray,
    ax: Axes | None = None,
    *,
    labels: Sequence[str],
    edges: Sequence[float] = (1.5, 3.5),
    names: Sequence[str] = ("1", "2-3", "4+"),
    title: str = "",
) -> Figure:
    """Stacked bars, one per model, of the share of its neurons in each polysemanticity group.

    `values` is (models, neurons), e.g. `neurons.neuron_polysemanticity`; the groups are split
    at `edges` (by default: about one feature, two or three, four or more) and named `names`.
    """
    values = _array(values, "values", 2, "(models, neurons)")
    labels = _util.texts(labels, "labels", count=values.shape[0])
    if not isinstance(edges, (tuple, list)):
        raise ValueError(f"edges must be a list of increasing numbers, got {edges!r}")
    edges = [_util.number(e, "edges") for e in edges]
    if any(a >= b for a, b in zip(edges[:-1], edges[1:], strict=True)):
        raise ValueError(f"edges must be increasing, got {edges}")
    names = _util.texts(names, "names", count=len(edges) + 1)
    ax, title = _util.axes(ax), _util.text(title, "title")
    fig, ax = _axes(ax, (4.2, 2.4))
    bounds = [-np.inf, *edges, np.inf]
    palette = plt.get_cmap("magma")(np.linspace(0.85, 0.2, len(names)))
    x = np.arange(values.shape[0])
    bottom = np.zeros(values.shape[0])
    for g, (lo, hi) in enumerate(zip(bounds[:-1], bounds[1:], strict=True)):
        frac = ((values >= lo) & (values < hi)).mean(1)
        ax.bar(x, frac, bottom=bottom, color=palette[g], width=0.75, label=names[g])
        bottom += frac
    ax.set_xticks(x, labels, fontsize=7)
    ax.legend(title="features per neuron", fontsize=7, title_fontsize=7, frameon=False,
              loc="center left", bbox_to_anchor=(1.0, 0.5))
    return _finish(ax, title, ylabel="share of neurons", ylim=(0, 1))


# ---- Chapter 6 ("Recovering features with sparse autoencoders"): learned dictionaries -----------
# Directions are rows here, as in `supersim.sae`: truth (features, d), learned (latents, d). The
# 2-D picture of a dictionary against the truth is `feature_directions(..., learned=...)`.


def cosine_match(
    learned: torch.Tensor | np.ndarray, truth: torch.Tensor | np.ndarray, ax: Axes | None = None,
    *, alive: torch.Tensor | np.ndarray | None = None, title: str = "",
) -> Figure:
    """Heatmap of cos(true feature, learned latent), latents sorted by the feature they match.

    A dictionary that recovers every feature shows one red cell per row; dead latents (where
    `alive` is False) go to the right of a grey line.
    """
    L, T = _learned_and_truth(learned, truth)
    alive = _alive(alive, len(L))
    ax, title = _util.axes(ax), _util.text(title, "title")
    cos = T @ L.T  # (features, latents)
    best = cos.argmax(0)
    order = np.lexsort((-cos.max(0), best, ~alive))  # alive first, then by matched feature
    fig, ax = _axes(ax, (3.4, 2.4))
    ax.imshow(cos[:, order], cmap=_SIGN_CMAP, vmin=-1, vmax=1, aspect="auto", interpolation="nearest")
    if (~alive).any():
        ax.axvline(alive.sum() - 0.5, color="0.5", lw=1)
    return _finish(ax, title, xlabel="learned latents", ylabel="true features", ticks=False)


def max_cosine_bars(
    learned: torch.Tensor | np.ndarray, truth: torch.Tensor | np.ndarray, ax: Axes | None = None,
    *, threshold: float = 0.9, title: str = "",
) -> Figure:
    """Per true feature, the best cosine with any learned latent; a dashed line at `threshold`."""
    L, T = _learned_and_truth(learned, truth)
    threshold = _util.number(threshold, "threshold", low=0, high=1)
    ax, title = _util.axes(ax), _util.text(title, "title")
    best = (T @ L.T).max(1)
    fig, ax = _axes(ax, (3, 2.2))
    colors = np.where(best > threshold, "#2a788e", "#e76f51")
    ax.bar(np.arange(len(best)), best, color=colors, width=0.85)
    ax.axhline(threshold, color="0.4", lw=0.8, ls="--")
    return _finish(ax, title, xlabel="true feature", ylabel="best cosine", ylim=(0, 1.02),
                   xlim=(-0.7, len(best) - 0.3), xticks=[])


def recovery_curve(
    values: Sequence[float] | np.ndarray, scores: torch.Tensor | np.ndarray, ax: Axes | None = None,
    *, xlabel: str, ylabel: str = "MMCS", logx: bool = False, label: str | None = None,
    color: str | None = None,
) -> Figure:
    """A score against a swept setting: the mean over seeds as a line, each seed as a dot.

    `scores` is (len(values), seeds), or (len(values),) for one seed; with `logx` the values
    must be > 0.
    """
    logx = _util.flag(logx, "logx")
    values = _array(values, "values", 1, low=0 if logx else -np.inf, low_open=logx)
    scores = _array(scores, "scores", (1, 2), "(len(values), seeds)")
    if scores.shape[0] != len(values):
        raise ValueError(f"scores must be (len(values), seeds) = ({len(values)}, seeds), got {scores.shape}")
    scores = scores.reshape(len(values), -1)
    ax, xlabel, ylabel = _util.axes(ax), _util.text(xlabel, "xlabel"), _util.text(ylabel, "ylabel")
    label, color = _util.optional(_util.text, label, "label"), _util.optional(_util.color, color, "color")
    fig, ax = _axes(ax, (3, 2.4))
    (line,) = ax.plot(values, scores.mean(1), marker="o", ms=3, lw=1.5, color=color, label=label)
    for s in range(scores.shape[1]):
        ax.scatter(values, scores[:, s], s=8, color=line.get_color(), alpha=0.45, lw=0)
    if logx:
        ax.set_xscale("log")
    return _finish(ax, xlabel=xlabel, ylabel=ylabel)


# ---- Chapter 10: which sparse autoencoder finds the true features ------------------------------


def seed_dots(
    values: torch.Tensor | np.ndarray, ax: Axes | None = None, *, groups: Sequence[str],
    series: Sequence[str], title: str = "", ylabel: str = "", legend: bool = False,
) -> Figure:
    """A score per group and series, one dot per seed and a dash at their mean.

    `values` is (groups, series, seeds): groups along the x axis (the variants, say), the series
    side by side within each group in their own colours (the ground truths, say).
    """
    groups, series = _util.texts(groups, "groups"), _util.texts(series, "series")
    if not groups or not series:
        raise ValueError(f"groups and series must name at least one each, got {groups} and {series}")
    v = _array(values, "values", 3, "(groups, series, seeds)")
    if v.shape[:2] != (len(groups), len(series)):
        raise ValueError(f"values must be (groups, series, seeds) = ({len(groups)}, {len(series)}, "
                         f"seeds), got {v.shape}")
    ax, title, ylabel = _util.axes(ax), _util.text(title, "title"), _util.text(ylabel, "ylabel")
    legend = _util.flag(legend, "legend")
    fig, ax = _axes(ax, (4, 2.4))
    width = 0.8 / len(series)
    for j, name in enumerate(series):
        x = np.arange(len(groups)) - 0.4 + width * (j + 0.5)
        color = f"C{j}"
        for s in range(v.shape[2]):
            ax.scatter(x, v[:, j, s], s=7, color=color, alpha=0.55, lw=0)
        ax.scatter(x, v[:, j].mean(1), marker="_", s=60, color=color, lw=1.5, label=name)
    if legend:
        ax.legend(fontsize=6, frameon=False)
    ax.set_xticks(np.arange(len(groups)), groups, rotation=35, ha="right")
    return _finish(ax, title, ylabel=ylabel)
