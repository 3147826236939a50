"""Metrics on exact polytopes, where the answers are known in closed form."""

import math

import pytest
import torch

import supersim as ss


def polygon(k: int, scale: float = 1.0) -> torch.Tensor:
    """k unit vectors at equal angles in the plane, as the columns of a (2, k) matrix."""
    a = torch.arange(k) * 2 * math.pi / k
    return scale * torch.stack([a.cos(), a.sin()])


def tetrahedron() -> torch.Tensor:
    v = torch.tensor([[1.0, 1, 1], [1, -1, -1], [-1, 1, -1], [-1, -1, 1]]).T
    return v / v.norm(dim=0)


@pytest.mark.parametrize(
    "W, D",
    [
        (torch.eye(3), 1.0),
        (polygon(2), 1 / 2),  # antipodal pair
        (polygon(3), 2 / 3),  # triangle
        (polygon(5), 2 / 5),  # pentagon
        (tetrahedron(), 3 / 4),
    ],
)
def test_feature_dimensionality_of_polytopes(W, D):
    assert torch.allclose(ss.feature_dimensionality(W), torch.full((W.shape[1],), D), atol=1e-6)
    # scale does not matter, only geometry
    assert torch.allclose(ss.feature_dimensionality(3 * W), torch.full((W.shape[1],), D), atol=1e-6)


def test_unlearned_feature_gives_zero_not_nan():
    W = torch.cat([polygon(2), torch.zeros(2, 1)], dim=1)
    D = ss.feature_dimensionality(W)
    assert not torch.isnan(D).any()
    assert torch.allclose(D, torch.tensor([0.5, 0.5, 0.0]))
    assert not torch.isnan(ss.superposition(W)).any()


def test_instances_axis_and_dimensions_per_feature():
    W = torch.stack([torch.cat([polygon(5)], 1), torch.cat([torch.eye(2), torch.zeros(2, 3)], 1)])
    assert ss.feature_dimensionality(W).shape == (2, 5)
    # pentagon: 2 dims over 5 unit features; two orthogonal features: 2 dims over 2
    assert torch.allclose(ss.dimensions_per_feature(W), torch.tensor([2 / 5, 1.0]))
    assert ss.n_represented(W).tolist() == [5, 2]


def test_represented_is_a_mask_at_the_shared_threshold():
    from supersim.metrics import REPRESENTED_NORM, represented

    # norms just either side of the cut, and one far below
    W = torch.tensor([[REPRESENTED_NORM + 1e-3, REPRESENTED_NORM - 1e-3, 0.01, 1.0]])
    assert represented(W).tolist() == [True, False, False, True]
    assert represented(W.unsqueeze(0)).tolist() == [[True, False, False, True]]
    assert represented(W, norm_threshold=0.005).tolist() == [True, True, True, True]
    assert torch.equal(ss.n_represented(W), represented(W).sum())
    with pytest.raises(ValueError, match="norm_threshold"):
        represented(W, norm_threshold=-0.1)


def test_superposition_and_norms():
    sup = ss.superposition(polygon(2))
    assert torch.allclose(sup, torch.ones(2))  # each shares its whole line with the other
    assert torch.allclose(ss.superposition(torch.eye(4)), torch.zeros(4))
    # pentagon: sum_j cos^2 over the other four = 2 * (cos^2 72 + cos^2 144) = 1.5
    assert torch.allclose(ss.superposition(polygon(5)), torch.full((5,), 1.5), atol=1e-6)
    assert torch.allclose(ss.feature_norms(polygon(3, 2.0)), torch.full((3,), 2.0))


def test_bad_shape():
    with pytest.raises(ValueError, match="W must be"):
        ss.feature_dimensionality(torch.zeros(3))
