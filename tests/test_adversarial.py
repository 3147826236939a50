"""Closed-form attacks on the toy model: candidates, the no-superposition baseline, bad input."""

import pytest
import torch

import supersim as ss
from supersim import adversarial


def _orthonormal_model(n_features=6, d_hidden=3):
    """Features 0..m-1 on the axes, the rest dropped, zero bias: no superposition."""
    model = ss.ToyModel(n_features, d_hidden, n_instances=1)
    with torch.no_grad():
        model.W.zero_()
        model.W[0, :, :d_hidden] = torch.eye(d_hidden)
    return model


def test_candidates_are_unit_rows_of_wtw_times_the_radius():
    W = torch.randn(2, 3, 5, generator=torch.Generator().manual_seed(0))
    cands = adversarial.attack_candidates(W, torch.tensor([0.5, 2.0]))
    assert cands.shape == (2, 10, 5)
    assert torch.allclose(cands.norm(dim=-1), torch.tensor([[0.5], [2.0]]).expand(2, 10))
    G = W.transpose(1, 2) @ W
    cos = torch.nn.functional.cosine_similarity(cands[:, :5], G, dim=-1)
    assert torch.allclose(cos, torch.ones(2, 5), atol=1e-5)
    assert torch.equal(cands[:, 5:], -cands[:, :5])


def test_no_superposition_has_vulnerability_one():
    model = _orthonormal_model()
    x = ss.sample_features(500, 0.5, 1, 6, generator=torch.Generator().manual_seed(1))
    assert torch.allclose(adversarial.vulnerability(model, x), torch.ones(1), atol=1e-4)


def test_an_antipodal_pair_is_more_vulnerable():
    model = ss.ToyModel(2, 1, n_instances=1)
    with torch.no_grad():
        model.W.copy_(torch.tensor([[[1.0, -1.0]]]))
        model.b.zero_()
    x = ss.sample_features(500, 0.5, 1, 2, generator=torch.Generator().manual_seed(2))
    # the push along one feature also lowers its partner's output, often below zero (cut off)
    assert adversarial.vulnerability(model, x) > 1.2


def test_gradient_attack_stays_in_budget_and_matches_the_closed_form_without_superposition():
    model = _orthonormal_model()
    x = ss.sample_features(64, 0.5, 1, 6, generator=torch.Generator().manual_seed(3))
    r = adversarial.attack_radius(x)
    clean, analytic = adversarial.analytic_attack(model, x, r)
    ascent = adversarial.gradient_attack(model, x, r, steps=60, seed=1)
    # within the ball the best a linear read-out allows is the closed form's
    assert (ascent <= analytic + 1e-5).all()
    assert torch.allclose(ascent.mean(), analytic.mean(), rtol=0.02)
    assert (analytic >= clean).all()


@pytest.mark.parametrize(
    ("call", "match"),
    [
        (lambda m, x: adversarial.attack_radius(x, fraction=0), "fraction"),
        (lambda m, x: adversarial.attack_radius(x[0]), "x must be"),
        (lambda m, x: adversarial.attack_candidates(m.W[0], 1.0), "W must be"),
        (lambda m, x: adversarial.attack_candidates(m.W, -1.0), "radius"),
        (lambda m, x: adversarial.analytic_attack(ss.AbsModel(6, 3), x, 1.0), "model must be"),
        (lambda m, x: adversarial.analytic_attack(m, x[:, :, :4], 1.0),
         r"x must be a batch laid out \(batch, instances, features\) = \(B, 1, 6\)"),
        (lambda m, x: adversarial.analytic_attack(m, x, float("nan")), "radius"),
        (lambda m, x: adversarial.analytic_attack(m, x, torch.ones(3)), "radius must be one number"),
        (lambda m, x: adversarial.analytic_attack(m, x, 1.0, importance=-1.0), "importance"),
        (lambda m, x: adversarial.analytic_attack(m, x.transpose(0, 1), 1.0), "x must be a batch"),
        (lambda m, x: adversarial.attack_radius("x"), "x must be"),
        (lambda m, x: adversarial.attack_radius(x, fraction=float("nan")), "fraction"),
        (lambda m, x: adversarial.attack_candidates(torch.full((1, 3, 6), float("nan")), 1.0),
         "W must be finite"),
        (lambda m, x: adversarial.gradient_attack(m, x, 1.0, restarts=1.5), "restarts"),
        (lambda m, x: adversarial.gradient_attack(m, x, 1.0, seed=-1), "seed"),
        (lambda m, x: adversarial.gradient_attack(m, x, -1.0), "radius"),
        (lambda m, x: adversarial.vulnerability(m, x, fraction=0), "fraction"),
        (lambda m, x: adversarial.vulnerability(ss.AbsModel(6, 3), x), "model must be"),
        (lambda m, x: adversarial.gradient_attack(m, x, 1.0, steps=0), "steps"),
        (lambda m, x: adversarial.gradient_attack(m, x, 1.0, seed=1.5), "seed"),
    ],
)
def test_bad_input(call, match):
    model = _orthonormal_model()
    x = torch.rand(4, 1, 6)
    with pytest.raises(ValueError, match=match):
        call(model, x)


@pytest.mark.parametrize("batch", [3, 50])  # 3 = n_instances
def test_attack_losses_are_the_reconstruction_loss_with_per_instance_importance(batch):
    model = ss.ToyModel(5, 2, n_instances=3, seed=1)
    with torch.no_grad():
        model.b.fill_(-0.05)
    x = ss.sample_features(batch, 0.4, 3, 5, seed=2)
    imp = torch.rand(3, 5, generator=torch.Generator().manual_seed(0))
    imp[2] = 0.0  # an instance whose features weigh nothing
    r = adversarial.attack_radius(x)
    clean, attacked = adversarial.analytic_attack(model, x, r, importance=imp)
    assert clean.shape == attacked.shape == (batch, 3)
    assert torch.allclose(clean.mean(0), ss.reconstruction_loss(model, x, imp).detach(), rtol=1e-6)
    assert torch.equal(attacked[:, 2], torch.zeros(batch))
    # the attacked loss of each example is the loss at x + d against the clean x, (B, I)
    cands = adversarial.attack_candidates(model.W, r)  # (I, C, F)
    by_hand = torch.stack([
        (imp * (model(x + cands[:, c]) - x).square()).mean(-1) for c in range(cands.shape[1])
    ]).amax(0).detach()
    assert torch.allclose(attacked, torch.maximum(clean, by_hand), rtol=1e-6)
    ascent = adversarial.gradient_attack(model, x, r, importance=imp, steps=5, restarts=1)
    assert ascent.shape == (batch, 3) and torch.equal(ascent[:, 2], torch.zeros(batch))
