"""Sparse synthetic features, as in Elhage et al. (2022), "Toy Models of Superposition".

Each feature is zero with probability S (the sparsity) and otherwise drawn uniformly, from
[0, 1] for the storage models and from [-1, 1] for the absolute-value model. Every tensor
carries an instances axis so that one call feeds a whole sweep of independent models.

Taught in chapter 4 ("Toy models of superposition").

Shapes: B = batch, I = instances, F = features.
"""

from __future__ import annotations

import numbers

import torch


def _check_size(value, name: str) -> int:
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < 1:
        raise ValueError(f"{name} must be a positive integer, got {value!r}")
    return int(value)


def per_instance_feature(
    value,
    n_instances: int,
    n_features: int,
    *,
    name: str,
    low: float = 0.0,
    high: float = float("inf"),
    low_inclusive: bool = True,
    device=None,
) -> torch.Tensor:
    """Broadcast a scalar, (F,), (I, 1), (1, F) or (I, F) value to an (I, F) float tensor.

    Raises ValueError naming `name` when the value does not broadcast or leaves [low, high].
    """
    t = torch.as_tensor(value, dtype=torch.float32)
    try:
        t = torch.broadcast_to(t, (n_instances, n_features))
    except RuntimeError:
        raise ValueError(
            f"{name} must broadcast to (n_instances, n_features) = ({n_instances}, {n_features}),"
            f" got shape {tuple(t.shape)}"
        ) from None
    lo_ok = (t >= low) if low_inclusive else (t > low)
    if not bool(torch.all(lo_ok & (t <= high))) or bool(torch.isnan(t).any()):
        bracket = "[" if low_inclusive else "("
        raise ValueError(f"{name} must lie in {bracket}{low}, {high}], got values {t.unique()[:5].tolist()}")
    return t.contiguous().to(device)


def sample_features(
    batch_size: int,
    feature_probability,
    n_instances: int = 1,
    n_features: int | None = None,
    *,
    signed: bool = False,
    generator: torch.Generator | None = None,
    device=None,
) -> torch.Tensor:
    """Draw a (batch, instances, features) batch of sparse features.

    Feature i of instance k is active with probability p = feature_probability[k, i]; an active
    feature is U[0, 1] (or U[-1, 1] when `signed`). One uniform draw u per entry does both jobs:
    the feature is active when u < p, and then u / p is itself uniform on [0, 1).
    """
    batch_size = _check_size(batch_size, "batch_size")
    n_instances = _check_size(n_instances, "n_instances")
    if n_features is None:
        shape = torch.as_tensor(feature_probability).shape
        if len(shape) == 0:
            raise ValueError("n_features is required when feature_probability is a scalar")
        n_features = shape[-1]
    n_features = _check_size(n_features, "n_features")
    p = per_instance_feature(
        feature_probability, n_instances, n_features, name="feature_probability", high=1.0, device=device
    )
    return _sample(batch_size, p, signed, generator)


def _sample(batch_size: int, p: torch.Tensor, signed: bool, generator) -> torch.Tensor:
    """Unchecked sampler used inside training loops: p is (I, F) on the right device."""
    u = torch.rand((batch_size, *p.shape), generator=generator, device=p.device)  # (B, I, F)
    value = u / p.clamp_min(1e-12)  # uniform on [0, 1) where active; p = 0 is never active
    if signed:
        value = 2 * value - 1
    return torch.where(u < p, value, torch.zeros((), device=p.device))


def sparsity_sweep(n: int, lowest_density: float = 0.05) -> torch.Tensor:
    """The paper's sweep of densities 1 - S: geometric from 1 down to `lowest_density` in n steps."""
    n = _check_size(n, "n")
    if not 0 < lowest_density <= 1:
        raise ValueError(f"lowest_density must lie in (0, 1], got {lowest_density!r}")
    if n == 1:
        return torch.ones(1)
    k = torch.arange(n, dtype=torch.float64)
    return (lowest_density ** (k / (n - 1))).float()


def importance_decay(n_features: int, ratio: float) -> torch.Tensor:
    """Importance I_i = ratio**i for i = 0..n_features-1, the paper's decaying importance."""
    n_features = _check_size(n_features, "n_features")
    if not 0 < ratio <= 1:
        raise ValueError(f"ratio must lie in (0, 1], got {ratio!r}")
    return ratio ** torch.arange(n_features, dtype=torch.float32)
