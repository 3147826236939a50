"""Classic sparse coding: codes for a known dictionary, and learning the dictionary too.

Given activations h in R^d built as sums of sparse features, find the codes a that rebuild them
from a dictionary D of directions, min ||h - a D||^2 + lambda ||a||_1, and then the directions:

- `ista`: sparse codes for a *known* dictionary (FISTA: proximal gradient steps with momentum);
  chapter 6 shows it.
- `learn_dictionary`: alternate codes and a least-squares, renormalised dictionary update.
- `max_cosine`, `mmcs`, `fraction_recovered`: score a learned dictionary (a sparse
  autoencoder's decoder included) against the true directions (Sharkey et al. 2022).
- `sparse_synthetic`: activations whose directions and codes are known, to try them on.

A sparse autoencoder (`supersim.sae`) learns to predict the codes in one step instead of
solving for them. Taught in chapter 6 ("Recovering features with sparse autoencoders").

Shapes: B = batch (samples), I = instances, D = d (the activations' dimension), S = atoms,
N = true features. Dictionaries hold one direction per row: (S, D).
"""

from __future__ import annotations

import math

import torch

from . import _util
from ._util import Array
from .data import sample_features

__all__ = ["ista", "learn_dictionary", "max_cosine", "mmcs", "fraction_recovered", "sparse_synthetic"]

_EPS = 1e-12


def _normalise_rows(D: torch.Tensor) -> torch.Tensor:
    return D / D.norm(dim=-1, keepdim=True).clamp_min(_EPS)


def _problem(h, dictionary, init) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, bool]:
    """`ista`'s h, dictionary and starting codes, checked, in the layout its loop works in.

    One dictionary (S, D): h (..., D) and codes (..., S) as given. One per instance (I, S, D):
    h (B, I, D) becomes (I, B, D), so that each instance is one matmul of a batched product.
    Returns (h, D, codes, whether the layout was turned).
    """
    h = _util.float_tensor(h, "h", min_dim=1)
    D = _util.float_tensor(dictionary, "dictionary", min_dim=1).to(h.dtype)
    turned = D.dim() == 3
    if D.dim() not in (2, 3) or h.shape[-1] != D.shape[-1] or (
        turned and (h.dim() != 3 or h.shape[1] != D.shape[0])
    ):
        raise ValueError(
            f"dictionary must be (atoms, d) or (instances, atoms, d) matching h's last axis"
            f" (and h (batch, instances, d) with instances), got {tuple(D.shape)} for h"
            f" {tuple(h.shape)}"
        )
    D = D.to(h.device)  # the codes live where the activations are
    want = (*h.shape[:-1], D.shape[-2])
    if init is None:
        a = torch.zeros(want, dtype=h.dtype, device=h.device)
    else:
        a = _util.float_tensor(init, "init", min_dim=1).to(device=h.device, dtype=h.dtype)
        if tuple(a.shape) != want:
            raise ValueError(f"init must have the codes' shape {want}, got {tuple(a.shape)}")
    if turned:
        h, a = h.transpose(0, 1), a.transpose(0, 1)  # (I, B, D), (I, B, S)
    return h, D, a, turned


def ista(
    h: Array,
    dictionary: Array,
    l1_coeff: float,
    *,
    steps: int = 300,
    nonneg: bool = True,
    init: Array | None = None,
) -> torch.Tensor:
    """Sparse codes minimising ||h - a D||^2 + l1_coeff ||a||_1 for a fixed
    dictionary D, by FISTA.

    `dictionary` is (S, D), one direction per row, with `h` (..., D) and codes
    (..., S); or (I, S, D), one dictionary per instance, with `h` (B, I, D)
    and codes (B, I, S). `nonneg` keeps codes >= 0 (features that are present
    or absent, as in the toy models); `init` (codes) warm-starts.
    """
    h, D, a, turned = _problem(h, dictionary, init)  # checked; (.., B, D), (.., S, D)
    lam = _util.number(l1_coeff, "l1_coeff", low=0)
    steps, nonneg = _util.size(steps, "steps"), _util.flag(nonneg, "nonneg")
    # L = 2 sigma_max(D)^2 bounds the squared error's curvature: steps of 1/L
    L = 2 * torch.linalg.matrix_norm(D, ord=2).square().clamp_min(_EPS)[..., None, None]
    # all the gradient needs: (.., S, S) and (.., B, S)
    gram, target = D @ D.transpose(-1, -2), h @ D.transpose(-1, -2)
    y, t = a, 1.0
    with _util.num_threads(_util.threads_for(h.numel() * D.shape[-2])):  # work: h D^T
        for _ in range(steps):
            z = y - (2 / L) * (y @ gram - target)  # gradient step on ||h - y D||^2
            # proximal step of the L1 term: shrink towards 0 by lam / L (clip at 0)
            if nonneg:
                a_next = (z - lam / L).clamp_min(0)
            else:
                a_next = z.sign() * (z.abs() - lam / L).clamp_min(0)
            t_next = (1 + math.sqrt(1 + 4 * t * t)) / 2
            # Nesterov momentum: what makes FISTA fast
            y = a_next + ((t - 1) / t_next) * (a_next - a)
            a, t = a_next, t_next
    return a.transpose(0, 1) if turned else a  # (B, I, S) or (..., S)


def learn_dictionary(
    h: Array,
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
    h = _util.float_tensor(h, "h", min_dim=2, max_dim=3,
                           shape="(samples, d) or (samples, instances, d)")
    n_atoms, iters = _util.size(n_atoms, "n_atoms"), _util.size(iters, "iters")
    ista_steps = _util.size(ista_steps, "ista_steps")
    nonneg = _util.flag(nonneg, "nonneg")
    lam = _util.number(l1_coeff, "l1_coeff", low=0)
    gen = _util.generator(seed)
    single = h.dim() == 2
    H = h.unsqueeze(0) if single else h.transpose(0, 1)  # (I, B, D)
    n, dev = H.shape[0], H.device
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
# Scoring a dictionary against the true directions, and data to score it on


def _directions(x, name: str) -> torch.Tensor:
    t = _util.float_tensor(x, name, min_dim=2, shape="(..., n, d), at least one direction as rows")
    return _normalise_rows(t.detach().to(torch.float64).cpu())


def max_cosine(learned: Array, truth: Array, *, absolute: bool = False) -> torch.Tensor:
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
    try:
        torch.broadcast_shapes(L.shape[:-2], T.shape[:-2])
    except RuntimeError:
        raise ValueError(
            f"learned and truth must have leading axes that broadcast (e.g. instances), got"
            f" {tuple(L.shape)} and {tuple(T.shape)}"
        ) from None
    cos = T @ L.transpose(-1, -2)  # (..., n_true, n_learned)
    return (cos.abs() if absolute else cos).amax(-1).float()


def mmcs(learned: Array, truth: Array, *, absolute: bool = False) -> torch.Tensor:
    """Mean max cosine similarity: the mean over true directions of `max_cosine`, (...)."""
    return max_cosine(learned, truth, absolute=absolute).mean(-1)


def fraction_recovered(
    learned: Array, truth: Array, threshold: float = 0.9, *, absolute: bool = False
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
    n_samples, d_in = _util.size(n_samples, "n_samples"), _util.size(d_in, "d_in")
    n_features = _util.size(n_features, "n_features")
    n = _util.size(n_instances, "n_instances")
    feature_probability = _util.number(feature_probability, "feature_probability", low=0, high=1)
    gen = _util.generator(seed)
    directions = _normalise_rows(torch.randn(n, n_features, d_in, generator=gen))  # (I, N, D)
    codes = sample_features(n_samples, feature_probability, n, n_features, generator=gen)
    acts = torch.einsum("bin,ind->bid", codes, directions)  # (B, I, D)
    return acts, directions, codes
