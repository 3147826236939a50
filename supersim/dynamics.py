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

import torch

from . import _fast, _util
from ._util import Array
from .models import AbsModel, BatchedModel, ToyModel
from .training import reconstruction_loss

__all__ = ["Jumps", "find_jumps", "snapshot_losses", "stack_snapshots"]


def stack_snapshots(snapshots: list, name: str = "W") -> tuple[torch.Tensor, torch.Tensor]:
    """(steps (S,), parameter `name` at every snapshot (S, ...)) from `train`'s snapshot list."""
    snapshots = _util.snapshot_list(snapshots)
    names = set.intersection(*(set(params) for _, params in snapshots))
    if not isinstance(name, str) or name not in names:
        raise ValueError(f"name must be one of {sorted(names)}, got {name!r}")
    shapes = {tuple(params[name].shape) for _, params in snapshots}
    if len(shapes) > 1:
        raise ValueError(f"snapshots must hold {name!r} in one shape, got shapes {sorted(shapes)}")
    steps = torch.tensor([int(k) for k, _ in snapshots])
    return steps, torch.stack([params[name] for _, params in snapshots])


@torch.no_grad()
def snapshot_losses(
    model: BatchedModel,
    snapshots: list,
    x: torch.Tensor | Array,
    importance: float | Array = 1.0,
) -> torch.Tensor:
    """Loss (S, I) of every snapshot on the same batch x (B, I, F): a curve without batch noise.

    `model` supplies the forward pass (its own parameters are restored afterwards); the loss
    is `training.reconstruction_loss`, with `importance` broadcast to (instances, features).
    """
    model = _util.model_of(model)
    params = dict(model.named_parameters())
    snapshots = _util.snapshot_list(snapshots, params=params)
    x, importance, _ = _util.check_batch(model, x, importance, broadcast=True)
    if type(model) in (ToyModel, AbsModel):  # checked once above; no per-snapshot checks
        stacked = {n: torch.stack([snap[n] for _, snap in snapshots]) for n in params}
        return _fast.snapshot_losses(model, stacked, x, importance)
    saved = {n: p.detach().clone() for n, p in params.items()}
    out = []
    try:
        for _, snap in snapshots:
            for n, p in params.items():
                p.copy_(snap[n])
            out.append(reconstruction_loss(model, x, importance))  # (I,)
    finally:
        for n, p in params.items():
            p.copy_(saved[n])
    return torch.stack(out)


@dataclass
class Jumps:
    """Jumps of a (S, I, F) series: one row per jump, indices into the snapshots."""

    snapshot: torch.Tensor  # (J,) middle of the transition
    instance: torch.Tensor  # (J,)
    feature: torch.Tensor  # (J,)
    before: torch.Tensor  # (J,) mean value over the window before
    after: torch.Tensor  # (J,) mean value over the window after

    def __len__(self) -> int:
        return len(self.snapshot)


def find_jumps(
    D: Array, window: int = 10, threshold: float = 0.05, contrast: float = 3.0, gap: int = 10
) -> Jumps:
    """Where a series (S, I, F), e.g. each feature's D_i over snapshots, steps between plateaus.

    A jump is a plateau, a short move, and another plateau. At every snapshot t, take the
    `window` snapshots before t and the `window` snapshots after a transition of `gap`
    snapshots (D[t - window : t] and D[t + gap : t + gap + window]). It is a jump when the
    two windows' means differ by more than `threshold` and by more than `contrast` times each
    window's own movement: its standard deviation (noise) and its drift (the difference
    between the means of its two halves, doubled: the change over the window if it ramps).
    A linear ramp fails the drift test whenever gap <= (contrast - 1) * window, so a slow
    slope is not a jump however far it goes; a move that takes at most `gap` snapshots is.
    A run of neighbouring snapshots that qualify counts once, at its largest change; the
    reported snapshot is the middle of the transition (t + gap // 2).
    """
    D = _util.float_tensor(D, "D", min_dim=3, max_dim=3, shape="(snapshots, instances, features)")
    D = D.detach().float()
    window = _util.size(window, "window")
    threshold = _util.number(threshold, "threshold", low=0, low_open=True)
    contrast = _util.number(contrast, "contrast", low=0, low_open=True)
    if isinstance(gap, bool) or not isinstance(gap, numbers.Integral) or gap < 0:
        raise ValueError(f"gap must be a non-negative integer, got {gap!r}")
    gap = int(gap)
    S = D.shape[0]
    if S < 2 * window + gap:
        raise ValueError(f"D needs at least 2 * window + gap = {2 * window + gap} snapshots, got {S}")
    win = D.unfold(0, window, 1)  # (S - w + 1, I, F, w): win[k] = D[k : k + w]
    T = S - 2 * window - gap + 1
    before, after = win[:T], win[window + gap :]  # start at t - w and t + gap
    change = (after.mean(-1) - before.mean(-1)).abs()  # (T, I, F), t = window + index
    half = window // 2

    def movement(w: torch.Tensor) -> torch.Tensor:
        drift = 2 * (w[..., window - half :].mean(-1) - w[..., :half].mean(-1)).abs()
        return torch.maximum(w.std(-1) if window > 1 else torch.zeros_like(drift), drift)

    hit = (change > threshold) & (change > contrast * torch.maximum(movement(before), movement(after)))
    rows = []
    for i, f in hit.any(0).nonzero().tolist():
        t_hits = hit[:, i, f].nonzero().flatten().tolist()
        run = [t_hits[0]]
        for t in t_hits[1:] + [None]:
            if t is not None and t == run[-1] + 1:
                run.append(t)
                continue
            k = max(run, key=lambda u: change[u, i, f].item())
            rows.append(
                (k + window + gap // 2, i, f, before[k, i, f].mean().item(), after[k, i, f].mean().item())
            )
            run = [t] if t is not None else []
    rows.sort()
    cols = list(zip(*rows, strict=True)) if rows else [[]] * 5
    return Jumps(
        snapshot=torch.tensor(cols[0], dtype=torch.long),
        instance=torch.tensor(cols[1], dtype=torch.long),
        feature=torch.tensor(cols[2], dtype=torch.long),
        before=torch.tensor(cols[3]),
        after=torch.tensor(cols[4]),
    )
