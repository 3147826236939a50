"""Snapshots as tensors, snapshot losses and jump detection."""

import pytest
import torch

import supersim as ss
from supersim import dynamics


def test_find_jumps_finds_steps_and_ignores_slopes_and_noise():
    gen = torch.Generator().manual_seed(0)
    S = 200
    D = 0.003 * torch.randn(S, 2, 3, generator=gen) + 0.5
    D[120:, 0, 1] -= 0.1  # a step from 1/2 to 2/5 at snapshot 120
    D[:, 1, 2] = torch.linspace(0.2, 0.5, S)  # a slow slope: no jump
    D[50:, 1, 0] = 0.0  # a feature given up at snapshot 50
    jumps = dynamics.find_jumps(D, window=10, threshold=0.05)
    got = sorted(zip(jumps.snapshot.tolist(), jumps.instance.tolist(), jumps.feature.tolist(),
                     strict=True))
    assert got == [(50, 1, 0), (120, 0, 1)]
    k = jumps.instance.tolist().index(0)
    assert jumps.before[k] == pytest.approx(0.5, abs=0.01) and jumps.after[k] == pytest.approx(0.4, abs=0.01)
    assert len(dynamics.find_jumps(D[:, :, 2:], window=10)) == 0


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


def test_bad_input():
    with pytest.raises(ValueError, match="snapshots must be"):
        dynamics.stack_snapshots([])
    with pytest.raises(ValueError, match="name must be one of"):
        dynamics.stack_snapshots([(1, {"W": torch.zeros(1)})], "V")
    with pytest.raises(ValueError, match="D must be"):
        dynamics.find_jumps(torch.zeros(30, 4))
    with pytest.raises(ValueError, match="at least 2 \\* window"):
        dynamics.find_jumps(torch.zeros(15, 1, 1), window=10)
    with pytest.raises(ValueError, match="threshold"):
        dynamics.find_jumps(torch.zeros(30, 1, 1), threshold=0)
    with pytest.raises(ValueError, match="window"):
        dynamics.find_jumps(torch.zeros(30, 1, 1), window=0)
    model = ss.ToyModel(6, 2, n_instances=2)
    with pytest.raises(ValueError, match="x must be"):
        dynamics.snapshot_losses(model, [(1, dict(model.named_parameters()))], torch.zeros(4, 2, 5))
