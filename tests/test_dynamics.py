"""Snapshots as tensors, snapshot losses and jump detection."""

import pytest
import torch

import supersim as ss
from supersim import _fast, dynamics


def test_find_jumps_finds_steps_and_ignores_noise():
    gen = torch.Generator().manual_seed(0)
    S = 200
    D = 0.003 * torch.randn(S, 2, 3, generator=gen) + 0.5
    D[120:, 0, 1] -= 0.1  # a step from 1/2 to 2/5 at snapshot 120
    D[50:, 1, 0] = 0.0  # a feature given up at snapshot 50
    D[80:86, 1, 2] = torch.linspace(0.5, 0.2, 8)[1:-1]  # a fast move over six snapshots
    D[86:, 1, 2] = 0.2
    jumps = dynamics.find_jumps(D, window=10, threshold=0.05, gap=10)
    got = sorted(zip(jumps.snapshot.tolist(), jumps.instance.tolist(), jumps.feature.tolist(), strict=True))
    # reported at the middle of the transition, within the gap of 10 snapshots
    assert {(i, f) for _, i, f in got} == {(0, 1), (1, 0), (1, 2)}
    for t, i, f in got:
        true_t = {(0, 1): 120, (1, 0): 50, (1, 2): 83}[(i, f)]
        assert abs(t - true_t) <= 5, (t, i, f)
    k = jumps.instance.tolist().index(0)
    assert jumps.before[k] == pytest.approx(0.5, abs=0.01) and jumps.after[k] == pytest.approx(0.4, abs=0.01)
    # noise alone, however long, is not a jump
    noise = 0.5 + 0.02 * torch.randn(2_000, 4, 50, generator=gen)
    assert len(dynamics.find_jumps(noise)) == 0


@pytest.mark.parametrize("length", [30, 50, 100, 200, 500])  # snapshots
@pytest.mark.parametrize("noise", [0.0, 0.005])
def test_find_jumps_ignores_linear_ramps_of_any_length_beyond_the_gap(length, noise):
    """A ramp from 0.2 to 0.5 between two plateaus is no jump once it is slower than the gap."""
    gen = torch.Generator().manual_seed(1)
    S = length + 200
    D = torch.full((S, 1, 1), 0.2)
    D[100 : 100 + length, 0, 0] = torch.linspace(0.2, 0.5, length)
    D[100 + length :, 0, 0] = 0.5
    D += noise * torch.randn(S, 1, 1, generator=gen)
    assert len(dynamics.find_jumps(D, window=10, gap=10)) == 0
    # the same move, made within the gap, is one jump
    D = torch.full((S, 1, 1), 0.2)
    D[100 : 100 + 8, 0, 0] = torch.linspace(0.2, 0.5, 8)
    D[108:, 0, 0] = 0.5
    D += noise * torch.randn(S, 1, 1, generator=gen)
    assert len(dynamics.find_jumps(D, window=10, gap=10)) == 1


def test_find_jumps_ignores_a_steady_slope():
    """A slope along the whole series, at any rate above the threshold, gives no jump."""
    for slope in (0.001, 0.003, 0.01, 0.03):
        D = (slope * torch.arange(300.0))[:, None, None]
        assert len(dynamics.find_jumps(D, window=10, gap=10)) == 0, slope


def test_snapshot_losses_match_the_model_at_each_snapshot():
    model = ss.ToyModel(6, 2, n_instances=2, seed=0)
    snaps = []
    ss.train(model, feature_probability=0.3, steps=20, snapshot_every=10, snapshots=snaps,
             progress=False)
    steps, W = dynamics.stack_snapshots(snaps)
    assert steps.tolist() == [10, 20] and W.shape == (2, 2, 2, 6)
    x = ss.sample_features(64, 0.3, 2, 6, generator=torch.Generator().manual_seed(1))
    final = model.W.detach().clone()
    L = dynamics.snapshot_losses(model, snaps, x)
    assert L.shape == (2, 2)
    assert torch.equal(model.W, final), "the model's own weights must come back"
    assert torch.allclose(L[-1], (model(x) - x).square().mean(dim=(0, 2)))


@pytest.mark.parametrize("batch", [2, 64])  # 2 = n_instances: the batch the old bug aligned
def test_snapshot_losses_are_the_reconstruction_loss_with_per_instance_importance(batch):
    model = ss.AbsModel(4, 3, n_instances=2, seed=0)
    snaps = []
    ss.train(model, feature_probability=0.3, steps=20, snapshot_every=10, snapshots=snaps,
             progress=False)
    x = ss.sample_features(batch, 0.5, 2, 4, signed=True, seed=1)
    imp = torch.tensor([[1.0, 0.5, 0.25, 0.1], [0.0, 0.0, 0.0, 0.0]])  # instance 1 weighs nothing
    L = dynamics.snapshot_losses(model, snaps, x, imp)
    assert torch.equal(L[:, 1], torch.zeros(2))
    for s, (_, params) in enumerate(snaps):
        m = ss.AbsModel(4, 3, n_instances=2)
        m.load_state_dict(params)
        want = ss.reconstruction_loss(m, x, imp).detach()
        assert torch.allclose(L[s], want, rtol=1e-6, atol=0), (s, L[s], want)
    # a scalar or (F,) importance broadcasts to every instance
    flat = dynamics.snapshot_losses(model, snaps, x, imp[0])
    assert torch.allclose(flat[:, 0], L[:, 0]) and (flat[:, 1] > 0).all()


class _PlainToy(ss.ToyModel):
    """Not exactly a ToyModel, so `snapshot_losses` takes its plain loop over snapshots."""


@pytest.mark.parametrize("piece", [None, 64])  # 64: many pieces of snapshots and examples
@pytest.mark.parametrize(("activation", "hidden_relu"), [("relu", False), ("relu", True),
                                                         ("linear", False)])
def test_fast_snapshot_losses_equal_the_plain_loop(monkeypatch, piece, activation, hidden_relu):
    # the fast path (ToyModel, AbsModel) against a straightforward reference: each snapshot
    # loaded into a model and run through reconstruction_loss, per-instance importance
    if piece is not None:
        monkeypatch.setattr(_fast, "_SNAPSHOT_PIECE", piece)
    gen = torch.Generator().manual_seed(3)
    n_inst, n_feat, n_hid = 3, 7, 2
    snaps = [(k, {"W": torch.randn(n_inst, n_hid, n_feat, generator=gen),
                  "b": 0.3 * torch.randn(n_inst, n_feat, generator=gen)}) for k in range(5)]
    x = ss.sample_features(50, 0.4, n_inst, n_feat, generator=gen)
    imp = torch.rand(n_inst, n_feat, generator=gen)  # a different profile per instance
    kw = dict(n_instances=n_inst, activation=activation, hidden_relu=hidden_relu)
    fast = dynamics.snapshot_losses(ss.ToyModel(n_feat, n_hid, **kw), snaps, x, imp)
    plain = dynamics.snapshot_losses(_PlainToy(n_feat, n_hid, **kw), snaps, x, imp)
    want = torch.zeros(len(snaps), n_inst)
    for s, (_, params) in enumerate(snaps):
        m = ss.ToyModel(n_feat, n_hid, **kw)
        m.load_state_dict(params)
        for i in range(n_inst):  # one instance at a time, by the formula
            out = m(x)[:, i]
            want[s, i] = (imp[i] * (out - x[:, i]).square()).mean()
    assert (want > 0).all()
    assert torch.allclose(plain, want, rtol=1e-6, atol=0)
    assert torch.allclose(fast, want, rtol=1e-6, atol=0), (fast, want)


def test_bad_input():
    with pytest.raises(ValueError, match="snapshots must be"):
        dynamics.stack_snapshots([])
    with pytest.raises(ValueError, match="name must be one of"):
        dynamics.stack_snapshots([(1, {"W": torch.zeros(1)})], "V")
    with pytest.raises(ValueError, match="snapshots must hold"):
        dynamics.stack_snapshots([(1, {"W": torch.zeros(1)}), "W"])
    with pytest.raises(ValueError, match="snapshots must hold 'W' in one shape"):
        dynamics.stack_snapshots([(1, {"W": torch.zeros(1)}), (2, {"W": torch.zeros(2)})])
    with pytest.raises(ValueError, match="D must be"):
        dynamics.find_jumps(torch.zeros(30, 4))
    with pytest.raises(ValueError, match="D must be finite"):
        dynamics.find_jumps(torch.full((30, 1, 1), float("nan")))
    with pytest.raises(ValueError, match="at least 2 \\* window \\+ gap"):
        dynamics.find_jumps(torch.zeros(25, 1, 1), window=10, gap=10)
    with pytest.raises(ValueError, match="gap must be a non-negative integer"):
        dynamics.find_jumps(torch.zeros(30, 1, 1), window=5, gap=-1)
    with pytest.raises(ValueError, match="gap must be a non-negative integer"):
        dynamics.find_jumps(torch.zeros(30, 1, 1), window=5, gap=1.5)
    with pytest.raises(ValueError, match="threshold"):
        dynamics.find_jumps(torch.zeros(30, 1, 1), threshold=0)
    with pytest.raises(ValueError, match="contrast"):
        dynamics.find_jumps(torch.zeros(30, 1, 1), contrast=float("inf"))
    with pytest.raises(ValueError, match="window"):
        dynamics.find_jumps(torch.zeros(30, 1, 1), window=0)
    model = ss.ToyModel(6, 2, n_instances=2)
    snaps = [(1, {n: p.detach().clone() for n, p in model.named_parameters()})]
    with pytest.raises(ValueError, match=r"x must be a batch laid out \(batch, instances, features\)"):
        dynamics.snapshot_losses(model, snaps, torch.zeros(4, 2, 5))
    with pytest.raises(ValueError, match=r"x must be a batch laid out"):  # instances first
        dynamics.snapshot_losses(model, snaps, torch.zeros(2, 4, 6))
    with pytest.raises(ValueError, match="importance must be"):
        dynamics.snapshot_losses(model, snaps, torch.zeros(4, 2, 6), torch.ones(3, 6))
    with pytest.raises(ValueError, match="importance must be >= 0"):
        dynamics.snapshot_losses(model, snaps, torch.zeros(4, 2, 6), -1.0)
    with pytest.raises(ValueError, match="model must be a supersim model"):
        dynamics.snapshot_losses(torch.nn.Linear(2, 2), snaps, torch.zeros(4, 2, 6))
    with pytest.raises(ValueError, match=r"snapshots must hold the model's parameter 'W' with shape"):
        dynamics.snapshot_losses(model, [(1, {"W": torch.zeros(2, 2, 5)})], torch.zeros(4, 2, 6))
