"""Taking features out of superposition: sparse coding, dictionary learning, sparse autoencoders.

Given only activations h in R^d that a model built as sums of sparse features, find the feature
directions again. Three tools, from classic to current:

- `ista`: sparse codes for a *known* dictionary, min ||h - a D||^2 + lambda ||a||_1 (FISTA;
  `fista` is the loop itself, which chapter 6 shows).
- `learn_dictionary`: alternate codes and a least-squares, renormalised dictionary update.
- `SparseAutoencoder` + `train_sae`: an encoder that predicts the codes in one step (amortised
  sparse coding), with a unit-norm decoder and an L1 penalty (Sharkey et al. 2022; Bricken et
  al. 2023, including resampling of dead latents) or a TopK activation (Gao et al. 2024).

`mmcs` scores a learned dictionary against the true directions (Sharkey et al. 2022);
`firing_rate` and `explained_variance` score an SAE's latents and reconstructions on data whose
directions are unknown.

Taught in chapter 6 ("Recovering features with sparse autoencoders").

Shapes: B = batch, I = instances, D = d_in (the activations' dimension), S = d_sae (latents),
N = features (true directions). Dictionaries hold one direction per row: (S, D).
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch
from torch import nn

from . import _util
from ._util import generator as _generator
from ._util import num_threads as _num_threads
from ._util import size as _check_size
from ._util import want_progress as _want_progress
from .data import sample_features

KINDS = ("l1", "topk")
_EPS = 1e-12


def _check_coeff(value, name: str) -> float:
    return _util.number(value, name, low=0)


def _per_instance(value, n: int, name: str, cast) -> list:
    """A scalar or one value per instance, as a list of length n."""
    values = list(value) if isinstance(value, (list, tuple, torch.Tensor, np.ndarray)) else [value] * n
    if len(values) != n:
        raise ValueError(f"{name} must be a scalar or one value per instance ({n}), got {values}")
    return [cast(v.item() if isinstance(v, torch.Tensor) else v, name) for v in values]


# ----------------------------------------------------------------------------------------------
# Classic sparse coding


def _as_float(x, name: str) -> torch.Tensor:
    return _util.float_tensor(x, name, min_dim=1)


def ista(
    h: torch.Tensor | np.ndarray,
    dictionary: torch.Tensor | np.ndarray,
    l1_coeff: float,
    *,
    steps: int = 300,
    nonneg: bool = True,
    init: torch.Tensor | np.ndarray | None = None,
) -> torch.Tensor:
    """Sparse codes minimising ||h - a D||^2 + l1_coeff ||a||_1 for a fixed dictionary D.

    `dictionary` is (S, D), one direction per row, with `h` (..., D) and codes (..., S); or
    (I, S, D), one dictionary per instance, with `h` (B, I, D) and codes (B, I, S). FISTA:
    proximal gradient steps of size 1/L with Nesterov momentum; `nonneg` keeps codes >= 0
    (features that are present or absent, as in the toy models). `init` warm-starts.
    """
    h = _as_float(h, "h")
    Dm = _as_float(dictionary, "dictionary").to(h.dtype)
    batched = Dm.dim() == 3
    if Dm.dim() not in (2, 3) or h.shape[-1] != Dm.shape[-1] or (
        batched and (h.dim() != 3 or h.shape[1] != Dm.shape[0])
    ):
        raise ValueError(
            f"dictionary must be (atoms, d) or (instances, atoms, d) matching h's last axis"
            f" (and h (batch, instances, d) with instances), got {tuple(Dm.shape)} for h"
            f" {tuple(h.shape)}"
        )
    lam = _check_coeff(l1_coeff, "l1_coeff")
    steps = _check_size(steps, "steps")
    nonneg = _util.flag(nonneg, "nonneg")
    Dm = Dm.to(h.device)  # the codes live where the activations are
    if init is not None:
        init = _as_float(init, "init").to(device=h.device, dtype=h.dtype)
        want = (*h.shape[:-1], Dm.shape[-2])
        if tuple(init.shape) != want:
            raise ValueError(f"init must have the codes' shape {want}, got {tuple(init.shape)}")
    if batched:  # work in (I, B, .) so that every instance is one matmul of a batch
        h = h.transpose(0, 1)
        init = None if init is None else init.transpose(0, 1)
    with _num_threads(_util.threads_for(h.numel() * Dm.shape[-2])):  # h D^T per step
        a = fista(h, Dm, lam, steps, nonneg, init)
    return a.transpose(0, 1) if batched else a


def fista(
    h: torch.Tensor,
    D: torch.Tensor,
    lam: float,
    steps: int,
    nonneg: bool,
    init: torch.Tensor | None,
) -> torch.Tensor:
    """The FISTA loop that `ista` runs once it has checked its arguments.

    h is (.., B, d), the dictionary D (.., S, d) and the codes (.., B, S), with leading
    axes (instances) in front, as `ista` arranges them; `init` is None or codes to start
    from. No checks here: call `ista`.
    """
    # L = 2 sigma_max(D)^2 is the Lipschitz constant of the squared error's gradient
    L = 2 * torch.linalg.matrix_norm(D, ord=2).square().clamp_min(_EPS)[..., None, None]
    # all the gradient needs: (.., S, S) and (.., B, S)
    gram, target = D @ D.transpose(-1, -2), h @ D.transpose(-1, -2)
    a = torch.zeros_like(target) if init is None else init.clone()
    y, t = a, 1.0
    for _ in range(steps):
        z = y - (2 / L) * (y @ gram - target)  # gradient step on ||h - y D||^2
        # proximal step of the L1 term: shrink towards zero by lam / L, then clip at 0
        if nonneg:
            a_next = (z - lam / L).clamp_min(0)
        else:
            a_next = z.sign() * (z.abs() - lam / L).clamp_min(0)
        t_next = (1 + math.sqrt(1 + 4 * t * t)) / 2
        # Nesterov momentum: what makes FISTA fast
        y = a_next + ((t - 1) / t_next) * (a_next - a)
        a, t = a_next, t_next
    return a


def _normalise_rows(D: torch.Tensor) -> torch.Tensor:
    return D / D.norm(dim=-1, keepdim=True).clamp_min(_EPS)


def learn_dictionary(
    h: torch.Tensor | np.ndarray,
    n_atoms: int,
    l1_coeff: float,
    *,
    iters: int = 40,
    ista_steps: int = 30,
    nonneg: bool = True,
    seed: int = 0,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Alternating dictionary learning: returns (dictionary ([I,] S, D), codes (B, [I,] S)).

    `h` is (B, D), or (B, I, D) for one independent problem per instance. Each round finds
    codes for the current dictionary (`ista`, warm-started), then the dictionary that best
    reconstructs the data from those codes (least squares), rescaled to unit rows so that the
    L1 penalty cannot be dodged by growing the atoms. An atom no code uses restarts on the
    worst-reconstructed sample.
    """
    h = _as_float(h, "h")
    if h.dim() not in (2, 3):
        raise ValueError(f"h must be (samples, d) or (samples, instances, d), got {tuple(h.shape)}")
    n_atoms, iters = _check_size(n_atoms, "n_atoms"), _check_size(iters, "iters")
    ista_steps = _check_size(ista_steps, "ista_steps")
    nonneg = _util.flag(nonneg, "nonneg")
    _generator(seed)  # checks the seed before any work
    lam = _check_coeff(l1_coeff, "l1_coeff")
    single = h.dim() == 2
    H = h.unsqueeze(0) if single else h.transpose(0, 1)  # (I, B, D)
    n, gen, dev = H.shape[0], _generator(seed), H.device
    # start from randomly chosen (normalised) samples: they already lie where the data are
    # (drawn on the CPU, so that a seed picks the same samples on every device)
    pick = torch.randint(H.shape[1], (n, n_atoms), generator=gen).to(dev)
    D = H[torch.arange(n, device=dev).unsqueeze(1), pick]  # (I, S, D)
    noise = torch.randn(D.shape, generator=gen, dtype=D.dtype).to(dev)
    D = _normalise_rows(_normalise_rows(D) + 0.01 * noise)
    codes = None  # (B, I, S)
    ridge = 1e-6 * torch.eye(n_atoms, dtype=H.dtype, device=dev)
    for round_ in range(iters + 1):  # iters dictionary updates, with codes before and after
        codes = ista(H.transpose(0, 1), D, lam, steps=ista_steps, nonneg=nonneg, init=codes)
        if round_ == iters:
            break
        A = codes.transpose(0, 1)  # (I, B, S)
        D_new = torch.linalg.solve(A.transpose(1, 2) @ A + ridge, A.transpose(1, 2) @ H)
        for i in range(n):
            unused = A[i].abs().sum(0) <= _EPS
            if unused.any():  # a wasted atom: restart it where the reconstruction is worst
                residual = (H[i] - A[i] @ D[i]).square().sum(-1)
                D_new[i, unused] = H[i, residual.topk(int(unused.sum())).indices]
        D = _normalise_rows(D_new)
    if single:
        return D[0], codes[:, 0]
    return D, codes


# ----------------------------------------------------------------------------------------------
# Sparse autoencoders


class SparseAutoencoder(nn.Module):
    """a = act(W_enc^T (h - b_dec) + b_enc), h_hat = a W_dec + b_dec, decoder rows of unit norm.

    `kind="l1"`: act = ReLU and the loss adds l1_coeff * ||a||_1. `kind="topk"`: only the k
    largest pre-activations survive (then ReLU), no penalty. Like `ToyModel`, it holds
    `n_instances` independent SAEs (default 1) that train together: every parameter has a
    leading instances axis, and `l1_coeff` and `k` may give one value per instance (a sweep in
    one model). Parameters: `W_enc` (I, D, S), `b_enc` (I, S), `W_dec` (I, S, D), `b_dec` (I, D).

    Activations are (B, I, D), as a toy model's inputs are (B, I, F); (B, D) activations are
    shared by every instance. Latents are (B, I, S) and reconstructions (B, I, D): `latents(h)`
    and `forward(h)` (reconstruction and latents) take and give these. As in the toy models,
    `encode` (I, B, D) -> (I, B, S) and `decode` (I, B, S) -> (I, B, D) are the same maps in the
    instances-first layout that training uses.
    """

    def __init__(
        self, d_in: int, d_sae: int, *, n_instances: int = 1, kind: str = "l1",
        l1_coeff: float | Sequence[float] | torch.Tensor = 0.3,
        k: int | Sequence[int] | torch.Tensor | None = None,
        seed: int = 0,
        device: str | torch.device | None = None,
    ):
        super().__init__()
        self.d_in, self.d_sae = _check_size(d_in, "d_in"), _check_size(d_sae, "d_sae")
        self.n_instances = n = _check_size(n_instances, "n_instances")
        if kind not in KINDS:
            raise ValueError(f"kind must be one of {KINDS}, got {kind!r}")
        self.kind = kind
        if kind == "topk":
            if k is None:
                raise ValueError("k is required when kind='topk' (an integer in [1, d_sae])")
            ks = _per_instance(k, n, "k", self._check_k)
            l1s = [0.0] * n
        else:
            ks = [self.d_sae] * n
            l1s = _per_instance(l1_coeff, n, "l1_coeff", _check_coeff)
        device, gen = _util.device(device), _generator(seed)
        # Decoder rows start as random unit directions and the encoder as their transpose, so
        # that every latent starts out reading the direction it writes (as in Gao et al. 2024).
        W_dec = _normalise_rows(torch.randn(n, self.d_sae, self.d_in, generator=gen))  # (I, S, D)
        self.W_enc = nn.Parameter(W_dec.transpose(1, 2).contiguous().to(device))  # (I, D, S)
        self.b_enc = nn.Parameter(torch.zeros(n, self.d_sae, device=device))  # (I, S)
        self.W_dec = nn.Parameter(W_dec.to(device))  # (I, S, D)
        self.b_dec = nn.Parameter(torch.zeros(n, self.d_in, device=device))  # (I, D)
        self.register_buffer("l1_coeff", torch.tensor(l1s, device=device))  # (I,)
        self.register_buffer("k", torch.tensor(ks, dtype=torch.long, device=device))  # (I,)

    def _check_k(self, value, name: str) -> int:
        if isinstance(value, (bool, np.bool_)) or not isinstance(value, numbers.Integral) or not (
            1 <= value <= self.d_sae
        ):
            raise ValueError(f"{name} must be an integer in [1, d_sae={self.d_sae}], got {value!r}")
        return int(value)

    def _to_ib(self, x, name: str, width: int) -> torch.Tensor:
        """(B, I, width) or shared (B, width) -> (I, B, width) on the parameters' device."""
        x = _util.as_tensor(x, name).to(device=self.W_dec.device, dtype=self.W_dec.dtype)
        if x.dim() == 2 and x.shape[1] == width:
            return x.unsqueeze(0).expand(self.n_instances, -1, -1)
        if x.dim() != 3 or tuple(x.shape[1:]) != (self.n_instances, width):
            raise ValueError(
                f"{name} must have shape (batch, {self.n_instances}, {width}), or (batch, {width})"
                f" shared by every instance, got {tuple(x.shape)}"
            )
        return x.transpose(0, 1)

    # As in the toy models, `encode` and `decode` work in the instances-first (I, B, .) layout
    # that training uses, where each instance is one matmul of a bmm; `latents` and `forward`
    # take (batch, instances, .) activations, as a toy model's `hidden` and `forward` do.
    def encode(self, h: torch.Tensor) -> torch.Tensor:
        """Latents a = act(W_enc^T (h - b_dec) + b_enc): (I, B, D) -> (I, B, S)."""
        x = h - self.b_dec.unsqueeze(1)  # (I, B, D)
        pre = torch.baddbmm(self.b_enc.unsqueeze(1), x, self.W_enc)  # (I, B, S)
        if self.kind == "l1":
            return torch.relu(pre)  # (I, B, S)
        # TopK: keep the k_i largest pre-activations of instance i. k may differ per
        # instance: take the k_max largest of each, then keep the first k_i of them
        k_max = int(self.k.max())
        values, index = pre.topk(k_max, dim=-1)  # (I, B, k_max)
        rank = torch.arange(k_max, device=pre.device)  # (k_max,)
        keep = rank < self.k.view(-1, 1, 1)  # (I, 1, k_max)
        return torch.zeros_like(pre).scatter(-1, index, torch.relu(values) * keep)

    def decode(self, a: torch.Tensor) -> torch.Tensor:
        """Reconstruction h_hat = a W_dec + b_dec: (I, B, S) @ (I, S, D) -> (I, B, D)."""
        return torch.baddbmm(self.b_dec.unsqueeze(1), a, self.W_dec)

    def latents(self, h: torch.Tensor | np.ndarray) -> torch.Tensor:
        """Latent activations: (B, I, D) or shared (B, D) -> (B, I, S)."""
        return self.encode(self._to_ib(h, "activations", self.d_in)).transpose(0, 1)

    def forward(self, h: torch.Tensor | np.ndarray) -> tuple[torch.Tensor, torch.Tensor]:
        """(reconstruction (B, I, D), latents (B, I, S)) for activations (B, I, D) or (B, D)."""
        a = self.encode(self._to_ib(h, "activations", self.d_in))
        return self.decode(a).transpose(0, 1), a.transpose(0, 1)

    def loss(self, h: torch.Tensor | np.ndarray) -> torch.Tensor:
        """Training loss per instance, (I,), for activations (B, I, D) or (B, D).

        The squared error summed over D plus l1_coeff * ||a||_1 (l1_coeff is 0 for
        TopK), both averaged over the batch.
        """
        h = self._to_ib(h, "activations", self.d_in)  # (I, B, D)
        a = self.encode(h)
        mse = (self.decode(a) - h).square().sum(-1).mean(-1)  # (I,)
        return mse + self.l1_coeff * a.sum(-1).mean(-1)  # a >= 0, so sum(a) = ||a||_1

    @torch.no_grad()
    def normalise_decoder(self) -> None:
        """Rescale every decoder row to unit norm (the codes carry the magnitudes)."""
        self.W_dec.div_(self.W_dec.norm(dim=-1, keepdim=True).clamp_min(_EPS))

    def extra_repr(self) -> str:
        if self.kind == "topk":
            detail = f"k={self.k.tolist()}"
        else:
            detail = f"l1_coeff={[round(x, 6) for x in self.l1_coeff.tolist()]}"
        return (
            f"d_in={self.d_in}, d_sae={self.d_sae}, n_instances={self.n_instances}, "
            f"kind={self.kind!r}, {detail}"
        )


@torch.no_grad()
def sae_loss_and_grads(
    sae: SparseAutoencoder, h: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor, dict[str, torch.Tensor]]:
    """(mse, l1 penalty, active latents per sample, latents that fired, gradients) for (I, B, D) h.

    The gradients of sum_i (mse_i + l1_i), written out by hand: for SAEs this small a step is
    mostly overhead, and autograd's bookkeeping is a large share of it (the tests check these
    against autograd). For TopK the latents a TopK drops get no gradient, like a ReLU's zeros,
    so when they are the vast majority only the kept ones are computed (`_topk_loss_and_grads`;
    with k above 1/32 of the latents its gathers cost more than they save, benchmarks/bench_sae.py).
    """
    if sae.kind == "topk" and 32 * int(sae.k.max()) <= sae.d_sae:
        return _topk_loss_and_grads(sae, h)
    return _dense_loss_and_grads(sae, h)


@torch.no_grad()
def _dense_loss_and_grads(sae: SparseAutoencoder, h: torch.Tensor):
    """`sae_loss_and_grads` with every latent in every product (any kind of SAE)."""
    W_enc, W_dec, b_dec = sae.W_enc, sae.W_dec, sae.b_dec
    batch = h.shape[1]
    x = h - b_dec.unsqueeze(1)  # (I, B, D)
    a = sae.encode(h)  # (I, B, S)
    on = a.sign()  # 1 where a latent fires (a >= 0); float masks are cheaper than bool ones here
    r = torch.baddbmm(b_dec.unsqueeze(1), a, W_dec).sub_(h)  # residual (I, B, D)
    mse = r.square().sum(-1).mean(-1)
    l1 = sae.l1_coeff * a.sum(-1).mean(-1)
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
    return mse, l1, on.sum(-1).mean(-1), a.sum(1) > 0, grads


@torch.no_grad()
def _topk_loss_and_grads(sae: SparseAutoencoder, h: torch.Tensor):
    """`sae_loss_and_grads` for TopK, touching only the k active latents of each sample.

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


@dataclass
class SAELog:
    """What `train_sae` records per step and instance: (steps, I)."""

    loss: torch.Tensor
    mse: torch.Tensor
    l0: torch.Tensor  # active latents per sample
    dead_fraction: torch.Tensor  # latents that have not fired for `dead_window` steps
    n_resampled: torch.Tensor  # (I,): latents restarted in total

    def __repr__(self) -> str:
        last = lambda t: [round(v, 4) for v in t[-1].reshape(-1).tolist()]  # noqa: E731
        return (
            f"SAELog(steps={self.loss.shape[0]}, final loss={last(self.loss)}, "
            f"l0={last(self.l0)}, dead={last(self.dead_fraction)})"
        )


@torch.no_grad()
def _resample(sae, opt, h: torch.Tensor, dead: torch.Tensor, gen) -> torch.Tensor:
    """Restart dead latents on inputs the SAE reconstructs worst (Bricken et al. 2023).

    h is (I, B, D), dead (I, S). Inputs are drawn with probability proportional to the square
    of their loss, the squared reconstruction error (as Bricken et al. do); a dead latent's
    decoder row becomes that input's direction, its encoder column the same direction at a
    fifth of the alive latents' mean norm.
    """
    W_enc, b_enc, W_dec, b_dec = sae.W_enc, sae.b_enc, sae.W_dec, sae.b_dec
    err = (sae.decode(sae.encode(h)) - h).square().sum(-1)  # (I, B)
    counts = dead.sum(1)
    for i in torch.nonzero(counts).flatten().tolist():
        weights = err[i].square()
        if weights.sum() <= _EPS:
            weights = torch.ones_like(weights)
        n_dead = int(counts[i])
        pick = torch.multinomial(weights.cpu(), n_dead, replacement=True, generator=gen)
        direction = _normalise_rows(h[i, pick.to(h.device)] - b_dec[i])  # (n_dead, D)
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


def _dataset(sae: SparseAutoencoder, activations) -> torch.Tensor:
    """Checked activations on the SAE's device: (N, D) -> (N, 1, D), shared; or (N, I, D)."""
    if not isinstance(sae, SparseAutoencoder):
        raise ValueError(f"sae must be a SparseAutoencoder, got {type(sae).__name__}")
    data = _as_float(activations, "activations").to(device=sae.W_dec.device, dtype=torch.float32)
    n, d = sae.n_instances, sae.d_in
    if data.dim() == 2 and data.shape[1] == d:
        return data.unsqueeze(1)  # one dataset for every instance
    if data.dim() == 3 and tuple(data.shape[1:]) == (n, d):
        return data
    raise ValueError(
        f"activations must have shape (samples, {d}) or (samples, {n}, {d}), got {tuple(data.shape)}"
    )


def train_sae(
    sae: SparseAutoencoder,
    activations: torch.Tensor | np.ndarray,
    *,
    steps: int = 1000,
    batch_size: int = 128,
    lr: float = 1e-2,
    resample_every: int | None = None,
    dead_window: int = 100,
    seed: int = 0,
    progress: bool | None = None,
    threads: int | None = None,
) -> SAELog:
    """Train `sae` in place with Adam on minibatches of `activations`; return an `SAELog`.

    `activations` is (N, D), shared by all instances, or (N, I, D), one dataset per instance.
    After each step the decoder rows are put back on the unit sphere (and the gradient's
    component along each row is removed first, so Adam does not fight the constraint).
    A latent is dead once it has not fired for `dead_window` steps; with `resample_every`,
    dead latents are restarted every that many steps (not in the last period). Same seed,
    same result.
    """
    data = _dataset(sae, activations)  # (N, 1 or I, D), checked before any other argument
    steps, batch_size = _check_size(steps, "steps"), _check_size(batch_size, "batch_size")
    dead_window = _check_size(dead_window, "dead_window")
    if resample_every is not None:
        resample_every = _check_size(resample_every, "resample_every")
    lr = _util.number(lr, "lr", low=0, low_open=True)
    seed = _util.seed(seed)
    if threads is not None:
        threads = _check_size(threads, "threads")
    if progress is not None and not isinstance(progress, bool):
        raise ValueError(f"progress must be None, True or False, got {progress!r}")
    device = sae.W_dec.device
    n, d = sae.n_instances, sae.d_in

    gen = _generator(seed)
    opt = torch.optim.Adam(sae.parameters(), lr=lr)
    log = {key: torch.empty(steps, n) for key in ("loss", "mse", "l0", "dead_fraction")}
    since_fired = torch.zeros(n, sae.d_sae, dtype=torch.long, device=device)  # (I, S)
    n_resampled = torch.zeros(n, dtype=torch.long)
    bar = None
    if _want_progress(progress):
        from tqdm.auto import tqdm

        bar = tqdm(total=steps, desc="SAE", mininterval=0.5, leave=False)
    # the encoder's multiply-adds per step; tiny SAEs run on one thread (see _util.threads_for)
    work = batch_size * n * d * sae.d_sae
    n_threads = threads or (_util.threads_for(work) if device.type == "cpu" else None)
    with _num_threads(n_threads):
        for step in range(steps):
            index = torch.randint(data.shape[0], (batch_size,), generator=gen).to(device)
            h = data[index].transpose(0, 1).expand(n, batch_size, d)  # (I, B, D)
            mse, l1, l0, fired, grads = sae_loss_and_grads(sae, h)
            for name, prm in sae.named_parameters():
                prm.grad = grads[name]
            with torch.no_grad():
                g, W = sae.W_dec.grad, sae.W_dec
                g.sub_((g * W).sum(-1, keepdim=True) * W)  # keep the step tangent to the sphere
            opt.step()
            sae.normalise_decoder()
            since_fired = torch.where(fired, 0, since_fired + 1)
            dead = since_fired >= dead_window
            due = resample_every and (step + 1) % resample_every == 0
            if due and step + 1 + resample_every <= steps and dead.any():
                n_resampled += _resample(sae, opt, h, dead, gen).cpu()
                since_fired = torch.where(dead, 0, since_fired)
                dead = since_fired >= dead_window
            for key, value in (("loss", mse + l1), ("mse", mse), ("l0", l0)):
                log[key][step] = value.cpu()
            log["dead_fraction"][step] = dead.float().mean(-1).cpu()
            if bar is not None and step % 100 == 99:
                bar.update(100)
    if bar is not None:
        bar.close()
    for p in sae.parameters():
        p.grad = None
    return SAELog(**log, n_resampled=n_resampled)


# ----------------------------------------------------------------------------------------------
# Scoring and data


def firing_rate(latents: torch.Tensor | np.ndarray) -> torch.Tensor:
    """How often each latent fires: the share of samples with a > 0, (N, I, S) -> (I, S).

    A latent with rate 0 never fired on these samples (it is dead on them), and the rates
    summed over the latents are the mean number of active latents per sample, the L0
    (chapters 6 and 9). Any leading sample axis works: (N, ...) -> (...).
    """
    a = _util.as_tensor(latents, "latents").detach()
    if a.dim() < 1 or a.shape[0] == 0:
        raise ValueError(f"latents must be (samples, ...) with samples >= 1, got {tuple(a.shape)}")
    return (a > 0).float().mean(0)


def explained_variance(
    activations: torch.Tensor | np.ndarray, reconstruction: torch.Tensor | np.ndarray
) -> torch.Tensor:
    """The fraction of the activations' variance a reconstruction keeps, per instance: (I,).

    1 - sum ||h - h_hat||^2 / sum ||h - mean(h)||^2 over the N samples: 1 for a perfect
    reconstruction, 0 for one no better than the mean activation (chapter 9). `reconstruction`
    is (N, I, D) as an SAE returns it; `activations` is (N, I, D), or (N, D) shared by every
    instance.
    """
    h = _as_float(activations, "activations").detach()
    r = _as_float(reconstruction, "reconstruction").detach().to(h.dtype)
    given = tuple(h.shape)
    if h.dim() == 2:
        h = h.unsqueeze(1)  # (N, 1, D): the same activations for every instance
    if r.dim() != 3 or h.dim() != 3 or h.shape[0] != r.shape[0] or h.shape[2] != r.shape[2] or (
        h.shape[1] not in (1, r.shape[1])
    ):
        raise ValueError(
            f"reconstruction must be (samples, instances, d) matching activations (samples, d) or"
            f" (samples, instances, d), got {tuple(r.shape)} for {given}"
        )
    err = (h - r).square().sum((0, 2))  # (I,)
    spread = (h - h.mean(0)).square().sum((0, 2)).clamp_min(_EPS)  # (1 or I,)
    return 1 - err / spread


def _directions(x, name: str) -> torch.Tensor:
    t = _util.as_tensor(x, name).detach().to(torch.float64).cpu()
    if t.dim() < 2 or 0 in t.shape:
        raise ValueError(
            f"{name} must hold at least one direction as rows, (..., n, d) with n, d >= 1,"
            f" got {tuple(t.shape)}"
        )
    if not bool(torch.isfinite(t).all()):
        raise ValueError(f"{name} must be finite (no NaN or inf)")
    return _normalise_rows(t)


def max_cosine(
    learned: torch.Tensor | np.ndarray, truth: torch.Tensor | np.ndarray, *, absolute: bool = False
) -> torch.Tensor:
    """For each true direction, the best cosine with any learned one: (..., n_true).

    `learned` is (..., n_learned, d) and `truth` (..., n_true, d), directions as rows (leading
    axes broadcast, e.g. instances). The cosine is signed by default: a latent that reads
    -f is not a detector of f (an SAE's non-negative codes cannot express f through it).
    `absolute=True` scores the absolute cosine instead, ignoring sign, as for lines.
    """
    absolute = _util.flag(absolute, "absolute")
    L, T = _directions(learned, "learned"), _directions(truth, "truth")
    if L.shape[-1] != T.shape[-1]:
        raise ValueError(
            f"learned and truth must share the last axis (d), got {L.shape[-1]} and {T.shape[-1]}"
        )
    cos = T @ L.transpose(-1, -2)  # (..., n_true, n_learned)
    return (cos.abs() if absolute else cos).amax(-1).float()


def mmcs(
    learned: torch.Tensor | np.ndarray, truth: torch.Tensor | np.ndarray, *, absolute: bool = False
) -> torch.Tensor:
    """Mean max cosine similarity: the mean over true directions of `max_cosine`, (...)."""
    return max_cosine(learned, truth, absolute=absolute).mean(-1)


def fraction_recovered(
    learned: torch.Tensor | np.ndarray,
    truth: torch.Tensor | np.ndarray,
    threshold: float = 0.9,
    *,
    absolute: bool = False,
) -> torch.Tensor:
    """The fraction of true directions some learned direction matches with cosine > threshold."""
    threshold = _util.number(threshold, "threshold", low=0, high=1)
    return (max_cosine(learned, truth, absolute=absolute) > threshold).float().mean(-1)


def sparse_synthetic(
    n_samples: int,
    n_features: int,
    d_in: int,
    *,
    feature_probability: float,
    n_instances: int = 1,
    seed: int = 0,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Synthetic activations with known directions (after Sharkey et al. 2022).

    Returns (activations (B, I, D), directions (I, N, D), codes (B, I, N)): for each of
    `n_instances` independent problems, N random unit directions in R^D and sparse non-negative
    coefficients, each active with probability `feature_probability` and then uniform on [0, 1].
    """
    n_samples, d_in = _check_size(n_samples, "n_samples"), _check_size(d_in, "d_in")
    n_features = _check_size(n_features, "n_features")
    n = _check_size(n_instances, "n_instances")
    gen = _generator(seed)
    feature_probability = _util.number(feature_probability, "feature_probability", low=0, high=1)
    directions = _normalise_rows(torch.randn(n, n_features, d_in, generator=gen))  # (I, N, D)
    codes = sample_features(n_samples, feature_probability, n, n_features, generator=gen)
    acts = torch.einsum("bin,ind->bid", codes, directions)  # (B, I, D)
    return acts, directions, codes
