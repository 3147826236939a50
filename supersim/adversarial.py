"""Adversarial vulnerability of the toy model, after Elhage et al. (2022).

A ReLU toy model x' = ReLU(W^T W x + b) reads feature i through row i of W^T W, so the input
perturbation of a given L2 length that most raises output i (before its ReLU) points along
that row. These closed-form attacks, one per feature and sign, are the candidates; on each
input the most harmful one is used. With superposition a row of W^T W has a long component
on the features sharing feature i's direction, so a small push moves several outputs at
once, and the model becomes easier to attack.

Taught in chapter 7 ("How superposition forms, and what it costs").

Shapes: B = batch, I = instances, F = features, H = hidden, C = candidate attacks (2F).
"""

from __future__ import annotations

import numbers

import numpy as np
import torch

from .data import _check_size
from .models import ToyModel


def _check_model(model) -> None:
    if not isinstance(model, ToyModel):
        raise ValueError(f"model must be a supersim.ToyModel, got {type(model).__name__}")


def _check_x(model, x) -> torch.Tensor:
    want = (model.n_instances, model.n_features)
    if not isinstance(x, torch.Tensor) or x.dim() != 3 or tuple(x.shape[1:]) != want:
        got = tuple(x.shape) if isinstance(x, torch.Tensor) else type(x).__name__
        raise ValueError(f"x must be a (batch, {want[0]}, {want[1]}) tensor, got {got}")
    return x.detach().to(model.W.device, torch.float32)


def attack_radius(x: torch.Tensor, fraction: float = 0.1) -> torch.Tensor:
    """The attack budget per instance, (I,): `fraction` of the mean input norm of x (B, I, F)."""
    if isinstance(fraction, bool) or not isinstance(fraction, numbers.Real) or not fraction > 0:
        raise ValueError(f"fraction must be a number > 0, got {fraction!r}")
    if not isinstance(x, torch.Tensor) or x.dim() != 3:
        raise ValueError("x must be a (batch, instances, features) tensor")
    return fraction * x.norm(dim=-1).mean(0)


def attack_candidates(
    W: torch.Tensor | np.ndarray, radius: float | torch.Tensor
) -> torch.Tensor:
    """The closed-form attacks, (I, 2F, F): +-radius times the unit rows of W^T W.

    Row i (and F + i, its negative) pushes the pre-activation of output i hardest per
    unit of input length; a feature the model ignores (zero row) gives a zero attack.
    """
    W = torch.as_tensor(W).detach()
    if W.dim() != 3:
        raise ValueError(
            f"W must be (instances, hidden, features), got {tuple(W.shape)}"
        )
    radius = torch.as_tensor(radius, dtype=W.dtype, device=W.device).reshape(-1)
    if radius.numel() not in (1, W.shape[0]) or bool((radius < 0).any()):
        raise ValueError(
            f"radius must be >= 0, one value or one per instance ({W.shape[0]})"
        )
    G = W.transpose(1, 2) @ W  # (I, F, F), symmetric
    rows = G / G.norm(dim=-1, keepdim=True).clamp_min(1e-12)
    return torch.cat([rows, -rows], dim=1) * radius.view(-1, 1, 1)  # (I, 2F, F)


def _example_loss(model, x_in, x_target, importance) -> torch.Tensor:
    """(B, I) loss of each example: mean over features of I_f (x' - x)^2."""
    out = model.decode(model.encode(x_in.transpose(0, 1))).transpose(0, 1)  # (B, I, F)
    return (importance * (out - x_target).square()).mean(-1)


@torch.no_grad()
def analytic_attack(
    model: ToyModel,
    x: torch.Tensor | np.ndarray,
    radius: float | torch.Tensor,
    importance: float | torch.Tensor = 1.0,
) -> tuple[torch.Tensor, torch.Tensor]:
    """(clean, attacked) loss of each example, both (B, I), under the best closed-form attack.

    For each example every candidate of `attack_candidates` is tried and the most harmful
    kept. The target stays the clean input x.
    """
    _check_model(model)
    x = _check_x(model, x)
    cands = attack_candidates(model.W, radius)  # (I, C, F)
    clean = _example_loss(model, x, x, importance)  # (B, I)
    worst = clean.clone()
    for c in range(cands.shape[1]):
        worst = torch.maximum(worst, _example_loss(model, x + cands[:, c], x, importance))
    return clean, worst


def gradient_attack(
    model: ToyModel,
    x: torch.Tensor | np.ndarray,
    radius: float | torch.Tensor,
    *,
    steps: int = 50,
    restarts: int = 4,
    importance: float | torch.Tensor = 1.0,
    seed: int = 0,
) -> torch.Tensor:
    """Attacked loss (B, I) found by projected gradient ascent on the input, as a cross-check.

    Each of `restarts` random starts inside the ball of `radius` takes `steps` normalised
    gradient steps of radius / 10, projected back onto the ball; the best end point counts.
    Starting away from zero matters: at x itself the ReLUs of inactive outputs give no gradient.
    """
    _check_model(model)
    x = _check_x(model, x)
    steps, restarts = _check_size(steps, "steps"), _check_size(restarts, "restarts")
    if isinstance(seed, bool) or not isinstance(seed, numbers.Integral):
        raise ValueError(f"seed must be an integer, got {seed!r}")
    r = torch.as_tensor(radius, dtype=x.dtype).reshape(1, -1, 1)  # (1, I, 1)
    gen = torch.Generator().manual_seed(int(seed))
    best = torch.zeros(x.shape[:2])
    for _ in range(restarts):
        d = torch.randn(x.shape, generator=gen)
        d = d / d.norm(dim=-1, keepdim=True).clamp_min(1e-12) * r / 2  # (B, I, F)
        for _ in range(steps):
            d.requires_grad_(True)
            (g,) = torch.autograd.grad(_example_loss(model, x + d, x, importance).sum(), d)
            with torch.no_grad():
                d = d + r / 10 * g / g.norm(dim=-1, keepdim=True).clamp_min(1e-12)
                d = d * (r / d.norm(dim=-1, keepdim=True).clamp_min(1e-12)).clamp(max=1.0)
        with torch.no_grad():
            best = torch.maximum(best, _example_loss(model, x + d, x, importance))
    return best


def vulnerability(model: ToyModel, x: torch.Tensor | np.ndarray, fraction: float = 0.1) -> torch.Tensor:
    """Loss increase under the best closed-form attack, relative to a model without superposition.

    (I,): the mean over the batch x (B, I, F) of attacked minus clean loss, divided by
    radius^2 / F, the increase a model with orthonormal feature directions (and zero bias)
    suffers: the attack on one of its features raises that output by exactly the radius.
    Features of unit importance.
    """
    radius = attack_radius(x, fraction)
    clean, attacked = analytic_attack(model, x, radius)
    return (attacked - clean).mean(0) / (radius.square() / model.n_features)
