"""The book's figure families, after the figures of Elhage et al. (2022).

Every function draws into axes it is given (or a new figure) and returns the figure; none
changes matplotlib's global state. Colours: features coloured by importance (viridis, bright =
important); superposition from black (a direction of its own) to yellow (shared).

Chapter 4 ("Toy models of superposition") introduces each of them.
"""

from __future__ import annotations

import matplotlib.pyplot as plt
import numpy as np
import torch
from matplotlib.colors import Normalize

from .metrics import superposition

_SUPERPOSITION_CMAP = "plasma"


def _np(W) -> np.ndarray:
    return torch.as_tensor(W).detach().cpu().numpy()


def _axes(ax, figsize):
    if ax is None:
        fig, ax = plt.subplots(figsize=figsize)
        return fig, ax
    return ax.figure, ax


def _importance_colors(n_features: int, importance=None) -> np.ndarray:
    imp = np.ones(n_features) if importance is None else _np(importance).reshape(-1)[:n_features]
    span = imp.max() - imp.min()
    level = (imp - imp.min()) / span if span > 0 else np.ones(n_features)
    return plt.get_cmap("viridis")(0.15 + 0.8 * level)


def feature_directions(W, ax=None, *, importance=None, title: str = "", lim: float = 1.5):
    """The columns of a (2, features) W as arrows in the hidden plane, coloured by importance."""
    W = _np(W)
    if W.ndim != 2 or W.shape[0] != 2:
        raise ValueError(f"W must be (2, features) for a 2-D picture, got {W.shape}")
    fig, ax = _axes(ax, (2.4, 2.4))
    colors = _importance_colors(W.shape[1], importance)
    for i in range(W.shape[1]):
        ax.plot([0, W[0, i]], [0, W[1, i]], color=colors[i], lw=1.5)
        ax.scatter(W[0, i], W[1, i], color=colors[i], s=18, zorder=3)
    ax.set(xlim=(-lim, lim), ylim=(-lim, lim), aspect="equal", xticks=[], yticks=[])
    ax.axhline(0, color="0.85", lw=0.6, zorder=0)
    ax.axvline(0, color="0.85", lw=0.6, zorder=0)
    if title:
        ax.set_title(title, fontsize=9)
    return fig


def feature_directions_grid(W, *, titles=None, importance=None, ncols: int | None = None, fig=None):
    """One `feature_directions` panel per instance of a (instances, 2, features) W."""
    W = _np(W)
    n = W.shape[0]
    ncols = ncols or n
    nrows = -(-n // ncols)
    if fig is None:
        fig = plt.figure(figsize=(1.9 * ncols, 1.9 * nrows + 0.2))
    axes = fig.subplots(nrows, ncols, squeeze=False)
    for k, ax in enumerate(axes.flat):
        if k < n:
            feature_directions(W[k], ax, importance=importance, title=titles[k] if titles else "")
        else:
            ax.set_axis_off()
    return fig


def wtw(W, ax=None, *, title: str = "", colorbar: bool = False):
    """Heatmap of W^T W for one (hidden, features) W: the diagonal is ||W_i||^2, the rest interference."""
    W = _np(W)
    fig, ax = _axes(ax, (3, 3))
    im = ax.imshow(W.T @ W, cmap="RdBu", vmin=-1, vmax=1)
    ax.set(xticks=[], yticks=[])
    if title:
        ax.set_title(title, fontsize=9)
    if colorbar:
        fig.colorbar(im, ax=ax, shrink=0.8)
    return fig


def norm_bars(W, ax=None, *, title: str = "", max_norm: float = 1.3):
    """Horizontal bars of ||W_i|| per feature, coloured by superposition (black: none, yellow: a lot)."""
    W = _np(W)
    fig, ax = _axes(ax, (2.2, 3))
    norms = np.linalg.norm(W, axis=0)
    sup = superposition(W).numpy()
    cmap, norm = plt.get_cmap(_SUPERPOSITION_CMAP), Normalize(0, 1)
    ax.barh(np.arange(W.shape[1]), norms, color=cmap(norm(np.clip(sup, 0, 1))), height=0.8)
    ax.set(xlim=(0, max_norm), ylim=(W.shape[1] - 0.5, -0.5), yticks=[])
    ax.set_xlabel("‖W_i‖", fontsize=8)
    ax.tick_params(labelsize=7)
    if title:
        ax.set_title(title, fontsize=9)
    return fig


def sweep_panels(W, *, titles, fig=None):
    """For each instance of a (instances, hidden, features) W: W^T W above, norm bars below."""
    W = _np(W)
    n = W.shape[0]
    if fig is None:
        fig = plt.figure(figsize=(1.6 * n, 3.6))
    axes = fig.subplots(2, n, squeeze=False, gridspec_kw={"height_ratios": [1, 1.1]})
    for k in range(n):
        wtw(W[k], axes[0, k], title=titles[k])
        norm_bars(W[k], axes[1, k])
    axes[0, 0].set_ylabel("W^T W", fontsize=8)
    axes[1, 0].set_ylabel("features", fontsize=8)
    return fig


def superposition_colorbar(fig, ax, label: str = "superposition"):
    """Add the colour key for `norm_bars` to a figure."""
    sm = plt.cm.ScalarMappable(norm=Normalize(0, 1), cmap=_SUPERPOSITION_CMAP)
    fig.colorbar(sm, ax=ax, label=label, shrink=0.6)
    return fig


# --- Chapter 5 ("Computing absolute value in superposition"): reading neurons -------------------

_SIGN_CMAP = "RdBu_r"  # positive weights red, negative blue


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
    W1, ax=None, *, title: str = "", colorbar: bool = False, vmax: float | None = None
):
    """W1 as a heatmap, one row per neuron and one column per feature (red +, blue -)."""
    W1 = _np(W1)
    if W1.ndim != 2:
        raise ValueError(f"W1 must be (neurons, features), got {W1.shape}")
    fig, ax = _axes(ax, (0.35 * W1.shape[1] + 1.2, 0.3 * W1.shape[0] + 0.8))
    vmax = vmax or float(np.abs(W1).max()) or 1.0
    im = ax.imshow(W1, cmap=_SIGN_CMAP, vmin=-vmax, vmax=vmax, aspect="auto")
    ax.set_xlabel("feature", fontsize=8)
    ax.set_ylabel("neuron", fontsize=8)
    ax.tick_params(labelsize=7)
    if title:
        ax.set_title(title, fontsize=9)
    if colorbar:
        fig.colorbar(im, ax=ax, shrink=0.8, label="weight")
    return fig


def neuron_stack(
    W1,
    ax=None,
    *,
    importance=None,
    colors=None,
    signed: bool = False,
    order=None,
    shade=None,
    title: str = "",
    legend: bool = False,
):
    """A neuron stack plot: one bar per neuron, stacking |W1[k, i]| with one colour per feature.

    `signed=True` stacks positive weights up and negative ones down. `order` is a neuron order
    (e.g. `neurons.sort_neurons`); `shade` a per-neuron boolean that puts a grey band behind
    the neurons it marks (e.g. the polysemantic ones). Draws one bar container per feature.
    """
    W1 = _np(W1)
    if W1.ndim != 2:
        raise ValueError(f"W1 must be (neurons, features), got {W1.shape}")
    n_neurons, n_features = W1.shape
    order = np.arange(n_neurons) if order is None else _np(order).astype(int).reshape(-1)
    if sorted(order.tolist()) != list(range(n_neurons)):
        raise ValueError(f"order must be a permutation of the {n_neurons} neurons")
    W1 = W1[order]
    palette = _feature_palette(n_features, importance, colors)
    fig, ax = _axes(ax, (max(2.5, 0.18 * n_neurons + 1), 2.4))
    x = np.arange(n_neurons)
    if shade is not None:
        marked = _np(shade).astype(bool).reshape(-1)[order]
        for k in np.flatnonzero(marked):
            ax.axvspan(k - 0.5, k + 0.5, color="0.92", zorder=0, lw=0)
    up, down = np.zeros(n_neurons), np.zeros(n_neurons)
    for i in range(n_features):
        w = W1[:, i]
        if signed:
            pos, neg = np.clip(w, 0, None), np.clip(w, None, 0)
            height, bottom = np.where(w >= 0, pos, neg), np.where(w >= 0, up, down)
            up, down = up + pos, down + neg
        else:
            height, bottom = np.abs(w), up
            up = up + height
        ax.bar(x, height, bottom=bottom, width=0.8, color=palette[i], lw=0, label=f"x{i}", zorder=2)
    if signed:
        ax.axhline(0, color="0.3", lw=0.6, zorder=3)
    ax.set_xlim(-0.6, n_neurons - 0.4)
    ax.set_xticks([])
    ax.set_xlabel("neuron", fontsize=8)
    ax.set_ylabel("W1 (stacked)" if signed else "|W1| (stacked)", fontsize=8)
    ax.tick_params(labelsize=7)
    if title:
        ax.set_title(title, fontsize=9)
    if legend:
        ax.legend(fontsize=7, frameon=False, ncol=min(n_features, 6), loc="upper right")
    return fig


def neuron_graph(W1, W2, ax=None, *, min_weight: float = 0.1, labels: bool = True, title: str = ""):
    """The network as a graph: inputs, neurons, outputs; edges drawn for |weight| > `min_weight`.

    Edge width grows with |weight|; red edges are positive, blue negative. One line per edge.
    """
    W1, W2 = _np(W1), _np(W2)
    if W1.ndim != 2 or W2.shape != W1.T.shape:
        raise ValueError(
            f"W1 must be (neurons, features) and W2 (features, neurons), got {W1.shape}, {W2.shape}"
        )
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
    ax.set(xlim=(-0.2, 2.2), ylim=(-0.02, 1.08), xticks=[], yticks=[])
    for spine in ax.spines.values():
        spine.set_visible(False)
    if title:
        ax.set_title(title, fontsize=9)
    return fig


def neuron_stack_grid(
    W1, *, titles, importance=None, orders=None, shades=None, ncols=None, fig=None
):
    """One `neuron_stack` panel (|W1|) per instance of a (instances, neurons, features) W1."""
    W1 = _np(W1)
    n = W1.shape[0]
    ncols = ncols or n
    nrows = -(-n // ncols)
    if fig is None:
        fig = plt.figure(figsize=(2.3 * ncols, 1.9 * nrows + 0.3))
    axes = fig.subplots(nrows, ncols, squeeze=False, sharey=True)
    for k, ax in enumerate(axes.flat):
        if k >= n:
            ax.set_axis_off()
            continue
        neuron_stack(
            W1[k], ax, importance=importance, title=titles[k],
            order=None if orders is None else orders[k],
            shade=None if shades is None else shades[k],
        )
        if k % ncols:
            ax.set_ylabel("")
    return fig


def polysemanticity_bars(counts, ax=None, *, labels, bins=(1, 2, 4), title: str = ""):
    """Stacked bars, one per model, of the share of its neurons by feature count.

    `counts` is (models, neurons) from `neurons.neuron_polysemanticity`; `bins` are the lower
    edges of the groups after "unused" (0): by default 1, 2-3 and 4 or more features.
    """
    counts = _np(counts)
    if counts.ndim != 2 or len(labels) != counts.shape[0]:
        raise ValueError(
            f"counts must be (models, neurons) with one label per model, got {counts.shape}"
        )
    fig, ax = _axes(ax, (4.2, 2.4))
    edges = [0, *bins, np.inf]
    names = ["unused"]
    for lo, hi in zip(bins, [*bins[1:], np.inf], strict=True):
        names.append(f"{lo}" if hi == lo + 1 else (f"{lo}+" if hi == np.inf else f"{lo}-{hi - 1}"))
    shades = plt.get_cmap("magma")(np.linspace(0.9, 0.25, len(edges) - 2))
    palette = ["0.85", *shades]
    x = np.arange(counts.shape[0])
    bottom = np.zeros(counts.shape[0])
    for g, (lo, hi) in enumerate(zip(edges[:-1], edges[1:], strict=True)):
        frac = ((counts >= lo) & (counts < hi)).mean(1)
        ax.bar(x, frac, bottom=bottom, color=palette[g], width=0.75, label=names[g])
        bottom += frac
    ax.set_xticks(x, labels, fontsize=7)
    ax.set_ylim(0, 1)
    ax.set_ylabel("share of neurons", fontsize=8)
    ax.tick_params(labelsize=7)
    ax.legend(title="features per neuron", fontsize=7, title_fontsize=7, frameon=False,
              loc="center left", bbox_to_anchor=(1.0, 0.5))
    if title:
        ax.set_title(title, fontsize=9)
    return fig


# Chapters 1 ("Features") and 2 ("Privileged bases"): read-back errors and neuron responses.


def readback_histogram(
    errors, ax=None, *, predicted_std=None, span=None, bins: int = 61, color="C0", label=None,
    title: str = "",
):
    """Histogram (density, log scale) of read-back errors, with the predicted Gaussian if given.

    Errors beyond +-`span` are piled into the outermost bins, so no mass silently disappears.
    """
    e = _np(errors).ravel()
    fig, ax = _axes(ax, (3.2, 2.4))
    scale = predicted_std if predicted_std else (e.std() if e.size else 1.0)
    span = span or max(4 * scale, 1e-3)
    edges = np.linspace(-span, span, bins)
    ax.hist(np.clip(e, -span, span), bins=edges, density=True, color=color, alpha=0.7, label=label)
    if predicted_std:
        g = np.linspace(-span, span, 200)
        pdf = np.exp(-0.5 * (g / predicted_std) ** 2) / (predicted_std * np.sqrt(2 * np.pi))
        ax.plot(g, pdf, color="k", lw=1, label="predicted Gaussian")
    ax.set_yscale("log")
    ax.set_xlabel("read-back error", fontsize=8)
    ax.tick_params(labelsize=7)
    if title:
        ax.set_title(title, fontsize=9)
    return fig


def neuron_responses(R, ax=None, *, title: str = "", ymax: float | None = None):
    """Grouped bars of a (neurons, features) table: how strongly each neuron fires per feature."""
    R = _np(R)
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
    ax.tick_params(labelsize=7)
    ax.legend(fontsize=7, frameon=False)
    if title:
        ax.set_title(title, fontsize=9)
    return fig


def response_matrix(R, ax=None, *, title: str = "", xlabel: str = "feature", ylabel: str = "unit"):
    """Heatmap of |R| for a (units, features) table: one bright cell per row is monosemantic."""
    R = np.abs(_np(R))
    fig, ax = _axes(ax, (2.6, 2.6))
    ax.imshow(R, cmap="Greys", vmin=0, vmax=max(float(R.max()), 1e-12))
    ax.set(xticks=[], yticks=[])
    ax.set_xlabel(xlabel, fontsize=8)
    ax.set_ylabel(ylabel, fontsize=8)
    if title:
        ax.set_title(title, fontsize=9)
    return fig
