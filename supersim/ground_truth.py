"""Activations built from known features, and scores of a dictionary against them.

Every published comparison of sparse autoencoder variants is made on real models, where the
true features are unknown. Here they are known: a `GroundTruth` holds one unit direction per
true feature and a rule that draws the features' sparse values, and its activations are
h = sum_i x_i d_i, as in chapter 6 (Sharkey et al. 2022). Four rules, each a different
difficulty for a dictionary:

- `independent_features`: every feature fires on its own, as in chapter 6;
- `hierarchical_features`: parents and their children; a parent is active whenever one of its
  children is, and the children of a parent exclude each other, so that a dictionary can
  *absorb* the parent into its children's latents (Chanin et al. 2024);
- `correlated_features`: sets of features that fire together, and sets in which at most one
  fires (chapter 4's page "Non-uniform superposition and the privileged basis");
- `unequal_features`: features of very different frequency and size, so that a dictionary too
  small for all of them must choose.

And what the chapter measures beyond `sparse_coding.mmcs`: `absorption` (how often a parent's
latent is silent because a child's latent took over), `parent_share` (how much of the parent's
direction a child's decoder row carries) and `matched_share` (how many of one dictionary's
latents another dictionary also has: splitting, and seed-to-seed disagreement).

Taught in chapter 10 ("Which sparse autoencoder finds the true features?").

Shapes: B = batch (samples), I = instances, D = d (the activations' dimension), N = true
features, S = latents. Directions are rows: (I, N, D).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import torch

from . import _util
from ._util import Array
from .data import per_instance_feature, sample_correlated_features
from .geometry import random_unit_vectors
from .sae import explained_variance, firing_rate
from .sparse_coding import fraction_recovered, mmcs

__all__ = [
    "GroundTruth",
    "independent_features",
    "hierarchical_features",
    "correlated_features",
    "unequal_features",
    "absorption",
    "parent_share",
    "matched_share",
    "latents_within",
    "absorbing_code",
    "score",
]


@dataclass
class GroundTruth:
    """Known features: unit directions (I, N, D) and a rule that draws their values.

    `codes(batch_size, generator)` returns non-negative values (B, I, N); `parent` (N,) names,
    for each feature, the feature that is active whenever it is (-1: none); `name` labels the
    rule in tables.
    """

    name: str
    directions: torch.Tensor
    codes: Callable[[int, torch.Generator], torch.Tensor]
    parent: torch.Tensor

    def __post_init__(self) -> None:
        _util.text(self.name, "name", empty=False)
        d = self.directions
        if not isinstance(d, torch.Tensor) or d.dim() != 3:
            got = tuple(d.shape) if isinstance(d, torch.Tensor) else type(d).__name__
            raise ValueError(f"directions must be an (instances, features, d) tensor, got {got}")
        if not callable(self.codes):
            raise ValueError(f"codes must be callable as codes(batch_size, generator), got {self.codes!r}")
        p = self.parent
        if not isinstance(p, torch.Tensor) or tuple(p.shape) != (d.shape[1],):
            got = tuple(p.shape) if isinstance(p, torch.Tensor) else type(p).__name__
            raise ValueError(f"parent must be a ({d.shape[1]},) tensor of feature indices, got {got}")

    @property
    def n_instances(self) -> int:
        return self.directions.shape[0]

    @property
    def n_features(self) -> int:
        return self.directions.shape[1]

    @property
    def parents(self) -> list[int]:
        """The features that are some feature's parent, in order."""
        return sorted({int(j) for j in self.parent.tolist() if j >= 0})

    def children(self, parent: int) -> list[int]:
        """The features whose parent is `parent`."""
        parent = _util.integer(parent, "parent", low=0, high=self.n_features - 1)
        return torch.nonzero(self.parent == parent).flatten().tolist()

    def select(self, index: int | list[int]) -> GroundTruth:
        """The same truth for some of its instances only: `index`, one or a list of them."""
        keep = [index] if not isinstance(index, (list, tuple)) else list(index)
        if not keep:
            raise ValueError("index must name at least one instance")
        keep = [_util.integer(i, "index", low=0, high=self.n_instances - 1) for i in keep]
        codes = self.codes

        def picked(batch_size: int, gen: torch.Generator) -> torch.Tensor:
            return codes(batch_size, gen)[:, keep]

        return GroundTruth(self.name, self.directions[keep], picked, self.parent)

    def sample(self, n_samples: int, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
        """(activations h = x D (B, I, D), codes x (B, I, N)) for `n_samples` fresh samples."""
        n_samples = _util.size(n_samples, "n_samples")
        x = self.codes(n_samples, _util.generator(seed))  # (B, I, N)
        return torch.einsum("bin,ind->bid", x, self.directions), x


def _directions(n_features: int, d: int, n_instances: int, seed: int) -> torch.Tensor:
    """N random unit directions in R^d per instance, (I, N, D), drawn from `seed`."""
    d = _util.size(d, "d")
    return random_unit_vectors(n_features, d, n_sets=n_instances, seed=seed)


def _no_parents(n: int) -> torch.Tensor:
    return torch.full((n,), -1, dtype=torch.long)


def independent_features(
    n_features: int, d: int, *, feature_probability: float, n_instances: int = 1, seed: int = 0
) -> GroundTruth:
    """N features that fire independently, each with `feature_probability`, U[0, 1] when active."""
    n_features, n = _util.size(n_features, "n_features"), _util.size(n_instances, "n_instances")
    p = _util.number(feature_probability, "feature_probability", low=0, high=1)
    dirs = _directions(n_features, d, n, seed)

    def codes(batch_size: int, gen: torch.Generator) -> torch.Tensor:
        u = torch.rand(batch_size, n, n_features, generator=gen)
        return torch.where(u < p, u / max(p, 1e-12), 0.0)  # active: u / p is U[0, 1)

    return GroundTruth("independent", dirs, codes, _no_parents(n_features))


def hierarchical_features(
    n_parents: int,
    n_children: int,
    d: int,
    *,
    parent_probability: float,
    child_probability: float,
    n_independent: int = 0,
    feature_probability: float = 0.0,
    n_instances: int = 1,
    seed: int = 0,
) -> GroundTruth:
    """Parents with `n_children` children each, then `n_independent` independent features.

    Each parent fires with `parent_probability`; when it fires, one of its children (chosen
    uniformly) fires with it with `child_probability`, otherwise the parent fires alone. So a
    parent is active whenever a child is, and two children of one parent never are. Every
    active feature is U[0, 1], independently. Features are laid out parents first, then the
    children parent by parent, then the independent ones (each with `feature_probability`).
    """
    n_parents, n_children = _util.size(n_parents, "n_parents"), _util.size(n_children, "n_children")
    n_independent = _util.integer(n_independent, "n_independent", low=0)
    n = _util.size(n_instances, "n_instances")
    p_parent = _util.number(parent_probability, "parent_probability", low=0, high=1)
    q = _util.number(child_probability, "child_probability", low=0, high=1)
    p = _util.number(feature_probability, "feature_probability", low=0, high=1)
    n_features = n_parents * (1 + n_children) + n_independent
    parent = _no_parents(n_features)
    parent[n_parents : n_parents * (1 + n_children)] = torch.arange(n_parents).repeat_interleave(n_children)

    def codes(batch_size: int, gen: torch.Generator) -> torch.Tensor:
        shape = (batch_size, n, n_parents)
        on = torch.rand(shape, generator=gen) < p_parent  # (B, I, P)
        # which child: one uniform draw u per parent; the child fires when u < q
        u = torch.rand(shape, generator=gen)
        child = torch.floor(u / max(q, 1e-12) * n_children).clamp_max(n_children - 1)
        child = torch.where(on & (u < q), child, -1.0)
        kids = child.unsqueeze(-1) == torch.arange(n_children)  # (B, I, P, C)
        extra = torch.rand(batch_size, n, n_independent, generator=gen) < p
        active = torch.cat([on, kids.flatten(-2), extra], dim=-1)  # (B, I, N)
        return torch.where(active, torch.rand(batch_size, n, n_features, generator=gen), 0.0)

    return GroundTruth("hierarchical", _directions(n_features, d, n, seed), codes, parent)


def correlated_features(
    n_correlated: int,
    n_anticorrelated: int,
    d: int,
    *,
    feature_probability: float,
    n_independent: int = 0,
    set_size: int = 2,
    n_instances: int = 1,
    seed: int = 0,
) -> GroundTruth:
    """Sets of features that fire together, sets in which at most one fires, then independent
    features, each feature with marginal `feature_probability` (`data.sample_correlated_features`)."""
    n = _util.size(n_instances, "n_instances")
    set_size = _util.size(set_size, "set_size")
    sets = {"n_correlated": n_correlated, "n_anticorrelated": n_anticorrelated,
            "n_independent": n_independent}
    sets = {k: _util.integer(v, k, low=0) for k, v in sets.items()}
    p = _util.number(feature_probability, "feature_probability", low=0,
                     high=1 / set_size if sets["n_anticorrelated"] else 1)
    n_features = set_size * (sets["n_correlated"] + sets["n_anticorrelated"]) + sets["n_independent"]
    if n_features == 0:
        raise ValueError("n_correlated, n_anticorrelated and n_independent are all 0: no features")

    def codes(batch_size: int, gen: torch.Generator) -> torch.Tensor:
        return sample_correlated_features(batch_size, p, n, set_size=set_size, generator=gen, **sets)

    return GroundTruth("correlated", _directions(n_features, d, n, seed), codes, _no_parents(n_features))


def unequal_features(
    n_features: int,
    d: int,
    *,
    feature_probability: float | Array,
    scale: float | Array = 1.0,
    n_instances: int = 1,
    seed: int = 0,
) -> GroundTruth:
    """Independent features of unequal frequency and size: feature i fires with probability
    `feature_probability[i]` and is then `scale[i]` x U[0, 1] (both a number or one per feature)."""
    n_features, n = _util.size(n_features, "n_features"), _util.size(n_instances, "n_instances")
    p = per_instance_feature(feature_probability, 1, n_features, name="feature_probability", high=1)
    s = per_instance_feature(scale, 1, n_features, name="scale", low=0, low_inclusive=False)

    def codes(batch_size: int, gen: torch.Generator) -> torch.Tensor:
        u = torch.rand(batch_size, n, n_features, generator=gen)
        return torch.where(u < p, s * u / p.clamp_min(1e-12), 0.0)

    return GroundTruth("unequal", _directions(n_features, d, n, seed), codes, _no_parents(n_features))


# ----------------------------------------------------------------------------------------------
# Scores against the truth, beyond MMCS


def _best_latents(decoder: torch.Tensor, directions: torch.Tensor) -> torch.Tensor:
    """For each true feature, the latent whose decoder row is most aligned with it: (I, N)."""
    cos = torch.nn.functional.normalize(directions, dim=-1) @ torch.nn.functional.normalize(
        decoder, dim=-1
    ).transpose(-1, -2)  # (I, N, S)
    return cos.argmax(-1)


def absorption(
    latents: Array, decoder: Array, codes: Array, truth: GroundTruth, *, samples: Array | None = None
) -> torch.Tensor:
    """How often a parent's latent is silent because one of its children is active, (I,).

    Each true feature's latent is the one whose decoder row (`decoder`, (I, S, D)) has the
    largest cosine with its direction. Over the samples where a parent is active, the parent's
    latent misses some occurrences when the parent is alone (a small value, say) and, if the
    dictionary absorbs the parent into its children, many more when a child is active too.
    The score is the second miss rate minus the first, pooled over the parents: 0 when a child
    changes nothing, 1 when the parent's latent fires whenever the parent is alone and never
    when a child is. `latents` (B, I, S) and `codes` (B, I, N) belong to the same samples;
    `samples`, a bool (B, I), counts only those (default: all).
    """
    a = _util.float_tensor(latents, "latents", min_dim=3, max_dim=3, shape="(batch, instances, latents)")
    x = _util.float_tensor(codes, "codes", min_dim=3, max_dim=3, shape="(batch, instances, features)")
    W = _util.float_tensor(decoder, "decoder", min_dim=3, max_dim=3, shape="(instances, latents, d)")
    if not isinstance(truth, GroundTruth) or not truth.parents:
        raise ValueError("truth must be a GroundTruth with parents (from hierarchical_features)")
    n, n_feat = truth.n_instances, truth.n_features
    if a.shape[0] != x.shape[0] or a.shape[1:] != (n, W.shape[1]) or x.shape[1:] != (n, n_feat) or (
        W.shape != (n, W.shape[1], truth.directions.shape[2])
    ):
        raise ValueError(
            f"latents (B, {n}, S), codes (B, {n}, {n_feat}) and decoder ({n}, S, d) must fit the truth "
            f"and each other, got {tuple(a.shape)}, {tuple(x.shape)} and {tuple(W.shape)}"
        )
    counted = torch.ones(x.shape[:2], dtype=torch.bool)
    if samples is not None:
        counted = _util.as_tensor(samples, "samples")
        if counted.dtype != torch.bool or counted.shape != x.shape[:2]:
            raise ValueError(f"samples must be a bool tensor of shape {tuple(x.shape[:2])}, "
                             f"got {counted.dtype} {tuple(counted.shape)}")
    best = _best_latents(W.detach(), truth.directions.to(W))  # (I, N)
    missed_with, with_child, missed_alone, alone = (torch.zeros(n) for _ in range(4))
    for p in truth.parents:
        kids = truth.children(p)
        on = (x[..., p] > 0) & counted  # (B, I)
        child_on = (x[..., kids] > 0).any(-1)  # (B, I)
        silent = torch.gather(a, 2, best[:, p].view(1, n, 1).expand(a.shape[0], n, 1))[..., 0] <= 0
        missed_with += (on & child_on & silent).sum(0)
        with_child += (on & child_on).sum(0)
        missed_alone += (on & ~child_on & silent).sum(0)
        alone += (on & ~child_on).sum(0)
    return missed_with / with_child.clamp_min(1) - missed_alone / alone.clamp_min(1)


def parent_share(decoder: Array, truth: GroundTruth) -> torch.Tensor:
    """How much of its parent's direction each child's latent carries: (I, children).

    Each child's latent is the one whose decoder row (`decoder`, (I, S, D)) is most aligned
    with the child's direction. Its row w is written as b_c d_child + b_p d_parent + rest (least
    squares), and the share is b_p / (abs(b_c) + abs(b_p)): 0 for a row along the child alone, 1/2
    for the child's and the parent's directions in equal parts. Children in the order of
    `truth.parent`.
    """
    W = _util.float_tensor(decoder, "decoder", min_dim=3, max_dim=3, shape="(instances, latents, d)")
    if not isinstance(truth, GroundTruth) or not truth.parents:
        raise ValueError("truth must be a GroundTruth with parents (from hierarchical_features)")
    dirs = truth.directions.to(W)
    if W.shape[0] != truth.n_instances or W.shape[2] != dirs.shape[2]:
        raise ValueError(
            f"decoder must be ({truth.n_instances}, latents, {dirs.shape[2]}), got {tuple(W.shape)}"
        )
    W = torch.nn.functional.normalize(W.detach(), dim=-1)
    best = _best_latents(W, dirs)  # (I, N)
    kids = torch.nonzero(truth.parent >= 0).flatten()
    rows = torch.gather(W, 1, best[:, kids].unsqueeze(-1).expand(-1, -1, W.shape[2]))  # (I, K, D)
    basis = torch.stack([dirs[:, kids], dirs[:, truth.parent[kids]]], dim=-1)  # (I, K, D, 2)
    coef = torch.linalg.lstsq(basis, rows.unsqueeze(-1)).solution[..., 0]  # (I, K, 2)
    return coef[..., 1] / coef.abs().sum(-1).clamp_min(1e-12)


def matched_share(
    learned: Array,
    reference: Array,
    threshold: float = 0.9,
    *,
    alive: Array | None = None,
    reference_alive: Array | None = None,
) -> torch.Tensor:
    """The share of `learned`'s rows that some row of `reference` matches with cosine above
    `threshold`, (...): how many of one dictionary's latents another one also has.

    Rows are (..., S, D) and (..., S', D) (leading axes broadcast, e.g. instances); `alive`
    (..., S) and `reference_alive` (..., S') leave out the latents that never fire.
    """
    threshold = _util.number(threshold, "threshold", low=-1, high=1)
    L = _util.float_tensor(learned, "learned", min_dim=2, shape="(..., latents, d)").detach()
    R = _util.float_tensor(reference, "reference", min_dim=2, shape="(..., latents, d)").detach()
    if L.shape[-1] != R.shape[-1]:
        raise ValueError(
            f"learned and reference must share the last axis (d), got {L.shape[-1]} and {R.shape[-1]}"
        )
    masks = []
    for name, mask, rows in (("alive", alive, L), ("reference_alive", reference_alive, R)):
        if mask is None:
            masks.append(torch.ones(rows.shape[:-1], dtype=torch.bool))
            continue
        mask = _util.as_tensor(mask, name)
        if mask.dtype != torch.bool or mask.shape != rows.shape[:-1]:
            raise ValueError(f"{name} must be a bool tensor of shape {tuple(rows.shape[:-1])}, "
                             f"got {mask.dtype} {tuple(mask.shape)}")
        masks.append(mask.cpu())
    keep, keep_ref = masks
    cos = torch.nn.functional.normalize(L.double().cpu(), dim=-1) @ torch.nn.functional.normalize(
        R.double().cpu(), dim=-1).transpose(-1, -2)  # (..., S, S')
    cos = cos.masked_fill(~keep_ref.unsqueeze(-2), -2.0)
    matched = (cos.amax(-1) > threshold) & keep
    return (matched.sum(-1) / keep.sum(-1).clamp_min(1)).float()


def latents_within(latents: Array, codes: Array, feature: int, *, precision: float = 0.9,
                   coverage: float = 0.05) -> torch.Tensor:
    """How many latents live inside a feature's occurrences, (I,): latents that fire on at least
    `coverage` of the samples where `feature` is active, and almost only there (at least
    `precision` of their firings). A parent with C children has 1 + C true features inside it;
    more latents than that means the dictionary split its occurrences finer than the truth.
    `latents` (B, I, S) and `codes` (B, I, N) belong to the same samples.
    """
    a = _util.float_tensor(latents, "latents", min_dim=3, max_dim=3, shape="(batch, instances, latents)")
    x = _util.float_tensor(codes, "codes", min_dim=3, max_dim=3, shape="(batch, instances, features)")
    if a.shape[:2] != x.shape[:2]:
        raise ValueError(
            f"latents and codes must share (batch, instances), got {tuple(a.shape)} and {tuple(x.shape)}"
        )
    feature = _util.integer(feature, "feature", low=0, high=x.shape[2] - 1)
    precision = _util.number(precision, "precision", low=0, high=1)
    coverage = _util.number(coverage, "coverage", low=0, high=1)
    fires = (a.detach() > 0).float()  # (B, I, S)
    on = (x[..., feature] > 0).float().unsqueeze(-1)  # (B, I, 1)
    both = (fires * on).sum(0)  # (I, S): firings while the feature is active
    inside = (both >= precision * fires.sum(0)) & (both >= coverage * on.sum(0)) & (both > 0)
    return inside.sum(-1)


def absorbing_code(codes: Array, truth: GroundTruth, share: float = 1.0, *,
                   seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    """A dictionary that absorbs by construction, to check `absorption` and `parent_share`
    against: (latents (B, I, N), decoder (I, N, D)), one latent per true feature.

    The decoder is the truth, except that each child's row points along child + parent
    (normalised). The latents are the true codes, except that in a random `share` of the
    samples where a child is active, the child's latent carries the parent too (its value is
    the length of x_child d_child + x_parent d_parent) and the parent's latent is silent.
    """
    x = _util.float_tensor(codes, "codes", min_dim=3, max_dim=3, shape="(batch, instances, features)").clone()
    if not isinstance(truth, GroundTruth) or not truth.parents:
        raise ValueError("truth must be a GroundTruth with parents (from hierarchical_features)")
    if x.shape[1:] != (truth.n_instances, truth.n_features):
        want = (truth.n_instances, truth.n_features)
        raise ValueError(f"codes must be (batch, {want[0]}, {want[1]}), got {tuple(x.shape)}")
    share = _util.number(share, "share", low=0, high=1)
    gen = _util.generator(seed)
    dirs = truth.directions.to(x)
    decoder = dirs.clone()
    kids = torch.nonzero(truth.parent >= 0).flatten()
    decoder[:, kids] = torch.nn.functional.normalize(dirs[:, kids] + dirs[:, truth.parent[kids]], dim=-1)
    take = torch.rand(x.shape[:2], generator=gen) < share  # (B, I): samples that absorb
    for p in truth.parents:
        for c in truth.children(p):
            hit = take & (x[..., c] > 0)  # (B, I)
            both = x[..., c : c + 1] * dirs[:, c] + x[..., p : p + 1] * dirs[:, p]  # (B, I, D)
            x[..., c] = torch.where(hit, both.norm(dim=-1), x[..., c])
            x[..., p] = torch.where(hit, 0.0, x[..., p])
    return x, decoder


def score(
    truth: GroundTruth,
    codes: Array,
    activations: Array,
    latents: Array,
    reconstruction: Array,
    decoder: Array,
    *,
    threshold: float = 0.9,
) -> dict[str, torch.Tensor]:
    """What chapter 10 measures of a dictionary, on held-out samples: {name: (I,)}.

    `activations` (B, I, D) were drawn from `truth` with `codes` (B, I, N); an SAE (or any
    dictionary) gave them `latents` (B, I, S) and `reconstruction` (B, I, D) with `decoder`
    rows (I, S, D). Returns "mmcs" and "recovered" (the share of true directions matched
    above cosine `threshold`), "dead" (the share of latents that never fire on these
    samples), "fve" (the fraction of variance explained), "l0" (active latents per sample),
    and for a hierarchy "absorption" and "parent_share" (averaged over the children).
    """
    if not isinstance(truth, GroundTruth):
        raise ValueError(f"truth must be a GroundTruth, got {type(truth).__name__}")
    h = _util.float_tensor(activations, "activations", min_dim=3, max_dim=3, shape="(batch, instances, d)")
    a = _util.float_tensor(latents, "latents", min_dim=3, max_dim=3, shape="(batch, instances, latents)")
    W = _util.float_tensor(decoder, "decoder", min_dim=3, max_dim=3, shape="(instances, latents, d)")
    x = _util.float_tensor(codes, "codes", min_dim=3, max_dim=3, shape="(batch, instances, features)")
    if x.shape[0] != h.shape[0] or x.shape[1:] != (truth.n_instances, truth.n_features):
        raise ValueError(f"codes must be (batch, instances, features) = ({h.shape[0]}, "
                         f"{truth.n_instances}, {truth.n_features}), got {tuple(x.shape)}")
    want = (truth.n_instances, truth.directions.shape[2])
    if (h.shape[1], h.shape[2]) != want or a.shape[:2] != h.shape[:2] or (W.shape[0], W.shape[2]) != want:
        raise ValueError(
            f"activations (B, {want[0]}, {want[1]}), latents (B, {want[0]}, S) and decoder "
            f"({want[0]}, S, {want[1]}) must fit the truth, got {tuple(h.shape)}, {tuple(a.shape)} "
            f"and {tuple(W.shape)}"
        )
    W, a = W.detach(), a.detach()
    rate = firing_rate(a)  # (I, S)
    out = {
        "mmcs": mmcs(W, truth.directions),
        "recovered": fraction_recovered(W, truth.directions, threshold),
        "dead": (rate == 0).float().mean(-1),
        "fve": explained_variance(h, reconstruction),
        "l0": rate.sum(-1),
    }
    if truth.parents:
        out["absorption"] = absorption(a, W, codes, truth)
        out["parent_share"] = parent_share(W, truth).mean(-1)
    return out
