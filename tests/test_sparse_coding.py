"""Sparse coding, dictionary learning and dictionary scores, on problems with known answers."""

import math

import numpy as np
import pytest
import torch

import supersim as ss
from supersim import sparse_coding


def random_directions(n: int, d: int, seed: int = 0) -> torch.Tensor:
    D = torch.randn(n, d, generator=torch.Generator().manual_seed(seed))
    return D / D.norm(dim=1, keepdim=True)


# ---------------------------------------------------------------------------------------------
# ISTA and dictionary learning


def test_ista_on_an_orthonormal_dictionary_is_soft_thresholding():
    # with D = I the objective separates: min (h - a)^2 + lam a has a = max(0, h - lam / 2)
    h = torch.tensor([[0.9, 0.05, -0.4, 0.3]], dtype=torch.float64)
    lam = 0.2
    a = ss.ista(h, torch.eye(4, dtype=torch.float64), lam, steps=50)
    assert torch.allclose(a, (h - lam / 2).clamp_min(0), atol=1e-10)
    signed = ss.ista(h, torch.eye(4, dtype=torch.float64), lam, steps=50, nonneg=False)
    assert torch.allclose(signed, h.sign() * (h.abs() - lam / 2).clamp_min(0), atol=1e-10)


def test_ista_with_a_rotated_dictionary_matches_the_closed_form():
    # an orthogonal dictionary just rotates the problem: codes are soft-thresholded h D^T
    Q = torch.linalg.qr(torch.randn(5, 5, generator=torch.Generator().manual_seed(3)))[0]
    x = torch.tensor([[0.0, 0.8, 0.0, 0.0, 0.5]])
    a = ss.ista(x @ Q, Q, 0.1, steps=200)
    assert torch.allclose(a, (x - 0.05).clamp_min(0), atol=1e-5)


def test_ista_recovers_sparse_codes_in_an_overcomplete_dictionary():
    D = random_directions(24, 12, seed=1)
    x = torch.zeros(40, 24)
    x[torch.arange(40), torch.arange(40) % 24] = 1.0  # one active feature per sample
    x[torch.arange(0, 40, 2), (torch.arange(0, 40, 2) + 7) % 24] = 0.6  # half get a second one
    a = ss.ista(x @ D, D, 1e-3, steps=500)
    assert ((a - x).norm(dim=1) / x.norm(dim=1)).max() < 0.05
    assert torch.equal(a > 0.1, x > 0)


def test_ista_batched_dictionaries_match_one_by_one():
    D = torch.stack([random_directions(10, 6, seed=s) for s in range(3)])  # (3, 10, 6)
    h = torch.rand(7, 3, 6)  # (batch, instances, d), the public layout
    a = ss.ista(h, D, 0.05, steps=30)
    assert a.shape == (7, 3, 10)
    for i in range(3):
        assert torch.allclose(a[:, i], ss.ista(h[:, i], D[i], 0.05, steps=30), atol=1e-5)
    # one dictionary for every instance: the same as handing it to each
    shared = ss.ista(h, D[0], 0.05, steps=30)
    assert torch.allclose(shared, ss.ista(h, D[0].expand(3, 10, 6), 0.05, steps=30), atol=1e-6)


def test_ista_warm_start_leaves_init_alone_and_accepts_numpy():
    D = random_directions(8, 4, seed=2)
    h = torch.rand(5, 4, generator=torch.Generator().manual_seed(1))
    start = ss.ista(h, D, 0.05, steps=3)
    kept = start.clone()
    warm = ss.ista(h, D, 0.05, steps=200, init=start)
    assert torch.equal(start, kept), "the warm start must not be changed in place"
    assert torch.allclose(warm, ss.ista(h, D, 0.05, steps=400), atol=1e-4)
    assert torch.allclose(ss.ista(h.numpy(), D.numpy(), np.float64(0.05), steps=np.int64(20)),
                          ss.ista(h, D, 0.05, steps=20))


def test_learn_dictionary_recovers_known_directions_and_is_deterministic():
    h, dirs, _ = ss.sparse_synthetic(1000, 12, 8, feature_probability=0.1, n_instances=2, seed=4)
    D, codes = ss.learn_dictionary(h, 12, 0.2, seed=0)
    assert D.shape == (2, 12, 8) and codes.shape == (1000, 2, 12)
    assert torch.allclose(D.norm(dim=-1), torch.ones(2, 12), atol=1e-5)
    assert (ss.mmcs(D, dirs) > 0.95).all()
    D_again, _ = ss.learn_dictionary(h, 12, 0.2, seed=0)
    assert torch.equal(D, D_again)
    D0, codes0 = ss.learn_dictionary(h[:, 0], 12, 0.2, seed=0)  # unbatched shapes
    assert D0.shape == (12, 8) and codes0.shape == (1000, 12)


# ---------------------------------------------------------------------------------------------
# Scores and data


def test_mmcs_known_answers():
    truth = torch.eye(3)
    assert ss.mmcs(truth, truth).item() == pytest.approx(1.0)
    assert ss.mmcs(truth[[2, 0, 1]] * 5, truth).item() == pytest.approx(1.0)  # order, scale
    assert ss.mmcs(-truth, truth, absolute=True).item() == pytest.approx(1.0)  # |cos| ignores the sign
    # signed (the default): e_i's best match among -e_1..-e_3 is an orthogonal one (cos 0)
    assert ss.mmcs(-truth, truth).item() == pytest.approx(0.0)
    assert ss.mmcs(-truth[:1], truth).item() == pytest.approx(-1 / 3)
    # one learned direction at 60 degrees from e1 and 30 from e2 in the plane
    learned = torch.tensor([[math.cos(math.pi / 3), math.sin(math.pi / 3), 0.0]])
    best = ss.max_cosine(learned, truth)
    assert torch.allclose(best, torch.tensor([0.5, math.sqrt(3) / 2, 0.0]), atol=1e-6)
    assert ss.mmcs(learned, truth).item() == pytest.approx((0.5 + math.sqrt(3) / 2) / 3, abs=1e-6)
    # extra learned directions never lower the score; a zero row scores 0, not NaN
    assert ss.mmcs(torch.cat([truth, torch.rand(4, 3)]), truth).item() == pytest.approx(1.0)
    assert ss.mmcs(torch.zeros(2, 3), truth).item() == 0.0


def test_fraction_recovered_and_instances_broadcast():
    truth = torch.eye(4)
    learned = torch.stack([truth, torch.cat([truth[:2], torch.ones(2, 4)])])  # (2, 4, 4)
    assert ss.max_cosine(learned, truth).shape == (2, 4)
    assert torch.allclose(ss.fraction_recovered(learned, truth), torch.tensor([1.0, 0.5]))
    assert torch.allclose(ss.fraction_recovered(learned, truth, threshold=0.4), torch.tensor([1.0, 1.0]))


def test_sparse_synthetic_shapes_and_statistics():
    h, dirs, codes = ss.sparse_synthetic(20_000, 10, 5, feature_probability=0.2, seed=1)
    assert h.shape == (20_000, 1, 5) and dirs.shape == (1, 10, 5) and codes.shape == (20_000, 1, 10)
    assert torch.allclose(dirs.norm(dim=-1), torch.ones(1, 10), atol=1e-6)
    assert torch.allclose(h[:, 0], codes[:, 0] @ dirs[0], atol=1e-5)
    assert (codes >= 0).all() and (codes <= 1).all()
    assert (codes > 0).float().mean().item() == pytest.approx(0.2, abs=0.01)
    h2, dirs2, codes2 = ss.sparse_synthetic(100, 10, 5, feature_probability=0.2, n_instances=3)
    assert h2.shape == (100, 3, 5) and dirs2.shape == (3, 10, 5) and codes2.shape == (100, 3, 10)


def test_the_module_exports_what_it_defines():
    assert set(sparse_coding.__all__) == {"ista", "learn_dictionary", "max_cosine", "mmcs",
                                          "fraction_recovered", "sparse_synthetic"}
    for name in sparse_coding.__all__:
        assert getattr(ss, name) is getattr(sparse_coding, name)
    assert not hasattr(ss.sae, "ista"), "one home per concept: sparse coding is not in sae"


# ---------------------------------------------------------------------------------------------
# Bad input: each public name rejects it with a ValueError naming the argument, before any work

NAN, INF = float("nan"), float("inf")
D64 = random_directions(6, 4)
H = torch.rand(10, 4, generator=torch.Generator().manual_seed(0))


@pytest.mark.parametrize(
    "call, match",
    [
        (lambda: ss.ista(torch.rand(3, 4), torch.rand(5, 6), 0.1), "dictionary must be"),
        (lambda: ss.ista(torch.rand(3, 4), torch.rand(2, 5, 4), 0.1), "dictionary must be"),  # h not 3-D
        (lambda: ss.ista(torch.rand(3, 4, 4), torch.rand(2, 5, 4), 0.1), "dictionary must be"),  # I
        (lambda: ss.ista(torch.rand(3, 4), torch.rand(4), 0.1), "dictionary must be"),
        (lambda: ss.ista(torch.full((3, 4), NAN), D64, 0.1), "h must be finite"),
        (lambda: ss.ista(torch.zeros(0, 4), D64, 0.1), "h must not be empty"),
        (lambda: ss.ista(H, torch.full((6, 4), INF), 0.1), "dictionary must be finite"),
        (lambda: ss.ista(H, D64, -1.0), "l1_coeff must be a finite number >= 0"),
        (lambda: ss.ista(H, D64, torch.tensor(NAN)), "l1_coeff"),
        (lambda: ss.ista(H, D64, 0.1, steps=0), "steps must be a positive integer"),
        (lambda: ss.ista(H, D64, 0.1, steps=2.0), "steps must be a positive integer"),
        (lambda: ss.ista(H, D64, 0.1, nonneg=1), "nonneg must be True or False"),
        (lambda: ss.ista(H, D64, 0.1, init=torch.zeros(10, 5)), "init must have the codes' shape"),
        (lambda: ss.ista(H, D64, 0.1, init=torch.full((10, 6), NAN)), "init must be finite"),
        (lambda: ss.ista("h", D64, 0.1), "h must be a tensor"),
        (lambda: ss.learn_dictionary(torch.rand(30, 4), 0, 0.1), "n_atoms must be a positive integer"),
        (lambda: ss.learn_dictionary(torch.rand(30), 3, 0.1), r"h must be \(samples, d\)"),
        (lambda: ss.learn_dictionary(torch.rand(30, 2, 3, 4), 3, 0.1), r"h must be \(samples, d\)"),
        (lambda: ss.learn_dictionary(torch.full((30, 4), NAN), 3, 0.1), "h must be finite"),
        (lambda: ss.learn_dictionary(H, 3, 0.1, seed=-1), "seed"),
        (lambda: ss.learn_dictionary(H, 3, 0.1, iters=0), "iters"),
        (lambda: ss.learn_dictionary(H, 3, 0.1, ista_steps=True), "ista_steps"),
        (lambda: ss.fraction_recovered(torch.eye(3), torch.eye(3), threshold=1.5),
         r"threshold must be a finite number in \[0, 1\]"),
        (lambda: ss.mmcs(torch.rand(4, 3), torch.rand(4, 5)), "share the last axis"),
        (lambda: ss.mmcs(torch.rand(2, 4, 3), torch.rand(3, 4, 3)), "broadcast"),
        (lambda: ss.mmcs(torch.rand(3), torch.eye(3)), r"learned must be \(\.\.\., n, d\)"),
        (lambda: ss.mmcs(torch.eye(3), torch.zeros(0, 3)), "truth must not be empty"),
        (lambda: ss.max_cosine(torch.full((2, 3), NAN), torch.eye(3)), "learned must be finite"),
        (lambda: ss.max_cosine(torch.eye(3), torch.eye(3), absolute="yes"), "absolute must be True"),
        (lambda: ss.sparse_synthetic(10, 4, 3, feature_probability=1.5), "feature_probability"),
        (lambda: ss.sparse_synthetic(0, 4, 3, feature_probability=0.5), "n_samples"),
        (lambda: ss.sparse_synthetic(10, 4, 3, feature_probability=0.5, n_instances=0), "n_instances"),
    ],
)
def test_bad_input_is_named(call, match):
    with pytest.raises(ValueError, match=match):
        call()
