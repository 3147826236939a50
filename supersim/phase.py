"""Phase diagrams of superposition, after Elhage et al. (2022), "Toy Models of Superposition".

A model with one hidden dimension too few (n = 2 features in m = 1 dimension, or n = 3 in
m = 2) must decide what to do with an *extra* feature of importance r (the others have 1) when
every feature is active with probability d = 1 - S (the chapters call it the density): ignore
it, give it a dimension of its own (at the expense of the other features), or store it in
superposition. As everywhere in the package, that probability is called `feature_probability`
(`feature_probabilities` for the values along a sweep). This module

- gives the closed-form losses of three hand-built solutions and the phase boundaries they
  imply: for n = 2, m = 1 those of Wattenberg's notebook that accompanies the paper, and the
  same reasoning carried over to n = 3, m = 2;
- lays an (importance, feature probability, restart) grid out as instances of one batched
  model, trains it (`train_phase_diagram`), keeps the best restart per cell and classifies
  what the extra feature got.

Taught in chapter 4, on its page "The geometry of superposition and phase changes".

Shapes: B = batch, I = instances, F = features, H = hidden; R importances and P feature
probabilities along the axes of a phase diagram.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch

from . import _util
from .metrics import REPRESENTED_NORM, superposition
from .models import ToyModel
from .training import stratified_loss, train

__all__ = [
    "PHASES",
    "TRIPLE_POINT",
    "closed_form_losses",
    "closed_form_phase",
    "superposition_window",
    "hand_built",
    "grid_instances",
    "classify",
    "PhaseDiagram",
    "train_phase_diagram",
    "away_from_boundary",
    "agreement",
]

PHASES = ("ignored", "superposed", "dedicated")  # what the extra feature gets; index = class
# (feature probability, importance) where the three phases meet (both models)
TRIPLE_POINT = (4 / 7, 1.0)


def _probability(p, name: str = "feature_probability", max_dim: int | None = None) -> torch.Tensor:
    """Feature probabilities in (0, 1], as float64 (a sweep's axis when max_dim=1)."""
    return _util.float_tensor(
        p, name, min_dim=0, max_dim=max_dim, low=0, high=1, low_open=True, dtype=torch.float64
    )


def _importance(importance, name: str = "importance", max_dim: int | None = None) -> torch.Tensor:
    """Importances > 0, as float64 (a sweep's axis when max_dim=1)."""
    return _util.float_tensor(
        importance, name, min_dim=0, max_dim=max_dim, low=0, low_open=True, dtype=torch.float64
    )


def _axes(importances, feature_probabilities) -> tuple[torch.Tensor, torch.Tensor]:
    """A grid's axes: importances (R,) and feature probabilities (P,), float64."""
    r = _importance(importances, "importances", max_dim=1).reshape(-1)
    return r, _probability(feature_probabilities, "feature_probabilities", max_dim=1).reshape(-1)


def _n_features(n_features) -> int:
    n_features = _util.integer(n_features, "n_features")
    if n_features not in (2, 3):
        raise ValueError(f"n_features must be 2 (m = 1) or 3 (m = 2), got {n_features!r}")
    return n_features


def closed_form_losses(
    feature_probability: float | torch.Tensor | np.ndarray,
    importance: float | torch.Tensor | np.ndarray,
    n_features: int = 2,
) -> torch.Tensor:
    """Expected loss E sum_i I_i (x_i - x'_i)^2 of hand-built solutions.

    Returns (..., 3), the losses in `PHASES` order. The extra (last) feature has
    `importance` r, the others 1; every feature is active with probability
    d = `feature_probability` (1 - S), the two broadcast against each other, and
    is U[0, 1] when active. A dropped feature costs its variance v = d/3 - d^2/4 (a bias
    outputs its mean d/2), and two features sharing a line as an antipodal pair lose
    E[min(x_i, x_j)^2] = 1/6 (times their importances) when both are active, so:

    - n = 2, m = 1 (Wattenberg's closed forms): ignored r v; superposed (W = [1, -1])
      (1 + r) d^2 / 6; dedicated (W = [0, 1], feature 0 dropped) v.
    - n = 3, m = 2: ignored (features 0, 1 on the two axes) r v; superposed (the extra
      feature antipodal to feature 0, feature 1 on the other axis) (1 + r) d^2 / 6;
      dedicated (the extra feature on an axis of its own, features 0 and 1 as an
      antipodal pair on the other, or feature 1 dropped when that is cheaper)
      min(d^2 / 3, v).
    """
    n_features = _n_features(n_features)
    d, r = _probability(feature_probability), _importance(importance)
    try:
        d, r = torch.broadcast_tensors(d, r)
    except RuntimeError:
        shapes = f"{tuple(d.shape)} and {tuple(r.shape)}"
        raise ValueError(
            f"feature_probability and importance must broadcast, got shapes {shapes}"
        ) from None
    v = d / 3 - d**2 / 4
    dedicated = v if n_features == 2 else torch.minimum(d**2 / 3, v)
    return torch.stack([r * v, (1 + r) * d**2 / 6, dedicated], dim=-1)


def closed_form_phase(
    feature_probability: float | torch.Tensor | np.ndarray,
    importance: float | torch.Tensor | np.ndarray,
    n_features: int = 2,
) -> torch.Tensor:
    """Index into `PHASES` of the cheapest hand-built solution (int tensor, broadcast shape)."""
    return closed_form_losses(feature_probability, importance, n_features).argmin(dim=-1)


def superposition_window(
    feature_probability: float | torch.Tensor | np.ndarray, n_features: int = 2
) -> tuple[torch.Tensor, torch.Tensor]:
    """(low, high): superposition is the cheapest hand-built solution iff low < r < high.

    low = 2d / (4 - 5d) for both models (infinite for d >= 4/5, where superposition never
    wins); high = 2/d - 5/2 for n = 2, m = 1 and 1 for n = 3, m = 2 (below d = 4/7). Both
    windows close at the triple point d = 4/7, r = 1 (d is `feature_probability`).
    """
    n_features = _n_features(n_features)
    d = _probability(feature_probability)
    low = torch.where(d < 0.8, 2 * d / (4 - 5 * d).clamp_min(1e-12), torch.full_like(d, float("inf")))
    high = 2 / d - 2.5 if n_features == 2 else torch.where(d <= 4 / 7, 1.0, 2 / d - 2.5)
    return low, high


def hand_built(
    phase: str, feature_probability: float, n_features: int = 2
) -> tuple[torch.Tensor, torch.Tensor]:
    """The hand-built solution `phase` at `feature_probability` as (W (m, n), b (n,)), m = n - 1."""
    n_features = _n_features(n_features)
    if phase not in PHASES:
        raise ValueError(f"phase must be one of {PHASES}, got {phase!r}")
    d = _util.number(feature_probability, "feature_probability", low=0, high=1, low_open=True)
    # a dropped feature is best replaced by its mean, d/2, which a bias can output
    if n_features == 2:
        W = {"ignored": [[1.0, 0.0]], "superposed": [[1.0, -1.0]], "dedicated": [[0.0, 1.0]]}[phase]
        b = {"ignored": [0.0, d / 2], "superposed": [0.0, 0.0], "dedicated": [d / 2, 0.0]}[phase]
        return torch.tensor(W), torch.tensor(b)
    pair = d**2 / 3 <= d / 3 - d**2 / 4  # dedicated: pair features 0 and 1, or drop feature 1
    W = {
        "ignored": [[1.0, 0.0, 0.0], [0.0, 1.0, 0.0]],
        "superposed": [[1.0, 0.0, -1.0], [0.0, 1.0, 0.0]],
        "dedicated": [[1.0, -1.0 if pair else 0.0, 0.0], [0.0, 0.0, 1.0]],
    }[phase]
    b = [0.0, 0.0, 0.0]
    if phase == "ignored":
        b[2] = d / 2
    elif phase == "dedicated" and not pair:
        b[1] = d / 2
    return torch.tensor(W), torch.tensor(b)


def grid_instances(
    importances: Sequence[float] | torch.Tensor | np.ndarray,
    feature_probabilities: Sequence[float] | torch.Tensor | np.ndarray,
    n_features: int,
    n_restarts: int = 1,
) -> tuple[torch.Tensor, torch.Tensor]:
    """(feature_probability, importance), both (instances, features), for a phase-diagram grid.

    Instances are laid out (importance, feature probability, restart), restarts innermost; the
    last feature is the extra one with importance r, the others have importance 1; every
    feature of an instance has that cell's feature probability.
    """
    n_features = _util.integer(n_features, "n_features", low=2)  # the extra one and another
    n_restarts = _util.size(n_restarts, "n_restarts")
    r, d = (t.float() for t in _axes(importances, feature_probabilities))
    R, D = torch.meshgrid(r, d, indexing="ij")  # (importance, feature probability)
    R = R.reshape(-1).repeat_interleave(n_restarts)  # (instances,)
    D = D.reshape(-1).repeat_interleave(n_restarts)
    probability = D[:, None].expand(-1, n_features).contiguous()  # (I, F)
    importance = torch.ones(len(R), n_features)
    importance[:, -1] = R
    return probability, importance


def classify(
    W: torch.Tensor | np.ndarray, *, norm_threshold: float = REPRESENTED_NORM,
    overlap_threshold: float = 0.25,
) -> torch.Tensor:
    """Index into `PHASES` of what the last (extra) feature got, per instance of W (I, H, F).

    Ignored: ||W_extra|| < `norm_threshold` (by default `metrics.REPRESENTED_NORM`, the norm
    above which every module counts a feature as represented). Otherwise superposed when the other features'
    squared projections onto its direction sum to more than `overlap_threshold`
    (`metrics.superposition`), dedicated when they do not.
    """
    norm_threshold = _util.number(norm_threshold, "norm_threshold", low=0, low_open=True)
    overlap_threshold = _util.number(overlap_threshold, "overlap_threshold", low=0, low_open=True)
    W, _ = _util.batched(W, "W", "(hidden, features)")
    if W.shape[-1] < 2:
        raise ValueError(f"W must have at least 2 features (the last is the extra one), got {tuple(W.shape)}")
    norm = W.norm(dim=1)[:, -1]  # (I,)
    shared = superposition(W)[:, -1]  # (I,)
    phase = torch.where(shared > overlap_threshold, 1, 2)
    return torch.where(norm < norm_threshold, 0, phase)


@dataclass(repr=False)
class PhaseDiagram:
    """A trained phase-diagram grid: one best-of-restarts model per (importance, feature
    probability) cell.

    `W` and `b` are the kept restart's weights and output bias: enough to rebuild each kept
    model and score it again, e.g. with more samples (chapter 4's page on phase changes does).
    """

    importances: torch.Tensor  # (R,)
    feature_probabilities: torch.Tensor  # (P,)
    phase: torch.Tensor  # (R, P) index into PHASES
    loss: torch.Tensor  # (R, P) stratified loss of the kept restart (mean over features)
    W: torch.Tensor  # (R, P, H, F) weights of the kept restart
    b: torch.Tensor  # (R, P, F) output bias of the kept restart, to rebuild or re-score it
    all_phases: torch.Tensor  # (R, P, restarts) the class every restart reached

    def __repr__(self) -> str:
        # the grid in a line or two: its axes, the model's shape and how many cells each phase
        # won, instead of printing every tensor
        R, P, H, F = self.W.shape
        counts = torch.bincount(self.phase.flatten(), minlength=len(PHASES)).tolist()
        phases = ", ".join(f"{n} {name}" for name, n in zip(PHASES, counts, strict=True))
        return (
            f"PhaseDiagram({R} importances x {P} feature_probabilities, n={F}, m={H}, "
            f"{self.all_phases.shape[-1]} restarts per cell; cells: {phases})"
        )


def train_phase_diagram(
    n_features: int,
    d_hidden: int,
    importances: Sequence[float] | torch.Tensor | np.ndarray,
    feature_probabilities: Sequence[float] | torch.Tensor | np.ndarray,
    *,
    n_restarts: int = 3,
    steps: int = 2_000,
    lr: float = 1e-2,
    batch_size: int = 1024,
    seed: int = 0,
    progress: bool | None = None,
) -> PhaseDiagram:
    """Train every (importance, feature probability, restart) of the grid as one model; keep the
    best restart of each cell (draw the result with `plot.phase_diagram`).

    Restarts are compared by `stratified_loss`, which ranks them reliably even at feature
    probabilities where two active features almost never meet in a training batch.
    """
    p, imp = grid_instances(importances, feature_probabilities, n_features, n_restarts)
    r, d = (t.float() for t in _axes(importances, feature_probabilities))
    d_hidden = _util.size(d_hidden, "d_hidden")
    model = ToyModel(n_features, d_hidden, n_instances=len(p), seed=seed)
    train(
        model, feature_probability=p, importance=imp, steps=steps, lr=lr,
        batch_size=batch_size, schedule="cosine", seed=seed, progress=progress,
    )
    loss = stratified_loss(model, p, imp, seed=seed).view(len(r), len(d), n_restarts)
    best = loss.argmin(-1)  # (R, P)
    W = model.W.detach().cpu().view(len(r), len(d), n_restarts, d_hidden, n_features)
    all_phases = classify(W.flatten(0, 2)).view(len(r), len(d), n_restarts)
    pick = best[..., None]
    W_best = W.gather(2, pick[..., None, None].expand(-1, -1, 1, d_hidden, n_features)).squeeze(2)
    b = model.b.detach().cpu().view(len(r), len(d), n_restarts, n_features)
    b_best = b.gather(2, pick[..., None].expand(-1, -1, 1, n_features)).squeeze(2)
    return PhaseDiagram(
        importances=r, feature_probabilities=d, phase=all_phases.gather(2, pick).squeeze(2),
        loss=loss.gather(2, pick).squeeze(2), W=W_best, b=b_best, all_phases=all_phases,
    )


def away_from_boundary(
    importances: Sequence[float] | torch.Tensor | np.ndarray,
    feature_probabilities: Sequence[float] | torch.Tensor | np.ndarray,
    margin: int = 1,
    n_features: int = 2,
) -> torch.Tensor:
    """(R, P) mask of grid cells whose closed-form phase every neighbour within `margin` shares."""
    margin = _util.size(margin, "margin")
    r, d = _axes(importances, feature_probabilities)
    phase = closed_form_phase(d[None, :], r[:, None], n_features)  # (R, P)
    keep = torch.ones_like(phase, dtype=torch.bool)
    nR, nP = phase.shape
    for a in range(-margin, margin + 1):
        for b in range(-margin, margin + 1):
            # compare each cell with its neighbour (i + a, j + b) where that neighbour exists
            i0, i1 = max(0, -a), nR - max(0, a)
            j0, j1 = max(0, -b), nP - max(0, b)
            if i0 >= i1 or j0 >= j1:
                continue  # a margin wider than the grid: no such neighbour anywhere
            same = phase[i0 + a : i1 + a, j0 + b : j1 + b] == phase[i0:i1, j0:j1]
            keep[i0:i1, j0:j1] &= same
    return keep


def agreement(
    phase: torch.Tensor | np.ndarray,
    importances: Sequence[float] | torch.Tensor | np.ndarray,
    feature_probabilities: Sequence[float] | torch.Tensor | np.ndarray,
    margin: int = 1,
    n_features: int = 2,
) -> tuple[float, torch.Tensor]:
    """Share of the cells away from the closed-form boundaries whose phase matches it, and the
    (R, P) mask of those cells."""
    r, d = _axes(importances, feature_probabilities)
    phase = _util.index_tensor(phase, "phase", high=len(PHASES) - 1, shape="an (R, P) grid of PHASES indices")
    if tuple(phase.shape) != (len(r), len(d)):
        raise ValueError(
            f"phase must be (importances, feature_probabilities) = ({len(r)}, {len(d)}), "
            f"got {tuple(phase.shape)}"
        )
    mask = away_from_boundary(r, d, margin, n_features)
    if not bool(mask.any()):
        raise ValueError(
            f"margin={margin} leaves no cell away from the boundaries of this grid, so there is "
            "nothing to compare: use a smaller margin or a finer grid"
        )
    closed = closed_form_phase(d[None, :], r[:, None], n_features)
    return float((phase == closed)[mask].float().mean()), mask
