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

import torch

from . import _util
from ._util import Array
from .models import ToyModel
from .training import reconstruction_loss

__all__ = [
    "analytic_attack",
    "attack_candidates",
    "attack_radius",
    "gradient_attack",
    "vulnerability",
]


def attack_radius(x: torch.Tensor | Array, fraction: float = 0.1) -> torch.Tensor:
    """The attack budget per instance, (I,): `fraction` of the mean input norm of x (B, I, F)."""
    fraction = _util.number(fraction, "fraction", low=0, low_open=True)
    x = _util.batch(x, "x")
    return fraction * x.norm(dim=-1).mean(0)


def attack_candidates(W: torch.Tensor | Array, radius: float | Array) -> torch.Tensor:
    """The closed-form attacks, (I, 2F, F): +-radius times the unit rows of W^T W.

    Row i (and F + i, its negative) pushes the pre-activation of output i hardest per
    unit of input length; a feature the model ignores (zero row) gives a zero attack.
    `radius` is one number >= 0 or one per instance.
    """
    shape = "(instances, hidden, features)"
    W = _util.float_tensor(W, "W", min_dim=3, max_dim=3, shape=shape).detach()
    radius = _util.instance_values(radius, "radius", W.shape[0], like=W)  # (I,)
    G = W.transpose(1, 2) @ W  # (I, F, F), symmetric
    rows = G / G.norm(dim=-1, keepdim=True).clamp_min(1e-12)
    return torch.cat([rows, -rows], dim=1) * radius.view(-1, 1, 1)  # (I, 2F, F)


@torch.no_grad()
def analytic_attack(
    model: ToyModel,
    x: torch.Tensor | Array,
    radius: float | Array,
    importance: float | Array = 1.0,
) -> tuple[torch.Tensor, torch.Tensor]:
    """(clean, attacked) loss of each example, both (B, I), under the best closed-form attack.

    For each example every candidate of `attack_candidates` is tried and the most harmful
    kept. The loss is `training.reconstruction_loss` of each example, against the clean
    input x as the target.
    """
    model = _util.model_of(model, cls=ToyModel)
    x, importance, _ = _util.check_batch(model, x, importance, broadcast=True)
    x = x.detach()
    cands = attack_candidates(model.W, radius)  # (I, C, F)
    clean = reconstruction_loss(model, x, importance, per_example=True)  # (B, I)
    worst = clean.clone()
    for c in range(cands.shape[1]):
        attacked = reconstruction_loss(model, x + cands[:, c], importance, target=x, per_example=True)
        worst = torch.maximum(worst, attacked)
    return clean, worst


def gradient_attack(
    model: ToyModel,
    x: torch.Tensor | Array,
    radius: float | Array,
    *,
    steps: int = 50,
    restarts: int = 4,
    importance: float | Array = 1.0,
    seed: int = 0,
) -> torch.Tensor:
    """Attacked loss (B, I) found by projected gradient ascent on the input, as a cross-check.

    Each of `restarts` random starts inside the ball of `radius` takes `steps` normalised
    gradient steps of radius / 10, projected back onto the ball; the best end point counts.
    Starting away from zero matters: at x itself the ReLUs of inactive outputs give no gradient.
    The loss is `training.reconstruction_loss` of each example, against the clean input x.
    """
    model = _util.model_of(model, cls=ToyModel)
    x, importance, _ = _util.check_batch(model, x, importance, broadcast=True)
    x = x.detach()
    r = _util.instance_values(radius, "radius", model.n_instances, like=x).view(1, -1, 1)  # (1, I, 1)
    steps, restarts = _util.size(steps, "steps"), _util.size(restarts, "restarts")
    gen = _util.generator(seed)

    def loss(d: torch.Tensor) -> torch.Tensor:  # (B, I): each example's loss at x + d
        return reconstruction_loss(model, x + d, importance, target=x, per_example=True)

    best = torch.zeros(x.shape[:2], dtype=x.dtype, device=x.device)
    for _ in range(restarts):
        d = torch.randn(x.shape, generator=gen, dtype=x.dtype).to(x.device)
        d = d / d.norm(dim=-1, keepdim=True).clamp_min(1e-12) * r / 2  # (B, I, F)
        for _ in range(steps):
            d.requires_grad_(True)
            (g,) = torch.autograd.grad(loss(d).sum(), d)
            with torch.no_grad():
                d = d + r / 10 * g / g.norm(dim=-1, keepdim=True).clamp_min(1e-12)
                d = d * (r / d.norm(dim=-1, keepdim=True).clamp_min(1e-12)).clamp(max=1.0)
        with torch.no_grad():
            best = torch.maximum(best, loss(d))
    return best


def vulnerability(model: ToyModel, x: torch.Tensor | Array, fraction: float = 0.1) -> torch.Tensor:
    """Loss increase under the best closed-form attack, relative to a model without superposition.

    (I,): the mean over the batch x (B, I, F) of attacked minus clean loss, divided by
    radius^2 / F, the increase a model with orthonormal feature directions (and zero bias)
    suffers: the attack on one of its features raises that output by exactly the radius.
    Features of unit importance.
    """
    model = _util.model_of(model, cls=ToyModel)
    x, _, _ = _util.check_batch(model, x, 1.0, broadcast=True)
    radius = attack_radius(x, fraction)
    clean, attacked = analytic_attack(model, x, radius)
    return (attacked - clean).mean(0) / (radius.square() / model.n_features)
