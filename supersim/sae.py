"""Sparse autoencoders: sparse coding in one step (Sharkey et al. 2022; Bricken et al. 2023;
Gao et al. 2024).

A sparse autoencoder (SAE) predicts the sparse code of an activation h in R^d with one affine
map and a sparsity rule, and decodes it with a dictionary of unit-norm rows, where
`supersim.sparse_coding` solves an optimisation problem per activation instead:

    a = act(W_enc^T (h - b_dec) + b_enc),   h_hat = a W_dec + b_dec,   ||W_dec[j]|| = 1,

trained on the squared error ||h - h_hat||^2 plus a sparsity penalty on a.

- `SparseAutoencoder`: `kind="l1"` is a ReLU with the penalty l1_coeff ||a||_1 (Bricken et
  al. 2023); `kind="topk"` keeps the k largest pre-activations and needs no penalty (Gao et
  al. 2024). A kind is its `activation` and its `penalty`, two methods side by side: another
  kind adds a branch to each (and its settings to `__init__`), and the plain loop trains it.
- `train_sae`: Adam on minibatches, the decoder rows kept on the unit sphere, dead latents
  counted and, if asked, restarted (Bricken et al. 2023); it returns an `SAELog`.
- `firing_rate`, `explained_variance`: score latents and reconstructions where the true
  directions are unknown (chapter 9); `sparse_coding.mmcs` scores a decoder where they are known.

`train_sae` runs the plain loop below. For the kinds above it takes the same steps in
`supersim/_sae_fast.py` instead, with hand-written gradients: the same numbers to float
rounding (`tests/test_sae.py` trains both ways and compares them), faster
(`benchmarks/bench_sae.py`). What both loops share and no reader needs first (argument checks,
batches, the log, dead latents and their restarts, the progress bar) is set up there too.

Taught in chapter 6 ("Recovering features with sparse autoencoders"); chapter 9 trains SAEs on
a real network's activations.

Shapes: B = batch, I = instances, D = d_in (the activations' dimension), S = d_sae (latents).
Every public method takes activations (B, I, D), as a toy model takes features (B, I, F).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from . import _sae_fast, _util
from ._util import Array

__all__ = [
    "SparseAutoencoder", "train_sae", "SAELog", "firing_rate", "explained_variance", "KINDS", "L1_COEFF",
    "TopKSAE", "BatchTopKSAE", "JumpReLUSAE", "GatedSAE", "MatryoshkaSAE",
]

KINDS = ("l1", "topk")  #: the kinds of SparseAutoencoder, each a sparsity rule and its penalty
L1_COEFF = 0.3  #: the default penalty of kind "l1"


def _per_instance(value, n: int, name: str, check) -> list:
    """A number, or one per instance (a sequence, or a 1-D tensor or array of n), checked."""
    if isinstance(value, (torch.Tensor, np.ndarray)):
        if value.ndim > 1:
            raise ValueError(f"{name} must be a number or one value per instance ({n}), "
                             f"got shape {tuple(value.shape)}")
        value = value.tolist()  # a number (0-d) or a list
    values = list(value) if isinstance(value, (list, tuple)) else [value] * n
    if len(values) != n:
        raise ValueError(f"{name} must be a number or one value per instance ({n}), got {values}")
    return [check(v, name) for v in values]


class SparseAutoencoder(nn.Module):
    """`n_instances` independent sparse autoencoders, d_in -> d_sae -> d_in.

    a = act(W_enc^T (h - b_dec) + b_enc), h_hat = a W_dec + b_dec, decoder rows of unit norm.
    `kind="l1"`: act = ReLU and the loss adds l1_coeff * ||a||_1 (default `L1_COEFF`).
    `kind="topk"`: only the k largest pre-activations survive (then ReLU), no penalty. Like
    `ToyModel`, every parameter has a leading instances axis and the instances train together,
    and `l1_coeff` and `k` may give one value per instance (a sweep in one model). Parameters:
    `W_enc` (I, D, S), `b_enc` (I, S), `W_dec` (I, S, D), `b_dec` (I, D).

    `encode` (B, I, D) -> (B, I, S) and `decode` (B, I, S) -> (B, I, D) are the two maps;
    `latents`, `forward` (reconstruction and latents), `loss_terms` and `loss` also take
    activations (B, D), shared by every instance.
    """

    def __init__(
        self,
        d_in: int,
        d_sae: int,
        *,
        n_instances: int = 1,
        kind: str = "l1",
        l1_coeff: float | Sequence[float] | Array | None = None,
        k: int | Sequence[int] | Array | None = None,
        seed: int = 0,
        device: str | torch.device | None = None,
    ):
        super().__init__()
        self.d_in, self.d_sae = _util.size(d_in, "d_in"), _util.size(d_sae, "d_sae")
        self.n_instances = n = _util.size(n_instances, "n_instances")
        if not isinstance(kind, str) or kind not in KINDS:
            raise ValueError(f"kind must be one of {KINDS}, got {kind!r}")
        self.kind = kind
        if kind == "topk":
            if k is None:
                raise ValueError("k is required when kind='topk' (an integer in [1, d_sae])")
            if l1_coeff is not None:
                raise ValueError(f"l1_coeff is for kind='l1' (TopK has no penalty), got {l1_coeff!r}")
            ks = _per_instance(k, n, "k", lambda v, name: _util.integer(v, name, low=1, high=self.d_sae))
            l1s = [0.0] * n
        else:
            if k is not None:
                raise ValueError(f"k is for kind='topk' (an L1 SAE keeps every ReLU latent), got {k!r}")
            ks = [self.d_sae] * n
            l1 = L1_COEFF if l1_coeff is None else l1_coeff
            l1s = _per_instance(l1, n, "l1_coeff", lambda v, name: _util.number(v, name, low=0))
        device, gen = _util.device(device), _util.generator(seed)
        # Decoder rows start as random unit directions and the encoder as their transpose, so
        # that every latent starts out reading the direction it writes (as in Gao et al. 2024).
        W_dec = F.normalize(torch.randn(n, self.d_sae, self.d_in, generator=gen), dim=-1)
        self.W_enc = nn.Parameter(W_dec.transpose(1, 2).contiguous().to(device))  # (I, D, S)
        self.b_enc = nn.Parameter(torch.zeros(n, self.d_sae, device=device))  # (I, S)
        self.W_dec = nn.Parameter(W_dec.to(device))  # (I, S, D)
        self.b_dec = nn.Parameter(torch.zeros(n, self.d_in, device=device))  # (I, D)
        self.register_buffer("l1_coeff", torch.tensor(l1s, device=device))  # (I,)
        self.register_buffer("k", torch.tensor(ks, dtype=torch.long, device=device))  # (I,)

    def encode(self, h: Array) -> torch.Tensor:
        """Latents a = act(W_enc^T (h - b_dec) + b_enc): (B, I, D) -> (B, I, S)."""
        return self.activation(self.pre_activation(h))

    def pre_activation(self, h: Array) -> torch.Tensor:
        """The encoder's affine map W_enc^T (h - b_dec) + b_enc: (B, I, D) -> (B, I, S)."""
        h = self._batch(h, "h", self.d_in)
        return torch.einsum("bid,ids->bis", h - self.b_dec, self.W_enc) + self.b_enc

    # The two methods that make a kind: how latents fire, and what sparsity costs.
    def activation(self, pre: torch.Tensor) -> torch.Tensor:
        """The kind's sparsity rule: latents from pre-activations, (B, I, S)."""
        pre = self._batch(pre, "pre", self.d_sae)
        if self.kind == "l1":
            return torch.relu(pre)
        # TopK: keep the k_i largest pre-activations of instance i. k may differ
        # per instance: take the k_max largest of each, keep the first k_i of them
        k_max = int(self.k.max())
        values, index = pre.topk(k_max, dim=-1)  # (B, I, k_max)
        rank = torch.arange(k_max, device=pre.device)  # (k_max,)
        keep = rank < self.k.unsqueeze(-1)  # (I, k_max)
        return torch.zeros_like(pre).scatter(-1, index, torch.relu(values) * keep)

    def penalty(self, a: torch.Tensor) -> torch.Tensor:
        """The kind's sparsity penalty per instance, (I,), from latents a (B, I, S):
        l1_coeff * ||a||_1 averaged over the batch (l1_coeff is 0 for TopK)."""
        a = self._batch(a, "a", self.d_sae)
        return self.l1_coeff * a.sum(-1).mean(0)  # a >= 0, so sum(a) = ||a||_1

    def decode(self, a: Array) -> torch.Tensor:
        """Reconstruction h_hat = a W_dec + b_dec: (B, I, S) -> (B, I, D)."""
        a = self._batch(a, "a", self.d_sae)
        return torch.einsum("bis,isd->bid", a, self.W_dec) + self.b_dec

    def latents(self, h: Array) -> torch.Tensor:
        """Latents (B, I, S) of activations (B, I, D), or (B, D) shared by every instance."""
        return self.encode(self._activations(h))

    def forward(self, h: Array) -> tuple[torch.Tensor, torch.Tensor]:
        """(reconstruction (B, I, D), latents (B, I, S)) of activations (B, I, D) or (B, D)."""
        a = self.latents(h)
        return self.decode(a), a

    def loss_terms(self, h: Array) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """The training loss's two terms and the latents, for activations
        (B, I, D) or (B, D): (squared error (I,), penalty (I,), a (B, I, S)).

        The squared error is summed over D; both terms are averaged over the batch.
        """
        h = self._activations(h)  # (B, I, D)
        a = self.encode(h)  # (B, I, S)
        mse = (self.decode(a) - h).square().sum(-1).mean(0)  # (I,)
        return mse, self.penalty(a), a

    def loss(self, h: Array) -> torch.Tensor:
        """The training loss per instance, (I,): squared error plus penalty."""
        mse, penalty, _ = self.loss_terms(h)
        return mse + penalty

    @torch.no_grad()
    def normalise_decoder(self) -> None:
        """Rescale every decoder row to unit norm (the codes carry the magnitudes)."""
        self.W_dec.div_(self.W_dec.norm(dim=-1, keepdim=True).clamp_min(1e-12))

    def _batch(self, x, name: str, width: int, shared: bool = False) -> torch.Tensor:
        """x (B, I, width) on the parameters' device and dtype, its layout checked first,
        then its entries (real, finite, at least one example) as every batch's."""
        x = _util.as_tensor(x, name)
        want = (self.n_instances, width)
        if x.dim() != 3 or tuple(x.shape[1:]) != want:
            also = f", or (batch, {width}) shared by every instance" if shared else ""
            raise ValueError(f"{name} must be (batch, instances, {width}) = (batch, {want[0]}, "
                             f"{width}){also}, got {tuple(x.shape)}")
        return _util.batch(x, name, *want, like=self.W_dec)

    def _activations(self, h) -> torch.Tensor:
        """Activations as (B, I, D): a (B, D) batch goes to every instance."""
        h = _util.as_tensor(h, "h")
        if h.dim() == 2 and h.shape[1] == self.d_in:
            h = h.unsqueeze(1).expand(-1, self.n_instances, -1)
        return self._batch(h, "h", self.d_in, shared=True)

    def extra_repr(self) -> str:
        if self.kind == "topk":
            detail = f"k={self.k.tolist()}"
        else:
            detail = f"l1_coeff={[round(x, 6) for x in self.l1_coeff.tolist()]}"
        return (f"d_in={self.d_in}, d_sae={self.d_sae}, n_instances={self.n_instances}, "
                f"kind={self.kind!r}, {detail}")


@dataclass
class SAELog:
    """What `train_sae` records per step and instance: (steps, I)."""

    loss: torch.Tensor
    mse: torch.Tensor
    l0: torch.Tensor  # active latents per sample
    dead_fraction: torch.Tensor  # latents that have not fired for `dead_window` steps
    n_resampled: torch.Tensor  # (I,): latents restarted in total

    def __post_init__(self) -> None:
        want = getattr(self.loss, "shape", None)
        for name in ("loss", "mse", "l0", "dead_fraction"):
            t = getattr(self, name)
            if not isinstance(t, torch.Tensor) or t.dim() != 2 or t.shape != want:
                got = tuple(t.shape) if isinstance(t, torch.Tensor) else type(t).__name__
                raise ValueError(f"{name} must be a (steps, instances) tensor, the shape of loss, got {got}")
        n = self.n_resampled
        if not isinstance(n, torch.Tensor) or tuple(n.shape) != (want[1],):
            got = tuple(n.shape) if isinstance(n, torch.Tensor) else type(n).__name__
            raise ValueError(f"n_resampled must be an (instances,) = ({want[1]},) tensor, got {got}")

    def __repr__(self) -> str:
        last = lambda t: [round(v, 4) for v in t[-1].reshape(-1).tolist()]  # noqa: E731
        return (f"SAELog(steps={self.loss.shape[0]}, final loss={last(self.loss)}, "
                f"l0={last(self.l0)}, dead={last(self.dead_fraction)})")


def train_sae(
    sae: SparseAutoencoder,
    activations: Array,
    *,
    steps: int = 1000,
    batch_size: int = 128,
    lr: float = 1e-2,
    resample_every: int | None = None,
    dead_window: int = 100,
    seed: int = 0,
    progress: bool | None = None,
    threads: int | None = None,
    fast: bool = True,
) -> SAELog:
    """Train `sae` in place with Adam on minibatches of `activations`; return
    an `SAELog`.

    `activations` is (N, D), shared by all instances, or (N, I, D), one
    dataset per instance. After each step the decoder rows go back onto the
    unit sphere (the gradient's component along each row is removed first,
    so Adam does not fight the constraint). A latent is dead once it has not
    fired for `dead_window` steps; with `resample_every`, dead latents restart
    every that many steps (not in the last period). Same seed, same result;
    `threads` is the most CPU threads to use (None: torch's setting), and
    `progress=None` shows a bar unless SUPERSIM_PROGRESS=0.

    The kinds of `SparseAutoencoder` take the same steps in
    `supersim/_sae_fast.py`, with hand-written gradients; `fast=False` runs
    the loop below for them too (on the same batches; equal up to float
    rounding). A subclass (a new kind, say) trains through this loop.
    """
    if not isinstance(sae, SparseAutoencoder):
        raise ValueError(f"sae must be a SparseAutoencoder, got {type(sae).__name__}")
    run = _sae_fast.Run(sae, activations, steps=steps, batch_size=batch_size,
                        lr=lr, resample_every=resample_every,
                        dead_window=dead_window, seed=seed, progress=progress,
                        threads=threads, fast=fast)
    with run:  # train mode inside; closes the bar and leaves eval mode (for BatchTopK)
        if run.fast and type(sae) is SparseAutoencoder:  # not subclasses
            return SAELog(**_sae_fast.train(run))  # the same steps, by hand
        opt = torch.optim.Adam(sae.parameters(), lr=run.lr)
        with _util.num_threads(run.threads):
            for step in range(run.steps):
                h = run.batch()  # (B, I, D): the fast path's batch, draw for draw
                mse, penalty, a = sae.loss_terms(h)  # (I,), (I,), (B, I, S)
                opt.zero_grad(set_to_none=True)
                # instances share no parameter: each gets its own gradient
                (mse + penalty).sum().backward()
                with torch.no_grad():  # step along the sphere the rows live on
                    g, W = sae.W_dec.grad, sae.W_dec
                    g.sub_((g * W).sum(-1, keepdim=True) * W)  # (I, S, D)
                opt.step()
                sae.normalise_decoder()
                # log, count dead latents (restart them when due), progress bar
                run.after_step(step, opt, h, mse, penalty, a)
        opt.zero_grad(set_to_none=True)  # leave no gradients behind
        return SAELog(**run.results())


# ----------------------------------------------------------------------------------------------
# The variants practitioners train (chapter 10). Each is a subclass: its sparsity rule
# (`activation` or `encode`) and its objective (`loss_terms`); `train_sae`'s plain loop trains
# them all, and leaves them in eval mode, where BatchTopK encodes with its threshold.


class TopKSAE(SparseAutoencoder):
    """TopK as Gao et al. (2024) train it: `SparseAutoencoder(kind="topk")` plus AuxK.

    A latent that has not fired for `dead_window` training batches (default 100) is dead
    (`since_fired`, a buffer (I, S), counts the batches); AuxK asks the `aux_k` largest dead
    latents of each sample (default d_in / 2, as the authors) to reconstruct what the live
    ones missed, h - h_hat, and adds `aux_coeff` (the authors' 1/32) times that squared error
    to the loss, so that dead latents get a gradient towards the data nobody explains. The
    three are attributes, the paper's recipe unless set otherwise before training.
    """

    def __init__(
        self,
        d_in: int,
        d_sae: int,
        *,
        n_instances: int = 1,
        k: int | Sequence[int] | Array,
        seed: int = 0,
        device: str | torch.device | None = None,
    ):
        super().__init__(d_in, d_sae, n_instances=n_instances, kind="topk", k=k, seed=seed,
                         device=device)
        self.aux_coeff, self.aux_k, self.dead_window = 1 / 32, max(1, self.d_in // 2), 100
        self.register_buffer("since_fired", torch.zeros_like(self.b_enc, dtype=torch.long))

    def loss_terms(self, h: Array) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """(squared error (I,), aux_coeff x AuxK (I,), latents a (B, I, S)), batch means."""
        h = self._activations(h)  # (B, I, D)
        pre = self.pre_activation(h)  # (B, I, S)
        a = self.activation(pre)
        recon = self.decode(a)
        mse = (recon - h).square().sum(-1).mean(0)  # (I,)
        return mse, self.aux_coeff * self.aux_loss(h - recon.detach(), pre, a), a

    def aux_loss(
        self, residual: torch.Tensor, pre: torch.Tensor, a: torch.Tensor
    ) -> torch.Tensor:
        """AuxK, (I,): the squared error of the `aux_k` largest dead latents'
        reconstruction of `residual` (B, I, D), from pre-activations `pre` and latents
        `a` (B, I, S). In training mode it first counts, from `a`, the batches since
        each latent fired."""
        residual = self._batch(residual, "residual", self.d_in)
        pre, a = self._batch(pre, "pre", self.d_sae), self._batch(a, "a", self.d_sae)
        if residual.shape[0] != pre.shape[0] or a.shape != pre.shape:
            got = [tuple(t.shape) for t in (residual, pre, a)]
            raise ValueError(f"residual (B, I, D), pre and a (B, I, S) must share the "
                             f"batch, got {got}")
        if self.training:
            with torch.no_grad():
                fired = (a > 0).any(0)  # (I, S)
                self.since_fired.copy_(torch.where(fired, 0, self.since_fired + 1))
        dead = self.since_fired >= self.dead_window  # (I, S)
        if not bool(dead.any()):
            return torch.zeros(self.n_instances, device=pre.device, dtype=pre.dtype)
        only_dead = torch.where(dead, pre, -torch.inf)  # live latents cannot take part
        values, index = only_dead.topk(min(self.aux_k, self.d_sae), dim=-1)
        a_aux = torch.zeros_like(pre).scatter(-1, index, torch.relu(values))
        recon = torch.einsum("bis,isd->bid", a_aux, self.W_dec)  # no bias: a residual
        error = (recon - residual).square().sum(-1).mean(0)  # (I,)
        return error * dead.any(-1)  # 0 where no latent is dead

    def extra_repr(self) -> str:
        return (f"d_in={self.d_in}, d_sae={self.d_sae}, n_instances={self.n_instances}, "
                f"kind={self.kind!r}, k={self.k.tolist()}, aux_coeff={self.aux_coeff:g}, "
                f"aux_k={self.aux_k}")


class BatchTopKSAE(TopKSAE):
    """BatchTopK (Bussmann, Leask and Nanda 2024): TopK over a whole batch at once.

    In training, instance i keeps the k_i x B largest latents of a batch of B samples, so a
    sample may use more or fewer than k_i, and every training batch moves a threshold towards
    the smallest latent it kept (a moving average at rate `threshold_rate`, as the authors'
    code does). Outside training (`sae.eval()`, where `train_sae` leaves it) a latent fires
    when it exceeds that threshold, so a sample's code no longer depends on its batch.
    Settings as `TopKSAE` (AuxK included); `threshold` is a buffer (I,).
    """

    def __init__(
        self,
        d_in: int,
        d_sae: int,
        *,
        n_instances: int = 1,
        k: int | Sequence[int] | Array,
        threshold_rate: float = 0.01,
        seed: int = 0,
        device: str | torch.device | None = None,
    ):
        super().__init__(d_in, d_sae, n_instances=n_instances, k=k, seed=seed, device=device)
        self.kind = "batchtopk"
        self.threshold_rate = _util.number(threshold_rate, "threshold_rate", low=0, high=1,
                                           low_open=True)
        self.register_buffer("threshold", torch.zeros(self.n_instances, device=self.k.device))

    def activation(self, pre: torch.Tensor) -> torch.Tensor:
        """Training: the k_i x B largest of ReLU(pre) per instance; else those above
        the threshold."""
        a = torch.relu(self._batch(pre, "pre", self.d_sae))  # (B, I, S)
        if not self.training:
            return a * (a > self.threshold.view(1, -1, 1))
        batch, n = a.shape[0], self.n_instances
        flat = a.transpose(0, 1).reshape(n, -1)  # (I, B*S): the batch's latents, pooled
        values, index = flat.topk(int(self.k.max()) * batch, dim=-1)
        rank = torch.arange(values.shape[-1], device=a.device)
        keep = rank < batch * self.k.unsqueeze(-1)
        kept = torch.zeros_like(flat).scatter(-1, index, values * keep)
        return kept.view(n, batch, -1).transpose(0, 1)  # (B, I, S)

    def loss_terms(self, h: Array) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """As `TopKSAE.loss_terms`; in training mode it also moves the threshold."""
        mse, penalty, a = super().loss_terms(h)
        if self.training:
            self.update_threshold(a)
        return mse, penalty, a

    @torch.no_grad()
    def update_threshold(self, a: torch.Tensor) -> None:
        """Move each instance's threshold towards the smallest latent a batch kept, a (B, I, S)."""
        a = self._batch(a, "a", self.d_sae)
        smallest = torch.where(a > 0, a, torch.inf).amin(dim=(0, 2))  # (I,)
        smallest = torch.where(torch.isfinite(smallest), smallest, self.threshold)
        self.threshold.lerp_(smallest, self.threshold_rate)

    def extra_repr(self) -> str:
        return super().extra_repr() + f", threshold={[round(t, 4) for t in self.threshold.tolist()]}"


class _JumpReLU(torch.autograd.Function):
    """z H(z - theta), with the pseudo-derivative -(theta / eps) K((z - theta) / eps) for theta
    (K the rectangle kernel: 1 on (-1/2, 1/2)) and H(z - theta) for z (Rajamanoharan et al. 2024b).
    """

    @staticmethod
    def forward(ctx, z, theta, eps):
        ctx.save_for_backward(z, theta)
        ctx.eps = eps
        return z * (z > theta)

    @staticmethod
    def backward(ctx, grad):
        z, theta = ctx.saved_tensors
        near = ((z - theta).abs() < ctx.eps / 2).to(z)  # K((z - theta) / eps)
        d_theta = (grad * near * -(theta / ctx.eps)).sum(0)  # summed over the batch
        return grad * (z > theta), d_theta, None


class _Step(torch.autograd.Function):
    """H(z - theta), with the pseudo-derivative -(1 / eps) K((z - theta) / eps) for theta and
    none for z: the L0 penalty trains the thresholds only (Rajamanoharan et al. 2024b)."""

    @staticmethod
    def forward(ctx, z, theta, eps):
        ctx.save_for_backward(z, theta)
        ctx.eps = eps
        return (z > theta).to(z)

    @staticmethod
    def backward(ctx, grad):
        z, theta = ctx.saved_tensors
        near = ((z - theta).abs() < ctx.eps / 2).to(z)
        return None, (grad * near * -(1 / ctx.eps)).sum(0), None


class JumpReLUSAE(SparseAutoencoder):
    """JumpReLU (Rajamanoharan et al. 2024b): a learned threshold per latent, and an L0 penalty.

    a = z H(z - theta) with z the pre-activation and theta > 0 one threshold per latent
    (stored as `log_threshold`, (I, S), so that it stays positive); the loss adds
    l0_coeff x (number of active latents). Neither the step nor the count has a useful
    gradient, so the thresholds learn through straight-through pseudo-derivatives: a rectangle
    kernel of width `bandwidth` around the threshold estimates how the expected loss changes
    as the threshold moves. `threshold` is the starting value of every theta.
    """

    def __init__(
        self,
        d_in: int,
        d_sae: int,
        *,
        n_instances: int = 1,
        l0_coeff: float | Sequence[float] | Array,
        bandwidth: float = 0.05,
        threshold: float = 0.1,
        seed: int = 0,
        device: str | torch.device | None = None,
    ):
        super().__init__(d_in, d_sae, n_instances=n_instances, kind="l1", l1_coeff=0.0,
                         seed=seed, device=device)
        self.kind = "jumprelu"
        check = lambda v, name: _util.number(v, name, low=0)  # noqa: E731
        l0s = _per_instance(l0_coeff, self.n_instances, "l0_coeff", check)
        self.register_buffer("l0_coeff", torch.tensor(l0s, device=self.W_dec.device))  # (I,)
        self.bandwidth = _util.number(bandwidth, "bandwidth", low=0, low_open=True)
        theta = _util.number(threshold, "threshold", low=0, low_open=True)
        start = torch.full((self.n_instances, self.d_sae), math.log(theta), device=self.W_dec.device)
        self.log_threshold = nn.Parameter(start)  # (I, S)

    def activation(self, pre: torch.Tensor) -> torch.Tensor:
        """JumpReLU: a pre-activation passes unchanged above its latent's threshold, else 0."""
        pre = self._batch(pre, "pre", self.d_sae)
        return _JumpReLU.apply(pre, self.log_threshold.exp(), self.bandwidth)

    def loss_terms(self, h: Array) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """(squared error (I,), l0_coeff x L0 (I,), latents a (B, I, S)), batch
        means."""
        h = self._activations(h)  # (B, I, D)
        z = self.pre_activation(h)  # (B, I, S)
        a = self.activation(z)
        mse = (self.decode(a) - h).square().sum(-1).mean(0)  # (I,)
        l0 = _Step.apply(z, self.log_threshold.exp(), self.bandwidth).sum(-1).mean(0)
        return mse, self.l0_coeff * l0, a

    def extra_repr(self) -> str:
        return (f"d_in={self.d_in}, d_sae={self.d_sae}, n_instances={self.n_instances}, "
                f"kind='jumprelu', l0_coeff={[round(x, 6) for x in self.l0_coeff.tolist()]}, "
                f"bandwidth={self.bandwidth}")


class GatedSAE(SparseAutoencoder):
    """Gated SAE (Rajamanoharan et al. 2024a): one path decides which latents fire, another
    how strongly.

    The gate is the encoder of `SparseAutoencoder`, pi = W_enc^T (h - b_dec) + b_enc, and a
    latent fires where pi > 0. The magnitude path shares the gate's weights, each latent's
    column rescaled by exp(r_mag), with a bias of its own: a = 1[pi > 0] ReLU(W_mag^T (h - b_dec)
    + b_mag). The step passes no gradient, so the loss trains the gate through two extra terms:
    l1_coeff ||ReLU(pi)||_1, and the error of reconstructing h from ReLU(pi) with a frozen copy
    of the decoder. Parameters as `SparseAutoencoder`, plus `r_mag` and `b_mag`, (I, S).
    """

    def __init__(
        self,
        d_in: int,
        d_sae: int,
        *,
        n_instances: int = 1,
        l1_coeff: float | Sequence[float] | Array | None = None,
        seed: int = 0,
        device: str | torch.device | None = None,
    ):
        super().__init__(d_in, d_sae, n_instances=n_instances, kind="l1", l1_coeff=l1_coeff,
                         seed=seed, device=device)
        self.kind = "gated"
        self.r_mag = nn.Parameter(torch.zeros_like(self.b_enc))  # (I, S)
        self.b_mag = nn.Parameter(torch.zeros_like(self.b_enc))  # (I, S)

    def encode(self, h: Array) -> torch.Tensor:
        """Latents a = 1[gate > 0] x magnitude: (B, I, D) -> (B, I, S)."""
        return (self.pre_activation(h) > 0) * self.magnitude(h)

    def magnitude(self, h: Array) -> torch.Tensor:
        """The magnitude path ReLU(W_mag^T (h - b_dec) + b_mag): (B, I, D) -> (B, I, S)."""
        h = self._batch(h, "h", self.d_in)
        W_mag = self.W_enc * self.r_mag.exp().unsqueeze(1)  # (I, D, S): the gate's, rescaled
        return torch.relu(torch.einsum("bid,ids->bis", h - self.b_dec, W_mag) + self.b_mag)

    def loss_terms(self, h: Array) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """(squared error (I,), gate penalty + gate reconstruction error (I,),
        latents a (B, I, S))."""
        h = self._activations(h)  # (B, I, D)
        gate = self.pre_activation(h)  # (B, I, S)
        a = (gate > 0) * self.magnitude(h)
        mse = (self.decode(a) - h).square().sum(-1).mean(0)  # (I,)
        via_gate = torch.relu(gate)
        # the gate's own reconstruction, through a frozen decoder: trains the gate only
        W_dec, b_dec = self.W_dec.detach(), self.b_dec.detach()
        recon = torch.einsum("bis,isd->bid", via_gate, W_dec) + b_dec
        aux = (recon - h).square().sum(-1).mean(0)  # (I,)
        return mse, self.l1_coeff * via_gate.sum(-1).mean(0) + aux, a


class MatryoshkaSAE(BatchTopKSAE):
    """Matryoshka SAE (Bussmann, Nabeshima, Karvonen and Nanda 2025; Nabeshima 2024): nested
    dictionaries, each asked to reconstruct on its own.

    The latents are a BatchTopK SAE's. `prefixes` are increasing dictionary sizes ending at
    d_sae (by default the authors' groups: d_sae/16, d_sae/8, d_sae/4, d_sae/2, d_sae); the
    loss is the mean, over the prefixes, of the squared error of reconstructing h from the
    first m latents alone, so the first latents must explain as much as they can by themselves.
    """

    def __init__(
        self,
        d_in: int,
        d_sae: int,
        *,
        n_instances: int = 1,
        k: int | Sequence[int] | Array,
        prefixes: Sequence[int] | None = None,
        threshold_rate: float = 0.01,
        seed: int = 0,
        device: str | torch.device | None = None,
    ):
        super().__init__(d_in, d_sae, n_instances=n_instances, k=k, threshold_rate=threshold_rate,
                         seed=seed, device=device)
        self.kind = "matryoshka"
        if prefixes is None:
            prefixes = sorted({max(1, self.d_sae // 2**j) for j in range(5)})
        if not isinstance(prefixes, (list, tuple)) or not prefixes:
            raise ValueError(f"prefixes must be a list of increasing sizes ending at d_sae, got {prefixes!r}")
        sizes = [_util.integer(m, "prefixes", low=1, high=self.d_sae) for m in prefixes]
        if sizes[-1] != self.d_sae or any(b <= a for a, b in zip(sizes[:-1], sizes[1:], strict=True)):
            raise ValueError(f"prefixes must increase and end at d_sae={self.d_sae}, got {sizes}")
        self.prefixes = sizes

    def loss_terms(self, h: Array) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """(squared error of the whole dictionary (I,), what the prefixes add to it
        plus aux_coeff x AuxK (I,), a (B, I, S)); mse + the prefixes' part is the mean
        over the prefixes of each one's squared error."""
        h = self._activations(h)  # (B, I, D)
        pre = self.pre_activation(h)  # (B, I, S)
        a = self.activation(pre)
        if self.training:
            self.update_threshold(a)
        recon, start, errors = self.b_dec, 0, []
        for end in self.prefixes:  # add each group of latents to the reconstruction
            group, rows = a[..., start:end], self.W_dec[:, start:end]
            part = torch.einsum("bis,isd->bid", group, rows)
            recon = recon + part  # (B, I, D): the first `end` latents' reconstruction
            errors.append((recon - h).square().sum(-1).mean(0))
            start = end
        mse = errors[-1]
        aux = self.aux_coeff * self.aux_loss(h - recon.detach(), pre, a)
        return mse, torch.stack(errors).mean(0) - mse + aux, a

    def extra_repr(self) -> str:
        return super().extra_repr() + f", prefixes={self.prefixes}"


# ----------------------------------------------------------------------------------------------
# Scoring SAEs where the true directions are unknown


def firing_rate(latents: Array) -> torch.Tensor:
    """How often each latent fires: the share of samples with a > 0, (N, I, S) -> (I, S).

    A latent with rate 0 never fired on these samples (it is dead on them), and the rates
    summed over the latents are the mean number of active latents per sample, the L0
    (chapters 6 and 9). Any leading sample axis works: (N, ...) -> (...).
    """
    a = _util.float_tensor(latents, "latents", min_dim=1, shape="(samples, ...)").detach()
    return (a > 0).float().mean(0)


def explained_variance(activations: Array, reconstruction: Array) -> torch.Tensor:
    """The fraction of the activations' variance a reconstruction keeps, per instance: (I,).

    1 - sum ||h - h_hat||^2 / sum ||h - mean(h)||^2 over the N samples: 1 for a perfect
    reconstruction, 0 for one no better than the mean activation (chapter 9). `reconstruction`
    is (N, I, D) as an SAE returns it; `activations` is (N, I, D), or (N, D) shared by every
    instance. Activations that do not vary (a constant, or one sample) have no variance to
    explain, and raise ValueError rather than return a meaningless ratio.
    """
    h = _util.float_tensor(activations, "activations", min_dim=2, max_dim=3,
                           shape="(samples, d) or (samples, instances, d)").detach()
    r = _util.float_tensor(reconstruction, "reconstruction", min_dim=1).detach().to(h)
    given = tuple(h.shape)
    if h.dim() == 2:
        h = h.unsqueeze(1)  # (N, 1, D): the same activations for every instance
    if r.dim() != 3 or h.shape[0] != r.shape[0] or h.shape[2] != r.shape[2] or (
        h.shape[1] not in (1, r.shape[1])
    ):
        raise ValueError(
            f"reconstruction must be (samples, instances, d) matching activations (samples, d) or"
            f" (samples, instances, d), got {tuple(r.shape)} for {given}"
        )
    spread = (h - h.mean(0)).square().sum((0, 2))  # (1 or I,)
    if not bool((spread > 0).all()):
        flat = torch.nonzero(spread == 0).flatten().tolist()
        raise ValueError(f"activations must vary across samples (no variance, nothing to explain), "
                         f"got constant activations for instances {flat}")
    err = (h - r).square().sum((0, 2))  # (I,)
    return 1 - err / spread
