"""Dimensionality over training examples (Henighan et al. 2023)."""

import math

import pytest
import torch

from supersim import memorization


def test_examples_on_a_pentagon_have_dimensionality_two_fifths():
    # five one-hot examples, and W sending feature j to the j-th corner of a pentagon
    a = 2 * math.pi * torch.arange(5) / 5
    W = torch.stack([a.cos(), a.sin()]).unsqueeze(0)  # (1, 2, 5)
    x = torch.eye(5).unsqueeze(1)  # (T=5, I=1, F=5)
    H = memorization.hidden_vectors(W, x)
    assert H.shape == (1, 2, 5) and torch.allclose(H, W)
    D = memorization.example_dimensionality(W, x)
    assert torch.allclose(D, torch.full((1, 5), 0.4), atol=1e-5)


def test_an_empty_example_has_dimensionality_zero():
    W = torch.randn(2, 3, 4, generator=torch.Generator().manual_seed(0))
    x = torch.rand(6, 2, 4, generator=torch.Generator().manual_seed(1))
    x[2] = 0
    D = memorization.example_dimensionality(W, x)
    assert D.shape == (2, 6) and (D[:, 2] == 0).all() and (D[:, [0, 1, 3]] > 0).all()
    # the dimensionalities of a model's examples add up to at most its hidden size
    assert (D.sum(-1) <= 3 + 1e-4).all()


@pytest.mark.parametrize(
    ("W", "x"),
    [(torch.zeros(2, 3), torch.zeros(4, 1, 3)), (torch.zeros(1, 2, 3), torch.zeros(4, 1, 5)),
     (torch.zeros(2, 2, 3), torch.zeros(4, 1, 3))],
)
def test_bad_shapes(W, x):
    with pytest.raises(ValueError, match="(W|x) must be"):
        memorization.example_dimensionality(W, x)


def test_typical_dimensionality_of_polygons_ignores_empty_items():
    D = torch.tensor([[0.4] * 5 + [0.0] * 20, [0.5, 0.5] + [0.0] * 23, [0.08] * 25])
    assert torch.allclose(memorization.typical_dimensionality(D), torch.tensor([0.4, 0.5, 0.08]))
    with pytest.raises(ValueError, match="D must hold values >= 0"):
        memorization.typical_dimensionality(torch.tensor([0.5, -0.1]))
