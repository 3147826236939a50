"""Training a toy model: the loss, the AdamW loop, and how to score the result.

The setup follows the notebook of Elhage et al. (2022): AdamW with lr 1e-3 and weight decay
0.01, batches of 1024 fresh sparse samples, 10,000 steps, and an importance-weighted squared
error averaged over batch and features. Every instance of a model is its own model: the loss
is one number per instance and their sum is what autograd differentiates, so no instance's
gradient depends on another's. Chapter 4 explains the loss and shows this loop.

`train` runs the plain loop below for any model, on batches from a sampler of
`supersim.data` (`sparse_sampler` unless the caller passes another). For `ToyModel` and
`AbsModel` it runs the same steps in `supersim/_fast.py` instead, with hand-written
gradients, several worker threads and its own faster draws of the same sparse features:
several times faster (`benchmarks/bench_train.py`), and on one sampler's batches the same
numbers to float rounding (`tests/test_train.py` trains both ways and compares them). What
both loops share and no reader needs first (argument checks, the learning-rate schedule, the
progress bar, snapshots) is set up in `supersim/_setup.py`.

Every batch is laid out (batch, instances, features); importance is (instances, features).

Shapes: B = batch, I = instances, F = features, H = hidden.
"""

from __future__ import annotations

import torch

from . import _fast, _util
from ._setup import Run, per_instance
from ._util import Array
from .data import Sampler, sparse_sampler
from .models import AbsModel, BatchedModel, ToyModel

__all__ = [
    "best_of_restarts",
    "evaluate",
    "paired_loss",
    "reconstruction_loss",
    "stratified_loss",
    "train",
]

# `evaluate` works in pieces of at most this many entries, so a big sweep needs no gigabytes
_PIECE_ENTRIES = 1 << 22


def reconstruction_loss(
    model: BatchedModel,
    x: torch.Tensor,
    importance: torch.Tensor,
    *,
    target: torch.Tensor | None = None,
    per_example: bool = False,
) -> torch.Tensor:
    """Per-instance loss (I,): importance-weighted squared error, averaged
    over batch and features.

    x is a batch (B, I, F) and importance is (I, F); both move to the
    model's device and dtype. The output is compared with `target`, by
    default the model's `target(x)`: x for `ToyModel`, abs(x) for
    `AbsModel`. `per_example=True` keeps each example's loss: (B, I).
    """
    x, importance, target = _util.check_batch(model, x, importance, target)
    per_example = _util.flag(per_example, "per_example")
    out = model.decode(model.encode(x))  # (B, I, F)
    if target is None:
        target = model.target(x)
    err = importance * (out - target).square()  # (I, F) * (B, I, F)
    # the mean over features (and over the batch, unless per example)
    return err.mean(dim=-1) if per_example else err.mean(dim=(0, 2))


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
    sampler: Sampler | None = None,
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
    a (batch_size, instances, features) tensor, and `generator` is a
    `torch.Generator` seeded from `seed` for its draws (e.g.
    `data.finite_sampler` for a fixed training set).

    Snapshots: with `snapshot_every=k`, `(step, {name: tensor on the CPU})`
    is appended to the list `snapshots` after steps k, 2k, ... (counted
    from 1). The numbers are the same as without snapshots.

    `ToyModel` and `AbsModel` take the same steps in `supersim/_fast.py`,
    several times faster, drawing their sparse features their own way;
    `fast=False` runs the loop below for them too (on a sampler's batches
    the two agree up to float rounding). Any other module trains through
    this loop: `supersim.models` says what it must provide.
    """
    run = Run(  # every argument checked, before any work
        model=model, feature_probability=feature_probability, importance=importance,
        steps=steps, batch_size=batch_size, lr=lr, weight_decay=weight_decay,
        schedule=schedule, seed=seed, progress=progress, threads=threads,
        warmup=warmup, sampler=sampler, snapshot_every=snapshot_every,
        snapshots=snapshots, fast=fast,
    )
    with run:  # closes the progress bar however the loop ends
        if fast and type(model) in (ToyModel, AbsModel):  # not subclasses
            return _fast.train(run)  # the same steps, hand-written gradients
        # run.sampler: `sampler`, or data.sparse_sampler(feature_probability)
        opt = torch.optim.AdamW(model.parameters(), lr=lr,
                                weight_decay=weight_decay)
        with _util.num_threads(run.threads_plain):
            for k in range(steps):
                for group in opt.param_groups:
                    group["lr"] = run.lr_at(k)  # warmup, constant or cosine
                x = run.sampler(batch_size, run.generator)  # (B, I, F)
                loss = reconstruction_loss(model, x, run.importance)  # (I,)
                opt.zero_grad(set_to_none=True)
                # instances share no parameter: each gets its own gradient
                loss.sum().backward()
                opt.step()
                run.history[k] = loss.detach()
                run.after_step(k)  # progress bar and snapshots
        opt.zero_grad(set_to_none=True)  # leave no gradients behind
        return run.history.cpu()


@torch.no_grad()
def evaluate(
    model: BatchedModel, *, feature_probability: float | Array,
    importance: float | Array = 1.0, batch_size: int = 100_000, seed: int = 1234,
) -> torch.Tensor:
    """Per-instance loss (instances,) on one large fresh batch: the number to compare restarts by.

    The batch comes from `data.sparse_sampler` with a generator seeded with `seed`, in pieces
    of a few million entries, so that a big sweep needs no gigabytes of memory.
    """
    model = _util.model_of(model)
    batch_size = _util.size(batch_size, "batch_size")
    seed = _util.seed(seed)
    p, imp = per_instance(model, feature_probability, importance)
    sampler = sparse_sampler(p, *p.shape, signed=bool(model.signed_inputs), device=p.device)
    gen = torch.Generator(device=p.device).manual_seed(seed)
    rows = max(1, min(batch_size, _PIECE_ENTRIES // p.numel()))
    total = 0.0
    for start in range(0, batch_size, rows):
        n = min(rows, batch_size - start)
        x = _instances_major(sampler(n, gen))  # (n, I, F)
        total = total + reconstruction_loss(model, x, imp) * n
    return (total / batch_size).cpu()


def _instances_major(x: torch.Tensor) -> torch.Tensor:
    """The same (B, I, F) batch, stored instance by instance: each instance's (B, F) block
    is then contiguous, as the per-instance matmuls of `encode` and `decode` read it (about
    twice as fast on a big batch)."""
    return x.transpose(0, 1).contiguous().transpose(0, 1)


def best_of_restarts(loss: Array, n_restarts: int) -> torch.Tensor:
    """Indices of the lowest-loss instance in each group of `n_restarts` consecutive instances.

    Lay a sweep out as instance = config * n_restarts + restart; the result indexes the
    instances axis, one winner per config, as the paper kept the best of several fits.
    """
    n_restarts = _util.size(n_restarts, "n_restarts")
    loss = _util.float_tensor(loss, "loss", min_dim=1, max_dim=1, shape="1-D, one per instance")
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
    model = _util.model_of(model, cls=ToyModel)
    if model.n_features > 12:
        raise ValueError(f"model.n_features must be at most 12 (2^n active sets), "
                         f"got {model.n_features}")
    batch_size = _util.size(batch_size, "batch_size")
    gen = _util.generator(seed)
    p, imp = per_instance(model, feature_probability, importance)
    p = p.double().cpu()
    # drawn instances-first, as the draws always were, so that a seed keeps its numbers
    shape = (model.n_instances, batch_size, model.n_features)
    values = torch.rand(shape, generator=gen).to(imp.device).transpose(0, 1)  # (B, I, F)
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
    model = _util.model_of(model)
    batch_size = _util.size(batch_size, "batch_size")
    seed = _util.seed(seed)
    p, imp = per_instance(model, feature_probability, importance)
    sampler = sparse_sampler(p, *p.shape, signed=bool(model.signed_inputs), same_draws=True,
                             device=p.device)
    gen = torch.Generator(device=p.device).manual_seed(seed)
    x = _instances_major(sampler(batch_size, gen))  # (B, I, F)
    return reconstruction_loss(model, x, imp).cpu()
