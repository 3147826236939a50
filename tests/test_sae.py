"""Sparse coding, dictionary learning and sparse autoencoders, on problems with known answers."""

import math

import matplotlib
import pytest
import torch

import supersim as ss
from supersim.sae import (
    SAELog,
    _dense_loss_and_grads,
    _resample,
    _topk_loss_and_grads,
    sae_loss_and_grads,
)

matplotlib.use("Agg")


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
    h = torch.rand(7, 3, 6)
    a = ss.ista(h, D, 0.05, steps=30)
    assert a.shape == (7, 3, 10)
    for i in range(3):
        assert torch.allclose(a[:, i], ss.ista(h[:, i], D[i], 0.05, steps=30), atol=1e-5)


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
# Scores


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


# ---------------------------------------------------------------------------------------------
# Sparse autoencoders


def test_shapes_unit_decoder_and_repr():
    # one instance by default, with the instances axis that ToyModel has too
    sae = ss.SparseAutoencoder(6, 20)
    toy = ss.ToyModel(20, 6)
    assert sae.n_instances == toy.n_instances == 1
    assert sae.W_dec.shape == (1, 20, 6) and sae.W_enc.shape == (1, 6, 20)
    assert sae.b_enc.shape == (1, 20) and sae.b_dec.shape == (1, 6)
    assert torch.allclose(sae.W_dec.norm(dim=-1), torch.ones(1, 20))
    h = torch.rand(9, 1, 6)
    recon, a = sae(h)
    assert recon.shape == (9, 1, 6) and a.shape == (9, 1, 20) and (a >= 0).all()
    assert torch.allclose(sae.latents(h), a)
    # encode and decode are the same maps in the instances-first layout training uses
    h_ib = h.transpose(0, 1)  # (I, B, D)
    assert torch.allclose(sae.encode(h_ib).transpose(0, 1), a)
    assert torch.allclose(sae.decode(sae.encode(h_ib)).transpose(0, 1), recon)
    assert sae.loss(h).shape == (1,)
    assert "n_instances=1" in repr(sae) and "l1_coeff=[0.3]" in repr(sae)

    batched = ss.SparseAutoencoder(6, 20, n_instances=4, l1_coeff=[0.1, 0.2, 0.3, 0.4])
    assert batched.W_dec.shape == (4, 20, 6)
    recon, a = batched(torch.rand(9, 4, 6))
    assert recon.shape == (9, 4, 6) and a.shape == (9, 4, 20)
    assert batched.loss(torch.rand(9, 4, 6)).shape == (4,)
    assert "l1_coeff=[0.1, 0.2, 0.3, 0.4]" in repr(batched)
    # (B, D) activations are shared: every instance encodes the same samples
    shared = torch.rand(9, 6)
    assert torch.equal(batched.latents(shared), batched.latents(shared[:, None].expand(9, 4, 6)))


def test_n_instances_is_keyword_only():
    with pytest.raises(TypeError):
        ss.SparseAutoencoder(6, 20, 4)


def test_instances_are_independent_saes():
    # instance i of a batched SAE computes what a one-instance SAE with its weights computes
    batched = ss.SparseAutoencoder(5, 8, n_instances=3, l1_coeff=[0.0, 0.2, 1.0], seed=4)
    h = torch.rand(11, 3, 5)
    recon, a = batched(h)
    for i in range(3):
        one = ss.SparseAutoencoder(5, 8, l1_coeff=batched.l1_coeff[i].item())
        with torch.no_grad():
            for name, p in one.named_parameters():
                p.copy_(getattr(batched, name)[i : i + 1])
        r1, a1 = one(h[:, i : i + 1])
        assert torch.allclose(r1[:, 0], recon[:, i]) and torch.allclose(a1[:, 0], a[:, i])
        assert torch.allclose(one.loss(h[:, i : i + 1]), batched.loss(h)[i : i + 1])


def test_topk_keeps_at_most_k_latents_per_instance():
    sae = ss.SparseAutoencoder(5, 16, n_instances=3, kind="topk", k=[1, 3, 16], seed=2)
    with torch.no_grad():
        sae.b_enc.fill_(1.0)  # every pre-activation positive, so exactly k survive
    a = sae.latents(torch.rand(50, 3, 5))
    assert (a > 0).sum(-1).amax(0).tolist() == [1, 3, 16]
    # the survivors are the k largest pre-activations, unchanged
    h = torch.rand(50, 3, 5)
    pre = torch.einsum("bid,ids->bis", h - sae.b_dec.detach(), sae.W_enc.detach()) + 1.0
    top3 = pre[:, 1].topk(3, dim=-1)
    assert torch.allclose(sae.latents(h)[:, 1].gather(-1, top3.indices), top3.values, atol=1e-5)


@pytest.mark.parametrize("kind, extra", [("l1", {"l1_coeff": [0.1, 0.7]}), ("topk", {"k": [2, 5]})])
@pytest.mark.parametrize("n_instances", [1, 2])
def test_hand_written_gradients_match_autograd(kind, extra, n_instances):
    extra = {key: value[:n_instances] for key, value in extra.items()}
    sae = ss.SparseAutoencoder(6, 12, n_instances=n_instances, kind=kind, seed=1, **extra)
    with torch.no_grad():
        sae.b_enc.normal_(0, 0.1, generator=torch.Generator().manual_seed(0))
        sae.b_dec.normal_(0, 0.1, generator=torch.Generator().manual_seed(1))
    h = torch.rand(40, n_instances, 6, generator=torch.Generator().manual_seed(2))
    sae.loss(h).sum().backward()
    *_, grads = sae_loss_and_grads(sae, h.transpose(0, 1))
    for name, p in sae.named_parameters():
        assert torch.allclose(p.grad, grads[name], atol=1e-5), name


@pytest.mark.parametrize("n_instances", [1, 3])
def test_topk_sparse_gradients_match_the_dense_ones(n_instances):
    # the sparse path must compute exactly what the dense one does, only cheaper
    ks = 4 if n_instances == 1 else [1, 4, 9]
    sae = ss.SparseAutoencoder(7, 20, n_instances=n_instances, kind="topk", k=ks, seed=3)
    with torch.no_grad():
        sae.b_enc.normal_(0, 0.2, generator=torch.Generator().manual_seed(0))
        sae.b_dec.normal_(0, 0.2, generator=torch.Generator().manual_seed(1))
    h = torch.randn(64, sae.n_instances, 7, generator=torch.Generator().manual_seed(2))
    sparse = _topk_loss_and_grads(sae, h.transpose(0, 1))
    dense = _dense_loss_and_grads(sae, h.transpose(0, 1))
    for got, want in zip(sparse[:4], dense[:4], strict=True):
        assert torch.allclose(got.float(), want.float(), atol=1e-5)
    for name, grad in dense[4].items():
        assert torch.allclose(sparse[4][name], grad, atol=1e-5), name


def test_train_sae_recovers_directions_keeps_unit_decoder_and_is_deterministic():
    h, dirs, _ = ss.sparse_synthetic(4096, 12, 8, feature_probability=0.08, n_instances=2, seed=0)
    runs = []
    for _ in range(2):
        sae = ss.SparseAutoencoder(8, 24, n_instances=2, l1_coeff=0.2, seed=3)
        log = ss.train_sae(sae, h, steps=600, seed=5, progress=False)
        runs.append((sae, log))
    (sae, log), (sae2, _) = runs
    assert torch.equal(sae.W_dec, sae2.W_dec), "same seeds must give the same SAE"
    assert torch.allclose(sae.W_dec.norm(dim=-1), torch.ones(2, 24), atol=1e-5)
    assert isinstance(log, SAELog) and log.loss.shape == (600, 2) and log.n_resampled.shape == (2,)
    assert (log.loss[-50:].mean(0) < 0.5 * log.loss[:50].mean(0)).all()
    assert (ss.mmcs(sae.W_dec, dirs) > 0.97).all()
    assert "SAELog(steps=600" in repr(log)


def test_shared_activations_feed_every_instance_and_logs_keep_the_instances_axis():
    h = torch.rand(256, 4)
    sae = ss.SparseAutoencoder(4, 8, n_instances=3, l1_coeff=[0.0, 0.1, 1.0])
    log = ss.train_sae(sae, h, steps=20, progress=False)
    assert log.l0.shape == (20, 3)
    single = ss.SparseAutoencoder(4, 8)
    log = ss.train_sae(single, h, steps=20, progress=False)
    assert log.loss.shape == (20, 1) and log.n_resampled.shape == (1,)
    # shared (N, D) data train exactly as the same data given to every instance
    twice = [ss.SparseAutoencoder(4, 8, n_instances=2, seed=1) for _ in range(2)]
    ss.train_sae(twice[0], h, steps=20, seed=2, progress=False)
    ss.train_sae(twice[1], h[:, None].expand(256, 2, 4), steps=20, seed=2, progress=False)
    assert torch.equal(twice[0].W_dec, twice[1].W_dec)


def test_firing_rate_and_explained_variance_known_answers():
    sae = ss.SparseAutoencoder(2, 3, n_instances=2)
    with torch.no_grad():
        sae.W_enc.copy_(torch.tensor([[1.0, 0.0, -1.0], [0.0, 1.0, 0.0]]).expand(2, 2, 3))
        sae.W_dec.copy_(torch.tensor([[1.0, 0.0], [0.0, 1.0], [-1.0, 0.0]]).expand(2, 3, 2))
        sae.b_enc.copy_(torch.tensor([[0.0, 0.0, 0.0], [-10.0, -10.0, -10.0]]))
    # instance 0 reads h_0 on either side and h_1 >= 0; instance 1 never fires
    h = torch.tensor([[1.0, 2.0], [-1.0, 0.0], [0.5, 0.0], [-2.0, 3.0]])
    recon, latents = sae(h)
    rate = ss.sae.firing_rate(latents)
    assert rate.shape == (2, 3)
    assert torch.allclose(rate[0], torch.tensor([0.5, 0.5, 0.5])) and (rate[1] == 0).all()
    # instance 0 reconstructs h exactly; instance 1 outputs b_dec = 0, so its error is sum h^2
    fve = ss.sae.explained_variance(h, recon)
    assert fve[0].item() == pytest.approx(1.0)
    want = 1 - h.square().sum() / (h - h.mean(0)).square().sum()
    assert fve[1].item() == pytest.approx(want.item(), rel=1e-6)
    # per-instance activations: each instance is scored against its own
    h2 = torch.stack([h, 2 * h], dim=1)
    fve2 = ss.sae.explained_variance(h2, h2 + torch.tensor([0.0, 1.0]).view(1, 2, 1))
    assert fve2[0].item() == 1.0 and fve2[1].item() < 1.0
    with pytest.raises(ValueError, match="reconstruction must be"):
        ss.sae.explained_variance(torch.rand(4, 3), recon)
    with pytest.raises(ValueError, match="latents must be"):
        ss.sae.firing_rate(torch.zeros(0, 2, 3))


def test_resampling_revives_latents_that_can_never_fire():
    h, _, _ = ss.sparse_synthetic(2048, 6, 4, feature_probability=0.3, seed=0)  # (2048, 1, 4)
    dead = torch.arange(4)

    def trained(resample_every):
        sae = ss.SparseAutoencoder(4, 12, seed=0)
        with torch.no_grad():
            sae.b_enc[0, dead] = -100.0  # these latents are dead from the start
        log = ss.train_sae(sae, h, steps=120, dead_window=20, resample_every=resample_every,
                           progress=False)
        return sae, log

    sae, log = trained(None)
    assert int(log.n_resampled) == 0
    assert log.dead_fraction[-1] >= len(dead) / 12
    assert (sae.b_enc[0, dead] < -99).all(), "without resampling nothing can revive them"
    sae, log = trained(40)
    assert int(log.n_resampled) >= len(dead)
    assert (sae.b_enc[0, dead] > -1).all(), "resampled latents restart with a zero bias"


def test_resample_points_dead_latents_at_inputs_and_clears_their_adam_state():
    sae = ss.SparseAutoencoder(3, 6, n_instances=2, seed=0)
    opt = torch.optim.Adam(sae.parameters(), lr=1e-2)
    h = torch.rand(2, 50, 3)  # (instances, batch, d) layout, as inside the training loop
    sae.loss(h.transpose(0, 1)).sum().backward()
    opt.step()  # creates Adam moments
    dead = torch.zeros(2, 6, dtype=torch.bool)
    dead[0, [1, 4]] = True
    dead[1, 2] = True
    W_enc_before = sae.W_enc.detach().clone()
    alive_norm = W_enc_before[0][:, ~dead[0]].norm(dim=0).mean()
    counts = _resample(sae, opt, h, dead, torch.Generator().manual_seed(0))
    assert counts.tolist() == [2, 1]
    for i, j in dead.nonzero().tolist():
        row = sae.W_dec[i, j].detach()
        inputs = h[i] - sae.b_dec[i].detach()
        cos = (inputs / inputs.norm(dim=1, keepdim=True)) @ row
        assert row.norm().item() == pytest.approx(1.0, abs=1e-6)
        assert cos.max().item() == pytest.approx(1.0, abs=1e-6), "the row is some input's direction"
        assert sae.b_enc[i, j].item() == 0.0
    col = sae.W_enc[0][:, 1].detach()
    assert col.norm().item() == pytest.approx(0.2 * alive_norm.item(), rel=1e-5)
    assert torch.equal(sae.W_enc.detach()[~dead.unsqueeze(1).expand(2, 3, 6)],
                       W_enc_before[~dead.unsqueeze(1).expand(2, 3, 6)]), "live latents untouched"
    state = opt.state[sae.W_dec]
    assert (state["exp_avg"][dead] == 0).all() and (state["exp_avg_sq"][dead] == 0).all()
    assert (state["exp_avg_sq"][~dead] > 0).any()


def test_sparse_synthetic_shapes_and_statistics():
    h, dirs, codes = ss.sparse_synthetic(20_000, 10, 5, feature_probability=0.2, seed=1)
    assert h.shape == (20_000, 1, 5) and dirs.shape == (1, 10, 5) and codes.shape == (20_000, 1, 10)
    assert torch.allclose(dirs.norm(dim=-1), torch.ones(1, 10), atol=1e-6)
    assert torch.allclose(h[:, 0], codes[:, 0] @ dirs[0], atol=1e-5)
    assert (codes >= 0).all() and (codes <= 1).all()
    assert (codes > 0).float().mean().item() == pytest.approx(0.2, abs=0.01)
    h2, dirs2, codes2 = ss.sparse_synthetic(100, 10, 5, feature_probability=0.2, n_instances=3)
    assert h2.shape == (100, 3, 5) and dirs2.shape == (3, 10, 5) and codes2.shape == (100, 3, 10)


# ---------------------------------------------------------------------------------------------
# Bad input


@pytest.mark.parametrize(
    "kwargs, match",
    [
        (dict(d_in=0, d_sae=4), "d_in"),
        (dict(d_in=4, d_sae=-1), "d_sae"),
        (dict(d_in=4, d_sae=8, n_instances=0), "n_instances"),
        (dict(d_in=4, d_sae=8, kind="relu"), "kind must be one of"),
        (dict(d_in=4, d_sae=8, kind="topk"), "k is required"),
        (dict(d_in=4, d_sae=8, kind="topk", k=9), r"k must be an integer in \[1, d_sae=8\]"),
        (dict(d_in=4, d_sae=8, kind="topk", k=0), r"k must be an integer in \[1, d_sae=8\]"),
        (dict(d_in=4, d_sae=8, l1_coeff=-0.1), "l1_coeff must be a finite number >= 0"),
        (dict(d_in=4, d_sae=8, n_instances=2, l1_coeff=[0.1, 0.2, 0.3]), "one value per instance"),
    ],
)
def test_bad_sae_arguments(kwargs, match):
    with pytest.raises(ValueError, match=match):
        ss.SparseAutoencoder(**kwargs)


def test_bad_training_and_scoring_arguments():
    sae = ss.SparseAutoencoder(4, 8, n_instances=2)
    with pytest.raises(ValueError, match=r"activations must have shape \(samples, 4\) or \(samples, 2, 4\)"):
        ss.train_sae(sae, torch.rand(10, 3, 4))
    with pytest.raises(ValueError, match="lr must be"):
        ss.train_sae(sae, torch.rand(10, 4), lr=0.0)
    with pytest.raises(ValueError, match="steps must be a positive integer"):
        ss.train_sae(sae, torch.rand(10, 4), steps=0)
    with pytest.raises(ValueError, match="resample_every"):
        ss.train_sae(sae, torch.rand(10, 4), resample_every=-5)
    with pytest.raises(ValueError, match="sae must be a SparseAutoencoder"):
        ss.train_sae(ss.ToyModel(4, 2), torch.rand(10, 4))
    with pytest.raises(ValueError, match=r"activations must have shape \(batch, 2, 4\)"):
        sae.latents(torch.rand(10, 3, 4))
    with pytest.raises(ValueError, match=r"activations must have shape \(batch, 2, 4\)"):
        sae(torch.rand(10, 2, 8))
    with pytest.raises(ValueError, match="dictionary must be"):
        ss.ista(torch.rand(3, 4), torch.rand(5, 6), 0.1)
    with pytest.raises(ValueError, match="l1_coeff must be a finite number >= 0"):
        ss.ista(torch.rand(3, 4), torch.rand(5, 4), -1.0)
    with pytest.raises(ValueError, match="n_atoms must be a positive integer"):
        ss.learn_dictionary(torch.rand(30, 4), 0, 0.1)
    with pytest.raises(ValueError, match=r"threshold must be a finite number in \[0, 1\]"):
        ss.fraction_recovered(torch.eye(3), torch.eye(3), threshold=1.5)
    with pytest.raises(ValueError, match="share the last axis"):
        ss.mmcs(torch.rand(4, 3), torch.rand(4, 5))
    with pytest.raises(ValueError, match="feature_probability"):
        ss.sparse_synthetic(10, 4, 3, feature_probability=1.5)


# ---------------------------------------------------------------------------------------------
# The chapter's figures


def test_recovery_figures_draw():
    truth = random_directions(5, 2)
    learned = torch.cat([truth, random_directions(3, 2, seed=9)])
    alive = torch.tensor([True] * 5 + [False] * 3)
    for fig in (
        ss.plot.feature_directions(truth.T, learned=learned, alive=alive, arrows=True, title="t"),
        ss.plot.cosine_match(learned, truth, alive=alive, title="t"),
        ss.plot.max_cosine_bars(learned, truth, title="t"),
        ss.plot.recovery_curve([0.1, 1.0], torch.rand(2, 3), xlabel="x", logx=True),
    ):
        assert fig.axes
    with pytest.raises(ValueError, match=r"learned must be \(latents, 2\)"):
        ss.plot.feature_directions(truth.T, learned=torch.rand(5, 3))
