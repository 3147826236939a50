"""Sparse feature sampling: shapes, statistics, determinism, bad input."""

import pytest
import torch

import supersim as ss


def test_shape_and_broadcast_per_instance():
    p = torch.tensor([[1.0], [0.5], [0.0]])  # (instances, 1): one density per instance
    x = ss.sample_features(4096, p, n_instances=3, n_features=7, generator=torch.Generator().manual_seed(0))
    assert x.shape == (4096, 3, 7)
    active = (x != 0).float().mean(dim=(0, 2))
    assert active[0] == 1.0 and active[2] == 0.0
    assert abs(active[1] - 0.5) < 0.02


@pytest.mark.parametrize("p", [0.02, 0.3, 0.9])
def test_activation_frequency_and_mean(p):
    g = torch.Generator().manual_seed(1)
    x = ss.sample_features(200_000, p, n_instances=1, n_features=5, generator=g)
    active = x[x != 0]
    n = x.numel()
    # binomial standard error of the frequency, 5 sigma
    assert abs(active.numel() / n - p) < 5 * (p * (1 - p) / n) ** 0.5
    assert abs(active.mean().item() - 0.5) < 5 * (1 / 12 / active.numel()) ** 0.5
    assert active.min() >= 0 and active.max() < 1


def test_signed_values_are_uniform_on_minus_one_one():
    g = torch.Generator().manual_seed(2)
    x = ss.sample_features(100_000, 0.5, n_instances=2, n_features=3, signed=True, generator=g)
    active = x[x != 0]
    assert abs(active.mean().item()) < 0.01
    assert abs(active.abs().mean().item() - 0.5) < 0.01
    assert active.min() >= -1 and active.max() < 1
    assert abs((x != 0).float().mean().item() - 0.5) < 0.01


def test_same_generator_seed_same_batch():
    a = ss.sample_features(64, 0.3, 2, 4, generator=torch.Generator().manual_seed(5))
    b = ss.sample_features(64, 0.3, 2, 4, generator=torch.Generator().manual_seed(5))
    c = ss.sample_features(64, 0.3, 2, 4, generator=torch.Generator().manual_seed(6))
    assert torch.equal(a, b) and not torch.equal(a, c)


@pytest.mark.parametrize(
    "kwargs, match",
    [
        (dict(batch_size=8, feature_probability=1.5, n_instances=1, n_features=2), "feature_probability"),
        (dict(batch_size=8, feature_probability=-0.1, n_instances=1, n_features=2), "feature_probability"),
        (dict(batch_size=0, feature_probability=0.5, n_instances=1, n_features=2), "batch_size"),
        (dict(batch_size=8, feature_probability=0.5, n_instances=0, n_features=2), "n_instances"),
        (dict(batch_size=8, feature_probability=0.5, n_instances=1, n_features=-3), "n_features"),
        (dict(batch_size=8, feature_probability=[0.5, 0.5, 0.5], n_instances=1, n_features=2), "broadcast"),
    ],
)
def test_bad_input_names_the_argument(kwargs, match):
    with pytest.raises(ValueError, match=match):
        ss.sample_features(**kwargs)


def test_sweeps():
    d = ss.sparsity_sweep(5, 0.05)
    assert torch.allclose(d[[0, -1]], torch.tensor([1.0, 0.05]))
    assert torch.all(d[1:] < d[:-1])
    assert torch.allclose(ss.importance_decay(3, 0.9), torch.tensor([1.0, 0.9, 0.81]))
    with pytest.raises(ValueError, match="ratio"):
        ss.importance_decay(3, 1.5)
    with pytest.raises(ValueError, match="lowest_probability"):
        ss.sparsity_sweep(3, 0.0)


def test_finite_sampler_gives_the_full_set_or_a_subset():
    x = ss.sample_features(10, 0.5, 2, 3, generator=torch.Generator().manual_seed(0))  # (T, I, F)
    draw = ss.data.finite_sampler(x)
    assert torch.equal(draw(10, None), x)
    gen = torch.Generator().manual_seed(1)
    part = draw(4, gen)
    assert part.shape == (4, 2, 3)
    rows = [int((x == r).all(dim=(1, 2)).nonzero()[0]) for r in part]  # each row is an example
    assert len(set(rows)) == 4, "a batch draws examples without replacement"
    assert not torch.equal(part, draw(4, gen)), "each batch is a fresh subset"


@pytest.mark.parametrize(
    ("x", "batch", "match"),
    [
        (torch.zeros(4, 3), 4, "x must be a float tensor"),
        (torch.zeros(4, 1, 3, dtype=torch.int64), 4, "x must be a float tensor"),
        ([[[0.0]]], 1, "x must be a float tensor"),
        (torch.zeros(0, 1, 3), 1, "at least one example"),
        (torch.full((4, 1, 3), float("nan")), 4, "x must be finite"),
        (torch.zeros(4, 1, 3), 5, "batch_size must be at most the 4 examples"),
        (torch.zeros(4, 1, 3), 0, "batch_size must be a positive integer"),
    ],
)
def test_finite_sampler_bad_input(x, batch, match):
    with pytest.raises(ValueError, match=match):
        ss.data.finite_sampler(x)(batch, None)
