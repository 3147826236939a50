"""The SAE variants of chapter 10, each against a small reference written from its paper's
equations (autograd differentiates the reference; the module must give the same losses and
gradients), then trained."""

import math

import pytest
import torch

import supersim as ss
from supersim import sae as sae_module
from supersim.sae import BatchTopKSAE, GatedSAE, JumpReLUSAE, MatryoshkaSAE, TopKSAE


def _gen(seed):
    return torch.Generator().manual_seed(seed)


def _moved(sae, seed=0, scale=0.1):
    """`sae` with its biases off zero, so every mask is mixed."""
    with torch.no_grad():
        sae.b_enc.normal_(0, scale, generator=_gen(seed))
        sae.b_dec.normal_(0, scale, generator=_gen(seed + 1))
    return sae


def _grads(loss, params):
    return torch.autograd.grad(loss, params, allow_unused=True)


def _check_against(sae, reference, h, names):
    """The module's loss and its gradients for `names` equal the reference's."""
    params = [getattr(sae, n) for n in names]
    mse, penalty, _ = sae.loss_terms(h)
    got = _grads((mse + penalty).sum(), params)
    want_loss = reference(*params)
    want = _grads(want_loss.sum(), params)
    assert torch.allclose(mse + penalty, want_loss, atol=1e-5, rtol=1e-5)
    for n, g, w in zip(names, got, want, strict=True):
        g = torch.zeros_like(getattr(sae, n)) if g is None else g
        w = torch.zeros_like(getattr(sae, n)) if w is None else w
        assert torch.allclose(g, w, atol=1e-5, rtol=1e-4), n


H = torch.rand(16, 2, 5, generator=_gen(7))  # (B, I, D)


# ---------------------------------------------------------------------------------------------
# TopK with AuxK


def test_topk_with_auxk_is_gao_et_al_loss():
    sae = _moved(TopKSAE(5, 12, n_instances=2, k=[2, 3], seed=1))
    assert (sae.aux_coeff, sae.aux_k, sae.dead_window) == (1 / 32, 2, 100), "the paper's recipe"
    sae.aux_k = 3
    sae.eval()  # keep the dead-latent counts as set here
    with torch.no_grad():
        sae.since_fired[0, :5] = 100  # dead: five latents of instance 0, none of instance 1
    dead = sae.since_fired >= sae.dead_window

    def reference(W_enc, b_enc, W_dec, b_dec):
        out = []
        for i in range(2):
            pre = (H[:, i] - b_dec[i]) @ W_enc[i] + b_enc[i]  # (B, S)
            k = int(sae.k[i])
            top = pre.topk(k, dim=-1)
            a = torch.zeros_like(pre).scatter(-1, top.indices, torch.relu(top.values))
            recon = a @ W_dec[i] + b_dec[i]
            mse = (recon - H[:, i]).square().sum(-1).mean()
            aux = torch.zeros(())
            if dead[i].any():
                idx = torch.nonzero(dead[i]).flatten()
                top = pre[:, idx].topk(min(3, len(idx)), dim=-1)
                a_aux = torch.relu(top.values)
                e = (H[:, i] - recon).detach()
                r_aux = torch.einsum("bk,bkd->bd", a_aux, W_dec[i][idx[top.indices]])
                aux = (r_aux - e).square().sum(-1).mean()
            out.append(mse + aux / 32)
        return torch.stack(out)

    _check_against(sae, reference, H, ["W_enc", "b_enc", "W_dec", "b_dec"])


def test_auxk_counts_batches_since_a_latent_fired_in_training_only():
    sae = TopKSAE(5, 12, k=1, seed=0)
    sae.dead_window = 3
    h = torch.rand(4, 1, 5, generator=_gen(1))
    sae.train()
    for _ in range(4):
        _, _, a = sae.loss_terms(h)
    fired = (a > 0).any(0)[0]
    assert (sae.since_fired[0][fired] == 0).all() and (sae.since_fired[0][~fired] == 4).all()
    before = sae.since_fired.clone()
    sae.eval()
    sae.loss_terms(h)
    assert torch.equal(sae.since_fired, before), "eval mode leaves the counts alone"


# ---------------------------------------------------------------------------------------------
# BatchTopK


def test_batchtopk_keeps_the_k_times_batch_largest_of_the_batch():
    sae = _moved(BatchTopKSAE(5, 12, n_instances=2, k=[1, 3], seed=2))
    sae.train()
    pre = torch.randn(16, 2, 12, generator=_gen(3))
    a = sae.activation(pre)
    for i, k in enumerate([1, 3]):
        flat = torch.relu(pre[:, i]).flatten()
        top = flat.topk(16 * k)
        want = torch.zeros_like(flat).scatter(0, top.indices, top.values).view(16, 12)
        assert torch.equal(a[:, i], want)
    # samples may keep more or fewer than k, the batch keeps k x B (all positive here)
    assert (a[:, 1] > 0).sum() == 48 and (a[:, 1] > 0).sum(-1).unique().numel() > 1


def test_batchtopk_learns_a_threshold_in_training_and_uses_it_outside():
    sae = BatchTopKSAE(5, 12, n_instances=2, k=2, threshold_rate=0.25, seed=2)
    sae.train()
    _, _, a = sae.loss_terms(H)
    smallest = torch.stack([a[:, i][a[:, i] > 0].min() for i in range(2)])
    assert torch.allclose(sae.threshold, 0.25 * smallest)
    sae.eval()
    with torch.no_grad():
        sae.threshold.fill_(0.05)
    pre = sae.pre_activation(H)
    assert torch.equal(sae.encode(H), torch.where(pre > 0.05, pre, 0.0))
    before = sae.threshold.clone()
    sae.loss_terms(H)
    assert torch.equal(sae.threshold, before), "eval mode leaves the threshold alone"


def test_train_sae_leaves_every_sae_in_eval_mode():
    h, _, _ = ss.sparse_synthetic(512, 6, 4, feature_probability=0.2, seed=0)
    for sae in (ss.SparseAutoencoder(4, 8), BatchTopKSAE(4, 8, k=1)):
        ss.train_sae(sae, h, steps=3, progress=False)
        assert not sae.training


# ---------------------------------------------------------------------------------------------
# JumpReLU


def test_jumprelu_forward_and_pseudo_derivatives_are_the_papers():
    eps, lam = 0.2, 0.3
    sae = _moved(JumpReLUSAE(5, 12, n_instances=2, l0_coeff=lam, bandwidth=eps, threshold=0.05, seed=4))
    with torch.no_grad():
        sae.log_threshold.normal_(math.log(0.1), 0.5, generator=_gen(5))
    h = H.requires_grad_(False)
    z = sae.pre_activation(h).detach()  # (B, I, S)
    theta = sae.log_threshold.exp().detach()  # (I, S)
    a = sae.encode(h)
    assert torch.equal(a, torch.where(z > theta, z, 0.0)), "a = z H(z - theta)"
    mse, penalty, _ = sae.loss_terms(h)
    assert torch.allclose(penalty, lam * (z > theta).float().sum(-1).mean(0))
    # gradients: autograd for everything but the thresholds, whose pseudo-derivatives are
    # -(theta/eps) K((z - theta)/eps) through a and -(1/eps) K through the L0 count
    (mse + penalty).sum().backward()
    recon = sae.decode(a.detach())
    d_a = torch.einsum("bid,isd->bis", 2 * (recon - h), sae.W_dec.detach()) / h.shape[0]
    K = ((z - theta).abs() < eps / 2).float()
    d_theta = (d_a * K * -(theta / eps)).sum(0) + lam * (K * -(1 / eps)).sum(0) / h.shape[0]
    assert torch.allclose(sae.log_threshold.grad, d_theta * theta, atol=1e-5)
    assert K.sum() > 0, "the test must put some pre-activations within the kernel"

    # the rest: the exact gradient of z H(z - theta) with the step held fixed
    def reference(W_enc, b_enc, W_dec, b_dec):
        zz = torch.einsum("bid,ids->bis", h - b_dec, W_enc) + b_enc
        aa = zz * (z > theta)
        return (torch.einsum("bis,isd->bid", aa, W_dec) + b_dec - h).square().sum(-1).mean(0)

    names = ["W_enc", "b_enc", "W_dec", "b_dec"]
    want = _grads(reference(*[getattr(sae, n) for n in names]).sum(), [getattr(sae, n) for n in names])
    for n, w in zip(names, want, strict=True):
        assert torch.allclose(getattr(sae, n).grad, w, atol=1e-5), n


# ---------------------------------------------------------------------------------------------
# Gated


def test_gated_is_the_papers_two_paths_and_three_terms():
    sae = _moved(GatedSAE(5, 12, n_instances=2, l1_coeff=[0.1, 0.4], seed=6))
    with torch.no_grad():
        sae.r_mag.normal_(0, 0.3, generator=_gen(8))
        sae.b_mag.normal_(0, 0.1, generator=_gen(9))
    frozen_W, frozen_b = sae.W_dec.detach().clone(), sae.b_dec.detach().clone()

    def reference(W_enc, b_enc, W_dec, b_dec, r_mag, b_mag):
        out = []
        for i in range(2):
            x = H[:, i] - b_dec[i]
            pi_gate = x @ W_enc[i] + b_enc[i]
            W_mag = W_enc[i] * torch.exp(r_mag[i])  # column j scaled by exp(r_mag_j)
            f = (pi_gate > 0).float() * torch.relu(x @ W_mag + b_mag[i])
            recon = f @ W_dec[i] + b_dec[i]
            via_gate = torch.relu(pi_gate)
            aux_recon = via_gate @ frozen_W[i] + frozen_b[i]
            out.append((recon - H[:, i]).square().sum(-1).mean()
                       + sae.l1_coeff[i] * via_gate.sum(-1).mean()
                       + (aux_recon - H[:, i]).square().sum(-1).mean())
        return torch.stack(out)

    _check_against(sae, reference, H, ["W_enc", "b_enc", "W_dec", "b_dec", "r_mag", "b_mag"])
    a = sae.encode(H)
    assert torch.equal(a, sae.loss_terms(H)[2]) and (a > 0).any() and (a == 0).any()


# ---------------------------------------------------------------------------------------------
# Matryoshka


def test_matryoshka_averages_the_prefixes_errors():
    sae = _moved(MatryoshkaSAE(5, 12, n_instances=2, k=3, prefixes=[2, 5, 12], seed=3))
    sae.aux_coeff = 0.0
    sae.eval()  # threshold 0: every positive latent fires, so the prefixes all matter
    assert sae.prefixes == [2, 5, 12]

    def reference(W_enc, b_enc, W_dec, b_dec):
        out = []
        for i in range(2):
            a = torch.relu((H[:, i] - b_dec[i]) @ W_enc[i] + b_enc[i])
            errs = [(a[:, :m] @ W_dec[i, :m] + b_dec[i] - H[:, i]).square().sum(-1).mean()
                    for m in (2, 5, 12)]
            out.append(sum(errs) / 3)
        return torch.stack(out)

    _check_against(sae, reference, H, ["W_enc", "b_enc", "W_dec", "b_dec"])
    mse, _, a = sae.loss_terms(H)
    assert torch.allclose(mse, (sae.decode(a) - H).square().sum(-1).mean(0)), "mse: the whole dictionary"
    assert MatryoshkaSAE(5, 64, k=1).prefixes == [4, 8, 16, 32, 64], "the authors' groups by default"


# ---------------------------------------------------------------------------------------------
# Training and inputs


@pytest.mark.parametrize("make", [
    lambda: TopKSAE(8, 24, n_instances=2, k=2, seed=3),
    lambda: BatchTopKSAE(8, 24, n_instances=2, k=1, seed=3),
    lambda: JumpReLUSAE(8, 24, n_instances=2, l0_coeff=0.05, seed=3),
    lambda: GatedSAE(8, 24, n_instances=2, l1_coeff=0.5, seed=3),
    lambda: MatryoshkaSAE(8, 24, n_instances=2, k=1, prefixes=[12, 24], seed=3),
], ids=["topk", "batchtopk", "jumprelu", "gated", "matryoshka"])
def test_every_variant_trains_recovers_and_is_deterministic(make):
    h, dirs, _ = ss.sparse_synthetic(4096, 12, 8, feature_probability=0.08, n_instances=2, seed=0)
    runs = []
    for _ in range(2):
        sae = make()
        log = ss.train_sae(sae, h, steps=600, seed=5, progress=False)
        runs.append((sae, log))
    (sae, log), (again, _) = runs
    assert torch.equal(sae.W_dec, again.W_dec), "same seeds, same SAE"
    assert (log.loss[-50:].mean(0) < 0.5 * log.loss[:50].mean(0)).all()
    assert (ss.mmcs(sae.W_dec, dirs) > 0.9).all(), ss.mmcs(sae.W_dec, dirs)
    assert sae.kind in repr(sae) and not sae.training


def test_variants_that_cannot_restart_a_latent_refuse_resampling():
    h = torch.rand(256, 4, generator=_gen(0))
    for sae in (JumpReLUSAE(4, 8, l0_coeff=0.1), GatedSAE(4, 8)):
        with pytest.raises(ValueError, match="resample_every"):
            ss.train_sae(sae, h, steps=5, resample_every=2, progress=False)
    log = ss.train_sae(BatchTopKSAE(4, 8, k=1), h, steps=20, resample_every=5, dead_window=2, progress=False)
    assert log.loss.shape == (20, 1)


@pytest.mark.parametrize("make, match", [
    (lambda: TopKSAE(4, 8, k=9), "k"),
    (lambda: BatchTopKSAE(4, 8, k=1, threshold_rate=0), "threshold_rate"),
    (lambda: BatchTopKSAE(4, 8, k=1, threshold_rate=1.5), "threshold_rate"),
    (lambda: JumpReLUSAE(4, 8, l0_coeff=-0.1), "l0_coeff"),
    (lambda: JumpReLUSAE(4, 8, l0_coeff=[0.1, 0.2]), "l0_coeff"),
    (lambda: JumpReLUSAE(4, 8, l0_coeff=0.1, bandwidth=0), "bandwidth"),
    (lambda: JumpReLUSAE(4, 8, l0_coeff=0.1, threshold=float("nan")), "threshold"),
    (lambda: GatedSAE(4, 8, l1_coeff=-1), "l1_coeff"),
    (lambda: MatryoshkaSAE(4, 8, k=1, prefixes=[4, 2, 8]), "prefixes"),
    (lambda: MatryoshkaSAE(4, 8, k=1, prefixes=[2, 4]), "prefixes"),
    (lambda: MatryoshkaSAE(4, 8, k=1, prefixes=[]), "prefixes"),
    (lambda: MatryoshkaSAE(4, 8, k=1, prefixes="2,8"), "prefixes"),
])
def test_bad_variant_arguments_are_named(make, match):
    with pytest.raises(ValueError, match=match):
        make()


def test_the_variants_are_exported():
    for name in ("TopKSAE", "BatchTopKSAE", "JumpReLUSAE", "GatedSAE", "MatryoshkaSAE"):
        assert name in sae_module.__all__
