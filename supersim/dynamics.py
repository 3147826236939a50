"""Learning dynamics: following a model's weights through training (Elhage et al. 2022).

`train(..., snapshot_every=k, snapshots=list)` records the parameters every k steps; these
helpers turn the list into tensors, measure a fixed batch's loss at every snapshot, and find
the moments where a feature's dimensionality D_i jumps from one plateau to another.

Taught in chapter 7 ("How superposition forms, and what it costs").

Shapes: S = snapshots, B = batch, I = instances, F = features, H = hidden.
"""

from __future__ import annotations

import numbers
from dataclasses import dataclass

import numpy as np
import torch

from .data import _check_size
from .models import AbsModel, ToyModel


def stack_snapshots(snapshots: list, name: str = "W") -> tuple[torch.Tensor, torch.Tensor]:
    """(steps (S,), parameter `name` at every snapshot (S, ...)) from `train`'s snapshot list."""
    if not isinstance(snapshots, list) or not snapshots:
        raise ValueError("snapshots must be a non-empty list of (step, params) from train")
    if name not in snapshots[0][1]:
        raise ValueError(f"name must be one of {sorted(snapshots[0][1])}, got {name!r}")
    steps = torch.tensor([k for k, _ in snapshots])
    return steps, torch.stack([params[name] for _, params in snapshots])


@torch.no_grad()
def snapshot_losses(
    model: ToyModel | AbsModel,
    snapshots: list,
    x: torch.Tensor,
    importance: float | torch.Tensor = 1.0,
) -> torch.Tensor:
    """Loss (S, I) of every snapshot on the same batch x (B, I, F): a curve without batch noise.

    `model` supplies the forward pass (its own parameters are restored afterwards).
    """
    if not isinstance(snapshots, list) or not snapshots:
        raise ValueError("snapshots must be a non-empty list of (step, params) from train")
    want = (model.n_instances, model.n_features)
    if not isinstance(x, torch.Tensor) or x.dim() != 3 or tuple(x.shape[1:]) != want:
        raise ValueError(f"x must be a (batch, {want[0]}, {want[1]}) tensor")
    params = dict(model.named_parameters())
    saved = {n: p.detach().clone() for n, p in params.items()}
    xt = x.transpose(0, 1)  # (I, B, F)
    out = []
    try:
        for _, snap in snapshots:
            for n, p in params.items():
                p.copy_(snap[n])
            err = model.decode(model.encode(xt)) - model.target(xt)  # (I, B, F)
            out.append((torch.as_tensor(importance) * err.square()).mean(dim=(1, 2)))
    finally:
        for n, p in params.items():
            p.copy_(saved[n])
    return torch.stack(out)


@dataclass
class Jumps:
    """Jumps of a (S, I, F) series: one row per jump, indices into the snapshots."""

    snapshot: torch.Tensor  # (J,) first snapshot after the jump
    instance: torch.Tensor  # (J,)
    feature: torch.Tensor  # (J,)
    before: torch.Tensor  # (J,) mean value over the window before
    after: torch.Tensor  # (J,) mean value over the window after

    def __len__(self) -> int:
        return len(self.snapshot)


def find_jumps(
    D: torch.Tensor | np.ndarray, window: int = 10, threshold: float = 0.05, contrast: float = 3.0
) -> Jumps:
    """Where a series (S, I, F), e.g. each feature's D_i over snapshots, steps between plateaus.

    At every snapshot t, compare the mean over the `window` snapshots before t with the mean
    over the `window` from t on: a jump is a change larger than `threshold` and `contrast`
    times the larger standard deviation of the two windows (flat on both sides, moving in
    between). A run of neighbouring snapshots that qualify counts once, at its largest change.
    """
    D = torch.as_tensor(D).detach().float()
    if D.dim() != 3:
        raise ValueError(f"D must be (snapshots, instances, features), got {tuple(D.shape)}")
    window = _check_size(window, "window")
    for name, v in (("threshold", threshold), ("contrast", contrast)):
        if isinstance(v, bool) or not isinstance(v, numbers.Real) or not v > 0:
            raise ValueError(f"{name} must be a number > 0, got {v!r}")
    S = D.shape[0]
    if S < 2 * window:
        raise ValueError(f"D needs at least 2 * window = {2 * window} snapshots, got {S}")
    win = D.unfold(0, window, 1)  # (S - w + 1, I, F, w): win[k] = D[k : k + w]
    before, after = win[: S - 2 * window + 1], win[window:]  # both start at t - w and t
    change = (after.mean(-1) - before.mean(-1)).abs()  # (T, I, F), t = window + index
    spread = torch.maximum(before.std(-1), after.std(-1))
    hit = (change > threshold) & (change > contrast * spread)
    rows = []
    for i, f in hit.any(0).nonzero().tolist():
        t_hits = hit[:, i, f].nonzero().flatten().tolist()
        run = [t_hits[0]]
        for t in t_hits[1:] + [None]:
            if t is not None and t == run[-1] + 1:
                run.append(t)
                continue
            k = max(run, key=lambda u: change[u, i, f].item())
            rows.append((k + window, i, f, before[k, i, f].mean().item(), after[k, i, f].mean().item()))
            run = [t] if t is not None else []
    rows.sort()
    cols = list(zip(*rows, strict=True)) if rows else [[]] * 5
    return Jumps(
        snapshot=torch.tensor(cols[0], dtype=torch.long), instance=torch.tensor(cols[1], dtype=torch.long),
        feature=torch.tensor(cols[2], dtype=torch.long), before=torch.tensor(cols[3]),
        after=torch.tensor(cols[4]),
    )
