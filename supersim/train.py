"""One training loop for every toy model: batched instances, AdamW, seeds, progress, devices.

The setup follows the notebook of Elhage et al. (2022): AdamW with lr 1e-3 and weight decay
0.01, batches of 1024 fresh sparse samples, 10,000 steps, and an importance-weighted squared
error averaged over batch and features, summed over instances (so instances train
independently of one another). Chapter 4 explains the loss.

For these tiny models the cost of a step is mostly overhead, so the loop avoids it: gradients
are written out by hand for the book's models (checked against autograd in the tests), data
are drawn with one uniform number per entry, and the thread count is chosen per model size.
Any other module with `_forward` and `target` trains through autograd.

Shapes: B = batch, I = instances, F = features, H = hidden.
"""

from __future__ import annotations

import contextlib
import numbers
import os
import queue
import threading

import numpy as np
import torch

from .data import _check_size, per_instance_feature
from .models import AbsModel, ToyModel

SCHEDULES = ("constant", "cosine")


def _sample_ibf(batch_size: int, p: torch.Tensor, signed: bool, gen, u=None) -> torch.Tensor:
    """Sparse features in the loop's (I, B, F) layout; p is (I, F); u optional uniforms."""
    if u is None:
        u = torch.rand((p.shape[0], batch_size, p.shape[1]), generator=gen, device=p.device)
    p = p.unsqueeze(1)  # (I, 1, F)
    value = u / p.clamp_min(1e-12)  # uniform on [0, 1) where active
    if signed:
        value = 2 * value - 1
    return torch.where(u < p, value, torch.zeros((), device=p.device))  # (I, B, F)


class _UniformStream:
    """Uniform (I, B, F) batches made by a background thread, one batch ahead of training.

    Random numbers are a large share of a step on the CPU; numpy fills arrays without holding
    the GIL, so the draws for the next step overlap this step's arithmetic. One producer and
    a fixed seed keep the sequence deterministic.
    """

    def __init__(self, shape: tuple[int, ...], steps: int, seed: int):
        self._queue: queue.Queue = queue.Queue(maxsize=2)
        self._stop = threading.Event()
        rng = np.random.Generator(np.random.PCG64(seed))

        def produce():
            for _ in range(steps):
                if self._stop.is_set():
                    return
                u = rng.random(shape, dtype=np.float32)
                while not self._stop.is_set():
                    try:
                        self._queue.put(torch.from_numpy(u), timeout=0.1)
                        break
                    except queue.Full:
                        continue

        self._thread = threading.Thread(target=produce, daemon=True)
        self._thread.start()

    def next(self) -> torch.Tensor:
        return self._queue.get()

    def close(self) -> None:
        self._stop.set()
        self._thread.join()


def loss_and_grads(model, x: torch.Tensor, importance: torch.Tensor):
    """Per-instance loss (I,) and gradients for every parameter, x in (I, B, F) layout.

    L_k = mean over batch and features of I_kf (y - x')^2, with the gradients of sum_k L_k.
    """
    scale = 2.0 / (x.shape[1] * x.shape[2])
    imp = importance.unsqueeze(1)  # (I, 1, F)
    if isinstance(model, ToyModel):
        W, b = model.W.detach(), model.b.detach()
        h_pre = torch.bmm(x, W.transpose(1, 2))  # (I, B, H)
        h = torch.relu(h_pre) if model.hidden_relu else h_pre
        pre = torch.baddbmm(b.unsqueeze(1), h, W)  # (I, B, F)
        out = torch.relu(pre) if model.activation == "relu" else pre
        err = out - x
        loss = (imp * err.square()).mean(dim=(1, 2))  # (I,)
        d_pre = err.mul_(imp).mul_(scale)  # dL/dout, reusing err's memory
        if model.activation == "relu":
            d_pre = d_pre.mul_(pre > 0)
        d_h = torch.bmm(d_pre, W.transpose(1, 2))  # (I, B, H)
        if model.hidden_relu:
            d_h = d_h.mul_(h_pre > 0)
        # W is used twice (encode and decode): the two contributions add
        d_W = torch.bmm(h.transpose(1, 2), d_pre)  # (I, H, F)
        d_W = torch.baddbmm(d_W, d_h.transpose(1, 2), x)
        return loss, {"W": d_W, "b": d_pre.sum(1)}
    if isinstance(model, AbsModel):
        W1, W2, b = model.W1.detach(), model.W2.detach(), model.b.detach()
        h_pre = torch.bmm(x, W1.transpose(1, 2))  # (I, B, H)
        h = torch.relu(h_pre)
        pre = torch.baddbmm(b.unsqueeze(1), h, W2.transpose(1, 2))  # (I, B, F)
        err = torch.relu(pre) - x.abs()
        loss = (imp * err.square()).mean(dim=(1, 2))
        d_pre = err.mul_(imp).mul_(scale).mul_(pre > 0)
        d_h = torch.bmm(d_pre, W2).mul_(h_pre > 0)  # (I, B, H)
        return loss, {
            "W1": torch.bmm(d_h.transpose(1, 2), x),  # (I, H, F)
            "W2": torch.bmm(d_pre.transpose(1, 2), h),  # (I, F, H)
            "b": d_pre.sum(1),
        }
    raise TypeError(f"no hand-written gradients for {type(model).__name__}")


def _autograd_loss(model, x: torch.Tensor, importance: torch.Tensor) -> torch.Tensor:
    out = model._forward(x)
    return (importance.unsqueeze(1) * (out - model.target(x)).square()).mean(dim=(1, 2))


def _auto_threads(model, batch_size: int) -> int:
    # Small models are bound by per-op overhead, where a second thread only adds
    # synchronisation (and collapses when the other core is busy); big ones are compute bound.
    work = batch_size * model.n_instances * model.n_features * getattr(model, "d_hidden", 1)
    return 1 if work < 2_000_000 else torch.get_num_threads()


@contextlib.contextmanager
def _num_threads(n: int):
    old = torch.get_num_threads()
    torch.set_num_threads(n)
    try:
        yield
    finally:
        torch.set_num_threads(old)


def _want_progress(progress) -> bool:
    if progress is not None:
        return bool(progress)
    # The book's build and test commands set SUPERSIM_PROGRESS=0 to keep bars out of pages.
    return os.environ.get("SUPERSIM_PROGRESS", "1").lower() not in ("0", "false", "no")


def train(
    model,
    *,
    feature_probability,
    importance=1.0,
    steps: int = 10_000,
    batch_size: int = 1024,
    lr: float = 1e-3,
    weight_decay: float = 0.01,
    schedule: str = "constant",
    seed: int = 0,
    progress: bool | None = None,
    threads: int | None = None,
) -> torch.Tensor:
    """Train `model` in place on sparse features; return the (steps, instances) loss history.

    `feature_probability` (1 - S) and `importance` broadcast to (instances, features), e.g. a
    (instances, 1) column of densities for a sparsity sweep. Same seed, same result.
    `progress=None` shows a bar unless the environment sets SUPERSIM_PROGRESS=0.
    """
    steps = _check_size(steps, "steps")
    batch_size = _check_size(batch_size, "batch_size")
    for name, value in (("lr", lr), ("weight_decay", weight_decay)):
        if not isinstance(value, numbers.Real) or not value >= 0 or value == float("inf"):
            raise ValueError(f"{name} must be a finite number >= 0, got {value!r}")
    if schedule not in SCHEDULES:
        raise ValueError(f"schedule must be one of {SCHEDULES}, got {schedule!r}")
    if isinstance(seed, bool) or not isinstance(seed, numbers.Integral):
        raise ValueError(f"seed must be an integer, got {seed!r}")
    if threads is not None:
        threads = _check_size(threads, "threads")
    if not hasattr(model, "_forward") or not hasattr(model, "n_instances"):
        raise ValueError(f"model must be a supersim model, got {type(model).__name__}")
    device = next(model.parameters()).device
    shape = (model.n_instances, model.n_features)
    p = per_instance_feature(feature_probability, *shape, name="feature_probability", high=1.0)
    imp = per_instance_feature(importance, *shape, name="importance")
    p, imp = p.to(device), imp.to(device)

    gen = torch.Generator(device=device).manual_seed(int(seed))
    params = dict(model.named_parameters())
    manual = isinstance(model, (ToyModel, AbsModel))
    opt = torch.optim.AdamW(
        params.values(), lr=lr, weight_decay=weight_decay, foreach=True
    )
    sched = None
    if schedule == "cosine":
        sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=steps)
    history = torch.empty(steps, model.n_instances, device=device)

    bar = None
    if _want_progress(progress):
        from tqdm.auto import tqdm

        bar = tqdm(total=steps, desc=type(model).__name__, mininterval=0.5, leave=False)
    cpu = device.type == "cpu"
    stream = _UniformStream((*shape[:1], batch_size, shape[1]), steps, int(seed)) if cpu else None
    n_threads = threads or (_auto_threads(model, batch_size) if cpu else None)
    with _num_threads(n_threads) if n_threads else contextlib.nullcontext():
        for step in range(steps):
            u = stream.next() if cpu else None
            x = _sample_ibf(batch_size, p, model.signed_inputs, gen, u)  # (I, B, F)
            if manual:
                with torch.no_grad():
                    loss, grads = loss_and_grads(model, x, imp)
                for name, g in grads.items():
                    params[name].grad = g
            else:
                opt.zero_grad(set_to_none=True)
                loss = _autograd_loss(model, x, imp)
                loss.sum().backward()
            opt.step()
            if sched is not None:
                sched.step()
            history[step] = loss.detach()
            if bar is not None and step % 100 == 99:
                bar.update(100)
                bar.set_postfix(loss=f"{history[step].mean().item():.4g}", refresh=False)
    if stream is not None:
        stream.close()
    if bar is not None:
        bar.close()
    for prm in params.values():
        prm.grad = None
    return history.cpu()


@torch.no_grad()
def evaluate(model, *, feature_probability, importance=1.0, batch_size: int = 100_000, seed: int = 1234):
    """Per-instance loss (instances,) on one large fresh batch: the number to compare restarts by."""
    batch_size = _check_size(batch_size, "batch_size")
    device = next(model.parameters()).device
    shape = (model.n_instances, model.n_features)
    p = per_instance_feature(feature_probability, *shape, name="feature_probability", high=1.0)
    imp = per_instance_feature(importance, *shape, name="importance")
    gen = torch.Generator(device=device).manual_seed(int(seed))
    x = _sample_ibf(batch_size, p.to(device), model.signed_inputs, gen)
    return _autograd_loss(model, x, imp.to(device)).cpu()


def best_of_restarts(loss: torch.Tensor, n_restarts: int) -> torch.Tensor:
    """Indices of the lowest-loss instance in each group of `n_restarts` consecutive instances.

    Lay a sweep out as instance = config * n_restarts + restart; the result indexes the
    instances axis, one winner per config, as the paper kept the best of several fits.
    """
    n_restarts = _check_size(n_restarts, "n_restarts")
    loss = torch.as_tensor(loss)
    if loss.dim() != 1 or loss.numel() % n_restarts:
        raise ValueError(
            f"loss must be 1-D with a length divisible by n_restarts={n_restarts}, "
            f"got shape {tuple(loss.shape)}"
        )
    groups = loss.view(-1, n_restarts)
    return groups.argmin(dim=1) + torch.arange(groups.shape[0]) * n_restarts
