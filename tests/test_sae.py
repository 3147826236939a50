"""Sparse autoencoders: the readable module against known answers, and its fast path against it."""

import matplotlib
import numpy as np
import pytest
import torch

import supersim as ss
from supersim import _sae_fast, _util
from supersim import sae as sae_module
from supersim.sae import SAELog

matplotlib.use("Agg")

NAN, INF = float("nan"), float("inf")


def random_directions(n: int, d: int, seed: int = 0) -> torch.Tensor:
    D = torch.randn(n, d, generator=torch.Generator().manual_seed(seed))
    return D / D.norm(dim=1, keepdim=True)


def moved(sae: ss.SparseAutoencoder, seed: int = 0, scale: float = 0.1) -> ss.SparseAutoencoder:
    """`sae` with its biases moved off zero, so every ReLU and TopK mask is mixed."""
    with torch.no_grad():
        sae.b_enc.normal_(0, scale, generator=torch.Generator().manual_seed(seed))
        sae.b_dec.normal_(0, scale, generator=torch.Generator().manual_seed(seed + 1))
    return sae


# ---------------------------------------------------------------------------------------------
# The model


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
    # encode and decode are the same maps, in the same (batch, instances, .) layout
    assert torch.equal(sae.encode(h), a)
    assert torch.equal(sae.decode(a), recon)
    assert sae.loss(h).shape == (1,)
    assert "n_instances=1" in repr(sae) and "l1_coeff=[0.3]" in repr(sae)
    assert sae.l1_coeff.item() == pytest.approx(sae_module.L1_COEFF)

    batched = ss.SparseAutoencoder(6, 20, n_instances=4, l1_coeff=[0.1, 0.2, 0.3, 0.4])
    assert batched.W_dec.shape == (4, 20, 6)
    recon, a = batched(torch.rand(9, 4, 6))
    assert recon.shape == (9, 4, 6) and a.shape == (9, 4, 20)
    assert batched.loss(torch.rand(9, 4, 6)).shape == (4,)
    assert "l1_coeff=[0.1, 0.2, 0.3, 0.4]" in repr(batched)
    # (B, D) activations are shared: every instance encodes the same samples
    shared = torch.rand(9, 6)
    assert torch.equal(batched.latents(shared), batched.latents(shared[:, None].expand(9, 4, 6)))


def test_the_maps_are_the_equations():
    # a = act(W_enc^T (h - b_dec) + b_enc) and h_hat = a W_dec + b_dec, instance by instance
    sae = moved(ss.SparseAutoencoder(5, 7, n_instances=3, seed=1))
    h = torch.randn(11, 3, 5, generator=torch.Generator().manual_seed(2))
    W_enc, b_enc, W_dec, b_dec = (p.detach() for p in (sae.W_enc, sae.b_enc, sae.W_dec, sae.b_dec))
    for i in range(3):
        a = torch.relu((h[:, i] - b_dec[i]) @ W_enc[i] + b_enc[i])  # (B, S)
        assert torch.allclose(sae.encode(h)[:, i], a, atol=1e-6)
        assert torch.allclose(sae.decode(sae.encode(h))[:, i], a @ W_dec[i] + b_dec[i], atol=1e-6)
    mse, penalty, a = sae.loss_terms(h)
    recon = sae.decode(a)
    assert torch.allclose(mse, (recon - h).square().sum(-1).mean(0))
    assert torch.allclose(penalty, sae.l1_coeff * a.abs().sum(-1).mean(0))
    assert torch.allclose(sae.loss(h), mse + penalty)


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
    assert (sae.loss_terms(h)[1] == 0).all(), "TopK has no penalty"


def test_per_instance_settings_take_numbers_lists_tensors_and_arrays():
    # a 0-d tensor is a number (it once failed with "iteration over a 0-d tensor")
    for l1 in (0.1, torch.tensor(0.1), np.float64(0.1), np.array(0.1), [0.1, 0.1], torch.tensor([0.1, 0.1])):
        sae = ss.SparseAutoencoder(4, 8, n_instances=2, l1_coeff=l1)
        assert torch.allclose(sae.l1_coeff, torch.tensor([0.1, 0.1])), l1
    for k in (3, np.int64(3), torch.tensor(3), np.array([3, 3]), torch.tensor([3, 3]), (3, 3)):
        sae = ss.SparseAutoencoder(4, 8, n_instances=2, kind="topk", k=k)
        assert sae.k.tolist() == [3, 3], k


# ---------------------------------------------------------------------------------------------
# The fast path against autograd and against the plain loop


def _reference(sae, h):
    """Autograd's loss terms, active latents per sample, fired latents and gradients, for h (B, I, D)."""
    for p in sae.parameters():
        p.grad = None
    mse, penalty, a = sae.loss_terms(h)
    (mse + penalty).sum().backward()
    grads = {name: p.grad.clone() for name, p in sae.named_parameters()}
    for p in sae.parameters():
        p.grad = None
    on = a.detach() > 0
    return mse.detach(), penalty.detach(), on.sum(-1).double().mean(0), on.any(0), grads


KIND_CASES = {
    "l1": dict(kind="l1", l1_coeff=[0.1, 0.7, 0.0]),
    "topk dense": dict(kind="topk", k=[2, 5, 12]),  # k > d_sae / 32: every latent computed
    "topk sparse": dict(kind="topk", k=[1, 1, 2]),  # k <= d_sae / 32: only the kept latents
}


@pytest.mark.parametrize("case", KIND_CASES)
@pytest.mark.parametrize("n_instances", [1, 3])
def test_hand_written_gradients_match_autograd(case, n_instances):
    extra = {key: value[:n_instances] for key, value in KIND_CASES[case].items() if key != "kind"}
    d_sae = 64 if case == "topk sparse" else 12
    sae = moved(ss.SparseAutoencoder(6, d_sae, n_instances=n_instances,
                                     kind=KIND_CASES[case]["kind"], seed=1, **extra)).double()
    h = torch.randn(40, n_instances, 6, generator=torch.Generator().manual_seed(2), dtype=torch.float64)
    want = _reference(sae, h)
    got = _sae_fast.loss_and_grads(sae, h.transpose(0, 1))
    for name, a, b in zip(("mse", "penalty", "l0", "fired"), got[:4], want[:4], strict=True):
        assert a.shape == b.shape, name
        assert torch.allclose(a.double(), b.double(), rtol=0, atol=1e-12), name
    assert set(got[4]) == set(want[4])
    for name, g in want[4].items():
        assert g.abs().max() > 1e-3, f"{name}: autograd gradient is ~0, the check would be empty"
        assert torch.allclose(got[4][name], g, rtol=0, atol=1e-12), f"{case}: d{name} differs"


@pytest.mark.parametrize("n_instances", [1, 3])
def test_topk_sparse_gradients_match_the_dense_ones(n_instances):
    # the sparse path must compute exactly what the dense one does, only cheaper
    ks = 4 if n_instances == 1 else [1, 4, 9]
    sae = moved(ss.SparseAutoencoder(7, 20, n_instances=n_instances, kind="topk", k=ks, seed=3), scale=0.2)
    h = torch.randn(64, sae.n_instances, 7, generator=torch.Generator().manual_seed(2)).transpose(0, 1)
    sparse = _sae_fast._topk_loss_and_grads(sae, h)
    dense = _sae_fast._dense_loss_and_grads(sae, h)
    for got, want in zip(sparse[:4], dense[:4], strict=True):
        assert torch.allclose(got.float(), want.float(), atol=1e-5)
    for name, grad in dense[4].items():
        assert torch.allclose(sparse[4][name], grad, atol=1e-5), name


def test_the_fast_path_takes_only_instances_first_batches():
    # a 2-D batch was once read as (instances, batch) and scaled the gradients by B / D
    sae = ss.SparseAutoencoder(4, 8)
    for bad in (torch.rand(16, 4), torch.rand(16, 1, 4), torch.rand(1, 16, 5)):
        with pytest.raises(ValueError, match=r"h must be \(1, batch, 4\), instances first"):
            _sae_fast.loss_and_grads(sae, bad)


def _spy_batches(monkeypatch) -> list:
    seen = []
    real = _sae_fast.Run.batch

    def spy(run):
        h = real(run)
        seen.append(h.clone())
        return h

    monkeypatch.setattr(_sae_fast.Run, "batch", spy)
    return seen


FAST_CASES = {
    "l1": (dict(d_in=8, d_sae=24, n_instances=3, l1_coeff=[0.05, 0.2, 0.6]), {}),
    "topk dense": (dict(d_in=8, d_sae=24, n_instances=2, kind="topk", k=[1, 3]), {}),
    "topk sparse": (dict(d_in=8, d_sae=96, n_instances=2, kind="topk", k=[2, 3]), {}),
    "resampling": (dict(d_in=8, d_sae=48, n_instances=2, l1_coeff=[0.3, 1.0]),
                   dict(resample_every=60, dead_window=30)),
}


@pytest.mark.parametrize("case", FAST_CASES)
def test_fast_path_and_plain_loop_train_the_same_sae(monkeypatch, case):
    """`train_sae(fast=True)` and `train_sae(fast=False)` take the same steps on the same data.

    Identical by design: the initial weights, every batch (checked element for element) and
    Adam; hence the first step's loss agrees to float rounding. Only close: the rest, since the
    hand-written gradients round differently from autograd and the differences compound, so
    the loss history agrees to rtol 1e-4 and the weights to 1e-4.
    """
    kw, train_kw = FAST_CASES[case]
    h, _, _ = ss.sparse_synthetic(2048, 16, 8, feature_probability=0.1, n_instances=kw["n_instances"],
                                  seed=1)
    seen = _spy_batches(monkeypatch)
    fast, plain = ss.SparseAutoencoder(**kw, seed=2), ss.SparseAutoencoder(**kw, seed=2)
    log_fast = ss.train_sae(fast, h, steps=200, seed=3, progress=False, **train_kw)
    n_fast = len(seen)
    log_plain = ss.train_sae(plain, h, steps=200, seed=3, progress=False, fast=False, **train_kw)
    assert n_fast == len(seen) - n_fast == 200
    assert all(torch.equal(a, b) for a, b in zip(seen[:n_fast], seen[n_fast:], strict=True)), \
        "the plain loop's batches are the fast path's, bit for bit"
    assert torch.allclose(log_fast.loss[0], log_plain.loss[0], rtol=1e-6, atol=0)
    for field in ("loss", "mse"):
        a, b = getattr(log_fast, field), getattr(log_plain, field)
        assert torch.allclose(a, b, rtol=1e-4, atol=1e-7), (field, (a - b).abs().max())
    assert torch.allclose(log_fast.l0, log_plain.l0, atol=0.05)
    assert torch.equal(log_fast.n_resampled, log_plain.n_resampled)
    for (name, a), b in zip(fast.named_parameters(), plain.parameters(), strict=True):
        assert torch.allclose(a, b, atol=1e-4), f"{case}: {name} differs"
        assert a.grad is None and b.grad is None, "training leaves no gradients behind"
    assert (log_fast.loss[-20:].mean(0) < 0.8 * log_fast.loss[:20].mean(0)).all()
    if case == "resampling":
        assert log_fast.n_resampled.sum() > 0, "the case must exercise resampling"


def test_a_new_kind_is_a_subclass_away_and_trains_through_the_plain_loop():
    # the extension point issue 26's variants use: a sparsity rule and its penalty
    class Threshold(ss.SparseAutoencoder):
        def activation(self, pre):
            return torch.relu(pre - 0.05)

    h, dirs, _ = ss.sparse_synthetic(2048, 12, 8, feature_probability=0.08, seed=0)
    runs = []
    for fast in (True, False):
        sae = Threshold(8, 24, seed=3)
        runs.append((sae, ss.train_sae(sae, h, steps=300, seed=5, progress=False, fast=fast)))
    (a, log_a), (b, log_b) = runs
    assert torch.equal(log_a.loss, log_b.loss) and torch.equal(a.W_dec, b.W_dec), \
        "a subclass trains through the plain loop even with fast=True"
    base = ss.SparseAutoencoder(8, 24, seed=3)
    ss.train_sae(base, h, steps=300, seed=5, progress=False)
    assert not torch.equal(base.W_dec, a.W_dec), "the subclass's own rule is the one trained"
    assert ss.mmcs(a.W_dec, dirs).item() > 0.9


def test_a_kind_without_hand_written_gradients_trains_through_the_plain_loop(monkeypatch):
    # a kind added to SparseAutoencoder before the fast path learns it is trained by autograd
    taken = []
    real = _sae_fast.train
    monkeypatch.setattr(_sae_fast, "train", lambda run: taken.append(run.sae) or real(run))
    h = torch.rand(256, 4, generator=torch.Generator().manual_seed(0))
    known = ss.SparseAutoencoder(4, 8, seed=1)
    ss.train_sae(known, h, steps=5, progress=False)
    assert taken == [known], "a kind the fast path knows takes it"
    monkeypatch.setattr(_sae_fast, "KINDS", ("topk",))
    runs = [ss.SparseAutoencoder(4, 8, seed=1) for _ in range(2)]
    logs = [ss.train_sae(sae, h, steps=50, seed=2, progress=False, fast=fast)
            for sae, fast in zip(runs, (True, False), strict=True)]
    assert taken == [known], "one it does not know never does"
    assert torch.equal(logs[0].loss, logs[1].loss) and torch.equal(runs[0].W_dec, runs[1].W_dec)


# ---------------------------------------------------------------------------------------------
# Training


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


def test_data_follow_the_model_dtype():
    h = np.random.default_rng(0).random((128, 3))  # float64 NumPy data
    sae = ss.SparseAutoencoder(3, 6, seed=0).double()
    log = ss.train_sae(sae, h, steps=10, progress=False)
    assert sae.W_dec.dtype == torch.float64 and torch.isfinite(log.loss).all()
    assert sae(h)[0].dtype == torch.float64
    single = ss.SparseAutoencoder(3, 6, seed=0)
    ss.train_sae(single, h, steps=10, progress=False)
    assert single.W_dec.dtype == torch.float32


def test_threads_mean_what_they_mean_in_train(monkeypatch):
    # `threads` is the most threads to use, and the one rule decides below that
    asked = []
    real = _util.threads_for

    def spy(work, most=None):
        asked.append((work, most))
        return real(work, most)

    monkeypatch.setattr(_util, "threads_for", spy)
    h = torch.rand(64, 4)
    for threads in (None, 3):
        ss.train_sae(ss.SparseAutoencoder(4, 8), h, steps=2, batch_size=16, threads=threads, progress=False)
    assert asked == [(16 * 4 * 8, None), (16 * 4 * 8, 3)]
    assert real(16 * 4 * 8, 3) == 1, "a tiny SAE runs on one thread even when more are allowed"


def test_the_progress_bar_is_the_shared_one(monkeypatch, capsys):
    made = []
    real = _util.progress_bar

    def spy(progress, total, desc):
        bar = real(progress, total, desc)
        made.append((progress, total, desc, bar))
        return bar

    monkeypatch.setattr(_util, "progress_bar", spy)
    h = torch.rand(64, 4)
    ss.train_sae(ss.SparseAutoencoder(4, 8), h, steps=200, progress=True)
    ss.train_sae(ss.SparseAutoencoder(4, 8), h, steps=200, progress=False, fast=False)
    assert [m[:3] for m in made] == [(True, 200, "SAE"), (False, 200, "SAE")]
    assert made[0][3] is not None and made[0][3].n == 200, "moved on to the end"
    assert "loss=" in made[0][3].postfix, "the bar shows the loss, as train's does"
    assert "SAE" in capsys.readouterr().err
    assert made[1][3] is None


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


def test_explained_variance_of_activations_that_do_not_vary_is_undefined():
    # once -1.5e13: the variance was clamped to 1e-12 and divided by
    h = torch.ones(10, 3)
    with pytest.raises(ValueError, match=r"activations must vary across samples.*instances \[0\]"):
        ss.sae.explained_variance(h, torch.zeros(10, 1, 3))
    varied = torch.stack([torch.rand(10, 3), torch.ones(10, 3)], dim=1)  # instance 1 constant
    with pytest.raises(ValueError, match=r"instances \[1\]"):
        ss.sae.explained_variance(varied, varied)
    with pytest.raises(ValueError, match="activations must vary"):
        ss.sae.explained_variance(torch.rand(1, 3), torch.rand(1, 1, 3))  # one sample


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
    h = torch.rand(50, 2, 3)
    sae.loss(h).sum().backward()
    opt.step()  # creates Adam moments
    dead = torch.zeros(2, 6, dtype=torch.bool)
    dead[0, [1, 4]] = True
    dead[1, 2] = True
    W_enc_before = sae.W_enc.detach().clone()
    alive_norm = W_enc_before[0][:, ~dead[0]].norm(dim=0).mean()
    # inside the training loops the batch is instances-first, (I, B, D)
    counts = _sae_fast._resample(sae, opt, h.transpose(0, 1), dead, torch.Generator().manual_seed(0))
    assert counts.tolist() == [2, 1]
    for i, j in dead.nonzero().tolist():
        row = sae.W_dec[i, j].detach()
        inputs = h[:, i] - sae.b_dec[i].detach()
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


# ---------------------------------------------------------------------------------------------
# Bad input: each public name rejects it with a ValueError naming the argument, before any work


def test_the_module_exports_its_public_names():
    assert set(sae_module.__all__) == {"SparseAutoencoder", "train_sae", "SAELog", "firing_rate",
                                       "explained_variance", "KINDS", "L1_COEFF", "TopKSAE",
                                       "BatchTopKSAE", "JumpReLUSAE", "GatedSAE", "MatryoshkaSAE"}
    assert ss.SparseAutoencoder is sae_module.SparseAutoencoder and ss.train_sae is sae_module.train_sae


@pytest.mark.parametrize(
    "kwargs, match",
    [
        (dict(d_in=0, d_sae=4), "d_in"),
        (dict(d_in=4, d_sae=-1), "d_sae"),
        (dict(d_in=4.0, d_sae=8), "d_in"),
        (dict(d_in=4, d_sae=8, n_instances=0), "n_instances"),
        (dict(d_in=4, d_sae=8, kind="relu"), "kind must be one of"),
        (dict(d_in=4, d_sae=8, kind=["l1"]), "kind must be one of"),
        (dict(d_in=4, d_sae=8, kind="topk"), "k is required"),
        (dict(d_in=4, d_sae=8, kind="topk", k=9), r"k must be an integer in \[1, 8\]"),
        (dict(d_in=4, d_sae=8, kind="topk", k=0), r"k must be an integer in \[1, 8\]"),
        (dict(d_in=4, d_sae=8, kind="topk", k=2.0), "k must be an integer"),
        (dict(d_in=4, d_sae=8, kind="topk", k=True), "k must be an integer"),
        (dict(d_in=4, d_sae=8, kind="topk", k=torch.tensor([[1, 2]])), "k must be a number or one value"),
        (dict(d_in=4, d_sae=8, kind="topk", k=2, l1_coeff=0.1), "l1_coeff is for kind='l1'"),
        (dict(d_in=4, d_sae=8, k=2), "k is for kind='topk'"),
        (dict(d_in=4, d_sae=8, l1_coeff=-0.1), "l1_coeff must be a finite number >= 0"),
        (dict(d_in=4, d_sae=8, l1_coeff=NAN), "l1_coeff must be a finite number >= 0"),
        (dict(d_in=4, d_sae=8, l1_coeff=torch.tensor(INF)), "l1_coeff must be a finite number >= 0"),
        (dict(d_in=4, d_sae=8, l1_coeff="0.1"), "l1_coeff must be a finite number"),
        (dict(d_in=4, d_sae=8, n_instances=2, l1_coeff=[0.1, 0.2, 0.3]), "one value per instance"),
        (dict(d_in=4, d_sae=8, n_instances=2, l1_coeff=torch.rand(2, 1)), "one value per instance"),
        (dict(d_in=4, d_sae=8, seed=-1), "seed"),
        (dict(d_in=4, d_sae=8, device="gpu0"), "device"),
    ],
)
def test_bad_sae_arguments(kwargs, match):
    with pytest.raises(ValueError, match=match):
        ss.SparseAutoencoder(**kwargs)


def test_batches_in_the_wrong_layout_are_named():
    sae = ss.SparseAutoencoder(4, 8, n_instances=2)
    h = torch.rand(10, 2, 4)
    swapped = h.transpose(0, 1)  # (instances, batch, d): the old layout of encode
    for method in (sae.encode, sae.latents, sae.forward, sae.loss, sae.loss_terms):
        with pytest.raises(ValueError, match=r"h must be \(batch, instances, 4\) = \(batch, 2, 4\)"):
            method(swapped)
    for method in (sae.decode, sae.penalty):
        with pytest.raises(ValueError, match=r"a must be \(batch, instances, 8\) = \(batch, 2, 8\)"):
            method(torch.rand(2, 10, 8))
    with pytest.raises(ValueError, match=r"pre must be \(batch, instances, 8\)"):
        sae.activation(torch.rand(10, 8))
    with pytest.raises(ValueError, match=r"or \(batch, 4\) shared"):
        sae.latents(torch.rand(10, 5))
    with pytest.raises(ValueError, match=r"h must be \(batch, instances, 4\)"):
        sae.encode(torch.rand(10, 4))  # encode takes the full layout only
    with pytest.raises(ValueError, match="h must be a tensor"):
        sae.latents("h")


def test_bad_training_and_scoring_arguments():
    sae = ss.SparseAutoencoder(4, 8, n_instances=2)
    acts = torch.rand(10, 4)
    cases = [
        (lambda: ss.train_sae(sae, torch.rand(10, 3, 4)), r"activations must have shape \(samples, 4\) or "
         r"\(samples, 2, 4\)"),
        (lambda: ss.train_sae(sae, torch.rand(10)), r"activations must be \(samples, 4\)"),
        (lambda: ss.train_sae(sae, torch.full((10, 4), NAN)), "activations must be finite"),
        (lambda: ss.train_sae(sae, torch.zeros(0, 4)), "activations must not be empty"),
        (lambda: ss.train_sae(sae, acts, lr=0.0), "lr must be"),
        (lambda: ss.train_sae(sae, acts, steps=0), "steps must be a positive integer"),
        (lambda: ss.train_sae(sae, acts, batch_size=1.5), "batch_size"),
        (lambda: ss.train_sae(sae, acts, resample_every=-5), "resample_every"),
        (lambda: ss.train_sae(sae, acts, dead_window=0), "dead_window"),
        (lambda: ss.train_sae(sae, acts, seed=-1), "seed"),
        (lambda: ss.train_sae(sae, acts, progress="yes"), "progress must be True or False"),
        (lambda: ss.train_sae(sae, acts, threads=0), "threads must be a positive integer"),
        (lambda: ss.train_sae(sae, acts, fast=1), "fast must be True or False"),
        (lambda: ss.train_sae(ss.ToyModel(4, 2), acts), "sae must be a SparseAutoencoder"),
        (lambda: ss.sae.firing_rate(torch.zeros(0, 2, 3)), "latents must not be empty"),
        (lambda: ss.sae.firing_rate(torch.full((4, 3), NAN)), "latents must be finite"),
        (lambda: ss.sae.firing_rate("a"), "latents must be a tensor"),
        (lambda: ss.sae.explained_variance(torch.rand(4, 3), torch.rand(4, 2, 5)), "reconstruction must be"),
        (lambda: ss.sae.explained_variance(torch.rand(4, 3), torch.rand(5, 1, 3)), "reconstruction must be"),
        (lambda: ss.sae.explained_variance(torch.rand(4), torch.rand(4, 1, 1)), "activations must be"),
        (lambda: ss.sae.explained_variance(torch.rand(4, 3), torch.full((4, 1, 3), NAN)),
         "reconstruction must be finite"),
    ]
    for call, match in cases:
        with pytest.raises(ValueError, match=match):
            call()


def test_a_log_holds_one_row_per_step_and_instance():
    t = torch.zeros(5, 2)
    SAELog(t, t, t, t, torch.zeros(2, dtype=torch.long))  # the valid record
    for kwargs, match in [
        (dict(loss=torch.zeros(5)), "loss must be a"),
        (dict(loss="x"), "loss must be a"),
        (dict(mse=torch.zeros(4, 2)), "mse must be a"),
        (dict(dead_fraction=[0.0]), "dead_fraction must be a"),
        (dict(n_resampled=torch.zeros(3)), r"n_resampled must be an \(instances,\) = \(2,\)"),
    ]:
        fields = dict(loss=t, mse=t, l0=t, dead_fraction=t, n_resampled=torch.zeros(2)) | kwargs
        with pytest.raises(ValueError, match=match):
            SAELog(**fields)


def test_an_sae_with_nan_weights_is_refused_before_training():
    sae = ss.SparseAutoencoder(4, 8)
    with torch.no_grad():
        sae.W_enc[0, 0, 0] = NAN
    before = [p.detach().clone() for p in sae.parameters()]
    with pytest.raises(ValueError, match=r"sae must have finite parameters.*W_enc"):
        ss.train_sae(sae, torch.rand(10, 4))
    assert all(torch.allclose(a, b, equal_nan=True) for a, b in zip(before, sae.parameters(), strict=True))


def test_bad_input_fails_before_any_work():
    sae = ss.SparseAutoencoder(4, 8)
    before = [p.detach().clone() for p in sae.parameters()]
    for bad in (dict(seed=-3), dict(threads=0), dict(fast="no"), dict(progress=2)):
        with pytest.raises(ValueError):
            ss.train_sae(sae, torch.rand(10, 4), steps=5, **bad)
        assert all(torch.equal(a, b) for a, b in zip(before, sae.parameters(), strict=True)), bad


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


def test_unit_rows_stay_unit_after_normalising():
    sae = ss.SparseAutoencoder(3, 5, n_instances=2)
    with torch.no_grad():
        sae.W_dec.mul_(torch.rand(2, 5, 1) * 3 + 0.1)
    sae.normalise_decoder()
    assert torch.allclose(sae.W_dec.norm(dim=-1), torch.ones(2, 5), atol=1e-6)
