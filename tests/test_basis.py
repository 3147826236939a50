"""supersim.basis against known answers: exact read-backs, interference statistics, rotations."""

import math

import pytest
import torch

import supersim as ss
from supersim import basis as B
from supersim.geometry import random_unit_vectors


def test_orthonormal_directions_read_back_exactly():
    V = B.random_orthogonal(8, seed=3)[:5]  # 5 orthonormal rows in R^8
    x = torch.rand(100, 5, dtype=torch.float64)
    assert torch.allclose(B.read_back(B.embed(x, V), V), x, atol=1e-12)
    assert B.readback_errors(x, V).abs().max() < 1e-12


def test_readback_error_is_the_interference_sum():
    V = random_unit_vectors(6, 3, seed=1, dtype=torch.float64)
    x = torch.rand(20, 6, dtype=torch.float64)
    cos = V @ V.T
    want = x @ (cos - torch.eye(6, dtype=torch.float64))  # sum_{i != j} x_i (w_i . w_j)
    assert torch.allclose(B.readback_errors(x, V), want, atol=1e-12)


def test_relu_readout_and_bias():
    V = torch.tensor([[1.0, 0.0], [-1.0, 0.0]])  # an antipodal pair
    x = torch.tensor([[1.0, 0.0]])
    assert B.read_back(B.embed(x, V), V).tolist() == [[1.0, -1.0]]
    assert B.read_back(B.embed(x, V), V, relu=True).tolist() == [[1.0, 0.0]]
    assert B.read_back(B.embed(x, V), V, relu=True, bias=-0.25).tolist() == [[0.75, 0.0]]


def test_interference_variance_matches_sampling():
    # exactly 5 features of value 1 are on: an active feature sees 4 others, variance 4/n
    n, k, a = 64, 400, 5
    V = random_unit_vectors(k, n, seed=0, dtype=torch.float64)
    x = B.exactly_active(4000, k, a, seed=0)
    err = B.readback_errors(x, V)[x > 0]
    assert err.var().item() == pytest.approx(B.interference_variance(n, a - 1), rel=0.15)
    assert B.interference_variance(10, 3, mean_square=1 / 3) == pytest.approx(0.1)


def test_exactly_active_counts_and_determinism():
    x = B.exactly_active(50, 12, 4, seed=7)
    assert x.shape == (50, 12)
    assert (x.sum(1) == 4).all() and set(x.unique().tolist()) <= {0.0, 1.0}
    assert torch.equal(x, B.exactly_active(50, 12, 4, seed=7))
    assert not torch.equal(x, B.exactly_active(50, 12, 4, seed=8))
    assert B.exactly_active(3, 5, 0).sum() == 0


def test_random_orthogonal_is_orthogonal_and_seeded():
    Q = B.random_orthogonal(7, seed=2)
    assert torch.allclose(Q @ Q.T, torch.eye(7, dtype=torch.float64), atol=1e-12)
    assert torch.equal(Q, B.random_orthogonal(7, seed=2))
    assert not torch.equal(Q, B.random_orthogonal(7, seed=3))


def test_rotation_2d():
    R = B.rotation_2d(math.pi / 2)
    assert torch.allclose(R @ torch.tensor([1.0, 0.0], dtype=torch.float64),
                          torch.tensor([0.0, 1.0], dtype=torch.float64), atol=1e-12)
    eye = torch.eye(2, dtype=torch.float64)
    assert torch.allclose(B.rotation_2d(0.3) @ B.rotation_2d(-0.3), eye)


def test_excess_kurtosis_known_values():
    g = torch.Generator().manual_seed(0)
    gauss = torch.randn(200_000, generator=g)
    assert B.excess_kurtosis(gauss).item() == pytest.approx(0.0, abs=0.05)
    uniform = torch.rand(200_000, generator=g)
    assert B.excess_kurtosis(uniform).item() == pytest.approx(-1.2, abs=0.03)
    # a +-1 coin has the smallest kurtosis there is: excess -2
    assert B.excess_kurtosis(torch.tensor([1.0, -1.0] * 50)).item() == pytest.approx(-2.0)
    both = B.excess_kurtosis(torch.stack([gauss, uniform], 1), dim=0)
    assert both.shape == (2,)
    assert math.isnan(B.excess_kurtosis(torch.ones(10)).item())


def test_axis_share():
    assert B.axis_share(torch.tensor([0.0, 3.0, 0.0])).item() == pytest.approx(1.0)
    assert B.axis_share(torch.ones(4)).item() == pytest.approx(0.25)
    assert B.axis_share(torch.zeros(3)).item() == 0.0
    W = torch.tensor([[1.0, 1.0], [0.0, 1.0]])  # (neurons, features)
    assert B.axis_share(W, dim=0).tolist() == pytest.approx([1.0, 0.5])  # per feature
    assert B.axis_share(W, dim=1).tolist() == pytest.approx([0.5, 1.0])  # per neuron


def test_features_per_neuron():
    R = torch.tensor([[1.0, 0.0, 0.5], [0.05, 0.0, 0.0], [-1.0, 0.2, 0.0]])
    assert B.features_per_neuron(R).tolist() == [2, 0, 1]
    assert B.features_per_neuron(R, threshold=0.6).tolist() == [1, 0, 0]
    # relative: above 0.2 of each unit's own largest response (0.05 -> 0.01, 0.2 -> 0.04)
    R = torch.tensor([[1.0, 0.3, 0.1], [0.05, 0.0, 0.02], [0.0, 0.0, 0.0]])
    assert B.features_per_neuron(R, 0.2, relative=True).tolist() == [2, 2, 0]
    assert B.features_per_neuron(R, 0.2).tolist() == [2, 0, 0]


def test_one_hot_inputs_probe_one_feature_per_sample():
    x = B.one_hot_inputs(4, 3, value=0.5)
    assert x.shape == (4, 3, 4) and x.dtype == torch.float32
    for i in range(4):
        want = torch.zeros(3, 4)
        want[:, i] = 0.5
        assert torch.equal(x[i], want)
    # in a model's layout: hidden(probe)[i] is W's column i, the direction of feature i
    model = ss.ToyModel(4, 2, 3, seed=1)
    with torch.no_grad():
        h = model.hidden(B.one_hot_inputs(4, 3))  # (feature on, instance, hidden)
    assert torch.allclose(h.permute(1, 2, 0), model.W.detach())


def test_procrustes_recovers_a_hidden_rotation():
    Q = B.random_orthogonal(6, seed=1)[:, :4]  # (6, 4) orthonormal columns
    X = torch.rand(500, 4, dtype=torch.float64)
    H = X @ Q.T  # features embedded orthogonally in 6 dims
    M = B.procrustes(H, X)
    assert M.shape == (6, 4)
    assert torch.allclose(M.T @ M, torch.eye(4, dtype=torch.float64), atol=1e-10)
    assert B.relative_error(H @ M, X) < 1e-10


def test_procrustes_with_more_targets_than_dimensions():
    V = random_unit_vectors(8, 3, seed=0, dtype=torch.float64)
    X = torch.rand(1000, 8, dtype=torch.float64)
    H = B.embed(X, V)
    M = B.procrustes(H, X)  # (3, 8): orthonormal rows
    assert M.shape == (3, 8)
    assert torch.allclose(M @ M.T, torch.eye(3, dtype=torch.float64), atol=1e-10)
    # it is the best orthogonal map: a random one with orthonormal rows does worse
    other = B.random_orthogonal(8, seed=5)[:3]
    assert B.relative_error(H @ M, X) < B.relative_error(H @ other, X)
    # and no rank-3 map can reconstruct 8 independent features
    assert B.relative_error(H @ M, X) > 0.3


def test_kurtosis_rotation_finds_sparse_features_without_labels():
    g = torch.Generator().manual_seed(0)
    k, n = 3, 7
    X = torch.rand(20_000, k, generator=g) * (torch.rand(20_000, k, generator=g) < 0.1)
    Q = B.random_orthogonal(n, seed=4)[:k]  # (k, n) orthonormal rows
    H = B.embed(X, Q)
    R = B.kurtosis_rotation(H, k, seed=1)
    assert R.shape == (n, k)
    assert torch.allclose(R.T @ R, torch.eye(k, dtype=torch.float64), atol=1e-10)
    C = B.abs_correlation(H @ R, X)  # (outputs, features)
    assert (C.amax(1) > 0.99).all(), C
    assert sorted(C.argmax(1).tolist()) == list(range(k)), "each output must find its own feature"
    assert torch.equal(R, B.kurtosis_rotation(H, k, seed=1))


def test_abs_correlation():
    a = torch.arange(10.0)
    A = torch.stack([a, -2 * a + 1], 1)
    assert torch.allclose(B.abs_correlation(A, A), torch.ones(2, 2, dtype=torch.float64))


def test_relative_error():
    err = B.relative_error(torch.tensor([1.0, 1.0]), torch.tensor([1.0, 0.0]))
    assert err == pytest.approx(1.0)
    # per row: ||(0, 1)|| / ||(1, 0)|| = 1 and ||(1, 0)|| / ||(0, 2)|| = 1/2
    est, target = torch.tensor([[1.0, 1.0], [1.0, 2.0]]), torch.tensor([[1.0, 0.0], [0.0, 2.0]])
    assert B.relative_error(est, target, dim=1).tolist() == pytest.approx([1.0, 0.5])
    assert B.relative_error(est, target, dim=0).tolist() == pytest.approx([1.0, 0.5])


@pytest.mark.parametrize(
    "call, name",
    [
        (lambda: B.exactly_active(10, 5, 6), "n_active"),
        (lambda: B.exactly_active(10, 5, -1), "n_active"),
        (lambda: B.exactly_active(0, 5, 1), "batch_size"),
        (lambda: B.exactly_active(10, 5, 1, seed=1.5), "seed"),
        (lambda: B.embed(torch.ones(2, 3), torch.ones(4, 5)), "x"),
        (lambda: B.read_back(torch.ones(2, 3), torch.ones(4, 5)), "h"),
        (lambda: B.embed(torch.ones(2, 3), torch.ones(3)), "V"),
        (lambda: B.interference_variance(0, 1), "n"),
        (lambda: B.interference_variance(4, -1), "n_others"),
        (lambda: B.interference_variance(4, 1, mean_square=-1), "mean_square"),
        (lambda: B.random_orthogonal(0), "n"),
        (lambda: B.rotation_2d(float("nan")), "theta"),
        (lambda: B.features_per_neuron(torch.ones(3)), "responses"),
        (lambda: B.features_per_neuron(torch.ones(3, 3), threshold=-1), "threshold"),
        (lambda: B.procrustes(torch.ones(4, 2), torch.ones(5, 2)), "A and B"),
        (lambda: B.relative_error(torch.ones(2), torch.ones(3)), "shapes"),
        (lambda: B.relative_error(torch.ones(2, 3), torch.ones(2, 3), dim=2), "dim"),
        (lambda: B.features_per_neuron(torch.ones(3, 3), relative=1), "relative"),
        (lambda: B.one_hot_inputs(0), "n_features"),
        (lambda: B.one_hot_inputs(3, 0), "n_instances"),
        (lambda: B.one_hot_inputs(3, value=float("nan")), "value"),
        (lambda: B.kurtosis_rotation(torch.ones(10, 3), 4), "k"),
        (lambda: B.kurtosis_rotation(torch.ones(10), 1), "H"),
        (lambda: B.abs_correlation(torch.ones(4, 2), torch.ones(5, 2)), "A and B"),
    ],
)
def test_bad_input_names_the_argument(call, name):
    with pytest.raises(ValueError, match=name):
        call()
