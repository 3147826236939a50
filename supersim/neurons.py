"""Reading a model neuron by neuron, after Elhage et al. (2022), "Toy Models of Superposition".

With a ReLU on the hidden layer the neurons are a privileged basis, so each row of the input
weights W1 (one neuron's weights over the features) can be read on its own. A neuron is
**monosemantic** when one feature carries nearly all of its input weight and **polysemantic**
when several features carry sizeable shares; the feature with the largest share is its
**primary** feature, the others with sizeable shares its **secondary** features. The measure
of polysemanticity is the effective number of features, 1 / sum_i s_ki^2, over the shares
s_ki of the squared input weight.

Chapter 5 measures trained models against the best model without superposition: one
positive-side and one negative-side neuron, abs(x) = ReLU(x) + ReLU(-x), for each of the m/2
features that cost most when dropped, and a constant output for the others
(`no_superposition_model`, whose expected loss `no_superposition_loss` gives in closed form),
and counts the features a model computes on each side of zero (`computed_sides`).

Taught in chapter 5 ("Computing absolute value in superposition").

All functions take W1 as (instances, neurons, features) (or (neurons, features), giving results
without the instances axis) and W2 as (instances, features, neurons), torch tensors or numpy
arrays, the layout of `supersim.AbsModel`.
"""

from __future__ import annotations

import numpy as np
import torch

from . import _util
from .data import per_instance_feature
from .models import AbsModel

__all__ = [
    "neuron_norms",
    "neuron_shares",
    "neuron_polysemanticity",
    "sizeable_features",
    "primary_feature",
    "sort_neurons",
    "sign_pair_neurons",
    "asymmetric_motifs",
    "no_superposition_loss",
    "no_superposition_model",
    "computed_sides",
]

_EPS = 1e-12


def _as_w1(W1) -> tuple[torch.Tensor, bool]:
    return _util.batched(W1, "W1", "(neurons, features)")


def _fraction(value, name: str) -> float:
    return _util.number(value, name, low=0, high=1, low_open=True)


def _squeeze(t: torch.Tensor, sq: bool) -> torch.Tensor:
    return t.squeeze(0) if sq else t


def neuron_norms(W1: torch.Tensor | np.ndarray) -> torch.Tensor:
    """||W1_k||, the length of each neuron's input weights: (instances, neurons)."""
    W1, sq = _as_w1(W1)
    return _squeeze(W1.norm(dim=-1).float(), sq)


def neuron_shares(W1: torch.Tensor | np.ndarray) -> torch.Tensor:
    """Share of neuron k's squared input weight that feature i carries.

    W1[k,i]^2 / ||W1_k||^2, (instances, neurons, features); each neuron's shares
    sum to 1 (0 for an all-zero neuron).
    """
    W1, sq = _as_w1(W1)
    w2 = W1.square()
    total = w2.sum(-1, keepdim=True)  # (I, H, 1)
    shares = torch.where(total > _EPS, w2 / total.clamp_min(_EPS), torch.zeros_like(w2))
    return _squeeze(shares.float(), sq)


def neuron_polysemanticity(W1: torch.Tensor | np.ndarray) -> torch.Tensor:
    """The effective number of features in a neuron's input weights, 1 / sum_i s_ki^2.

    s_ki is feature i's share of neuron k's squared input weight (`neuron_shares`). It
    is 1 for a neuron with one feature, 2 for two equal features, n for n equal ones; in
    between for unequal shares. 0 for an all-zero neuron. Returns (instances, neurons).
    """
    W1, sq = _as_w1(W1)
    s = neuron_shares(W1).double()
    total = s.square().sum(-1)  # (I, H)
    n_eff = torch.where(total > 0, 1 / total.clamp_min(_EPS), torch.zeros_like(total))
    return _squeeze(n_eff.float(), sq)


def sizeable_features(W1: torch.Tensor | np.ndarray, threshold: float = 0.1) -> torch.Tensor:
    """How many features carry at least `threshold` of each neuron's squared input weight.

    A neuron's primary feature plus its sizeable secondary ones; an int tensor
    (instances, neurons).
    """
    threshold = _fraction(threshold, "threshold")
    W1, sq = _as_w1(W1)
    return _squeeze((neuron_shares(W1) >= threshold).sum(-1), sq)


def primary_feature(W1: torch.Tensor | np.ndarray) -> tuple[torch.Tensor, torch.Tensor]:
    """Each neuron's primary feature (largest absolute weight) and that weight's sign (+1 or -1).

    Two (instances, neurons) tensors: the feature index (int) and the sign (float).
    """
    W1, sq = _as_w1(W1)
    index = W1.abs().argmax(-1)  # (I, H)
    sign = torch.sign(W1.gather(-1, index.unsqueeze(-1)).squeeze(-1)).float()
    return _squeeze(index, sq), _squeeze(sign, sq)


def sort_neurons(
    W1: torch.Tensor | np.ndarray, importance: torch.Tensor | np.ndarray | None = None
) -> torch.Tensor:
    """Neuron order, most important primary feature first: (instances, neurons) indices.

    Ties (neurons sharing a primary feature) go by the primary feature's share, largest first.
    Without `importance`, feature 0 counts as the most important, as with `importance_decay`.
    """
    W1, sq = _as_w1(W1)
    n_features = W1.shape[-1]
    imp = (
        -torch.arange(n_features, dtype=torch.float64)
        if importance is None
        else _util.float_tensor(importance, "importance", min_dim=0, dtype=torch.float64).reshape(-1)
    )
    if imp.numel() != n_features:
        raise ValueError(
            f"importance must give one value per feature ({n_features}), got {imp.numel()}"
        )
    index, _ = primary_feature(W1)
    top_share = neuron_shares(W1).amax(-1).double()  # (I, H) in [0, 1]
    # rank by importance, then by share: importances differ by far more than a share can add
    rank = torch.argsort(torch.argsort(imp, descending=True))  # 0 = most important feature
    key = rank[index].double() - top_share / 2
    order = torch.argsort(key, dim=-1, stable=True)
    return _squeeze(order, sq)


def _as_w2(W2, W1: torch.Tensor) -> torch.Tensor:
    """W2 as float64 (instances, features, neurons), checked against the batched W1 (I, H, F)."""
    W2 = _util.float_tensor(W2, "W2", min_dim=2, max_dim=3, dtype=torch.float64)
    if W2.dim() == 2:
        W2 = W2.unsqueeze(0)
    if W2.shape != W1.transpose(1, 2).shape:
        raise ValueError(
            f"W2 must be (instances, features, neurons) = {tuple(W1.transpose(1, 2).shape)}, "
            f"got {tuple(W2.shape)}"
        )
    return W2


def sign_pair_neurons(
    W1: torch.Tensor | np.ndarray, W2: torch.Tensor | np.ndarray, threshold: float = 0.9
) -> torch.Tensor:
    """For each feature, the numbers of positive-side and negative-side neurons computing abs(x_i).

    A positive-side neuron of feature i gives at least `threshold` of its squared input weight
    to i with W1[k, i] > 0 and reads back into output i with W2[i, k] > 0; a negative side
    the same with W1[k, i] < 0. Returns (instances, features, 2): the counts of positive-side
    and negative-side neurons per feature. One of each is the textbook abs(x) = ReLU(x) + ReLU(-x).
    """
    threshold = _fraction(threshold, "threshold")
    W1, sq = _as_w1(W1)
    W2 = _as_w2(W2, W1)
    mono = neuron_shares(W1).double() >= threshold  # (I, H, F)
    reads = W2.transpose(1, 2) > 0  # (I, H, F): neuron k feeds output i positively
    pos = (mono & reads & (W1 > 0)).sum(1)  # (I, F)
    neg = (mono & reads & (W1 < 0)).sum(1)
    return _squeeze(torch.stack([pos, neg], dim=-1), sq)


def asymmetric_motifs(
    W1: torch.Tensor | np.ndarray,
    W2: torch.Tensor | np.ndarray,
    *,
    ratio: float = 3.0,
    min_share: float = 0.02,
    min_gain: float = 0.25,
    min_inhibition: float = 0.5,
) -> list[tuple[int, int, int, int, int]]:
    """Find the asymmetric superposition motif: a neuron shared unequally, plus an inhibitor.

    Neuron k holds a strong feature a and a weak feature b (abs(W1[k,a]) >= ratio abs(W1[k,b]), both
    with at least `min_share` of its squared weight) and reads out the reverse way round
    (W2[b,k] >= ratio W2[a,k] > 0), so b comes back through k with a gain W2[b,k] abs(W1[k,b]) of
    at least `min_gain`, while a alone would leak W2[b,k] W1[k,a] into output b. The motif is
    complete when another neuron j, driven by a with the same sign, inhibits output b by at
    least `min_inhibition` of that leak.

    Returns (instance, k, a, b, j) tuples.
    """
    ratio = _util.number(ratio, "ratio", low=1)
    min_inhibition = _util.number(min_inhibition, "min_inhibition", low=0, low_open=True)
    min_share = _fraction(min_share, "min_share")
    min_gain = _util.number(min_gain, "min_gain", low=0)
    W1, _ = _as_w1(W1)
    W2 = _as_w2(W2, W1)
    shares = neuron_shares(W1).double()
    found = []
    for inst in range(W1.shape[0]):
        w1, w2 = W1[inst], W2[inst]  # (H, F), (F, H)
        for k in range(w1.shape[0]):
            sizeable = (shares[inst, k] >= min_share).nonzero().flatten().tolist()
            for a in sizeable:
                for b in sizeable:
                    big, small = w1[k, a].abs(), w1[k, b].abs()
                    if a == b or big < ratio * small:
                        continue
                    if w2[a, k] <= 0 or w2[b, k] < ratio * w2[a, k] or w2[b, k] * small < min_gain:
                        continue
                    leak = w2[b, k] * big  # output b's pre-activation per unit of a
                    # other neurons that a drives (same sign as on k) and that push output b down
                    drive = (w1[:, a] * torch.sign(w1[k, a])).clamp_min(0)  # (H,)
                    inhib = -(w2[b] * drive)  # (H,)
                    inhib[k] = 0
                    j = int(inhib.argmax())
                    if inhib[j] >= min_inhibition * leak:
                        found.append((inst, k, a, b, j))
    return found


def _dropped_costs(n_features, feature_probability, importance) -> torch.Tensor:
    """(I, F) float64: what dropping each feature costs, I_i (p_i / 3 - p_i^2 / 4).

    A dropped feature's output is best held at E|x_i| = p_i / 2 (x_i is 0 with probability
    1 - p_i, else U[-1, 1]); its squared error is then E[x_i^2] - (E|x_i|)^2.
    """
    n_features = _util.size(n_features, "n_features")
    values = {"feature_probability": feature_probability, "importance": importance}
    rows = [_util.as_tensor(v, k) for k, v in values.items()]
    n_instances = max((t.shape[0] for t in rows if t.dim() == 2), default=1)
    p, imp = (
        per_instance_feature(t, n_instances, n_features, name=k, high=1.0 if k[0] == "f" else np.inf)
        for t, k in zip(rows, values, strict=True)
    )
    p = p.double()
    return imp.double() * (p / 3 - p.square() / 4)


def _served(costs: torch.Tensor, d_hidden: int) -> torch.Tensor:
    """(I, F) bool: the d_hidden // 2 features that cost most when dropped (ties: lower index)."""
    order = torch.argsort(-costs, dim=-1, stable=True)[:, : d_hidden // 2]
    return torch.zeros_like(costs, dtype=torch.bool).scatter_(1, order, True)


def no_superposition_loss(
    n_features: int,
    d_hidden: int,
    feature_probability: float | torch.Tensor | np.ndarray,
    importance: float | torch.Tensor | np.ndarray = 1.0,
) -> torch.Tensor:
    """The expected loss of `no_superposition_model`, in closed form: (instances,).

    The served features come out exactly; each dropped one costs I_i (p_i / 3 - p_i^2 / 4),
    and like `training.reconstruction_loss` the loss is the mean over the features:
    (1 / n) * sum over dropped i of I_i (p_i / 3 - p_i^2 / 4). `feature_probability` and
    `importance` broadcast to (instances, features), as in `train`.
    """
    d_hidden = _util.size(d_hidden, "d_hidden")
    costs = _dropped_costs(n_features, feature_probability, importance)
    dropped = ~_served(costs, d_hidden)
    return (costs * dropped).sum(-1).div(costs.shape[-1]).float()


def no_superposition_model(
    n_features: int,
    d_hidden: int,
    feature_probability: float | torch.Tensor | np.ndarray,
    importance: float | torch.Tensor | np.ndarray = 1.0,
) -> AbsModel:
    """The best `AbsModel` that uses no superposition, built by hand.

    One pair of neurons per served feature, abs(x_i) = ReLU(x_i) + ReLU(-x_i), for the
    d_hidden // 2 features that cost most when dropped (the most important ones, when all
    share one probability); every other output is the constant E|x_i| = p_i / 2 (its bias),
    the best guess for a feature no neuron listens to. An odd last neuron stays unused.
    One instance per row of `feature_probability` and `importance` (broadcast as in
    `train`); its loss is `no_superposition_loss`.
    """
    d_hidden = _util.size(d_hidden, "d_hidden")
    costs = _dropped_costs(n_features, feature_probability, importance)
    p = per_instance_feature(feature_probability, *costs.shape, name="feature_probability")
    served = _served(costs, d_hidden)
    model = AbsModel(n_features, d_hidden, n_instances=costs.shape[0])
    with torch.no_grad():
        model.W1.zero_()
        model.W2.zero_()
        for inst, row in enumerate(served):
            for j, f in enumerate(row.nonzero().flatten().tolist()):
                model.W1[inst, 2 * j, f], model.W1[inst, 2 * j + 1, f] = 1.0, -1.0
                model.W2[inst, f, 2 * j : 2 * j + 2] = 1.0
        model.b.copy_(torch.where(served, 0.0, p / 2))
    return model


@torch.no_grad()
def computed_sides(
    model: AbsModel,
    importance: float | torch.Tensor | np.ndarray | None = None,
    *,
    n_values: int = 41,
    tolerance: float = 0.1 / 12,
) -> torch.Tensor:
    """Which sides of each feature `model` computes, from inputs with it alone on.

    Feature i alone takes `n_values` values from -1 to 1; output i's squared error
    against abs(x_i), averaged over the positive values and over the negative ones,
    must stay below `tolerance` for the side to count (default a tenth of 1/12:
    1/12 is the error of the constant 1/2 on either side, and of the best map of
    x_i that skips the hidden ReLU). With `importance` (broadcast to (instances,
    features)), the side must also keep its leak below `tolerance`: how far it moves
    the other outputs from their values at x = 0, as the importance-weighted squared
    change sum_j I_j (y'_j(x) - y'_j(0))^2 over j != i, in units of I_i, averaged
    over the side's values. Without it only output i is checked.
    Returns (instances, features, 2) bool: [positive, negative] side.
    """
    model = _util.model_of(model, cls=AbsModel)
    n_values = _util.integer(n_values, "n_values", low=3)
    tolerance = _util.number(tolerance, "tolerance", low=0, low_open=True)
    n_inst, n_feat = model.n_instances, model.n_features
    if importance is not None:  # (I, F), every weight > 0: the leak is in units of I_i
        importance = per_instance_feature(
            importance, n_inst, n_feat, name="importance", low_inclusive=False
        )
    t = torch.linspace(-1, 1, n_values)  # the values of the one active feature
    errors = torch.empty(n_values, n_inst, n_feat)
    leaks = torch.zeros(n_values, n_inst, n_feat)
    eye = torch.eye(n_feat).unsqueeze(1).expand(n_feat, n_inst, n_feat)  # (on, I, F)
    at_zero = model(torch.zeros(1, n_inst, n_feat)).cpu()  # (1, I, F)
    for v, value in enumerate(t.tolist()):
        out = model(eye * value).cpu()  # (feature on, I, F)
        own = out.diagonal(dim1=0, dim2=2)  # (I, F): output i when i alone is on
        errors[v] = (own - abs(value)).square()
        if importance is not None:  # how far the other outputs move
            moved = (out - at_zero).square() * importance  # (on, I, F)
            moved.diagonal(dim1=0, dim2=2).zero_()  # output i itself is not a leak
            leaks[v] = moved.sum(-1).T / importance  # (I, on)
    sides = []
    for side in (t > 0, t < 0):  # the positive side, then the negative one
        sides.append(
            (errors[side].mean(0) < tolerance) & (leaks[side].mean(0) < tolerance)
        )
    return torch.stack(sides, dim=-1)
