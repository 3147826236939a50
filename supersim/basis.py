"""Features as directions, and the bases they are read in.

Chapter 1 ("Features") writes an activation as h = sum_i x_i w_i and reads feature j back with
a dot product, h . w_j = x_j + sum_{i != j} x_i (w_i . w_j): the true value plus interference.
Chapter 2 ("Privileged bases") asks when the axes of the hidden space mean anything, and when a
rotation can turn polysemantic neurons into one feature per unit. The setting follows Elhage et
al. (2022), "Toy Models of Superposition"; the rotation argument follows Chan (2024),
"Superposition is not 'just' neuron polysemanticity".

Conventions: k directions in R^n are a (k, n) tensor with one unit vector per row; feature
values are (batch, k) and activations (batch, n). Functions accept torch tensors or numpy arrays
and return float64 torch tensors, so that identities can be checked to float precision.
Random unit directions come from `supersim.geometry.random_unit_vectors` (chapter 3).
"""

from __future__ import annotations

import math

import torch

from . import _util
from ._util import Array

__all__ = [
    "exactly_active",
    "embed",
    "read_back",
    "readback_errors",
    "interference_variance",
    "random_orthogonal",
    "rotation_2d",
    "excess_kurtosis",
    "axis_share",
    "one_hot_inputs",
    "features_per_neuron",
    "procrustes",
    "relative_error",
    "kurtosis_rotation",
    "abs_correlation",
]

_EPS = 1e-12


def _t(a, name: str, *, min_dim: int = 1, max_dim: int | None = None, shape: str = "") -> torch.Tensor:
    """`a` checked (finite, non-empty real numbers) as a float64 CPU tensor."""
    return _util.float_tensor(a, name, min_dim=min_dim, max_dim=max_dim, shape=shape, dtype=torch.float64)


def _matrix(a, name: str, shape: str) -> torch.Tensor:
    return _t(a, name, min_dim=2, max_dim=2, shape=shape)


def _same_rows(A: torch.Tensor, B: torch.Tensor) -> None:
    if A.shape[0] != B.shape[0]:
        rows = f"{A.shape[0]} and {B.shape[0]}"
        raise ValueError(f"A and B must have the same number of rows (batch), got {rows}")


# --- chapter 1: directions, embedding and reading back ---------------------------------------


def exactly_active(batch_size: int, k: int, n_active: int, *, seed: int = 0) -> torch.Tensor:
    """(batch_size, k) feature values with exactly `n_active` features at 1 per row, at random."""
    batch_size, k = _util.size(batch_size, "batch_size"), _util.size(k, "k")
    n_active = _util.integer(n_active, "n_active", low=0, high=k)
    # a random permutation of the features per row; the first n_active are switched on
    order = torch.rand(batch_size, k, generator=_util.generator(seed)).argsort(dim=1)
    x = torch.zeros(batch_size, k, dtype=torch.float64)
    return x.scatter_(1, order[:, :n_active], 1.0)


def _pair(x, V, x_name: str, axis: int) -> tuple[torch.Tensor, torch.Tensor]:
    """x (..., V.shape[axis]) and V (k, n), checked, as float64."""
    x, V = _t(x, x_name), _matrix(V, "V", "a (k, n) matrix of directions")
    if x.shape[-1] != V.shape[axis]:
        raise ValueError(
            f"{x_name} must end in {V.shape[axis]} (V is {tuple(V.shape)}), "
            f"got shape {tuple(x.shape)}"
        )
    return x, V


def embed(x: Array, V: Array) -> torch.Tensor:
    """The linear representation h = sum_i x_i w_i.

    (..., k) values, (k, n) rows w_i -> (..., n).
    """
    x, V = _pair(x, V, "x", 0)
    return x @ V


def read_back(
    h: Array, V: Array, *, relu: bool = False, bias: float = 0.0
) -> torch.Tensor:
    """Each feature's read-out h . w_j (+ bias, through a ReLU if `relu`).

    (..., n) activations, (k, n) rows w_j -> (..., k).
    """
    relu, bias = _util.flag(relu, "relu"), _util.number(bias, "bias")
    h, V = _pair(h, V, "h", 1)
    out = h @ V.T + bias  # (..., k)
    return torch.relu(out) if relu else out


def readback_errors(
    x: Array, V: Array, *, relu: bool = False, bias: float = 0.0
) -> torch.Tensor:
    """Read-out minus true value for every feature, (..., k): zero when nothing interferes."""
    relu, bias = _util.flag(relu, "relu"), _util.number(bias, "bias")
    x, V = _pair(x, V, "x", 0)
    return read_back(x @ V, V, relu=relu, bias=bias) - x


def interference_variance(n: int, n_others: float, mean_square: float = 1.0) -> float:
    """Predicted variance of sum_{i != j} x_i (w_i . w_j) for random unit directions in R^n.

    Each cosine has variance 1/n and the terms are uncorrelated, so the variance is
    (expected number of other active features) * E[x_i^2] / n.
    """
    n = _util.size(n, "n")
    n_others = _util.number(n_others, "n_others", low=0)
    mean_square = _util.number(mean_square, "mean_square", low=0)
    return n_others * mean_square / n


# --- chapter 2: bases, rotations and axis alignment ------------------------------------------


def random_orthogonal(n: int, *, seed: int = 0) -> torch.Tensor:
    """A uniformly random (Haar) orthogonal (n, n) matrix: QR of a Gaussian, signs fixed."""
    n = _util.size(n, "n")
    q, r = torch.linalg.qr(torch.randn(n, n, generator=_util.generator(seed), dtype=torch.float64))
    # without the sign fix QR's convention biases the distribution away from uniform
    return q * torch.sign(torch.diagonal(r)).where(torch.diagonal(r) != 0, torch.ones(()))


def rotation_2d(theta: float) -> torch.Tensor:
    """The (2, 2) matrix that rotates the plane by `theta` radians counter-clockwise."""
    theta = _util.number(theta, "theta")
    c, s = math.cos(theta), math.sin(theta)
    return torch.tensor([[c, -s], [s, c]], dtype=torch.float64)


def excess_kurtosis(a: Array, dim: int = 0) -> torch.Tensor:
    """E[(a - mean)^4] / var^2 - 3 along `dim`: 0 for a Gaussian, large for a sparse, spiky signal.

    NaN where the values are constant (no spread, so no shape to measure).
    """
    a = _t(a, "a")
    dim = _util.integer(dim, "dim", low=-a.dim(), high=a.dim() - 1)
    c = a - a.mean(dim, keepdim=True)
    var = c.square().mean(dim)
    k = c.pow(4).mean(dim) / var.square()
    return torch.where(var > _EPS, k - 3, torch.full_like(k, float("nan")))


def axis_share(a: Array, dim: int = -1) -> torch.Tensor:
    """max_k a_k^2 / sum_k a_k^2 along `dim`, which the result drops.

    1 for a vector on one axis, 1/n when spread evenly, 0 for a zero vector.

    On a (neurons, features) weight matrix, dim=0 says how much of each feature sits on
    its strongest neuron, dim=1 how much of each neuron belongs to its strongest
    feature.
    """
    a = _t(a, "a")
    dim = _util.integer(dim, "dim", low=-a.dim(), high=a.dim() - 1)
    sq = a.square()
    total = sq.sum(dim)
    share = sq.amax(dim) / total.clamp_min(_EPS)
    return torch.where(total > _EPS, share, torch.zeros_like(total))


def one_hot_inputs(n_features: int, n_instances: int = 1, *, value: float = 1.0) -> torch.Tensor:
    """The probe inputs: sample i has feature i alone on, at `value`, in every instance.

    (n_features, n_instances, n_features), float32, the (batch, instances, features) layout
    of a toy model's input, so `model.hidden(one_hot_inputs(n, model.n_instances))[i]` is what
    the hidden units do with feature i alone (chapters 2 and 6).
    """
    n_features = _util.size(n_features, "n_features")
    n_instances = _util.size(n_instances, "n_instances")
    value = _util.number(value, "value")
    eye = torch.eye(n_features) * value  # (features on, features)
    return eye.unsqueeze(1).repeat(1, n_instances, 1)


def features_per_neuron(
    responses: Array, threshold: float = 0.1, *, relative: bool = False
) -> torch.Tensor:
    """How many features make each unit fire above `threshold`, from a (units, features) table.

    `responses[u, i]` is unit u's activation when feature i alone is on (`one_hot_inputs`):
    1 feature per unit is monosemantic, more is polysemantic, 0 is a unit that never fires.
    With `relative=True` the threshold is a fraction of each unit's largest response instead
    (chapter 6 counts the features within 20% of a unit's favourite, `threshold=0.2`).
    """
    threshold = _util.number(threshold, "threshold", low=0)
    relative = _util.flag(relative, "relative")
    r = _matrix(responses, "responses", "(units, features)")
    if relative:
        threshold = threshold * r.amax(dim=1, keepdim=True)  # (units, 1)
    return (r > threshold).sum(dim=1)


def procrustes(A: Array, B: Array) -> torch.Tensor:
    """The orthogonal map Q minimising ||A Q - B||_F.

    A is (batch, n), B is (batch, k), Q is (n, k). Q = U V^T from the SVD of A^T B. For
    k <= n its columns are orthonormal (an isometry into the k-dim target); for k > n
    its rows are, which is the most an orthogonal map can do when there are more targets
    than dimensions.
    """
    A, B = _matrix(A, "A", "(batch, n)"), _matrix(B, "B", "(batch, k)")
    _same_rows(A, B)
    # U (n, r), Vh (r, k), with r = min(n, k)
    U, _, Vh = torch.linalg.svd(A.T @ B, full_matrices=False)
    return U @ Vh


def relative_error(
    estimate: Array, target: Array, dim: int | None = None
) -> float | torch.Tensor:
    """||estimate - target|| / ||target||: over everything (Frobenius) as a float, or along `dim`.

    With `dim=1` on (samples, k) arrays, one error per sample, (samples,) (chapter 6 compares
    sparse codes this way); a zero target row then gives 0 or a huge number, not NaN.
    """
    estimate, target = _t(estimate, "estimate", min_dim=0), _t(target, "target", min_dim=0)
    if estimate.shape != target.shape:
        raise ValueError(
            f"estimate and target shapes differ: {tuple(estimate.shape)} vs {tuple(target.shape)}"
        )
    if dim is None:
        return float((estimate - target).norm() / target.norm().clamp_min(_EPS))
    dim = _util.integer(dim, "dim", low=-target.dim(), high=target.dim() - 1)
    return (estimate - target).norm(dim=dim) / target.norm(dim=dim).clamp_min(_EPS)


def kurtosis_rotation(
    H: Array, k: int, *, steps: int = 200, seed: int = 0
) -> torch.Tensor:
    """An (n, k) map with orthonormal columns whose outputs are as spiky (kurtotic) as possible.

    Finds sparse features without labels, as independent component analysis does: keep the top-k
    principal directions of the centred activations, then run symmetric FastICA (cubic
    non-linearity) on the whitened data for the rotation within them. When the features have
    equal variance and sit on orthonormal directions, whitening is a uniform scale and the
    returned map is the orthogonal rotation that puts one feature on each output.
    """
    H = _matrix(H, "H", "(batch, n)")
    k = _util.integer(k, "k", low=1, high=H.shape[1])
    steps, gen = _util.size(steps, "steps"), _util.generator(seed)
    Hc = H - H.mean(0)
    evals, evecs = torch.linalg.eigh(Hc.T @ Hc / Hc.shape[0])  # ascending
    P = evecs[:, -k:].flip(1)  # (n, k) top principal directions
    Z = Hc @ P / evals[-k:].flip(0).clamp_min(_EPS).sqrt()  # (batch, k) whitened
    W = torch.linalg.qr(torch.randn(k, k, generator=gen, dtype=torch.float64))[0]
    # hundreds of small matmuls of (batch, k) by (k, k): usually one thread (_util.threads_for)
    with _util.num_threads(_util.threads_for(Z.shape[0] * k * k)):
        for _ in range(steps):
            Y = Z @ W.T  # (batch, k)
            W = (Y.pow(3).T @ Z) / Z.shape[0] - 3 * W  # fixed point of the kurtosis contrast
            U, _, Vh = torch.linalg.svd(W)
            W = U @ Vh  # symmetric decorrelation: the nearest orthogonal matrix
    return P @ W.T


def abs_correlation(A: Array, B: Array) -> torch.Tensor:
    """Absolute Pearson correlation between every column of A (batch, a) and of B (batch, b): (a, b)."""
    A, B = _matrix(A, "A", "(batch, a)"), _matrix(B, "B", "(batch, b)")
    _same_rows(A, B)
    A = A - A.mean(0)
    B = B - B.mean(0)
    A = A / A.norm(dim=0).clamp_min(_EPS)
    B = B / B.norm(dim=0).clamp_min(_EPS)
    return (A.T @ B).abs()
