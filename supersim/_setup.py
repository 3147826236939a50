"""The set-up of one call of `training.train`: checked arguments, schedule, batches,
progress bar and snapshots, shared by the plain loop (`supersim/training.py`) and the fast
path (`supersim/_fast.py`), so that `training.py` holds only the idea.

Shapes: B = batch, I = instances, F = features.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import torch

from . import _fast, _util
from .data import Sampler, per_instance_feature, sparse_sampler

SCHEDULES = ("constant", "cosine")


def device_of(model) -> torch.device:
    return next(model.parameters()).device


def check_model(model):
    """A trainable model with float32 parameters (the training kernels' precision)."""
    model = _util.model_of(model)
    dtypes = {p.dtype for p in model.parameters()}
    if dtypes != {torch.float32}:
        got = ", ".join(sorted(str(d) for d in dtypes)) or "no parameters"
        raise ValueError(f"model must have float32 parameters (call model.float()), got {got}")
    return model


def per_instance(model, feature_probability, importance) -> tuple[torch.Tensor, torch.Tensor]:
    """feature_probability and importance as checked (I, F) tensors on the model's device."""
    shape, device = (model.n_instances, model.n_features), device_of(model)
    p = per_instance_feature(feature_probability, *shape, name="feature_probability", high=1.0)
    imp = per_instance_feature(importance, *shape, name="importance")
    return p.to(device), imp.to(device)


def lr_schedule(lr: float, schedule: str, steps: int, warmup: int) -> Callable[[int], float]:
    """The learning rate of step k (0-based): linear warmup, then constant or cosine decay."""

    def at(k: int) -> float:
        if k < warmup:
            return lr * (k + 1) / warmup
        if schedule == "cosine":
            return lr * 0.5 * (1 + math.cos(math.pi * (k - warmup) / max(1, steps - warmup)))
        return lr

    return at


class Run:
    """One call of `train` with its arguments checked, before any work is done.

    Holds what both loops need: the (I, F) probabilities `p` (None when the caller gave a
    sampler), the `sampler` of (B, I, F) batches and its seeded `generator`, the importance,
    the learning-rate schedule, the loss history, and `after_step` for the progress bar and
    snapshots. Used as a context manager, it closes the bar on the way out.
    """

    def __init__(self, *, model, feature_probability, importance, steps, batch_size, lr,
                 weight_decay, schedule, seed, progress, threads, warmup, sampler,
                 snapshot_every, snapshots, fast):
        self.model = model = check_model(model)
        self.steps = steps = _util.size(steps, "steps")
        self.batch_size = batch_size = _util.size(batch_size, "batch_size")
        lr = _util.number(lr, "lr", low=0)
        self.weight_decay = _util.number(weight_decay, "weight_decay", low=0)
        if schedule not in SCHEDULES:
            raise ValueError(f"schedule must be one of {SCHEDULES}, got {schedule!r}")
        self.seed = _util.seed(seed)
        self.threads = None if threads is None else _util.size(threads, "threads")
        warmup = _util.integer(warmup, "warmup", low=0, high=steps)
        if progress is not None and not isinstance(progress, bool):
            raise ValueError(f"progress must be None, True or False, got {progress!r}")
        if (feature_probability is None) == (sampler is None):
            raise ValueError("pass exactly one of feature_probability and sampler")
        if sampler is not None and not callable(sampler):
            raise ValueError(
                f"sampler must be callable as sampler(batch_size, generator), got {sampler!r}")
        if snapshot_every is not None:
            snapshot_every = _util.size(snapshot_every, "snapshot_every")
            if not isinstance(snapshots, list):
                raise ValueError(f"snapshots must be a list to append to when snapshot_every is "
                                 f"set, got {snapshots!r}")
        elif snapshots is not None:
            raise ValueError("snapshots needs snapshot_every (how many steps between snapshots)")
        _util.flag(fast, "fast")
        self.snapshot_every, self.snapshots = snapshot_every, snapshots
        self.device = device = device_of(model)
        shape = (model.n_instances, model.n_features)
        self.p = None
        if sampler is None:
            self.p, self.importance = per_instance(model, feature_probability, importance)
            sampler = sparse_sampler(self.p, *shape, signed=bool(model.signed_inputs), device=device)
        else:
            imp = per_instance_feature(importance, *shape, name="importance")
            self.importance = imp.to(device)
        self.sampler = self._checked(sampler, (batch_size, *shape))
        self.generator = torch.Generator(device=device).manual_seed(_fast._stream_seed(self.seed, 0))
        self.lr_at = lr_schedule(lr, schedule, steps, warmup)
        self.history = torch.empty(steps, model.n_instances, device=device)
        # the plain loop: a handful of (B, I, F) x H matmuls per step, forward and backward
        work = 6 * batch_size * model.n_instances * model.n_features * getattr(model, "d_hidden", 1)
        self.threads_plain = _util.threads_for(work, self.threads) if device.type == "cpu" else None
        self.watch(slice(0, model.n_instances))
        self.bar = _util.progress_bar(progress, steps, type(model).__name__)

    def _checked(self, sampler: Sampler, want: tuple[int, ...]) -> Sampler:
        """The sampler, with each batch checked: a (B, I, F) tensor on the model's device."""

        def draw(batch_size: int, generator: torch.Generator) -> torch.Tensor:
            x = sampler(batch_size, generator)
            if not isinstance(x, torch.Tensor) or tuple(x.shape) != want:
                got = tuple(x.shape) if isinstance(x, torch.Tensor) else type(x).__name__
                raise ValueError(f"sampler must return shape {want} (a tensor), got {got}")
            return x.to(device=self.device, dtype=torch.float32)  # (B, I, F)

        return draw

    def watch(self, instances: slice, scale: float = 1.0) -> None:
        """Make the progress bar show the mean recorded loss of `instances`, times `scale`.

        The fast path's first worker thread updates the bar, and knows only its own
        instances' losses at that moment; its kernels record twice the loss.
        """
        self._shown, self._loss_scale = instances, scale

    def after_step(self, k: int) -> None:
        """Update the progress bar and take a snapshot after step k (0-based) when due."""
        _util.show_loss(self.bar, k, lambda: self.history[k, self._shown].mean().item() * self._loss_scale)
        if self.snapshot_every is not None and (k + 1) % self.snapshot_every == 0:
            params = {n: t.detach().to("cpu", copy=True) for n, t in self.model.named_parameters()}
            self.snapshots.append((k + 1, params))

    def __enter__(self) -> Run:
        return self

    def __exit__(self, *exc) -> None:
        if self.bar is not None:
            self.bar.close()
