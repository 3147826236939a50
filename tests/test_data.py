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
        (torch.zeros(4, 3), 4, r"x must be a batch laid out \(batch, instances, features\)"),
        (torch.zeros(4, 1, 3, dtype=torch.bool), 4, "x must hold real numbers"),
        ("x", 1, "x must be a tensor or an array of numbers"),
        (torch.zeros(0, 1, 3), 1, "at least one example"),
        (torch.zeros(4, 1, 3), 2.5, "batch_size must be a positive integer"),
        (torch.full((4, 1, 3), float("nan")), 4, "x must be finite"),
        (torch.zeros(4, 1, 3), 5, "batch_size must be <= 4, got 5"),
        (torch.zeros(4, 1, 3), 0, "batch_size must be a positive integer"),
    ],
)
def test_finite_sampler_bad_input(x, batch, match):
    with pytest.raises(ValueError, match=match):
        ss.data.finite_sampler(x)(batch, None)


def test_the_sampler_draws_what_sample_features_draws():
    p = torch.tensor([[0.2], [0.7]])
    sampler = ss.data.sparse_sampler(p, 2, 6, signed=True)
    a = sampler(50, torch.Generator().manual_seed(3))
    b = ss.sample_features(50, p, 2, 6, signed=True, generator=torch.Generator().manual_seed(3))
    assert a.shape == (50, 2, 6) and torch.equal(a, b)
    # the sampler's own generator moves on from call to call, from its seed
    own = ss.data.sparse_sampler(p, 2, 6, seed=4)
    first, second = own(50), own(50)
    assert not torch.equal(first, second)
    assert torch.equal(first, ss.data.sparse_sampler(p, 2, 6, seed=4)(50))


def test_same_draws_give_every_instance_the_same_uniforms():
    p = torch.tensor([[0.2], [0.5], [1.0]])
    x = ss.data.sparse_sampler(p, 3, 4, same_draws=True)(1000)  # (B, 3, 4)
    u = x[:, 2]  # p = 1: the uniforms themselves
    assert torch.equal(x[:, 0], torch.where(u < 0.2, u / 0.2, 0.0))
    assert torch.equal(x[:, 1], torch.where(u < 0.5, u / 0.5, 0.0))


def _torch_rng() -> torch.Tensor:
    return torch.random.get_rng_state()


@pytest.mark.parametrize(
    "call",
    [
        lambda: ss.sample_features(64, 0.3, 2, 4),
        lambda: ss.sample_correlated_features(64, 0.2, 2, n_correlated=1, n_anticorrelated=1),
        lambda: ss.data.sparse_sampler(0.3, 2, 4)(64),
        lambda: ss.data.finite_sampler(torch.linspace(0, 1, 60).view(10, 2, 3))(4),
    ],
    ids=["sample_features", "sample_correlated_features", "sparse_sampler", "finite_sampler"],
)
def test_no_generator_means_a_seeded_one_not_the_global_state(call):
    before = _torch_rng()
    first = call()
    assert torch.equal(_torch_rng(), before), "drew from torch's global random generator"
    torch.manual_seed(12345)  # whatever the global state, the same numbers
    try:
        assert torch.equal(call(), first)
    finally:
        torch.random.set_rng_state(before)


def test_seed_picks_the_draws_when_there_is_no_generator():
    a = ss.sample_features(64, 0.3, 2, 4, seed=1)
    b = ss.sample_correlated_features(64, 0.2, 2, n_correlated=2, seed=1)
    assert not torch.equal(a, ss.sample_features(64, 0.3, 2, 4, seed=2))
    assert not torch.equal(b, ss.sample_correlated_features(64, 0.2, 2, n_correlated=2, seed=2))
    x = torch.rand(10, 2, 3, generator=torch.Generator().manual_seed(0))
    assert not torch.equal(ss.data.finite_sampler(x, seed=1)(4), ss.data.finite_sampler(x, seed=2)(4))


@pytest.mark.parametrize(
    ("call", "match"),
    [
        (lambda: ss.sample_features(8, 0.5, n_features=2, seed=-1), "seed"),
        (lambda: ss.sample_features(8, 0.5, n_features=2, generator=3), "generator must be"),
        (lambda: ss.sample_features(8, 0.5, n_features=2, device="meta",
                                    generator=torch.Generator()), "generator must draw on"),
        (lambda: ss.sample_features(8, 0.5, n_features=2, signed="yes"), "signed"),
        (lambda: ss.sample_features(8, 0.5, n_features=2, device="gpu-please"), "device"),
        (lambda: ss.data.sparse_sampler(0.5, 1, 2, same_draws=1), "same_draws"),
        (lambda: ss.data.sparse_sampler(0.5, 1, 2)(True), "batch_size"),
        (lambda: ss.data.sparse_sampler(float("nan"), 1, 2), "feature_probability"),
        (lambda: ss.data.sparse_sampler(0.5), "n_features is required"),
        (lambda: ss.sample_correlated_features(8, 0.2, n_correlated=1, generator="g"), "generator"),
        (lambda: ss.sample_correlated_features(8, 0.2, n_correlated=1, seed=1.5), "seed"),
        (lambda: ss.data.finite_sampler(torch.rand(4, 1, 3), seed=-2), "seed"),
        (lambda: ss.data.finite_sampler(torch.rand(4, 1, 3))(2, "g"), "generator"),
        (lambda: ss.per_instance_feature(0.5, 2, 3, name="v", low=float("nan")), "low"),
        (lambda: ss.per_instance_feature(0.5, 2, 3, name="v", low=1.0, high=0.0), "low must be at most"),
        (lambda: ss.per_instance_feature(0.5, 2, 3, name="v", low_inclusive="no"), "low_inclusive"),
        (lambda: ss.per_instance_feature(torch.ones(2, 3, dtype=torch.bool), 2, 3, name="v"), "v must be"),
        (lambda: ss.per_instance_feature([[0.5, 1.0]], 2, 3, name="v"), "v must broadcast"),
    ],
)
def test_bad_sampler_input_names_the_argument(call, match):
    with pytest.raises(ValueError, match=match):
        call()
