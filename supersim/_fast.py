"""The fast path of `supersim.training.train`: the same steps, with the overhead taken out.

`training.train` hands `ToyModel` and `AbsModel` here. The steps are those of the plain loop
in `supersim/training.py`: the same loss and AdamW updates (`tests/test_train.py` trains both
ways on one sampler's batches and compares). The batches are a caller's sampler's, or fresh
sparse features of the same distribution as `data.sparse_sampler`'s, drawn here a faster way
(also tested). For these tiny models a step costs little arithmetic and much overhead, so
this loop avoids the overhead (`benchmarks/bench_train.py` measures it against the usual
loop):

- gradients are written out by hand for the book's models (checked against autograd in the
  tests), so there is no autograd graph to build;
- activations live in an (instances, features, batch) layout, where every elementwise pass
  runs along the long batch axis and broadcasts per-feature constants cheaply (the one place
  in the package that uses a layout other than the public (batch, instances, features));
- one uniform draw per entry makes a sparse feature (active when u < p, value u / p), fused
  into two passes;
- the instances are cut into chunks small enough for the processor's cache, and each chunk
  has its own random stream (numpy's PCG64, drawn one step ahead on a spare thread) and its
  own fused AdamW update, so chunks can run on separate threads without changing a single
  number, and no thread ever waits at an OpenMP barrier for a core another program holds.

Shapes: B = batch, I = instances, F = features, H = hidden.
"""

from __future__ import annotations

import math
import threading
from typing import TYPE_CHECKING

import numpy as np
import torch
import torch.nn.functional as F

from . import _util
from .models import AbsModel, ToyModel

if TYPE_CHECKING:
    from . import _setup

BETAS, EPS = (0.9, 0.999), 1e-8  # torch's AdamW defaults, as in the paper's notebook

# One chunk's (features, batch) activations stay near this size, so that the dozen passes of
# a step hit the cache (L2 is 0.5-2 MiB per core on current CPUs) instead of main memory.
_CHUNK_BYTES = 1 << 19

_threshold_backward = torch.ops.aten.threshold_backward  # grad where input > threshold, else 0


def _neg_features(u: torch.Tensor, scale: torch.Tensor, signed: bool, on) -> torch.Tensor:
    """-x in (I, F, B) layout from uniforms u, with scale = -1/p (or -2/p when signed).

    t = -u/p (or 1 - 2u/p) lies in (-1, 0] (or (-1, 1]) exactly when u < p, so one threshold
    pass zeroes the inactive entries; keeping -x rather than x saves a pass, and the matmuls
    absorb the sign.
    """
    t = torch.addcmul(scale.new_ones(()), u, scale) if signed else u * scale
    xn = F.threshold_(t, -1.0, 0.0)  # (I, F, B)
    return xn if on is None else xn.mul_(on)  # on: features with p = 0 stay off


def _weighted_sq_norm(err: torch.Tensor, imps: torch.Tensor, out: torch.Tensor) -> None:
    """out (I,) = sum over features and batch of imps * err^2, reading err (I, F, B) once."""
    norm = torch.linalg.vector_norm(err, dim=2)  # (I, F)
    torch.linalg.vecdot(norm.square(), imps.reshape(norm.shape), out=out)


def _toy_grads(W, b, xn, imps, relu_out: bool, hidden_relu: bool, loss2, gW, gb) -> None:
    """ToyModel: write 2 x per-instance loss into loss2 (I,) and the gradients into gW, gb.

    x' = act(W^T h + b) with h = W x (ReLU'd if `hidden_relu`); L = mean_{B,F} I_f (x' - x)^2.
    imps is (I, F, 1) importance times 2 / (B F), so g below is dL/dx'.
    """
    h = torch.bmm(W.neg(), xn)  # (I, H, B) = W x
    if hidden_relu:
        h = h.relu_()
    pre = torch.baddbmm(b.unsqueeze(2), W.transpose(1, 2), h)  # (I, F, B)
    err = torch.relu(pre).add_(xn) if relu_out else pre.add(xn)  # x' - x
    _weighted_sq_norm(err, imps, loss2)
    g = err * imps  # dL/dx'
    d_pre = _threshold_backward(g, pre, 0) if relu_out else g
    d_h = torch.bmm(W, d_pre)  # (I, H, B)
    if hidden_relu:
        d_h = _threshold_backward(d_h, h, 0)
    # W is used twice (decode and encode): dW = h d_pre^T + d_h x^T
    torch.bmm(h, d_pre.transpose(1, 2), out=gW)  # (I, H, F)
    gW.baddbmm_(d_h, xn.transpose(1, 2), alpha=-1)
    torch.sum(d_pre, 2, out=gb)  # (I, F)


def _abs_grads(W1, W2, b, xn, imps, loss2, gW1, gW2, gb, leak: float = 0.0) -> None:
    """AbsModel: y = ReLU(W2 ReLU(W1 x) + b) against |x|; same conventions as `_toy_grads`.

    With `leak` > 0 the output is a leaky ReLU: slope `leak` below zero (`AbsModel.leak`).
    """
    h = torch.bmm(W1.neg(), xn).relu_()  # (I, H, B)
    pre = torch.baddbmm(b.unsqueeze(2), W2, h)  # (I, F, B)
    y = torch.relu(pre) if leak == 0 else F.leaky_relu(pre, leak)
    err = y.sub_(xn.abs())  # y - |x|
    _weighted_sq_norm(err, imps, loss2)
    g = err * imps
    if leak == 0:
        d_pre = _threshold_backward(g, pre, 0)
    else:  # g where pre > 0, leak * g elsewhere
        d_pre = torch.where(pre > 0, g, g * leak)
    d_h = _threshold_backward(torch.bmm(W2.transpose(1, 2), d_pre), h, 0)  # (I, H, B)
    torch.bmm(d_h, xn.transpose(1, 2), out=gW1)  # (I, H, F), = -dW1 since xn = -x
    gW1.neg_()
    torch.bmm(d_pre, h.transpose(1, 2), out=gW2)  # (I, F, H)
    torch.sum(d_pre, 2, out=gb)


def _param_names(model) -> tuple[str, ...]:
    return ("W1", "W2", "b") if isinstance(model, AbsModel) else ("W", "b")


def _kernel(model):
    """The hand-written loss-and-gradient function for `model`: (params, xn, imps, loss2, grads)."""
    if isinstance(model, AbsModel):
        leak = model.leak  # read once: a run trains with the leak it started with
        return lambda prm, xn, imps, loss2, grads: _abs_grads(*prm, xn, imps, loss2, *grads, leak=leak)
    relu_out, hidden_relu = model.activation == "relu", model.hidden_relu
    return lambda prm, xn, imps, loss2, grads: _toy_grads(
        *prm, xn, imps, relu_out, hidden_relu, loss2, *grads
    )


def loss_and_grads(
    model: ToyModel | AbsModel, x: torch.Tensor, importance: torch.Tensor
) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
    """Per-instance loss (I,) and the gradients of their sum for every parameter, by hand.

    x is a batch (B, I, F) and importance is (I, F), both moved to the model's device and
    dtype; the loss is `training.reconstruction_loss`, the gradients what autograd would give
    for it. Works for `ToyModel` and `AbsModel` (exactly those classes: a subclass may change
    the forward pass).
    """
    if type(model) not in (ToyModel, AbsModel):
        raise ValueError(f"model must be a ToyModel or an AbsModel (the models with hand-written "
                         f"gradients), got {type(model).__name__}")
    x, importance, _ = _util.check_batch(model, x, importance)
    batch, n_inst, n_feat = x.shape
    xn = x.detach().permute(1, 2, 0).neg().contiguous()  # -x, (I, F, B)
    imps = importance.unsqueeze(2) * (2.0 / (batch * n_feat))  # (I, F, 1)
    names = _param_names(model)
    params = [getattr(model, n).detach() for n in names]
    grads = [torch.empty_like(t) for t in params]
    loss2 = x.new_empty(n_inst)
    with torch.no_grad():
        _kernel(model)(params, xn, imps, loss2, grads)
    return loss2 / 2, dict(zip(names, grads, strict=True))


def _stream_seed(seed: int, stream: int) -> int:
    """A 63-bit seed for random stream `stream` of a run with `seed` (a checked seed >= 0).

    The middle 0 of the entropy once marked a negative seed; it stays so that every seed
    keeps the streams, and hence the numbers, it always had.
    """
    ss = np.random.SeedSequence([seed, 0, stream])
    return int(ss.generate_state(1, np.uint64)[0] >> np.uint64(1))


class _Uniforms:
    """A reusable (I, F, B) buffer of fresh U[0, 1) numbers per call, from one seeded stream.

    On the CPU numpy's PCG64 fills it about three times faster than `torch.rand`, without
    holding the GIL; elsewhere torch's generator on the device does.
    """

    def __init__(self, shape: tuple[int, ...], seed: int, device: torch.device):
        self.shape, self._device = shape, device
        if device.type == "cpu":
            self._rng = np.random.Generator(np.random.PCG64(seed))
            self._buf = np.empty(shape, dtype=np.float32)
            self._tensor = torch.from_numpy(self._buf)
        else:
            self._gen = torch.Generator(device=device).manual_seed(seed)

    def fill(self, out: np.ndarray) -> None:
        """Write the stream's next numbers into `out` (CPU only)."""
        self._rng.random(out=out, dtype=np.float32)

    def draw(self) -> torch.Tensor:
        if self._device.type == "cpu":
            self.fill(self._buf)
            return self._tensor
        return torch.rand(self.shape, generator=self._gen, device=self._device)


class _Prefetch:
    """Draws the uniforms of a group of chunks one step ahead, on a background thread.

    Drawing is a third of a small model's step; numpy releases the GIL while it fills, so
    on a spare core it overlaps the arithmetic. Each chunk keeps its own stream, so the
    numbers are the same as when the chunk draws them itself.
    """

    def __init__(self, chunks: list, steps: int, depth: int = 2):
        self._slots = [[np.empty(c.uniforms.shape, np.float32) for c in chunks] for _ in range(depth)]
        self._tensors = [[torch.from_numpy(b) for b in slot] for slot in self._slots]
        self._free, self._full = threading.Semaphore(depth), threading.Semaphore(0)
        self._stop = threading.Event()
        self._error: BaseException | None = None

        def produce():
            try:
                for k in range(steps):
                    while not self._free.acquire(timeout=0.1):
                        if self._stop.is_set():
                            return
                    if self._stop.is_set():
                        return
                    for c, buf in zip(chunks, self._slots[k % depth], strict=True):
                        c.uniforms.fill(buf)
                    self._full.release()
            except BaseException as err:  # noqa: B036 - re-raised in the training thread
                self._error = err
                self._full.release()

        self._thread = threading.Thread(target=produce, daemon=True)
        self._thread.start()

    def get(self, k: int) -> list[torch.Tensor]:
        """Step k's uniforms, one tensor per chunk; hand the slot back with `release`."""
        self._full.acquire()
        if self._error is not None:
            raise self._error
        return self._tensors[k % len(self._tensors)]

    def release(self) -> None:
        self._free.release()

    def close(self) -> None:
        self._stop.set()
        self._thread.join()


_FUSED: dict[str, bool] = {}  # device type -> whether the fused kernel works there


def _fused_adamw_works(device: torch.device) -> bool:
    """Whether this torch has a working fused AdamW kernel for `device` (CPU: torch >= 2.4).

    `torch._fused_adamw_` is private, so any torch release may rename it or change its
    arguments: whatever goes wrong in the probe (any exception, or a result that differs from
    the plain update) means the plain update, never a crash. The answer is cached per device.
    """
    if device.type in _FUSED:
        return _FUSED[device.type]
    ok = False
    try:
        prm = [torch.tensor([1.0, -2.0], device=device)]
        grad = [torch.tensor([0.5, 0.25], device=device)]
        moments = [torch.zeros(2, device=device) for _ in range(4)]
        steps = [torch.zeros((), device=device) for _ in range(2)]
        want = [prm[0].clone()]
        _adamw(want, grad, moments[:1], moments[1:2], steps[:1], 1, 1e-3, 0.01, fused=False)
        steps[1].add_(1)
        torch._fused_adamw_(
            prm, grad, moments[2:3], moments[3:4], [], steps[1:],
            lr=1e-3, beta1=BETAS[0], beta2=BETAS[1], weight_decay=0.01, eps=EPS,
            amsgrad=False, maximize=False,
        )
        ok = bool(torch.allclose(prm[0], want[0], rtol=1e-5, atol=1e-7))
    except Exception:  # noqa: BLE001 - a private op: any failure means "use the plain update"
        ok = False
    _FUSED[device.type] = ok
    return ok


class _Features:
    """Sparse features -x in (c, F, B) layout for a slice of instances, from its own stream."""

    def __init__(self, p: torch.Tensor, signed: bool, batch_size: int, seed: int):
        p = p.unsqueeze(2)  # (c, F, 1)
        self.signed = signed
        self.scale = -(2.0 if signed else 1.0) / p.clamp_min(1e-30)
        self.on = (p > 0).float() if bool((p == 0).any()) else None
        self.uniforms = _Uniforms((p.shape[0], p.shape[1], batch_size), seed, p.device)

    def draw(self, u: torch.Tensor | None = None) -> torch.Tensor:
        """-x (c, F, B) from the uniforms u (drawn from the stream when None)."""
        u = self.uniforms.draw() if u is None else u
        return _neg_features(u, self.scale, self.signed, self.on)


class _Chunk:
    """A slice of instances with its own random stream, work buffers and AdamW state.

    Its parameters are views into the model's, so updating them trains the model in place.
    """

    def __init__(self, model, rows: slice, p, imp, batch_size, seed, history, fused, wd):
        device = imp.device
        self.rows, self.history, self.fused, self.wd = rows, history, fused, wd
        self.params = [getattr(model, n).detach()[rows] for n in _param_names(model)]
        self.grads = [torch.empty_like(t) for t in self.params]
        self.exp_avg = [torch.zeros_like(t) for t in self.params]
        self.exp_avg_sq = [torch.zeros_like(t) for t in self.params]
        step_count = torch.zeros((), device=device)  # shared: one increment per step
        self.state_steps = [step_count] * len(self.params)
        self.t = 0
        n_feat = imp.shape[1]
        self.imps = imp[rows].unsqueeze(2) * (2.0 / (batch_size * n_feat))  # (c, F, 1)
        self.kernel = _kernel(model)
        self.features = self.uniforms = None  # a sampler's batches come in through `step`
        if p is not None:
            self.features = _Features(p[rows], bool(model.signed_inputs), batch_size, seed)
            self.uniforms = self.features.uniforms

    def step(self, k: int, lr: float, u: torch.Tensor | None = None, xn=None) -> None:
        """Train step k on uniforms u (drawn here when None), or on the batch -x given as xn."""
        if xn is None:
            xn = self.features.draw(u)
        self.kernel(self.params, xn, self.imps, self.history[k, self.rows], self.grads)
        self.t += 1
        _adamw(self.params, self.grads, self.exp_avg, self.exp_avg_sq, self.state_steps, self.t,
               lr, self.wd, self.fused)


def _adamw(params, grads, exp_avg, exp_avg_sq, state_steps, t: int, lr, wd, fused: bool) -> None:
    """One AdamW update in place, step t (1-based), as `torch.optim.AdamW` computes it.

    `state_steps` holds one 0-dim tensor per parameter (they may all be one tensor) with the
    step count before this update, as the fused kernel wants it.
    """
    if fused:  # one kernel for every parameter
        for count in {id(c): c for c in state_steps}.values():
            count.add_(1)
        torch._fused_adamw_(
            params, grads, exp_avg, exp_avg_sq, [], state_steps,
            lr=lr, beta1=BETAS[0], beta2=BETAS[1], weight_decay=wd, eps=EPS,
            amsgrad=False, maximize=False,
        )
        return
    # written out for torch < 2.4, which has no fused kernel on the CPU
    c1, c2 = 1 - BETAS[0] ** t, math.sqrt(1 - BETAS[1] ** t)
    for prm, g, m, v in zip(params, grads, exp_avg, exp_avg_sq, strict=True):
        prm.mul_(1 - lr * wd)
        m.lerp_(g, 1 - BETAS[0])
        v.mul_(BETAS[1]).addcmul_(g, g, value=1 - BETAS[1])
        prm.addcdiv_(m, v.sqrt().div_(c2).add_(EPS), value=-lr / c1)


def _chunk_rows(n_instances: int, n_features: int, batch_size: int, device) -> list[slice]:
    """Split the instances into equal chunks of about `_CHUNK_BYTES` of activations each."""
    if device.type != "cpu":
        return [slice(0, n_instances)]  # a GPU wants one big batched call
    per_chunk = max(1, _CHUNK_BYTES // (4 * n_features * batch_size))
    n = -(-n_instances // per_chunk)
    bounds = [round(j * n_instances / n) for j in range(n + 1)]
    return [slice(a, z) for a, z in zip(bounds[:-1], bounds[1:], strict=True)]


def _split(chunks: list, n_groups: int) -> list[list]:
    """Contiguous groups of chunks, as equal in size as possible."""
    bounds = [round(j * len(chunks) / n_groups) for j in range(n_groups + 1)]
    return [chunks[a:z] for a, z in zip(bounds[:-1], bounds[1:], strict=True)]


def _run(groups: list[list], steps: int, lr_at, on_step, prefetch: bool, feed=None) -> None:
    """Run every group of chunks for `steps` steps, one thread per group after the first.

    With `prefetch`, a background thread draws the (single) group's random numbers; with
    `feed` (one group only), step k trains on the batch -x = feed(k), (I, F, B), instead.
    """
    stop = threading.Event()
    errors: list[BaseException] = []

    def loop(chunks, report):
        ahead = _Prefetch(chunks, steps) if prefetch else None
        try:
            for k in range(steps):
                if stop.is_set():
                    return
                lr = lr_at(k)
                if feed is not None:
                    xn = feed(k)  # (I, F, B)
                    for chunk in chunks:
                        chunk.step(k, lr, xn=xn[chunk.rows])
                elif ahead is None:
                    for chunk in chunks:
                        chunk.step(k, lr)
                else:
                    for chunk, u in zip(chunks, ahead.get(k), strict=True):
                        chunk.step(k, lr, u)
                    ahead.release()
                if report is not None:
                    report(k)
        except BaseException as err:  # noqa: B036 - handed to the main thread below
            errors.append(err)
            stop.set()
        finally:
            if ahead is not None:
                ahead.close()

    workers = [threading.Thread(target=loop, args=(g, None), daemon=True) for g in groups[1:]]
    for w in workers:
        w.start()
    try:
        loop(groups[0], on_step)
    except BaseException:  # e.g. KeyboardInterrupt in a notebook: stop the workers too
        stop.set()
        raise
    finally:
        for w in workers:
            w.join()
    if errors:
        raise errors[0]


def train(run: _setup.Run) -> torch.Tensor:
    """Run the checked training `run` (a `_setup.Run`) of a ToyModel or AbsModel.

    Fills `run.history` (steps, I) with each step's loss and returns it on the CPU.
    """
    model, device, history = run.model, run.device, run.history
    shape = (model.n_instances, model.n_features)
    rows = _chunk_rows(*shape, run.batch_size, device)
    fused = _fused_adamw_works(device)
    chunks = [
        _Chunk(model, r, run.p, run.importance, run.batch_size, _stream_seed(run.seed, j),
               history, fused, run.weight_decay)
        for j, r in enumerate(rows)
    ]
    cpu = device.type == "cpu"
    # about five (I, F, B) x H matmuls and eight elementwise passes per step
    work = run.batch_size * model.n_instances * model.n_features * (5 * model.d_hidden + 8)
    threads = _util.threads_for(work, run.threads)
    n_groups = min(threads, len(chunks)) if cpu else 1
    feed = None
    if run.p is None:  # the caller's sampler: its batches, from the run's generator
        def feed(k: int) -> torch.Tensor:
            x = run.sampler(run.batch_size, run.generator)  # (B, I, F)
            return x.permute(1, 2, 0).neg().contiguous()  # -x, (I, F, B)

    # Snapshots and a sampler's batches need every chunk at the same step: one worker.
    # Chunks give the same numbers in any grouping, so this changes speed, not results.
    if run.snapshot_every is not None or feed is not None:
        n_groups = 1
    # a spare thread draws the random numbers ahead of a lone worker
    all_threads = run.threads or torch.get_num_threads()
    prefetch = cpu and n_groups == 1 and all_threads > 1 and feed is None
    # Each worker thread runs its chunks single-threaded: no OpenMP barriers to stall on.
    groups = _split(chunks, n_groups)
    # the bar runs in the first group's thread, and the kernels record 2 x loss
    run.watch(slice(0, groups[0][-1].rows.stop), scale=0.5)
    with _util.num_threads(1 if cpu else None):
        _run(groups, run.steps, run.lr_at, run.after_step, prefetch, feed)
    history.mul_(0.5)
    return history.cpu()


# `snapshot_losses` works on pieces of about this many (snapshot, feature, example) entries,
# small enough for the processor's cache
_SNAPSHOT_PIECE = 1 << 18


@torch.no_grad()
def snapshot_losses(
    model: ToyModel | AbsModel, stacked: dict[str, torch.Tensor], x: torch.Tensor,
    importance: torch.Tensor,
) -> torch.Tensor:
    """`reconstruction_loss` (S, I) of S parameter sets on one checked batch, without a model.

    `stacked` maps each parameter name to its S values stacked in front (S, ...); x (B, I, F)
    and importance (I, F) are checked and on the model's device and dtype (`dynamics.
    snapshot_losses` checks them once). Each instance is taken alone, in cache-sized pieces
    of snapshots and examples laid out (snapshots, features, batch), so the elementwise
    passes run along the batch in cache. The numbers equal the loop over snapshots up to
    float rounding (the sums run in another order; `tests/test_dynamics.py` compares).
    Exactly `ToyModel` and `AbsModel` (a subclass may change the forward pass).
    """
    batch, n_inst, n_feat = x.shape
    like = x.new_empty(())
    params = [stacked[n].to(like) for n in _param_names(model)]  # each (S, I, ...)
    n_snap = params[0].shape[0]
    rows = min(batch, max(64, _SNAPSHOT_PIECE // n_feat))  # examples per piece
    step = max(1, _SNAPSHOT_PIECE // (n_feat * rows))  # snapshots per piece
    signed = isinstance(model, AbsModel)
    relu_out = signed or model.activation == "relu"
    hidden_relu = signed or model.hidden_relu
    out = x.new_zeros(n_snap, n_inst)

    def instance(i: int) -> None:
        xs = [c.t().contiguous() for c in x[:, i].split(rows)]  # pieces (F, rows)
        imp = importance[i] / (batch * n_feat)  # (F,)
        for lo in range(0, n_snap, step):
            p = [t[lo : lo + step, i] for t in params]
            if signed:  # h = ReLU(W1 x), pre = W2 h + b
                w_in, w_out, b = p
            else:  # h = W x (ReLU'd if hidden_relu), pre = W^T h + b
                w_in, b = p
                w_out = w_in.transpose(1, 2).contiguous()
            b = b.unsqueeze(2)
            for xp in xs:
                h = torch.matmul(w_in, xp)  # (k, H, rows)
                if hidden_relu:
                    h = h.relu_()
                pre = torch.baddbmm(b, w_out, h)  # (k, F, rows)
                err = (pre.relu_() if relu_out else pre).sub_(xp.abs() if signed else xp)
                sq = torch.linalg.vector_norm(err, dim=2).square()  # (k, F)
                out[lo : lo + step, i] += sq @ imp

    # like `train`: one torch thread per Python thread on the CPU (the pieces are too small
    # for OpenMP to pay, and its barriers can wait for a core another program holds); each
    # thread takes whole instances, so the numbers do not depend on the threads
    cpu = x.device.type == "cpu"
    n_groups = min(torch.get_num_threads(), n_inst) if cpu else 1
    errors: list[BaseException] = []

    def group(g: int) -> None:
        try:
            for i in range(g, n_inst, n_groups):
                instance(i)
        except BaseException as err:  # noqa: B036 - raised in the calling thread below
            errors.append(err)

    with _util.num_threads(1 if cpu else None):
        workers = [threading.Thread(target=group, args=(g,), daemon=True) for g in range(1, n_groups)]
        for w in workers:
            w.start()
        try:
            group(0)
        finally:
            for w in workers:
                w.join()
    if errors:
        raise errors[0]
    return out
