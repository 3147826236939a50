"""Training: the plain loop against the fast path, hand-written gradients, data distribution,
AdamW, determinism, bad input."""

import warnings

import pytest
import torch
from torch import nn

import supersim as ss
from supersim import _fast, _setup, _util, training

MODELS = {
    "toy relu": lambda: ss.ToyModel(7, 3, 4, seed=1),
    "toy linear": lambda: ss.ToyModel(7, 3, 4, activation="linear", seed=1),
    "toy hidden relu": lambda: ss.ToyModel(7, 3, 4, hidden_relu=True, seed=1),
    "abs": lambda: ss.AbsModel(7, 5, 4, seed=1),
    "abs leaky": lambda: ss.AbsModel(7, 5, 4, leak=0.3, seed=1),
}


def _sparse(shape, p, signed, gen, dtype=torch.float64):
    u = torch.rand(shape, generator=gen, dtype=dtype)
    x = torch.rand(shape, generator=gen, dtype=dtype) * (u < p)
    return 2 * x - (x != 0).to(dtype) if signed else x


AGREE = {
    "toy relu": lambda: ss.ToyModel(8, 3, 6, seed=1),
    "toy linear": lambda: ss.ToyModel(8, 3, 6, activation="linear", seed=1),
    "toy hidden relu": lambda: ss.ToyModel(8, 3, 6, hidden_relu=True, seed=1),
    "abs": lambda: ss.AbsModel(8, 6, 6, seed=1),
    "abs leaky": lambda: ss.AbsModel(8, 6, 6, leak=0.3, seed=1),
}


def _plain_batches(monkeypatch) -> list:
    """A list that collects every batch the plain loop hands `reconstruction_loss` from now on."""
    seen = []
    real = training.reconstruction_loss

    def spy(model, x, importance, **kwargs):
        seen.append(x.detach().clone())
        return real(model, x, importance, **kwargs)

    monkeypatch.setattr(training, "reconstruction_loss", spy)
    return seen


def _both_ways(make, monkeypatch, **kw):
    """Train `make()` twice, fast=True and fast=False; also record the plain loop's batches."""
    fast, plain = make(), make()
    h_fast = ss.train(fast, progress=False, **kw)
    seen = _plain_batches(monkeypatch)
    h_plain = ss.train(plain, fast=False, progress=False, **kw)
    return fast, plain, h_fast, h_plain, seen


@pytest.mark.parametrize("name", [*AGREE, "finite sampler", "snapshots"])
def test_fast_path_and_plain_loop_train_the_same_model(monkeypatch, name):
    """`train(fast=True)` and `train(fast=False)` take the same steps on one sampler's batches.

    Identical by design: the initial weights, and every batch (both loops call the same
    sampler with the same seeded generator, checked below element for element); hence the
    first step's loss agrees to float rounding (1e-6). Only close: the rest. The
    hand-written gradients and the fused AdamW kernel round differently from autograd and
    `torch.optim.AdamW`, and those differences compound over the steps, so the loss history
    agrees to rtol 1e-4 and the weights to 1e-4 (measured: about 1e-6 and 3e-5 at worst, for
    the hidden ReLU whose kinks amplify them).
    """
    p, imp = ss.sparsity_sweep(6, 0.05)[:, None], ss.importance_decay(8, 0.85)
    kw = dict(importance=imp, steps=300, batch_size=512, lr=1e-2, seed=2)
    make = AGREE.get(name, AGREE["toy relu"])
    snaps_fast, snaps_plain = [], []
    if name == "finite sampler":
        data = _sparse((64, 6, 8), 0.2, False, torch.Generator().manual_seed(3), torch.float32)
        kw |= dict(sampler=ss.data.finite_sampler(data), batch_size=32)
    else:
        signed = make().signed_inputs
        kw |= dict(sampler=ss.data.sparse_sampler(p, 6, 8, signed=signed))
    if name == "snapshots":
        kw |= dict(snapshot_every=100)
        fast, plain = make(), make()
        ss.train(fast, snapshots=snaps_fast, progress=False, **kw)
        ss.train(plain, snapshots=snaps_plain, fast=False, progress=False, **kw)
        assert [k for k, _ in snaps_fast] == [k for k, _ in snaps_plain] == [100, 200, 300]
        for (_, a), (_, b) in zip(snaps_fast, snaps_plain, strict=True):
            assert all(torch.allclose(a[n], b[n], atol=1e-4) for n in a)
        kw.pop("snapshot_every")
    fast, plain, h_fast, h_plain, seen = _both_ways(make, monkeypatch, **kw)
    assert h_fast.shape == h_plain.shape == (300, 6)
    assert torch.allclose(h_fast[0], h_plain[0], rtol=1e-6, atol=0), "same weights, same batch"
    assert torch.allclose(h_fast, h_plain, rtol=1e-4, atol=1e-9), (h_fast - h_plain).abs().max()
    for (n, a), b in zip(fast.named_parameters(), plain.parameters(), strict=True):
        atol = 5e-3 if name == "abs leaky" else 1e-4
        assert torch.allclose(a, b, atol=atol), f"{name}: {n} differs"
    assert h_fast[-20:].mean() < 0.7 * h_fast[:20].mean(), "training should lower the loss"
    # the fast path's kernels saw the plain loop's batches, bit for bit (as -x, (I, F, B))
    steps = dict(steps=3, batch_size=kw["batch_size"], seed=2)
    x = _spy_features(monkeypatch, make(), sampler=kw["sampler"], **steps)
    assert torch.equal(x, torch.cat([b.permute(1, 2, 0) for b in seen[:3]], dim=2))
def test_fast_false_trains_a_subclass_and_other_modules_the_same_way():
    # fast=False on a model the fast path would not take anyway changes nothing
    kw = dict(feature_probability=0.3, steps=20, lr=1e-2, progress=False)
    a, b = _HiddenBias(6, 2, 2, seed=0), _HiddenBias(6, 2, 2, seed=0)
    assert torch.equal(ss.train(a, **kw), ss.train(b, fast=False, **kw))


def test_the_plain_loop_draws_from_the_readable_sampler(monkeypatch):
    """Without a sampler, the plain loop's batches are `data.sparse_sampler`'s, from the
    run's generator: the loop on the page is the whole story."""
    p = torch.tensor([[0.1], [0.6]])
    model = ss.AbsModel(5, 3, 2, seed=0)
    seen = _plain_batches(monkeypatch)
    ss.train(model, feature_probability=p, steps=3, batch_size=64, seed=4, fast=False,
             progress=False)
    generator = torch.Generator().manual_seed(_fast._stream_seed(4, 0))  # the run's
    sampler = ss.data.sparse_sampler(p, 2, 5, signed=True)
    want = [sampler(64, generator) for _ in range(3)]
    assert all(torch.equal(a, b) for a, b in zip(seen, want, strict=True))
    assert all(bool((x < 0).any()) for x in seen), "AbsModel draws signed features"


@pytest.mark.parametrize("name", MODELS)
def test_hand_written_gradients_match_autograd(name):
    gen = torch.Generator().manual_seed(0)
    model = MODELS[name]().double()
    with torch.no_grad():  # move away from the init (b = 0), so every ReLU mask is mixed
        for prm in model.parameters():
            prm.add_(0.3 * torch.randn(prm.shape, generator=gen, dtype=torch.float64))
    x = _sparse((64, 4, 7), 0.5, model.signed_inputs, gen)  # (B, I, F)
    importance = torch.rand(4, 7, generator=gen, dtype=torch.float64)
    loss, grads = ss.loss_and_grads(model, x, importance)
    reference = ss.reconstruction_loss(model, x, importance)
    reference.sum().backward()
    assert torch.allclose(loss, reference.detach(), rtol=0, atol=1e-14), (loss, reference)
    assert set(grads) == {n for n, _ in model.named_parameters()}
    for n, g in grads.items():
        want = getattr(model, n).grad
        assert want.abs().max() > 1e-3, f"{n}: autograd gradient is ~0, the check would be empty"
        assert torch.allclose(g, want, rtol=0, atol=1e-14), f"{name}: d{n} differs"


def test_loss_and_grads_rejects_other_models():
    with pytest.raises(ValueError, match="model must be a ToyModel or an AbsModel"):
        ss.loss_and_grads(nn.Linear(2, 2), torch.zeros(1, 1, 2), torch.ones(1, 2))
    # a subclass may change the forward pass the hand-written gradients assume
    with pytest.raises(ValueError, match="hand-written"):
        ss.loss_and_grads(_HiddenBias(2, 1), torch.zeros(1, 1, 2), torch.ones(1, 2))


@pytest.mark.parametrize("fn", [ss.reconstruction_loss, ss.loss_and_grads])
@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        # the layout of old, (I, B, F), with B != I: named as a mistake
        (dict(x=torch.zeros(4, 3, 5)), r"x must be a batch laid out \(batch, instances, features\)"
                                       r" = \(B, 4, 5\), got shape \(4, 3, 5\)"),
        (dict(x=torch.zeros(4, 5)), "x must be a batch laid out"),
        (dict(x=torch.zeros(0, 4, 5)), "x must hold at least one example"),
        (dict(x=torch.full((3, 4, 5), float("inf"))), "x must be finite"),
        (dict(x="x"), "x must be a tensor or an array"),
        (dict(importance=torch.ones(5)), r"importance must be a tensor of shape \(instances, features\)"),
        (dict(importance=1.0), "importance must be a tensor of shape"),
        (dict(importance=torch.full((4, 5), float("nan"))), "importance must be finite"),
        (dict(importance=-torch.ones(4, 5)), "importance must be >= 0"),
        (dict(importance=torch.ones(4, 5, dtype=torch.bool)), "importance must hold real numbers"),
        (dict(model=torch.nn.Linear(2, 2)), "model must be"),
    ],
)
def test_the_loss_rejects_what_does_not_fit_the_model(fn, kwargs, match):
    args = dict(model=ss.ToyModel(5, 2, 4), x=torch.rand(3, 4, 5), importance=torch.ones(4, 5))
    with pytest.raises(ValueError, match=match):
        fn(**(args | kwargs))


def test_target_and_per_example():
    model = ss.ToyModel(5, 2, 4, seed=3)
    x = ss.sample_features(6, 0.5, 4, 5, seed=1)
    imp = torch.rand(4, 5, generator=torch.Generator().manual_seed(2))
    each = ss.reconstruction_loss(model, x, imp, per_example=True)  # (B, I)
    assert each.shape == (6, 4)
    assert torch.allclose(each.mean(0), ss.reconstruction_loss(model, x, imp), rtol=1e-6)
    y = torch.rand(6, 4, 5)
    by_hand = (imp * (model(x) - y).square()).mean(-1)
    assert torch.allclose(ss.reconstruction_loss(model, x, imp, target=y, per_example=True), by_hand)
    with pytest.raises(ValueError, match=r"target must be a batch laid out"):
        ss.reconstruction_loss(model, x, imp, target=torch.rand(6, 5))
    with pytest.raises(ValueError, match=r"target must have x's shape \(6, 4, 5\)"):
        ss.reconstruction_loss(model, x, imp, target=torch.rand(7, 4, 5))
    with pytest.raises(ValueError, match="per_example must be True or False"):
        ss.reconstruction_loss(model, x, imp, per_example="yes")


def _spy_features(monkeypatch, model, p=None, steps=3, batch_size=4096, seed=0, sampler=None):
    """The batches (I, F, B) the fast path feeds `model`, recorded from inside the loop."""
    seen = []
    name = "_abs_grads" if isinstance(model, ss.AbsModel) else "_toy_grads"
    real = getattr(_fast, name)

    position = 3 if isinstance(model, ss.AbsModel) else 2  # of xn = -x in the arguments

    def spy(*args, **kwargs):
        seen.append(-args[position].clone())
        return real(*args, **kwargs)

    monkeypatch.setattr(_fast, name, spy)
    data = dict(feature_probability=p) if sampler is None else dict(sampler=sampler)
    ss.train(model, steps=steps, batch_size=batch_size, seed=seed, progress=False, **data)
    return torch.cat(seen, dim=2)  # (I, F, steps * B)


def _check_sparse_distribution(x: torch.Tensor, p: list, signed: bool) -> None:
    """x (I, F, N): instance k's entries are 0 with probability 1 - p[k], else U[0, 1) (or
    U[-1, 1)), within five standard errors."""
    n = x.shape[1] * x.shape[2]
    for k, pk in enumerate(p):
        values = x[k][x[k] != 0]
        freq = values.numel() / n
        assert abs(freq - pk) <= 5 * (pk * (1 - pk) / n) ** 0.5 + 1e-9, (pk, freq)
        if pk == 0:
            continue
        # active values are U[0, 1) (or U[-1, 1)): mean 1/2 (or 0), variance 1/12 (or 1/3)
        mean, var = (0.0, 1 / 3) if signed else (0.5, 1 / 12)
        assert abs(values.mean().item() - mean) < 5 * (var / values.numel()) ** 0.5
        assert abs(values.var().item() - var) < 0.05 * var
        assert values.min() >= (-1 if signed else 0) and values.max() < 1


@pytest.mark.parametrize("signed", [False, True])
def test_training_batches_have_the_papers_distribution(monkeypatch, signed):
    """The fast path draws its own features; they follow the distribution the readable
    sampler draws (`data.sparse_sampler`, which the plain loop and the chapters use)."""
    p = torch.tensor([0.0, 0.02, 0.3, 0.9, 1.0])  # one density per instance
    model = ss.AbsModel(6, 4, 5) if signed else ss.ToyModel(6, 4, 5)
    fast = _spy_features(monkeypatch, model, p[:, None])  # (I, F, 3 * 4096)
    readable = ss.data.sparse_sampler(p[:, None], 5, 6, signed=signed)(3 * 4096)  # (B, I, F)
    for x in (fast, readable.permute(1, 2, 0)):
        _check_sparse_distribution(x, p.tolist(), signed)
    # and the two agree with each other: activity per instance, values' mean per instance
    n = fast.shape[1] * fast.shape[2]
    for k in range(1, 4):  # the instances with 0 < p < 1
        a, b = fast[k] != 0, readable[:, k] != 0
        pooled = (a.sum() + b.sum()).item() / (2 * n)
        assert abs(a.float().mean() - b.float().mean()) < 5 * (2 * pooled * (1 - pooled) / n) ** 0.5
        va, vb = fast[k][a], readable[:, k][b]
        spread = (va.var() / va.numel() + vb.var() / vb.numel()) ** 0.5
        assert abs(va.mean() - vb.mean()) < 5 * spread


def test_features_are_independent_across_batch_and_steps(monkeypatch):
    x = _spy_features(monkeypatch, ss.ToyModel(2, 1, 1), 0.5, steps=4, batch_size=8192)
    active = (x[0] != 0).float()  # (F, steps * B)
    # feature 0 vs feature 1, and every sample vs the next one (also across step boundaries)
    for a, b in ((active[0], active[1]), (active[0, :-1], active[0, 1:])):
        corr = torch.corrcoef(torch.stack([a, b]))[0, 1].item()
        assert abs(corr) < 5 / a.numel() ** 0.5, corr


def test_same_seed_same_result_and_threads_do_not_matter():
    p = ss.sparsity_sweep(6)[:, None]

    def run(seed, threads):
        model = ss.ToyModel(40, 5, 6, seed=3)
        hist = ss.train(model, feature_probability=p, steps=30, seed=seed, threads=threads,
                        progress=False)
        return hist, model.W.detach().clone()

    h1, w1 = run(0, 1)
    h2, w2 = run(0, 1)
    h3, w3 = run(0, 2)
    h4, _ = run(1, 1)
    assert torch.equal(h1, h2) and torch.equal(w1, w2), "same seed must give the same run"
    assert torch.equal(h1, h3) and torch.equal(w1, w3), "the thread count must not change numbers"
    assert not torch.equal(h1, h4), "another seed must give other batches"


def test_chunks_cover_the_instances_and_run_on_several_threads():
    rows = _fast._chunk_rows(20, 200, 1024, torch.device("cpu"))
    assert len(rows) > 1, "a big sweep should be cut into cache-sized chunks"
    covered = torch.zeros(20, dtype=torch.int64)
    for r in rows:
        covered[r] += 1
    assert torch.equal(covered, torch.ones(20, dtype=torch.int64))
    assert _fast._chunk_rows(20, 200, 1024, torch.device("meta")) == [slice(0, 20)]
    groups = _fast._split(list(range(7)), 2)
    assert sum(groups, []) == list(range(7)) and sorted(map(len, groups)) == [3, 4]


@pytest.mark.parametrize("fused", [True, False])
def test_adamw_update_matches_torch(fused):
    if fused and not _fast._fused_adamw_works(torch.device("cpu")):
        pytest.skip("this torch has no fused AdamW on the CPU")
    gen = torch.Generator().manual_seed(0)
    params = [torch.randn(3, 4, generator=gen), torch.randn(5, generator=gen)]
    ref = [nn.Parameter(p.clone()) for p in params]
    opt = torch.optim.AdamW(ref, lr=3e-3, weight_decay=0.05)
    m = [torch.zeros_like(p) for p in params]
    v = [torch.zeros_like(p) for p in params]
    count = torch.zeros(())
    for t in range(1, 6):
        grads = [torch.randn(p.shape, generator=gen) for p in params]
        _fast._adamw(params, grads, m, v, [count, count], t, 3e-3, 0.05, fused)
        for r, g in zip(ref, grads, strict=True):
            r.grad = g.clone()
        opt.step()
    for p, r in zip(params, ref, strict=True):
        assert torch.allclose(p, r.detach(), rtol=1e-5, atol=1e-7)


def test_plain_adamw_trains_like_fused(monkeypatch):
    if not _fast._fused_adamw_works(torch.device("cpu")):
        pytest.skip("this torch has no fused AdamW on the CPU")
    kw = dict(feature_probability=0.3, steps=20, progress=False)
    fused, plain = ss.ToyModel(6, 2, 3), ss.ToyModel(6, 2, 3)
    h_fused = ss.train(fused, **kw)
    monkeypatch.setattr(_fast, "_fused_adamw_works", lambda device: False)
    h_plain = ss.train(plain, **kw)
    assert torch.allclose(h_fused, h_plain, rtol=1e-4)
    assert torch.allclose(fused.W, plain.W, atol=1e-5)


class _Generic(nn.Module):
    """A ToyModel the trainer does not recognise, so it goes through the autograd loop."""

    signed_inputs = False

    def __init__(self, inner: ss.ToyModel):
        super().__init__()
        self.inner = inner
        self.n_instances, self.n_features = inner.n_instances, inner.n_features

    def encode(self, x):
        return self.inner.encode(x)

    def decode(self, h):
        return self.inner.decode(h)

    def target(self, x):
        return x


def test_fast_loop_trains_like_the_autograd_loop():
    p = ss.sparsity_sweep(8, 0.1)[:, None]
    imp = ss.importance_decay(10, 0.9)
    kw = dict(importance=imp, steps=600, lr=5e-3, progress=False)
    ev = dict(feature_probability=p, importance=imp, batch_size=50_000)
    # on one sampler's batches: a module the trainer does not recognise takes the same steps,
    # rounded otherwise
    fast, slow = ss.ToyModel(10, 3, 8, seed=2), _Generic(ss.ToyModel(10, 3, 8, seed=2))
    sampler = ss.data.sparse_sampler(p, 8, 10)
    h_fast, h_slow = ss.train(fast, sampler=sampler, **kw), ss.train(slow, sampler=sampler, **kw)
    assert h_fast.shape == h_slow.shape == (600, 8)
    l_fast, l_slow = ss.evaluate(fast, **ev), ss.evaluate(slow.inner, **ev)
    assert l_fast.mean() < 0.7 * h_fast[:20].mean(), "training should lower the loss"
    assert torch.allclose(h_fast, h_slow, rtol=1e-3), (h_fast - h_slow).abs().max()
    assert abs(l_fast.mean() / l_slow.mean() - 1) < 1e-3, (l_fast, l_slow)
    # on their own draws of the same distribution: other batches, models as good
    own, plain = ss.ToyModel(10, 3, 8, seed=2), _Generic(ss.ToyModel(10, 3, 8, seed=2))
    ss.train(own, feature_probability=p, **kw)
    ss.train(plain, feature_probability=p, **kw)
    l_own, l_plain = ss.evaluate(own, **ev), ss.evaluate(plain.inner, **ev)
    assert not torch.equal(own.W, plain.inner.W), "the fast path draws its own batches"
    assert abs(l_own.mean() / l_plain.mean() - 1) < 0.02, (l_own, l_plain)


def test_history_is_the_loss_of_each_batch(monkeypatch):
    model = ss.ToyModel(5, 2, 3)
    seen = []
    real = _fast._toy_grads

    def spy(W, b, xn, imps, relu_out, hidden_relu, loss2, gW, gb):
        x = -xn.transpose(1, 2)  # (I, B, F)
        out = torch.relu(torch.baddbmm(b.unsqueeze(1), torch.bmm(x, W.transpose(1, 2)), W))
        imp = imps * x.shape[1] * x.shape[2] / 2  # back to the importance
        seen.append((imp.transpose(1, 2) * (out - x).square()).mean(dim=(1, 2)))
        return real(W, b, xn, imps, relu_out, hidden_relu, loss2, gW, gb)

    monkeypatch.setattr(_fast, "_toy_grads", spy)
    hist = ss.train(model, feature_probability=0.4, importance=[1, 2, 3, 4, 5], steps=4,
                    progress=False)
    assert torch.allclose(hist, torch.stack(seen), rtol=1e-5)


def test_cosine_schedule_and_warmup():
    at = _setup.lr_schedule(1e-2, "cosine", 100, 10)
    assert at(0) == pytest.approx(1e-3) and at(9) == pytest.approx(1e-2)
    assert at(10) == pytest.approx(1e-2) and at(99) < 1e-5
    const = _setup.lr_schedule(1e-3, "constant", 100, 0)
    assert {const(k) for k in range(100)} == {1e-3}


def test_abs_model_learns_absolute_value():
    model = ss.AbsModel(3, 6, 2, seed=0)
    kw = dict(feature_probability=1.0)
    before = ss.evaluate(model, **kw)
    ss.train(model, steps=1500, lr=1e-2, progress=False, **kw)
    after = ss.evaluate(model, **kw)
    assert (after < 0.1 * before).all(), (before, after)


def test_trains_silently_and_leaves_thread_count_alone(capsys):
    threads = torch.get_num_threads()
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        model = ss.ToyModel(200, 20, 4)
        ss.train(model, feature_probability=0.1, steps=3, threads=2, progress=False)
    out = capsys.readouterr()
    assert out.out == "" and out.err == ""
    assert torch.get_num_threads() == threads
    assert model.W.grad is None and model.b.grad is None


def test_error_in_a_worker_thread_reaches_the_caller(monkeypatch):
    calls = []
    real = _fast._toy_grads

    def flaky(*args):
        calls.append(1)
        if len(calls) == 7:
            raise FloatingPointError("boom")
        return real(*args)

    monkeypatch.setattr(_fast, "_toy_grads", flaky)
    with pytest.raises(FloatingPointError, match="boom"):
        ss.train(ss.ToyModel(200, 4, 8), feature_probability=0.1, steps=50, threads=2,
                 progress=False)


def test_evaluate_in_pieces_matches_one_piece(monkeypatch):
    """A batch too big for one piece is evaluated in pieces of the same draws: the same
    number to float rounding, so a dropped or repeated piece (or a misweighted last one)
    fails."""
    model = ss.ToyModel(30, 4, 3)
    with torch.no_grad():
        model.b.fill_(-0.1)  # some outputs cut by the ReLU, as in a trained model
    p = torch.tensor([[1.0], [0.3], [0.05]])
    whole = ss.evaluate(model, feature_probability=p, batch_size=2000, seed=5)
    assert whole.shape == (3,)
    # pieces of 300 rows: six full ones and a last one of 200, 10% of the batch
    monkeypatch.setattr(training, "_PIECE_ENTRIES", 300 * 3 * 30)  # rows * (I, F)
    pieces = ss.evaluate(model, feature_probability=p, batch_size=2000, seed=5)
    assert torch.allclose(pieces, whole, rtol=1e-5, atol=0), (pieces, whole)
    # the draws are those of one batch from the readable sampler
    x = ss.data.sparse_sampler(p, 3, 30)(2000, torch.Generator().manual_seed(5))
    direct = ss.reconstruction_loss(model, x, torch.ones(3, 30)).detach()
    assert torch.allclose(whole, direct, rtol=1e-5, atol=0), (whole, direct)


def test_best_of_restarts_picks_the_lowest_loss_per_group():
    loss = torch.tensor([3.0, 1.0, 2.0, 0.5, 0.7, 0.9])
    assert ss.best_of_restarts(loss, 3).tolist() == [1, 3]
    with pytest.raises(ValueError, match="n_restarts"):
        ss.best_of_restarts(loss, 4)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA device")
def test_same_loop_on_cuda():
    model = ss.ToyModel(20, 5, 4, device="cuda")
    hist = ss.train(model, feature_probability=0.1, steps=200, progress=False)
    assert hist.device.type == "cpu" and hist[-20:].mean() < hist[:20].mean()


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        (dict(steps=0), "steps"),
        (dict(batch_size=-1), "batch_size"),
        (dict(lr=-1e-3), "lr"),
        (dict(weight_decay=float("nan")), "weight_decay"),
        (dict(schedule="linear"), "schedule"),
        (dict(seed=1.5), "seed"),
        (dict(threads=0), "threads"),
        (dict(warmup=11), r"warmup must be an integer in \[0, 10\]"),
        (dict(warmup=-1), "warmup"),
        (dict(feature_probability=1.5), r"feature_probability must be finite and lie in \[0.0, 1.0\]"),
        (dict(importance=torch.ones(3)), "importance must broadcast"),
        (dict(fast="yes"), "fast must be True or False"),
        (dict(fast=None), "fast"),
    ],
)
def test_bad_input_is_rejected_before_training(kwargs, match):
    model = ss.ToyModel(5, 2, 2)
    before = model.W.detach().clone()
    args = dict(feature_probability=0.5, steps=10, progress=False) | kwargs
    with pytest.raises(ValueError, match=match):
        ss.train(model, **args)
    assert torch.equal(model.W, before)


def test_rejects_a_model_it_cannot_train():
    with pytest.raises(ValueError, match="model must be a supersim model"):
        ss.train(nn.Linear(3, 3), feature_probability=0.5, steps=2)


class _HiddenBias(ss.ToyModel):
    """A subclass that changes the forward pass (the 04c exercise): it must not take the fast path."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.b_hidden = nn.Parameter(torch.zeros(self.n_instances, self.d_hidden))

    def encode(self, x):
        h = torch.einsum("bif,ihf->bih", self.as_batch(x), self.W) + self.b_hidden  # (B, I, H)
        return torch.relu(h)


def test_subclasses_train_through_autograd():
    model = _HiddenBias(6, 2, 2, hidden_relu=True, seed=0)
    ss.train(model, feature_probability=0.3, steps=200, lr=1e-2, progress=False)
    assert model.b_hidden.abs().max() > 1e-3, "the subclass's own parameter was never trained"


# --- snapshots and samplers (chapters 7 and 8) --------------------------------------------


def test_snapshots_do_not_change_the_numbers_and_end_at_the_final_weights():
    # big enough that two threads would normally share the chunks: snapshots run one worker
    p = ss.sparsity_sweep(8)[:, None]
    kw = dict(feature_probability=p, steps=40, batch_size=1024, threads=2, seed=3, progress=False)
    plain, snapped = ss.ToyModel(200, 10, 8, seed=1), ss.ToyModel(200, 10, 8, seed=1)
    assert len(_fast._chunk_rows(8, 200, 1024, torch.device("cpu"))) > 1
    h_plain = ss.train(plain, **kw)
    snaps = []
    h_snap = ss.train(snapped, snapshot_every=10, snapshots=snaps, **kw)
    assert torch.equal(h_plain, h_snap) and torch.equal(plain.W, snapped.W)
    assert [k for k, _ in snaps] == [10, 20, 30, 40]
    assert torch.equal(snaps[-1][1]["W"], snapped.W.detach()) and torch.equal(snaps[-1][1]["b"], snapped.b)
    assert not torch.equal(snaps[0][1]["W"], snaps[-1][1]["W"]), "snapshots must be copies"


def test_snapshots_through_the_autograd_loop():
    model = _Generic(ss.ToyModel(6, 2, 2, seed=0))
    snaps = []
    ss.train(model, feature_probability=0.3, steps=9, snapshot_every=4, snapshots=snaps, progress=False)
    assert [k for k, _ in snaps] == [4, 8]
    assert set(snaps[0][1]) == {"inner.W", "inner.b"}


def test_sampler_steps_are_adamw_on_loss_and_grads():
    gen = torch.Generator().manual_seed(0)
    data = _sparse((16, 3, 6), 0.3, False, gen, dtype=torch.float32)  # (T, I, F)
    imp = ss.importance_decay(6, 0.8)
    model, ref = ss.ToyModel(6, 2, 3, seed=4), ss.ToyModel(6, 2, 3, seed=4)
    hist = ss.train(model, sampler=ss.data.finite_sampler(data), importance=imp, steps=5,
                    batch_size=16, lr=1e-2, weight_decay=0.05, progress=False)
    opt = torch.optim.AdamW(ref.parameters(), lr=1e-2, weight_decay=0.05)
    for k in range(5):
        loss, grads = ss.loss_and_grads(ref, data, imp.expand(3, 6))
        for name, g in grads.items():
            getattr(ref, name).grad = g
        opt.step()
        assert torch.allclose(hist[k], loss, rtol=1e-5)
    assert torch.allclose(model.W, ref.W, atol=1e-6) and torch.allclose(model.b, ref.b, atol=1e-6)


def test_sampler_same_seed_same_run_and_autograd_agrees():
    def noisy(batch_size, generator):
        return ss.sample_features(batch_size, 0.2, 2, 5, generator=generator)

    runs = []
    for seed in (0, 0, 1):
        model = ss.ToyModel(5, 2, 2, seed=0)
        runs.append(ss.train(model, sampler=noisy, steps=30, seed=seed, progress=False))
    assert torch.equal(runs[0], runs[1]) and not torch.equal(runs[0], runs[2])
    # full batch on a fixed set: the autograd loop takes the same steps
    data = noisy(64, torch.Generator().manual_seed(1))
    fast, slow = ss.ToyModel(5, 2, 2, seed=0), _Generic(ss.ToyModel(5, 2, 2, seed=0))
    kw = dict(sampler=ss.data.finite_sampler(data), steps=50, batch_size=64, lr=1e-2, progress=False)
    h_fast, h_slow = ss.train(fast, **kw), ss.train(slow, **kw)
    assert torch.allclose(h_fast, h_slow, rtol=1e-4, atol=1e-7)
    assert torch.allclose(fast.W, slow.inner.W, atol=1e-5)


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        (dict(feature_probability=None), "exactly one of feature_probability and sampler"),
        (dict(sampler=lambda b, g: torch.zeros(b, 2, 5)), "exactly one of"),
        (dict(feature_probability=None, sampler="data"), "sampler must be callable"),
        (dict(feature_probability=None, sampler=lambda b, g: torch.zeros(b, 2, 4)),
         r"sampler must return shape \(10, 2, 5\)"),
        (dict(feature_probability=None, sampler=lambda b, g: [0.0]), "sampler must return shape"),
        (dict(snapshot_every=0, snapshots=[]), "snapshot_every"),
        (dict(snapshot_every=5), "snapshots must be a list"),
        (dict(snapshots=[]), "snapshots needs snapshot_every"),
    ],
)
def test_bad_sampler_or_snapshot_input(kwargs, match):
    model = ss.ToyModel(5, 2, 2)
    before = model.W.detach().clone()
    args = dict(feature_probability=0.5, steps=3, batch_size=10, progress=False) | kwargs
    with pytest.raises(ValueError, match=match):
        ss.train(model, **args)
    assert torch.equal(model.W, before)


class _Bar:
    """Stands in for tqdm: records what the progress bar is told."""

    def __init__(self, *args, **kwargs):
        self.steps, self.shown, self.closed = 0, [], False

    def update(self, n):
        self.steps += n

    def set_postfix(self, loss, refresh):
        self.shown.append(float(loss))

    def close(self):
        self.closed = True


@pytest.mark.parametrize("fast", [True, False])
def test_the_progress_bar_shows_the_mean_loss(monkeypatch, fast):
    bars = []
    monkeypatch.setattr(_util, "progress_bar", lambda *a: bars.append(_Bar()) or bars[-1])
    model = ss.ToyModel(6, 2, 3, seed=0)
    hist = ss.train(model, feature_probability=0.2, steps=200, batch_size=64, progress=True,
                    fast=fast)
    (bar,) = bars
    assert bar.steps == 200 and bar.closed
    # after steps 100 and 200, the mean over instances of that step's loss (4 digits shown)
    want = [hist[k].mean().item() for k in (99, 199)]
    assert bar.shown == pytest.approx(want, rel=1e-3)
