"""Ground truths with known features, and the scores of chapter 10, against known answers."""

import pytest
import torch

import supersim as ss
from supersim import ground_truth as gt


def hierarchy(n_instances=2, seed=0, d=10):
    return gt.hierarchical_features(3, 4, d, parent_probability=0.3, child_probability=0.6,
                                    n_independent=5, feature_probability=0.1,
                                    n_instances=n_instances, seed=seed)


def test_samples_are_codes_times_unit_directions_and_reproducible():
    truth = gt.independent_features(12, 6, feature_probability=0.2, n_instances=3, seed=1)
    assert truth.directions.shape == (3, 12, 6) and truth.n_features == 12 and truth.n_instances == 3
    assert torch.allclose(truth.directions.norm(dim=-1), torch.ones(3, 12))
    h, x = truth.sample(500, seed=4)
    assert h.shape == (500, 3, 6) and x.shape == (500, 3, 12)
    assert torch.allclose(h, torch.einsum("bin,ind->bid", x, truth.directions), atol=1e-6)
    h2, x2 = truth.sample(500, seed=4)
    assert torch.equal(x, x2) and not torch.equal(x, truth.sample(500, seed=5)[1])
    assert truth.parents == [] and (truth.parent == -1).all()


def test_independent_features_fire_at_their_probability_uniformly():
    x = gt.independent_features(10, 4, feature_probability=0.25, seed=0).sample(40_000)[1]
    on = x > 0
    assert abs(on.float().mean().item() - 0.25) < 0.01
    assert abs(x[on].mean().item() - 0.5) < 0.01 and x.max() < 1


def test_a_parent_fires_whenever_a_child_does_and_children_exclude_each_other():
    truth = hierarchy()
    assert truth.n_features == 3 * 5 + 5
    assert truth.parents == [0, 1, 2] and truth.children(1) == [7, 8, 9, 10]
    x = truth.sample(60_000, seed=3)[1]
    on = x > 0
    for p in truth.parents:
        kids = on[..., truth.children(p)]  # (B, I, 4)
        assert not (kids.any(-1) & ~on[..., p]).any(), "a child without its parent"
        assert (kids.sum(-1) <= 1).all(), "two children of one parent at once"
        assert abs(on[..., p].float().mean().item() - 0.3) < 0.01
        # given the parent, a child with probability 0.6, each child alike
        assert abs(kids.any(-1)[on[..., p]].float().mean().item() - 0.6) < 0.015
        assert (kids.float().mean((0, 1)) - 0.3 * 0.6 / 4).abs().max() < 0.01
    assert abs(on[..., 15:].float().mean().item() - 0.1) < 0.01


def test_correlated_sets_fire_together_or_apart():
    truth = gt.correlated_features(2, 2, 5, n_independent=3, feature_probability=0.2, seed=0)
    on = truth.sample(20_000, seed=1)[1] > 0
    assert torch.equal(on[..., 0], on[..., 1]) and torch.equal(on[..., 2], on[..., 3])
    assert not (on[..., 4] & on[..., 5]).any() and not (on[..., 6] & on[..., 7]).any()
    assert (on.float().mean((0, 1)) - 0.2).abs().max() < 0.02


def test_unequal_features_have_their_own_frequency_and_size():
    p = torch.tensor([0.5, 0.2, 0.05, 0.01])
    s = torch.tensor([1.0, 0.5, 2.0, 0.1])
    x = gt.unequal_features(4, 3, feature_probability=p, scale=s, seed=0).sample(100_000)[1][:, 0]
    assert ((x > 0).float().mean(0) - p).abs().max() < 0.006
    assert (x.amax(0) <= s).all() and (x.amax(0) > 0.9 * s).all()


def test_absorption_reads_zero_on_the_truth_and_the_built_share_on_an_absorbing_code():
    # in 32 dimensions each child's absorbed row is still the row closest to the child
    truth = hierarchy(n_instances=2, d=32)
    _, x = truth.sample(40_000, seed=2)
    assert torch.allclose(gt.absorption(x, truth.directions, x, truth), torch.zeros(2))
    assert torch.allclose(gt.parent_share(truth.directions, truth), torch.zeros(2, 12), atol=1e-5)
    for share in (0.0, 0.5, 1.0):
        a, decoder = gt.absorbing_code(x, truth, share, seed=1)
        assert (gt.absorption(a, decoder, x, truth) - share).abs().max() < 0.02, share
        assert torch.allclose(gt.parent_share(decoder, truth), torch.full((2, 12), 0.5), atol=1e-5)
    # counted on some samples only: those where the absorbing code absorbs
    a, decoder = gt.absorbing_code(x, truth, 0.5, seed=1)
    took = (a[..., :3] == 0) & (x[..., :3] > 0)  # a silent parent: absorbed
    some = took.any(-1) | ((x[..., 3:15] > 0).sum(-1) == 0)  # those, and no child at all
    assert torch.allclose(gt.absorption(a, decoder, x, truth, samples=some), torch.ones(2))
    # exact where parent and child are equal (the child's row is their sum's direction)
    x_eq = x.clone()
    for p in truth.parents:
        kids = truth.children(p)
        x_eq[..., kids] = torch.where(x[..., kids] > 0, x_eq[..., p : p + 1], 0.0)
    a, decoder = gt.absorbing_code(x_eq, truth, 1.0)
    h = torch.einsum("bin,ind->bid", x_eq, truth.directions)
    assert torch.allclose(torch.einsum("bin,ind->bid", a, decoder), h, atol=1e-5)


def test_latents_within_a_parent_count_its_family():
    truth = hierarchy(n_instances=2)
    _, x = truth.sample(40_000, seed=2)
    for p in truth.parents:
        assert gt.latents_within(x, x, p).tolist() == [5, 5], "the parent and its four children"
    # a latent that fires on everything is inside nothing
    a = torch.cat([x, torch.ones(40_000, 2, 1)], dim=-1)
    assert gt.latents_within(a, x, 0).tolist() == [5, 5]
    assert gt.latents_within(x, x, 17).tolist() == [1, 1], "an independent feature: itself"


def test_matched_share_known_answers():
    D = ss.random_unit_vectors(6, 8, n_sets=2, seed=0)
    assert torch.equal(gt.matched_share(D, D), torch.ones(2))
    assert torch.equal(gt.matched_share(D, -D), torch.zeros(2)), "a latent reading -f is not f"
    half = D.clone()
    half[:, 3:] = ss.random_unit_vectors(3, 8, n_sets=2, seed=9)
    assert torch.allclose(gt.matched_share(half, D), torch.full((2,), 0.5))
    alive = torch.tensor([[True] * 3 + [False] * 3] * 2)
    assert torch.equal(gt.matched_share(half, D, alive=alive), torch.ones(2))
    assert torch.equal(gt.matched_share(D, D, reference_alive=alive), torch.full((2,), 0.5))


def test_score_gathers_the_measures_of_a_dictionary():
    truth = hierarchy(n_instances=2)
    h, x = truth.sample(4096, seed=0)
    sae = ss.SparseAutoencoder(10, 20, n_instances=2, seed=0)
    ss.train_sae(sae, h, steps=100, progress=False)
    recon, a = sae(h)
    out = gt.score(truth, x, h, a, recon, sae.W_dec)
    assert set(out) == {"mmcs", "recovered", "dead", "fve", "l0", "absorption", "parent_share"}
    assert all(v.shape == (2,) for v in out.values())
    assert torch.allclose(out["mmcs"], ss.mmcs(sae.W_dec, truth.directions))
    assert torch.allclose(out["l0"], (a > 0).float().sum(-1).mean(0))
    # the truth itself: everything recovered, nothing lost, nothing absorbed
    exact = gt.score(truth, x, h, x, h, truth.directions)
    assert torch.allclose(exact["mmcs"], torch.ones(2)) and torch.allclose(exact["fve"], torch.ones(2))
    assert (exact["absorption"] == 0).all()
    flat = gt.independent_features(12, 10, feature_probability=0.1, n_instances=2, seed=0)
    h, x = flat.sample(256)
    assert "absorption" not in gt.score(flat, x, h, *sae(h)[::-1], sae.W_dec)


def test_select_keeps_some_instances():
    truth = hierarchy(n_instances=3)
    one = truth.select([2, 0])
    assert torch.equal(one.directions, truth.directions[[2, 0]])
    assert torch.equal(one.sample(50, seed=1)[1], truth.sample(50, seed=1)[1][:, [2, 0]])
    assert one.children(0) == truth.children(0) and truth.select(1).n_instances == 1


@pytest.mark.parametrize("call, match", [
    (lambda: gt.independent_features(0, 4, feature_probability=0.1), "n_features"),
    (lambda: gt.independent_features(5, 4, feature_probability=1.5), "feature_probability"),
    (lambda: gt.independent_features(5, 0, feature_probability=0.1), "d"),
    (lambda: gt.hierarchical_features(2, 3, 4, parent_probability=-0.1, child_probability=0.5),
     "parent_probability"),
    (lambda: gt.hierarchical_features(2, 3, 4, parent_probability=0.1, child_probability=2),
     "child_probability"),
    (lambda: gt.hierarchical_features(2, 0, 4, parent_probability=0.1, child_probability=0.5),
     "n_children"),
    (lambda: gt.correlated_features(0, 0, 4, feature_probability=0.1), "no features"),
    (lambda: gt.correlated_features(1, 1, 4, feature_probability=0.6), "feature_probability"),
    (lambda: gt.unequal_features(3, 4, feature_probability=[0.1, 0.2]), "feature_probability"),
    (lambda: gt.unequal_features(3, 4, feature_probability=0.1, scale=0), "scale"),
    (lambda: hierarchy().sample(0), "n_samples"),
    (lambda: hierarchy().sample(5, seed=-1), "seed"),
    (lambda: hierarchy().children(99), "parent"),
    (lambda: gt.absorption(torch.rand(5, 2, 7), torch.rand(2, 7, 10), torch.rand(5, 2, 20),
                           gt.independent_features(20, 10, feature_probability=0.1, n_instances=2)),
     "truth"),
    (lambda: gt.absorption(torch.rand(5, 2, 7), torch.rand(2, 8, 10), torch.rand(5, 2, 20), hierarchy()),
     "latents"),
    (lambda: gt.parent_share(torch.rand(3, 7, 10), hierarchy()), "decoder"),
    (lambda: gt.absorption(torch.rand(5, 2, 7), torch.rand(2, 7, 10), torch.rand(5, 2, 20), hierarchy(),
                           samples=torch.ones(5, 2)), "samples"),
    (lambda: gt.matched_share(torch.rand(4, 3), torch.rand(4, 5)), "d"),
    (lambda: gt.matched_share(torch.rand(4, 3), torch.rand(4, 3), 2.0), "threshold"),
    (lambda: gt.matched_share(torch.rand(4, 3), torch.rand(4, 3), alive=torch.ones(3, dtype=torch.bool)),
     "alive"),
    (lambda: gt.latents_within(torch.rand(5, 2, 7), torch.rand(5, 2, 20), 20), "feature"),
    (lambda: gt.latents_within(torch.rand(5, 2, 7), torch.rand(4, 2, 20), 1), "latents"),
    (lambda: gt.absorbing_code(torch.rand(5, 2, 20), hierarchy(), 1.5), "share"),
    (lambda: gt.absorbing_code(torch.rand(5, 2, 19), hierarchy()), "codes"),
    (lambda: gt.score("truth", torch.rand(5, 2, 20), torch.rand(5, 2, 10), torch.rand(5, 2, 7),
                      torch.rand(5, 2, 10), torch.rand(2, 7, 10)), "truth"),
    (lambda: gt.score(hierarchy(), torch.rand(5, 2, 20), torch.rand(5, 2, 9), torch.rand(5, 2, 7),
                      torch.rand(5, 2, 10), torch.rand(2, 7, 10)), "activations"),
    (lambda: hierarchy().select(5), "index"),
    (lambda: hierarchy().select([]), "index"),
    (lambda: gt.GroundTruth("x", torch.rand(4, 3), lambda b, g: None, torch.zeros(4)), "directions"),
    (lambda: gt.GroundTruth("x", torch.rand(1, 4, 3), None, torch.zeros(4)), "codes"),
    (lambda: gt.GroundTruth("x", torch.rand(1, 4, 3), lambda b, g: None, torch.zeros(3)), "parent"),
])
def test_bad_arguments_are_named(call, match):
    with pytest.raises(ValueError, match=match):
        call()
