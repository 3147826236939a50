"""Sparse synthetic features, as in Elhage et al. (2022), "Toy Models of Superposition".

Each feature is zero with probability S (the sparsity) and otherwise drawn uniformly, from
[0, 1] for the storage models and from [-1, 1] for the absolute-value model. Every batch is
laid out (batch, instances, features), so that one call feeds a whole sweep of independent
models.

A **sampler** is a function `sampler(batch_size, generator=None)` that returns a batch:
`sparse_sampler` draws fresh sparse features at every call (what `train` draws from unless
given another sampler), `finite_sampler` draws from a fixed training set, and
`sample_features` draws a single batch. Given no generator, they draw from a generator of
their own, seeded with their `seed` argument, never from torch's global random state.

Taught in chapter 4 ("Toy models of superposition").

Shapes: B = batch, I = instances, F = features.
"""

from __future__ import annotations

from collections.abc import Callable

import torch

from . import _util
from ._util import Array

__all__ = [
    "finite_sampler",
    "importance_decay",
    "per_instance_feature",
    "sample_correlated_features",
    "sample_features",
    "sparse_sampler",
    "sparsity_sweep",
]

# sampler(batch_size, generator=None) -> a (batch_size, instances, features) batch
Sampler = Callable[..., torch.Tensor]


def per_instance_feature(
    value: float | Array,
    n_instances: int,
    n_features: int,
    *,
    name: str,
    low: float = 0.0,
    high: float = float("inf"),
    low_inclusive: bool = True,
    device: torch.device | str | None = None,
) -> torch.Tensor:
    """Broadcast a scalar, (F,), (I, 1), (1, F) or (I, F) value to an (I, F) float32 tensor.

    Raises ValueError naming `name` when the value does not broadcast, is not finite, or
    leaves [low, high] (or (low, high] when not `low_inclusive`).
    """
    n_instances = _util.size(n_instances, "n_instances")
    n_features = _util.size(n_features, "n_features")
    device = _util.device(device)
    name = _util.text(name, "name", empty=False)  # the argument's name, for the messages
    low, high = _util.bound(low, "low"), _util.bound(high, "high")
    if low > high:
        raise ValueError(f"low must be at most high, got low={low}, high={high}")
    low_inclusive = _util.flag(low_inclusive, "low_inclusive")
    t = _util.as_tensor(value, name)
    if t.dtype == torch.bool or t.is_complex():
        raise ValueError(f"{name} must be a number or an array of real numbers, got dtype {t.dtype}")
    t = t.to(torch.float32)
    try:
        t = torch.broadcast_to(t, (n_instances, n_features))
    except RuntimeError:
        raise ValueError(
            f"{name} must broadcast to (n_instances, n_features) = ({n_instances}, {n_features}),"
            f" got shape {tuple(t.shape)}"
        ) from None
    lo_ok = (t >= low) if low_inclusive else (t > low)
    if not bool(torch.all(lo_ok & (t <= high))) or not bool(torch.isfinite(t).all()):
        bracket = "[" if low_inclusive else "("
        raise ValueError(
            f"{name} must be finite and lie in {bracket}{low}, {high}], got values {t.unique()[:5].tolist()}"
        )
    return t.contiguous().to(device)


def sparse_sampler(
    feature_probability: float | Array,
    n_instances: int = 1,
    n_features: int | None = None,
    *,
    signed: bool = False,
    same_draws: bool = False,
    seed: int = 0,
    device: torch.device | str | None = None,
) -> Sampler:
    """A sampler of sparse features: `sampler(batch_size, generator=None)`
    returns a fresh (batch_size, instances, features) batch at every call.

    Feature i of instance k is active with probability
    p = feature_probability[k, i] (a scalar, (F,), (I, 1) or (I, F)); an
    active feature is U[0, 1) (U[-1, 1) when `signed`). One uniform draw u
    per entry does both jobs: the feature is active when u < p, and then
    u / p is itself uniform on [0, 1). With `same_draws`, every instance gets
    the same draws u (common random numbers): instances differ only in p.

    Each call draws with `generator` (on the sampler's device), or without
    one with the sampler's own generator, seeded with `seed`.
    """
    p = _probabilities(feature_probability, n_instances, n_features, device)
    signed = _util.flag(signed, "signed")
    same_draws = _util.flag(same_draws, "same_draws")
    own = _OwnGenerator(seed, p.device)
    shape = (1, p.shape[1]) if same_draws else tuple(p.shape)  # (I or 1, F)
    zero = torch.zeros((), device=p.device)

    def sampler(
        batch_size: int, generator: torch.Generator | None = None
    ) -> torch.Tensor:
        batch_size = _util.size(batch_size, "batch_size")
        gen = own.unless(generator)  # the call's generator, else the sampler's own
        u = torch.rand((batch_size, *shape), generator=gen, device=p.device)
        value = u / p.clamp_min(1e-12)  # uniform on [0, 1) where active
        if signed:
            value = 2 * value - 1
        return torch.where(u < p, value, zero)  # (B, I, F); p = 0: never active

    return sampler


def sample_features(
    batch_size: int,
    feature_probability: float | Array,
    n_instances: int = 1,
    n_features: int | None = None,
    *,
    signed: bool = False,
    generator: torch.Generator | None = None,
    seed: int = 0,
    device: torch.device | str | None = None,
) -> torch.Tensor:
    """Draw one (batch, instances, features) batch of sparse features.

    The same as `sparse_sampler(feature_probability, n_instances, n_features, signed=signed,
    seed=seed, device=device)(batch_size, generator)`: drawn from `generator`, or without
    one from a fresh generator seeded with `seed` (the same batch at every call).
    """
    sampler = sparse_sampler(
        feature_probability, n_instances, n_features, signed=signed, seed=seed, device=device
    )
    return sampler(batch_size, generator)


class _OwnGenerator:
    """A sampler's own generator, seeded with the checked `seed` (made on first use)."""

    def __init__(self, seed: int, device: torch.device):
        self.seed, self.device, self._gen = _util.seed(seed), device, None

    def unless(self, generator: torch.Generator | None) -> torch.Generator:
        """`generator` (checked: it must draw on the sampler's device), else this one."""
        if generator is not None:
            return _util.generator_on(generator, self.device)
        if self._gen is None:
            self._gen = torch.Generator(device=self.device).manual_seed(self.seed)
        return self._gen


def _probabilities(feature_probability, n_instances, n_features, device) -> torch.Tensor:
    """feature_probability as a checked (I, F) tensor; F read from its last axis when None."""
    n_instances = _util.size(n_instances, "n_instances")
    if n_features is None:
        shape = _util.as_tensor(feature_probability, "feature_probability").shape
        # a scalar or an (I, 1) column gives one probability per instance, not a feature count
        if len(shape) == 0 or shape[-1] == 1:
            raise ValueError(
                "n_features is required when feature_probability is a scalar or a column"
                f" (shape {tuple(shape)}); it is read from the last axis only when that has"
                " one entry per feature"
            )
        n_features = shape[-1]
    return per_instance_feature(
        feature_probability, n_instances, n_features, name="feature_probability", high=1.0,
        device=device,
    )


def sparsity_sweep(n: int, lowest_probability: float = 0.05) -> torch.Tensor:
    """The paper's sweep of feature probabilities 1 - S, (n,): geometric from 1 down to
    `lowest_probability` in n steps."""
    n = _util.size(n, "n")
    lowest = _util.number(lowest_probability, "lowest_probability", low=0, high=1, low_open=True)
    if n == 1:
        return torch.ones(1)
    k = torch.arange(n, dtype=torch.float64)
    return (lowest ** (k / (n - 1))).float()


def importance_decay(n_features: int, ratio: float) -> torch.Tensor:
    """Importance I_i = ratio**i for i = 0..n_features-1, the paper's decaying importance."""
    n_features = _util.size(n_features, "n_features")
    ratio = _util.number(ratio, "ratio", low=0, high=1, low_open=True)
    return ratio ** torch.arange(n_features, dtype=torch.float32)


def sample_correlated_features(
    batch_size: int,
    feature_probability: float | Array,
    n_instances: int = 1,
    *,
    n_correlated: int = 0,
    n_anticorrelated: int = 0,
    n_independent: int = 0,
    set_size: int = 2,
    generator: torch.Generator | None = None,
    seed: int = 0,
    device: torch.device | str | None = None,
) -> torch.Tensor:
    """Draw a (batch, instances, features) batch whose features come in correlated sets.

    Features are laid out as `n_correlated` sets of `set_size` features that are active
    all together or not at all, then `n_anticorrelated` sets in which at most one
    feature is active, then `n_independent` independent features. Every feature is
    active with the same marginal probability p (a scalar or one value per instance,
    (instances, 1)), and an active feature is U[0, 1] independently of the others. An
    anticorrelated set fires with probability set_size * p, so p may not exceed
    1 / set_size when there are such sets.

    Elhage et al. (2022) use pairs of these to show that correlated features take
    orthogonal directions and anticorrelated ones opposite directions (chapter 4, the
    page "Non-uniform superposition and the privileged basis").

    Drawn from `generator`, or without one from a fresh generator seeded with `seed`.
    """
    batch_size = _util.size(batch_size, "batch_size")
    n_instances = _util.size(n_instances, "n_instances")
    set_size = _util.size(set_size, "set_size")
    counts = (n_correlated, n_anticorrelated, n_independent)
    names = ("n_correlated", "n_anticorrelated", "n_independent")
    counts = tuple(
        _util.integer(v, name, low=0) for name, v in zip(names, counts, strict=True)
    )
    n_correlated, n_anticorrelated, n_independent = counts
    n_features = set_size * (n_correlated + n_anticorrelated) + n_independent
    if n_features == 0:
        raise ValueError(
            "n_correlated, n_anticorrelated and n_independent are all 0: no features"
        )
    high = 1.0 / set_size if n_anticorrelated else 1.0
    p = per_instance_feature(
        feature_probability, n_instances, 1, name="feature_probability", high=high,
        device=device,
    )  # (I, 1): one marginal probability per instance
    if generator is None:
        generator = torch.Generator(device=p.device).manual_seed(_util.seed(seed))
    shape = (batch_size, n_instances)
    draw = dict(generator=_util.generator_on(generator, p.device), device=p.device)
    value = torch.rand((*shape, n_features), **draw)  # (B, I, F)
    parts = []
    if n_correlated:
        fires = torch.rand((*shape, n_correlated), **draw) < p
        # every member of a set alike
        parts.append(fires.repeat_interleave(set_size, dim=-1))
    if n_anticorrelated:
        # one uniform u per set: the set fires when u < set_size * p, and then
        # floor(u / p) is a uniformly chosen member, so each member fires with
        # probability p, and never two at once
        u = torch.rand((*shape, n_anticorrelated), **draw)
        member = torch.floor(u / p.clamp_min(1e-12))
        member = torch.where(u < set_size * p, member, -1.0)
        ks = torch.arange(set_size, device=p.device, dtype=member.dtype)
        # (B, I, sets * set_size)
        parts.append((member.unsqueeze(-1) == ks).flatten(-2))
    if n_independent:
        parts.append(torch.rand((*shape, n_independent), **draw) < p)
    active = torch.cat(parts, dim=-1)
    return torch.where(active, value, torch.zeros((), device=p.device))


def finite_sampler(x: torch.Tensor | Array, *, seed: int = 0) -> Sampler:
    """A sampler for `train(..., sampler=...)` that draws from a fixed training set.

    x is the whole training set, (examples T, instances, features), e.g. from
    `sample_features(T, ...)`. A batch of T is the full set, in order (full-batch
    training); a smaller batch is a fresh random subset of the examples, the same for
    every instance, drawn with the call's `generator` or, without one, with the
    sampler's own, seeded with `seed`. Henighan et al. (2023) train the toy model this
    way to study memorization (chapter 8).
    """
    x = _util.batch(x, "x")  # checked (T, I, F)
    n_examples = x.shape[0]
    own = _OwnGenerator(seed, x.device)

    def sampler(
        batch_size: int, generator: torch.Generator | None = None
    ) -> torch.Tensor:
        batch_size = _util.size(batch_size, "batch_size")
        if batch_size > n_examples:
            raise ValueError(f"batch_size must be <= {n_examples}, got {batch_size}")
        if batch_size == n_examples:
            return x  # (T, I, F)
        gen = own.unless(generator)  # the call's generator, else the sampler's own
        order = torch.randperm(n_examples, generator=gen, device=x.device)
        return x[order[:batch_size]]  # (B, I, F)

    return sampler
