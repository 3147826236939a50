"""The set-up of one call of `sae.train_sae`, and its fast path: the same steps, by hand.

`Run` is one call of `train_sae` with its arguments checked before any work: the data and
their batches, the log, the count of steps since each latent fired, the restarts of dead
latents (Bricken et al. 2023) and the progress bar. The plain loop in `supersim/sae.py` and
`train` below share it, so both draw the same batches and keep the same books.

`train` takes the plain loop's steps for the kinds of `SparseAutoencoder` with the gradients
of sum_i (mse_i + penalty_i) written out by hand (`loss_and_grads`): for SAEs this small a
step is mostly overhead, and autograd's bookkeeping is a large share of it. For TopK, the
latents a TopK drops get no gradient, like a ReLU's zeros, so when they are the vast majority
only the kept ones are computed (`_topk_loss_and_grads`; with k above 1/32 of the latents its
gathers cost more than they save). `tests/test_sae.py` checks the gradients against autograd
and this loop against the plain one; `benchmarks/bench_sae.py` measures the two TopK steps.

Inside this module a batch is instances-first, (I, B, D), so that each instance is one
matmul of a batched product; the public layout is (B, I, D).

Shapes: B = batch, I = instances, D = d_in, S = d_sae, K = the most latents a TopK keeps.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import torch
import torch.nn.functional as F

from . import _util

if TYPE_CHECKING:
    from .sae import SparseAutoencoder

KINDS = ("l1", "topk")  # the kinds of SparseAutoencoder whose gradients are written out here
_LOGGED = ("loss", "mse", "l0", "dead_fraction")
_NOT_RESTARTED = ("jumprelu", "gated")  # kinds with per-latent parameters `_resample` does not reset


def _dataset(sae: SparseAutoencoder, activations) -> torch.Tensor:
    """Checked activations on the SAE's device and dtype: (N, D) -> (N, 1, D), shared; or (N, I, D)."""
    n, d = sae.n_instances, sae.d_in
    data = _util.float_tensor(activations, "activations", min_dim=2, max_dim=3,
                              shape=f"(samples, {d}) or (samples, {n}, {d})")
    data = data.to(device=sae.W_dec.device, dtype=sae.W_dec.dtype)
    if data.dim() == 2 and data.shape[1] == d:
        return data.unsqueeze(1)  # one dataset for every instance
    if data.dim() == 3 and tuple(data.shape[1:]) == (n, d):
        return data
    raise ValueError(
        f"activations must have shape (samples, {d}) or (samples, {n}, {d}), got {tuple(data.shape)}"
    )


class Run:
    """One call of `train_sae`, its arguments checked before any work is done.

    Holds what both loops need: `batch()` draws the next batch, `after_step` (plain loop) or
    `record` (fast path) keep the books after each step, `results()` gives `SAELog`'s fields.
    Used as a context manager, it puts the SAE in training mode, and on the way out closes the
    progress bar and leaves the SAE in eval mode.
    """

    def __init__(self, sae: SparseAutoencoder, activations, *, steps, batch_size, lr, resample_every,
                 dead_window, seed, progress, threads, fast):
        bad = [name for name, p in sae.named_parameters() if not bool(torch.isfinite(p).all())]
        if bad:
            raise ValueError(f"sae must have finite parameters, got NaN or inf in {bad}")
        self.sae, self.data = sae, _dataset(sae, activations)  # (N, 1 or I, D)
        self.steps, self.batch_size = _util.size(steps, "steps"), _util.size(batch_size, "batch_size")
        self.dead_window = _util.size(dead_window, "dead_window")
        self.resample_every = None if resample_every is None else _util.size(resample_every,
                                                                             "resample_every")
        if self.resample_every is not None and sae.kind in _NOT_RESTARTED:
            raise ValueError(f"resample_every must be None for kind {sae.kind!r} (a restart "
                             f"would leave the latent's threshold or magnitude path behind)")
        self.lr = _util.number(lr, "lr", low=0, low_open=True)
        self.gen = _util.generator(seed)
        threads = None if threads is None else _util.size(threads, "threads")
        progress = None if progress is None else _util.flag(progress, "progress")
        self.fast = _util.flag(fast, "fast") and sae.kind in KINDS  # asked for, and known here
        n, device = sae.n_instances, sae.W_dec.device
        self.logged = {key: torch.empty(self.steps, n) for key in _LOGGED}
        self.since_fired = torch.zeros(n, sae.d_sae, dtype=torch.long, device=device)  # (I, S)
        self.n_resampled = torch.zeros(n, dtype=torch.long)  # (I,)
        # the encoder's multiply-adds per step; tiny SAEs run on one thread (see _util.threads_for)
        work = self.batch_size * n * sae.d_in * sae.d_sae
        self.threads = _util.threads_for(work, threads) if device.type == "cpu" else None
        self.bar = _util.progress_bar(progress, self.steps, "SAE")

    def batch(self) -> torch.Tensor:
        """The next batch of activations, (B, I, D), drawn with replacement."""
        index = torch.randint(self.data.shape[0], (self.batch_size,), generator=self.gen)
        return self.data[index.to(self.data.device)].expand(-1, self.sae.n_instances, -1)

    def after_step(self, step: int, opt, h: torch.Tensor, mse: torch.Tensor, penalty: torch.Tensor,
                   a: torch.Tensor) -> None:
        """`record` for the plain loop, from its batch h (B, I, D) and latents a (B, I, S)."""
        on = a.detach() > 0  # (B, I, S): the latents that fired
        self.record(step, opt, h, mse.detach(), penalty.detach(), on.sum(-1).float().mean(0), on.any(0))

    @torch.no_grad()
    def record(self, step: int, opt, h: torch.Tensor, mse: torch.Tensor, penalty: torch.Tensor,
               l0: torch.Tensor, fired: torch.Tensor) -> None:
        """Book step `step` (0-based): log it, count dead latents, restart them when due, move
        the bar. h is the batch (B, I, D), l0 the active latents per sample (I,), fired (I, S)."""
        self.since_fired = torch.where(fired, 0, self.since_fired + 1)
        dead = self.since_fired >= self.dead_window
        every = self.resample_every
        if every and (step + 1) % every == 0 and step + 1 + every <= self.steps and dead.any():
            self.n_resampled += _resample(self.sae, opt, h.transpose(0, 1), dead, self.gen).cpu()
            self.since_fired = torch.where(dead, 0, self.since_fired)
            dead = self.since_fired >= self.dead_window
        values = (mse + penalty, mse, l0, dead.float().mean(-1))
        for key, value in zip(_LOGGED, values, strict=True):
            self.logged[key][step] = value.cpu()
        _util.show_loss(self.bar, step, lambda: self.logged["loss"][step].mean().item())

    def results(self) -> dict[str, torch.Tensor]:
        """The fields of the `SAELog` this run returns."""
        return dict(self.logged, n_resampled=self.n_resampled)

    def __enter__(self) -> Run:
        self.sae.train()  # BatchTopK takes each batch's top latents in training only
        return self

    def __exit__(self, *exc) -> None:
        if self.bar is not None:
            self.bar.close()
        self.sae.eval()  # as it will be used: BatchTopK then fires above its learnt threshold


def train(run: Run) -> dict[str, torch.Tensor]:
    """The plain loop of `sae.train_sae`, step for step, with `loss_and_grads` for autograd."""
    sae = run.sae
    opt = torch.optim.Adam(sae.parameters(), lr=run.lr)
    with _util.num_threads(run.threads):
        for step in range(run.steps):
            h = run.batch()  # (B, I, D)
            mse, penalty, l0, fired, grads = loss_and_grads(sae, h.transpose(0, 1))
            for name, p in sae.named_parameters():
                p.grad = grads[name]
            g, W = grads["W_dec"], sae.W_dec.detach()
            g.sub_((g * W).sum(-1, keepdim=True) * W)  # keep the step tangent to the sphere
            opt.step()
            sae.normalise_decoder()
            run.record(step, opt, h, mse, penalty, l0, fired)
    opt.zero_grad(set_to_none=True)  # leave no gradients behind
    return run.results()


def _latents(sae: SparseAutoencoder, h: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """x = h - b_dec (I, B, D) and the latents a (I, B, S) of a batch h (I, B, D), as `encode`."""
    x = h - sae.b_dec.unsqueeze(1)  # (I, B, D)
    pre = torch.baddbmm(sae.b_enc.unsqueeze(1), x, sae.W_enc)  # (I, B, S)
    return x, sae.activation(pre.transpose(0, 1)).transpose(0, 1)  # the SAE's own rule


@torch.no_grad()
def loss_and_grads(sae: SparseAutoencoder, h: torch.Tensor):
    """(mse (I,), penalty (I,), active latents per sample (I,), latents that fired (I, S),
    {parameter name: gradient}) for a batch h (I, B, D): sum_i (mse_i + penalty_i) by hand."""
    if not isinstance(h, torch.Tensor) or h.dim() != 3 or (h.shape[0], h.shape[2]) != (
        sae.n_instances, sae.d_in
    ):
        got = tuple(h.shape) if isinstance(h, torch.Tensor) else type(h).__name__
        raise ValueError(f"h must be ({sae.n_instances}, batch, {sae.d_in}), instances first, got {got}")
    if sae.kind == "topk" and 32 * int(sae.k.max()) <= sae.d_sae:
        return _topk_loss_and_grads(sae, h)
    return _dense_loss_and_grads(sae, h)


@torch.no_grad()
def _dense_loss_and_grads(sae: SparseAutoencoder, h: torch.Tensor):
    """`loss_and_grads` with every latent in every product (any kind of SAE)."""
    W_enc, W_dec, b_dec = sae.W_enc, sae.W_dec, sae.b_dec
    batch = h.shape[1]
    x, a = _latents(sae, h)  # (I, B, D), (I, B, S)
    on = a.sign()  # 1 where a latent fires (a >= 0); float masks are cheaper than bool ones here
    r = torch.baddbmm(b_dec.unsqueeze(1), a, W_dec).sub_(h)  # residual (I, B, D)
    mse = r.square().sum(-1).mean(-1)
    penalty = sae.l1_coeff * a.sum(-1).mean(-1)  # `sae.penalty`: 0 for TopK
    d_r = r.mul_(2 / batch)  # d mse / d reconstruction
    d_pre = torch.bmm(d_r, W_dec.transpose(1, 2))  # (I, B, S)
    d_pre.add_((sae.l1_coeff / batch).view(-1, 1, 1)).mul_(on)
    d_b_enc = d_pre.sum(1)  # (I, S)
    grads = {
        "W_enc": torch.bmm(x.transpose(1, 2), d_pre),  # (I, D, S)
        "b_enc": d_b_enc,
        "W_dec": torch.bmm(a.transpose(1, 2), d_r),  # (I, S, D)
        # b_dec is added at the output and subtracted at the input: both paths count
        "b_dec": d_r.sum(1) - torch.bmm(d_b_enc.unsqueeze(1), W_enc.transpose(1, 2)).squeeze(1),
    }
    return mse, penalty, on.sum(-1).mean(-1), a.sum(1) > 0, grads


@torch.no_grad()
def _topk_loss_and_grads(sae: SparseAutoencoder, h: torch.Tensor):
    """`loss_and_grads` for TopK, touching only the k active latents of each sample.

    Only the encoder's matmul needs every latent; decoding, the backward pass and the weight
    gradients use the K = max(k) latents a sample keeps, so a step costs one (B, D) x (D, S)
    product plus O(B K D) instead of five dense products (benchmarks/bench_sae.py).
    """
    W_enc, b_enc, W_dec, b_dec = sae.W_enc, sae.b_enc, sae.W_dec, sae.b_dec
    n, batch, d = h.shape
    x = h - b_dec.unsqueeze(1)  # (I, B, D)
    pre = torch.baddbmm(b_enc.unsqueeze(1), x, W_enc)  # (I, B, S): the one dense product
    k_max = int(sae.k.max())
    values, index = pre.topk(k_max, dim=-1)  # (I, B, K)
    keep = torch.arange(k_max, device=h.device) < sae.k.view(-1, 1, 1)
    a = torch.relu(values) * keep  # (I, B, K): the active latents' values
    on = a.sign()
    flat = index.reshape(n, -1)  # (I, B*K)
    # the decoder rows of each sample's active latents, (I, B, K, D)
    rows = torch.stack([W_dec[i].index_select(0, flat[i]) for i in range(n)]).view(n, batch, k_max, d)
    r = (a.unsqueeze(-2) @ rows).squeeze(-2).add_(b_dec.unsqueeze(1)).sub_(h)  # (I, B, D)
    mse = r.square().sum(-1).mean(-1)
    d_r = r.mul_(2 / batch)
    d_pre = (rows @ d_r.unsqueeze(-1)).squeeze(-1).mul_(on)  # (I, B, K)
    d_b_enc = torch.zeros(n, sae.d_sae, dtype=h.dtype, device=h.device)
    fired = torch.zeros_like(d_b_enc)  # (I, S): how often each latent fired
    # weight gradients: add each sample's outer products into the rows of its active latents
    g_enc = torch.zeros(n, sae.d_sae, d, dtype=h.dtype, device=h.device)  # (I, S, D)
    g_dec = torch.zeros_like(g_enc)
    for i in range(n):  # index_add_ per instance: a batched scatter_add_ is far slower on CPU
        d_b_enc[i].index_add_(0, flat[i], d_pre[i].reshape(-1))
        fired[i].index_add_(0, flat[i], on[i].reshape(-1))
        g_enc[i].index_add_(0, flat[i], (d_pre[i].unsqueeze(-1) * x[i].unsqueeze(1)).view(-1, d))
        g_dec[i].index_add_(0, flat[i], (a[i].unsqueeze(-1) * d_r[i].unsqueeze(1)).view(-1, d))
    grads = {
        "W_enc": g_enc.transpose(1, 2).contiguous(),  # (I, D, S)
        "b_enc": d_b_enc,
        "W_dec": g_dec,
        "b_dec": d_r.sum(1) - torch.bmm(d_b_enc.unsqueeze(1), W_enc.transpose(1, 2)).squeeze(1),
    }
    zero = torch.zeros(n, dtype=h.dtype, device=h.device)
    return mse, zero, on.sum(-1).mean(-1), fired > 0, grads


@torch.no_grad()
def _resample(sae: SparseAutoencoder, opt, h: torch.Tensor, dead: torch.Tensor, gen) -> torch.Tensor:
    """Restart dead latents on inputs the SAE reconstructs worst (Bricken et al. 2023).

    h is (I, B, D), dead (I, S); returns how many restarted per instance, (I,). Inputs are
    drawn with probability proportional to the square of their loss, the squared reconstruction
    error (as Bricken et al. do); a dead latent's decoder row becomes that input's direction,
    its encoder column the same direction at a fifth of the alive latents' mean norm.
    """
    W_enc, b_enc, W_dec, b_dec = sae.W_enc, sae.b_enc, sae.W_dec, sae.b_dec
    _, a = _latents(sae, h)
    err = (torch.baddbmm(b_dec.unsqueeze(1), a, W_dec) - h).square().sum(-1)  # (I, B)
    counts = dead.sum(1)
    for i in torch.nonzero(counts).flatten().tolist():
        weights = err[i].square()
        if weights.sum() <= 1e-12:
            weights = torch.ones_like(weights)
        n_dead = int(counts[i])
        pick = torch.multinomial(weights.cpu(), n_dead, replacement=True, generator=gen)
        direction = F.normalize(h[i, pick.to(h.device)] - b_dec[i], dim=-1)  # (n_dead, D)
        alive = ~dead[i]
        scale = W_enc[i][:, alive].norm(dim=0).mean() if alive.any() else torch.tensor(1.0)
        rows = torch.nonzero(dead[i]).flatten()
        W_dec[i, rows] = direction
        W_enc[i][:, rows] = direction.T * 0.2 * scale
        b_enc[i, rows] = 0.0
    # Adam's moment estimates for the restarted latents belong to their old lives: clear them
    keep = ~dead  # (I, S)
    masks = ((sae.W_dec, keep.unsqueeze(-1)), (sae.W_enc, keep.unsqueeze(-2)), (sae.b_enc, keep))
    for p, mask in masks:
        state = opt.state.get(p, {})
        for key in ("exp_avg", "exp_avg_sq"):
            if key in state:
                state[key].mul_(mask)
    return counts
