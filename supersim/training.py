"""Training a toy model: the loss, the AdamW loop, and how to score the result.

The setup follows the notebook of Elhage et al. (2022): AdamW with lr 1e-3 and weight decay
0.01, batches of 1024 fresh sparse samples, 10,000 steps, and an importance-weighted squared
error averaged over batch and features. Every instance of a model is its own model: the loss
is one number per instance and their sum is what autograd differentiates, so no instance's
gradient depends on another's. Chapter 4 explains the loss and shows this loop.

`train` runs the plain loop below for any model. For `ToyModel` and `AbsModel` it runs the
same steps in `supersim/_fast.py` instead, with hand-written gradients, several worker threads
and random numbers drawn ahead: the same numbers to float rounding (`tests/test_train.py`
trains both ways and compares them), several times faster (`benchmarks/bench_train.py`).

Shapes: B = batch, I = instances, F = features, H = hidden.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import torch

from . import _fast, _util
from ._util import Array
from .data import per_instance_feature
from .models import AbsModel, BatchedModel, ToyModel

SCHEDULES = ("constant", "cosine")


def reconstruction_loss(
    model: BatchedModel, x: torch.Tensor, importance: torch.Tensor
) -> torch.Tensor:
    """Per-instance loss (I,): importance-weighted squared error, averaged
    over batch and features.

    x is a batch (I, B, F) and importance is (I, F); the output is compared
    with the model's `target` (x for `ToyModel`, abs(x) for `AbsModel`).
    """
    _util.check_batch(model, x, importance)
    out = model.decode(model.encode(x))  # (I, B, F)
    err = (out - model.target(x)).square()  # (I, B, F)
    return (importance.unsqueeze(1) * err).mean(dim=(1, 2))


def train(
    model: BatchedModel,
    *,
    feature_probability: float | Array | None = None,
    importance: float | Array = 1.0,
    steps: int = 10_000,
    batch_size: int = 1024,
    lr: float = 1e-3,
    weight_decay: float = 0.01,
    schedule: str = "constant",
    seed: int = 0,
    progress: bool | None = None,
    threads: int | None = None,
    warmup: int = 0,
    sampler: Callable[[int, torch.Generator], torch.Tensor] | None = None,
    snapshot_every: int | None = None,
    snapshots: list | None = None,
    fast: bool = True,
) -> torch.Tensor:
    """Train `model` in place on sparse features; return the loss history,
    (steps, instances).

    `feature_probability` (1 - S) and `importance` broadcast to (instances,
    features), e.g. an (instances, 1) column for a sparsity sweep. Same
    seed, same result, whatever `threads` (the most CPU threads to use;
    None: torch's setting). `schedule` is "constant" or "cosine" (decay to
    0), after `warmup` steps of linear ramp from 0. `progress=None` shows a
    bar unless the environment sets SUPERSIM_PROGRESS=0.

    Other data: instead of `feature_probability`, pass `sampler`, called as
    `sampler(batch_size, generator)` once per step; it returns the batch as
    a (batch_size, instances, features) tensor like `sample_features`, and
    `generator` is a `torch.Generator` seeded from `seed` for its draws
    (e.g. `data.finite_sampler` for a fixed training set).

    Snapshots: with `snapshot_every=k`, `(step, {name: tensor on the CPU})`
    is appended to the list `snapshots` after steps k, 2k, ... (counted
    from 1). The numbers are the same as without snapshots.

    `ToyModel` and `AbsModel` take the same steps in `supersim/_fast.py`,
    several times faster; `fast=False` runs the loop below for them too (on
    the same batches; equal up to float rounding). Any other module trains
    through this loop: `supersim.models` says what it must provide.
    """
    run = _Run(model, feature_probability, importance, steps, batch_size,
               lr, weight_decay, schedule, seed, progress, threads, warmup,
               sampler, snapshot_every, snapshots, fast)
    with run:  # closes the progress bar however the loop ends
        if fast and type(model) in (ToyModel, AbsModel):  # not subclasses
            return _fast.train(run)  # the same steps, hand-written gradients
        batches = run.batches()  # each call: the next batch x, (I, B, F)
        opt = torch.optim.AdamW(model.parameters(), lr=lr,
                                weight_decay=weight_decay)
        with _util.num_threads(run.threads_plain):
            for k in range(steps):
                for group in opt.param_groups:
                    group["lr"] = run.lr_at(k)  # warmup, constant or cosine
                loss = reconstruction_loss(model, batches(), run.importance)
                opt.zero_grad(set_to_none=True)
                # instances share no parameter: each gets its own gradient
                loss.sum().backward()
                opt.step()
                run.history[k] = loss.detach()  # (I,)
                run.after_step(k)  # progress bar and snapshots
        opt.zero_grad(set_to_none=True)  # leave no gradients behind
        return run.history.cpu()


@torch.no_grad()
def evaluate(
    model: BatchedModel, *, feature_probability: float | Array,
    importance: float | Array = 1.0, batch_size: int = 100_000, seed: int = 1234,
) -> torch.Tensor:
    """Per-instance loss (instances,) on one large fresh batch: the number to compare restarts by."""
    model = _check_model(model)
    batch_size = _util.size(batch_size, "batch_size")
    gen = torch.Generator(device=_device(model)).manual_seed(_util.seed(seed))
    p, imp = _per_instance(model, feature_probability, importance)
    # in pieces of at most ~4M entries, so a big sweep does not need gigabytes
    rows = max(1, min(batch_size, (1 << 22) // p.numel()))
    total = torch.zeros(model.n_instances, device=p.device)
    for start in range(0, batch_size, rows):
        n = min(rows, batch_size - start)
        x = _sparse_batch(n, p, model.signed_inputs, gen)  # (I, n, F)
        total += reconstruction_loss(model, x, imp) * n
    return (total / batch_size).cpu()


def best_of_restarts(loss: Array, n_restarts: int) -> torch.Tensor:
    """Indices of the lowest-loss instance in each group of `n_restarts` consecutive instances.

    Lay a sweep out as instance = config * n_restarts + restart; the result indexes the
    instances axis, one winner per config, as the paper kept the best of several fits.
    """
    n_restarts = _util.size(n_restarts, "n_restarts")
    loss = _util.float_tensor(loss, "loss", min_dim=1, max_dim=1)
    if loss.numel() % n_restarts:
        raise ValueError(
            f"loss must be 1-D with a length divisible by n_restarts={n_restarts}, "
            f"got shape {tuple(loss.shape)}"
        )
    groups = loss.view(-1, n_restarts)
    return groups.argmin(dim=1) + torch.arange(groups.shape[0]) * n_restarts


@torch.no_grad()
def stratified_loss(
    model: ToyModel, feature_probability: float | Array, importance: float | Array = 1.0,
    *, batch_size: int = 4096, seed: int = 0,
) -> torch.Tensor:
    """Per-instance expected loss (instances,), exact in the sparsity: a sum over active sets.

    E[L] = sum over subsets A of P(exactly A active) * E[L | A active], with E[L | A] from
    `batch_size` uniform draws. Sparse inputs rarely collide, so a plain Monte-Carlo batch sees
    too few collisions to rank solutions whose losses differ by O(p^2); this sees them all.
    Same convention as `evaluate` (mean over features). For up to 12 features.
    """
    batch_size = _util.size(batch_size, "batch_size")
    if not isinstance(model, ToyModel):
        raise ValueError(f"model must be a supersim.ToyModel, got {type(model).__name__}")
    if model.n_features > 12:
        raise ValueError(f"model.n_features must be at most 12 (2^n active sets), "
                         f"got {model.n_features}")
    gen = _util.generator(seed)
    p, imp = _per_instance(model, feature_probability, importance)
    p = p.double().cpu()
    shape = (model.n_instances, batch_size, model.n_features)
    values = torch.rand(shape, generator=gen).to(imp.device)  # (I, B, F)
    total = torch.zeros(model.n_instances, dtype=torch.float64)
    for bits in range(2**model.n_features):
        active = torch.tensor([(bits >> i) & 1 for i in range(model.n_features)]).bool()  # (F,)
        prob = torch.where(active, p, 1 - p).prod(-1)  # (I,) chance that exactly A is active
        x = values * active.to(imp.device)
        total += prob * reconstruction_loss(model, x, imp).double().cpu()
    return total.float()


@torch.no_grad()
def paired_loss(
    model: BatchedModel, feature_probability: float | Array, importance: float | Array = 1.0,
    *, batch_size: int = 100_000, seed: int = 0,
) -> torch.Tensor:
    """Per-instance loss (instances,) with every instance fed the same uniform draws.

    Restarts of one configuration then see identical inputs (common random numbers), so the
    noise of the batch cancels when their losses are compared, which matters when they differ
    by far less than the loss itself. Same convention as `evaluate`.
    """
    batch_size = _util.size(batch_size, "batch_size")
    model = _util.model_of(model)
    gen = _util.generator(seed)
    p, imp = _per_instance(model, feature_probability, importance)
    u = torch.rand(1, batch_size, model.n_features, generator=gen).to(p.device)  # (1, B, F)
    p = p.unsqueeze(1)  # (I, 1, F)
    x = torch.where(u < p, u / p.clamp_min(1e-12), torch.zeros((), device=p.device))  # (I, B, F)
    if model.signed_inputs:
        x = torch.where(x != 0, 2 * x - 1, x)
    return reconstruction_loss(model, x, imp).cpu()


# ---- the plumbing: argument checks, schedules, batches, progress bar and snapshots ----------


def _sparse_batch(batch_size: int, p: torch.Tensor, signed: bool, gen) -> torch.Tensor:
    """Sparse features (I, B, F) with probabilities p (I, F), values U[0, 1) or U[-1, 1)."""
    u = torch.rand((p.shape[0], batch_size, p.shape[1]), generator=gen, device=p.device)
    p = p.unsqueeze(1)  # (I, 1, F)
    value = u / p.clamp_min(1e-12)  # uniform on [0, 1) where active
    if signed:
        value = 2 * value - 1
    return torch.where(u < p, value, torch.zeros((), device=p.device))  # (I, B, F)


def _device(model) -> torch.device:
    return next(model.parameters()).device


def _check_model(model):
    """A trainable model with float32 parameters (the training kernels' precision)."""
    model = _util.model_of(model)
    dtypes = {p.dtype for p in model.parameters()}
    if dtypes != {torch.float32}:
        got = ", ".join(sorted(str(d) for d in dtypes)) or "no parameters"
        raise ValueError(f"model must have float32 parameters (call model.float()), got {got}")
    return model


def _per_instance(model, feature_probability, importance) -> tuple[torch.Tensor, torch.Tensor]:
    """feature_probability and importance as checked (I, F) tensors on the model's device."""
    shape, device = (model.n_instances, model.n_features), _device(model)
    p = per_instance_feature(feature_probability, *shape, name="feature_probability", high=1.0)
    imp = per_instance_feature(importance, *shape, name="importance")
    return p.to(device), imp.to(device)


def _lr_at(lr: float, schedule: str, steps: int, warmup: int) -> Callable[[int], float]:
    """The learning rate of step k (0-based): linear warmup, then constant or cosine decay."""

    def at(k: int) -> float:
        if k < warmup:
            return lr * (k + 1) / warmup
        if schedule == "cosine":
            return lr * 0.5 * (1 + math.cos(math.pi * (k - warmup) / max(1, steps - warmup)))
        return lr

    return at


class _Run:
    """One call of `train` with its arguments checked, before any work is done.

    Holds what both loops need: the (I, F) probabilities (or a sampler of (I, B, F) batches),
    importance, learning-rate schedule, loss history, and `after_step` for the progress bar
    and snapshots. Used as a context manager, it closes the bar on the way out.
    """

    def __init__(self, model, feature_probability, importance, steps, batch_size, lr,
                 weight_decay, schedule, seed, progress, threads, warmup, sampler,
                 snapshot_every, snapshots, fast):
        self.model = model = _check_model(model)
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
        self.device = device = _device(model)
        shape = (model.n_instances, model.n_features)
        self.p = None
        if sampler is None:
            self.p, self.importance = _per_instance(model, feature_probability, importance)
        else:
            imp = per_instance_feature(importance, *shape, name="importance")
            self.importance = imp.to(device)
        self.lr_at = _lr_at(lr, schedule, steps, warmup)
        self.history = torch.empty(steps, model.n_instances, device=device)
        self.sampler = None if sampler is None else self._checked(sampler, (batch_size, *shape))
        # the plain loop: a handful of (I, B, F) x H matmuls per step, forward and backward
        work = 6 * batch_size * model.n_instances * model.n_features * getattr(model, "d_hidden", 1)
        self.threads_plain = _util.threads_for(work, self.threads) if device.type == "cpu" else None
        self.shown, self.loss_scale = slice(0, model.n_instances), 1.0  # what the bar averages
        self.bar = _util.progress_bar(progress, steps, type(model).__name__)

    def _checked(self, sampler, want: tuple[int, ...]) -> Callable[[], torch.Tensor]:
        """The sampler as a callable () -> x (I, B, F), checked, from its seeded generator."""
        gen = torch.Generator(device=self.device).manual_seed(_fast._stream_seed(self.seed, 0))

        def draw() -> torch.Tensor:
            x = sampler(want[0], gen)
            if not isinstance(x, torch.Tensor) or tuple(x.shape) != want:
                got = tuple(x.shape) if isinstance(x, torch.Tensor) else type(x).__name__
                raise ValueError(f"sampler must return shape {want} (a tensor), got {got}")
            return x.to(device=self.device, dtype=torch.float32).transpose(0, 1)  # (I, B, F)

        return draw

    def batches(self) -> Callable[[], torch.Tensor]:
        """The training batches x (I, B, F), one per call: the fast path's, draw for draw."""
        if self.sampler is not None:
            return self.sampler
        return _fast.SparseBatches(self.p, bool(self.model.signed_inputs), self.batch_size,
                                   self.seed)

    def after_step(self, k: int) -> None:
        """Update the progress bar and take a snapshot after step k (0-based) when due."""
        if self.bar is not None and k % 100 == 99:
            loss = self.history[k, self.shown].mean().item() * self.loss_scale
            self.bar.update(100)
            self.bar.set_postfix(loss=f"{loss:.4g}", refresh=False)
        if self.snapshot_every is not None and (k + 1) % self.snapshot_every == 0:
            params = {n: t.detach().to("cpu", copy=True) for n, t in self.model.named_parameters()}
            self.snapshots.append((k + 1, params))

    def __enter__(self) -> _Run:
        return self

    def __exit__(self, *exc) -> None:
        if self.bar is not None:
            self.bar.close()
