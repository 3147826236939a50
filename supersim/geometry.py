"""How many almost-orthogonal directions fit in R^n: random vectors, bounds and packings.

Superposition needs many feature directions with small pairwise overlaps. This module
measures overlaps (the cosine matrix and its maximum off the diagonal, the **coherence**; each
vector's most opposite partner; the angles between neighbours in the plane), gives the bounds
that limit them (Welch 1974; the orthoplex bound of Conway, Hardin & Sloane 1996), the
Johnson-Lindenstrauss dimension (Dasgupta & Gupta 2003), and `pack`, which finds unit vectors
of low coherence by gradient descent on a smooth maximum of their cosines.
Vectors are the rows of a (k, n) tensor; a sign flip does not change the absolute cosine, so
a set of vectors is really a set of lines through the origin.

Taught in chapter 3 ("Johnson-Lindenstrauss packing").

Shapes: R = restarts (or draws), k = vectors, n = dimensions.
"""

from __future__ import annotations

import math

import torch

from . import _util
from ._util import Array

__all__ = [
    "KNOWN_LINE_PACKINGS_R3",
    "random_unit_vectors",
    "cosine_matrix",
    "coherence",
    "partner_cosine",
    "angle_gaps",
    "welch_bound",
    "orthoplex_bound",
    "jl_dimension",
    "explicit_line_packing",
    "smooth_max_loss",
    "pack",
]

#: The best packings of k lines through the origin of R^3, as the largest absolute cosine
#: between two of them. Source: Conway, Hardin & Sloane (1996), "Packing lines, planes, etc.:
#: packings in Grassmannian spaces", Experimental Mathematics 5(2), and N. J. A. Sloane's online
#: tables of Grassmannian packings that accompany it, which list the minimal angle in degrees
#: (70.5288, 63.4349, 63.4349, 54.7356, 49.6399 for k = 4..8). The optima for k <= 7 are proved;
#: k = 4 and 6 meet the Welch bound and k = 7 the orthoplex bound (`explicit_line_packing`
#: builds every k <= 7, and the tests check them against this table). k = 8 has no simple
#: closed form; Mixon & Parshall (2019, arXiv:1902.10177) proved the packing of Conway et al.
#: optimal.
KNOWN_LINE_PACKINGS_R3: dict[int, float] = {
    2: 0.0,
    3: 0.0,
    4: 1 / 3,  # the 4 diagonals of a cube (70.5288 degrees)
    5: 1 / math.sqrt(5),  # 5 of the 6 icosahedron diagonals: a sixth costs nothing
    6: 1 / math.sqrt(5),  # the 6 diagonals of an icosahedron (63.4349 degrees)
    7: 1 / math.sqrt(3),  # cube diagonals plus the 3 axes (54.7356 degrees)
    8: math.cos(math.radians(49.6399)),  # numerical, from the table of Conway, Hardin & Sloane
}


def _k_n(k, n) -> tuple[int, int]:
    return _util.size(k, "k"), _util.size(n, "n")


def _rows(V, *, min_dim: int = 2, shape: str = "(k, n) or (sets, k, n)") -> torch.Tensor:
    """V as (k, n) or (sets, k, n) rows: finite, non-empty, floating point (integers as float64)."""
    V = _util.as_tensor(V, "V")
    dtype = None if V.is_floating_point() else torch.float64
    return _util.float_tensor(V, "V", min_dim=min_dim, max_dim=3, shape=shape, dtype=dtype)


def random_unit_vectors(
    k: int,
    n: int,
    *,
    n_sets: int | None = None,
    seed: int = 0,
    dtype: torch.dtype = torch.float32,
    device: str | torch.device | None = None,
) -> torch.Tensor:
    """k unit vectors drawn uniformly from the sphere in R^n.

    (k, n), or (n_sets, k, n): `n_sets` independent sets of k.
    """
    k, n = _k_n(k, n)
    if not isinstance(dtype, torch.dtype) or not dtype.is_floating_point:
        raise ValueError(f"dtype must be a floating-point torch.dtype, got {dtype!r}")
    device = _util.device(device)
    shape = (k, n) if n_sets is None else (_util.size(n_sets, "n_sets"), k, n)
    # A standard Gaussian is rotation invariant: its direction is uniform on the sphere.
    X = torch.randn(shape, generator=_util.generator(seed), dtype=torch.float64)
    return (X / X.norm(dim=-1, keepdim=True)).to(dtype=dtype, device=device)


def cosine_matrix(V: Array) -> torch.Tensor:
    """Cosines between the rows of V, (k, n) -> (k, k) (or batched); rows need not be unit."""
    V = _rows(V)
    norms = V.norm(dim=-1, keepdim=True)
    if bool((norms == 0).any()):
        raise ValueError("V has a zero row, which has no direction")
    U = V / norms
    return U @ U.transpose(-1, -2)


def coherence(V: Array, *, one_sided: bool = False) -> float | torch.Tensor:
    """The coherence of V: the largest absolute cosine between two distinct rows.

    A float for a (k, n) V, a (sets,) tensor for a (sets, k, n) one; 0 for a single
    vector (there is no pair). Rows need not be unit vectors. With `one_sided=True`, the
    largest signed cosine instead (a spherical code's worst pair): what a ReLU read-out
    of non-negative features pays for, since it discards negative interference
    (chapter 3). It can be negative, down to -1 for two opposite vectors.
    """
    one_sided = _util.flag(one_sided, "one_sided")
    C = cosine_matrix(V)
    if not one_sided:
        C = C.abs()
    k = C.shape[-1]
    if k == 1:
        return 0.0 if C.dim() == 2 else C.new_zeros(C.shape[0])
    C = C.masked_fill(torch.eye(k, dtype=torch.bool, device=C.device), -math.inf)
    mu = C.amax(dim=(-1, -2))
    return float(mu) if C.dim() == 2 else mu


def partner_cosine(V: Array) -> torch.Tensor:
    """Each row's most negative cosine with another row: (k, n) -> (k,), or batched.

    -1 for a member of an antipodal pair (a row and its opposite), cos 144 = -0.81 for a
    corner of a regular pentagon (chapter 4). Needs at least two rows: a lone vector has no
    partner.
    """
    C = cosine_matrix(V)
    k = C.shape[-1]
    if k < 2:
        raise ValueError(f"V must have at least two rows (k >= 2) to have partners, got k = {k}")
    eye = torch.eye(k, dtype=torch.bool, device=C.device)
    return C.masked_fill(eye, math.inf).amin(-1)  # a row is not its own partner


def angle_gaps(V: Array) -> torch.Tensor:
    """The angles in degrees between neighbouring directions in the plane: (k, 2) -> (k,).

    The k rows of V, taken in order of their angle around the origin; gap j is the angle from
    the j-th to the next one counter-clockwise, so the gaps sum to 360. A regular pentagon has
    five gaps of 72 (chapters 4 and 6). Batched: (sets, k, 2) -> (sets, k).
    """
    V = _rows(V)
    if V.shape[-1] != 2:
        raise ValueError(f"V must hold directions in the plane, (k, 2), got {tuple(V.shape)}")
    if bool((V.norm(dim=-1) == 0).any()):
        raise ValueError("V has a zero row, which has no direction")
    angles = torch.atan2(V[..., 1], V[..., 0]).sort(dim=-1).values  # (..., k)
    wrapped = torch.cat([angles, angles[..., :1] + 2 * math.pi], dim=-1)  # back to the first
    return torch.rad2deg(wrapped.diff(dim=-1))


def welch_bound(k: int, n: int) -> float:
    """Welch's lower bound on the coherence of k unit vectors in R^n: sqrt((k-n) / (n(k-1))).

    0 when k <= n (an orthonormal set has coherence 0).
    """
    k, n = _k_n(k, n)
    return math.sqrt((k - n) / (n * (k - 1))) if k > n else 0.0


def orthoplex_bound(k: int, n: int) -> float:
    """Coherence lower bound 1/sqrt(n) for k > n(n+1)/2 lines (Conway, Hardin & Sloane), else 0."""
    k, n = _k_n(k, n)
    return 1 / math.sqrt(n) if k > n * (n + 1) // 2 else 0.0


def jl_dimension(k: int, eps: float) -> int:
    """Smallest n with n >= 4 ln k / (eps^2/2 - eps^3/3): enough to embed k points with distortion eps.

    0 for k = 1: a single point needs no dimension at all.

    The Johnson-Lindenstrauss lemma in the form proved by Dasgupta & Gupta (2003); the same
    formula as scikit-learn's `johnson_lindenstrauss_min_dim`, rounded up instead of down.
    """
    k = _util.size(k, "k")
    eps = _util.number(eps, "eps", low=0, high=1, low_open=True, high_open=True)
    return math.ceil(4 * math.log(k) / (eps**2 / 2 - eps**3 / 3))


def explicit_line_packing(k: int) -> torch.Tensor:
    """The optimal packings of k = 2..7 lines in R^3, built from the cube and icosahedron: (k, 3)."""
    k = _util.integer(k, "k", low=2, high=7)
    phi = (1 + math.sqrt(5)) / 2
    axes = torch.eye(3, dtype=torch.float64)
    cube = torch.tensor([[1, 1, 1], [1, 1, -1], [1, -1, 1], [-1, 1, 1]], dtype=torch.float64)
    # One vertex from each antipodal pair of the icosahedron (0, +-1, +-phi) and cyclic shifts.
    ico = torch.tensor(
        [[0, 1, phi], [0, 1, -phi], [1, phi, 0], [1, -phi, 0], [phi, 0, 1], [-phi, 0, 1]],
        dtype=torch.float64,
    )
    V = {2: axes[:2], 3: axes, 4: cube, 5: ico[:5], 6: ico, 7: torch.cat([axes, cube])}[k]
    return V / V.norm(dim=-1, keepdim=True)


def smooth_max_loss(
    V: torch.Tensor, beta: float, one_sided: bool = False
) -> tuple[torch.Tensor, torch.Tensor]:
    """A soft maximum of cos^2 over distinct pairs of unit rows, and its gradient.

    (R, k, n) -> loss (R,) and d loss / dV (R, k, n). The loss is
    (w / beta) log sum exp(beta cos^2 / w), w being the current largest cos^2 (held
    constant), so `beta` means the same at any coherence: pairs within about w / beta of
    the worst pair share the gradient, the rest hardly count. It lies between max cos^2
    and max cos^2 (1 + log(k(k-1)) / beta). With `one_sided=True` it softens the maximum
    of (1 + cos) / 2 instead, which is smallest when the largest signed cosine is
    (opposite vectors then cost nothing).
    """
    V = _rows(V, min_dim=3, shape="(R, k, n), unit rows")
    beta = _util.number(beta, "beta", low=0, low_open=True)
    return _smooth_max_loss(V, beta, _util.flag(one_sided, "one_sided"))


def _smooth_max_loss(V: torch.Tensor, beta: float, one_sided: bool) -> tuple[torch.Tensor, torch.Tensor]:
    """`smooth_max_loss` without the checks: `pack` calls it at every step."""
    C = V @ V.transpose(-1, -2)  # (R, k, k)
    # the quantity whose maximum we soften
    C2 = (1 + C) / 2 if one_sided else C.square()
    C2.diagonal(dim1=-2, dim2=-1).zero_()  # a vector's cosine with itself is not a pair
    worst = C2.amax(dim=(-1, -2), keepdim=True).clamp_min(1e-12)  # (R, 1, 1)
    # exp(beta (cos^2 / w - 1)): shifted by the largest term so nothing overflows, and
    # clamped at -80 so that float32 never forms subnormal numbers, which are very slow
    # on CPUs.
    E = C2.mul_(beta / worst).sub_(beta).clamp_(min=-80.0).exp_()  # (R, k, k), in place
    E.diagonal(dim1=-2, dim2=-1).zero_()
    total = E.sum(dim=(-1, -2), keepdim=True)  # (R, 1, 1)
    loss = (worst * (1 + total.log() / beta)).flatten()  # (R,)
    # P = E / total is d loss / d cos^2, the weight of each pair (summing to 1);
    # cos^2 = C^2 and C = V V^T is symmetric, so d loss / dV = 2 (2 P C) V.
    # One-sided, d (1 + C) / 2 / dC = 1/2, so d loss / dV = 2 (P / 2) V.
    if one_sided:
        return loss, (E @ V).div_(total)
    grad = (E.mul_(C) @ V).mul_(4 / total)  # (R, k, n)
    return loss, grad


def _auto_restarts(k: int, n: int) -> int:
    # Small problems have many poor local optima and cost nothing: restart a lot. Large ones
    # have many near-equivalent optima and cost k^2 n per step: one run is enough.
    return int(min(16, max(1, 4_000_000 // (k * k * n))))


def pack(
    k: int,
    n: int,
    *,
    restarts: int | None = None,
    steps: int = 500,
    lr: float = 0.05,
    beta: tuple[float, float] = (4.0, 2000.0),
    seed: int = 0,
    device: str | torch.device | None = None,
    threads: int | None = 1,
    one_sided: bool = False,
) -> torch.Tensor:
    """k unit vectors in R^n (rows of a (k, n) float64 tensor) with small coherence.

    With `one_sided=True` it minimises the largest signed cosine instead of the largest
    absolute one (`coherence(V, one_sided=True)`): points on the sphere rather than lines,
    so opposite vectors are the best neighbours instead of the worst.

    Adam-style steps on the sphere (momentum, and one second moment per restart) descend
    `smooth_max_loss` while its sharpness grows geometrically from beta[0] to beta[1] and the
    learning rate decays (cosine). `restarts` independent starts
    run together as a leading axis; the one with the lowest coherence is returned (default: 16
    for small problems, down to 1 for large ones). Same seed, same result.

    `threads` means what it means for `train` and `train_sae`: the most CPU threads to use
    (None: torch's setting), and one for small problems (`_util.threads_for`). The default
    here is 1, not None: even k = 1000, n = 100 takes seconds on one thread, and a second
    can make it several times slower when the cores are shared.
    """
    k, n = _k_n(k, n)
    steps = _util.size(steps, "steps")
    restarts = _auto_restarts(k, n) if restarts is None else _util.size(restarts, "restarts")
    threads = _util.optional(_util.size, threads, "threads")
    one_sided = _util.flag(one_sided, "one_sided")
    gen = _util.generator(seed)  # checks the seed now, before any work
    lr = _util.number(lr, "lr", low=0, low_open=True)
    if not isinstance(beta, (tuple, list)) or len(beta) != 2:
        raise ValueError(f"beta must be (start, end) with 0 < start <= end < inf, got {beta!r}")
    beta = tuple(_util.number(b, "beta", low=0, low_open=True) for b in beta)
    if beta[0] > beta[1]:
        raise ValueError(f"beta must be (start, end) with 0 < start <= end < inf, got {beta!r}")
    device = _util.device(device)
    if k <= n and not one_sided:  # an orthonormal set: coherence 0, nothing to optimise
        Q, _ = torch.linalg.qr(torch.randn(n, k, generator=gen, dtype=torch.float64))
        return Q.T.contiguous().to(device)
    if n == 1:  # every line in R^1 is the same line; as points, alternate the two
        signs = [1.0, -1.0] * k if one_sided else [1.0] * k
        return torch.tensor(signs[:k], dtype=torch.float64, device=device)[:, None]
    V = random_unit_vectors(k, n, n_sets=restarts, seed=seed, device=device)  # (R, k, n)
    m, v = torch.zeros_like(V), V.new_zeros(restarts, 1, 1)  # Adam's moments
    b1, b2 = 0.9, 0.999
    work = restarts * k * k * n  # the (k, k) cosines of every restart, per step
    with _util.num_threads(_util.threads_for(work, threads) if device.type == "cpu" else None):
        for step in range(steps):
            frac = step / max(steps - 1, 1)
            rate = lr * (0.01 + 0.99 * 0.5 * (1 + math.cos(math.pi * frac)))
            sharp = beta[0] * (beta[1] / beta[0]) ** frac
            _, g = _smooth_max_loss(V, sharp, one_sided)
            g -= (g * V).sum(-1, keepdim=True) * V  # keep the part tangent to the sphere
            m.lerp_(g, 1 - b1)
            # One second moment per restart, from the most pushed vector: it then moves about
            # `rate` per step and the others less. Per-coordinate scaling (plain Adam) would blow
            # the tiny gradients of vectors far from the worst pairs up into random steps.
            v.lerp_(g.square().sum(-1).amax(-1).view(-1, 1, 1), 1 - b2)
            m_hat, v_hat = m / (1 - b1 ** (step + 1)), v / (1 - b2 ** (step + 1))
            V -= rate * m_hat / (v_hat.sqrt() + 1e-8)
            V /= V.norm(dim=-1, keepdim=True)  # back onto the sphere
    V = V.to(torch.float64)
    V = V / V.norm(dim=-1, keepdim=True)
    return V[coherence(V, one_sided=one_sided).argmin()].contiguous()

