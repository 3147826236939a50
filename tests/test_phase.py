"""Phase diagrams: closed forms against Monte Carlo, boundaries, grids, classes, correlated data."""

import inspect

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import pytest  # noqa: E402
import torch  # noqa: E402

import supersim as ss  # noqa: E402
from supersim import phase  # noqa: E402


def _mc_loss(W, b, density, r, n=400_000, seed=0):
    """Monte-Carlo E sum_i I_i (x_i - x'_i)^2 of a hand-set n = 2, m = 1 ToyModel, and its SE."""
    model = ss.ToyModel(2, 1)
    with torch.no_grad():
        model.W.copy_(W.view(1, 1, 2))
        model.b.copy_(b.view(1, 2))
    x = ss.sample_features(n, density, 1, 2, generator=torch.Generator().manual_seed(seed))
    with torch.no_grad():
        per_sample = ((model(x) - x).square() * torch.tensor([1.0, r])).sum(-1).flatten()
    return per_sample.mean().item(), per_sample.std().item() / n**0.5


@pytest.mark.parametrize("density, r", [(1.0, 1.0), (0.5, 0.3), (0.2, 2.0), (0.05, 7.0)])
def test_closed_form_losses_match_monte_carlo_of_hand_built_solutions(density, r):
    closed = phase.closed_form_losses(density, r)
    for k, name in enumerate(phase.PHASES):
        W, b = phase.hand_built(name, density)
        mc, se = _mc_loss(W, b, density, r)
        assert abs(mc - closed[k].item()) < 5 * se + 1e-6, (name, mc, closed[k].item(), se)


@pytest.mark.parametrize("density, r", [(1.0, 1.0), (0.7, 0.5), (0.2, 2.0), (0.05, 7.0)])
def test_n3_closed_forms_match_stratified_loss_of_hand_built_solutions(density, r):
    closed = phase.closed_form_losses(density, r, n_features=3)
    model = ss.ToyModel(3, 2, n_instances=3)
    with torch.no_grad():
        for k, name in enumerate(phase.PHASES):
            model.W[k], model.b[k] = phase.hand_built(name, density, n_features=3)
    # stratified_loss averages over the 3 features; the closed forms sum over them
    got = 3 * ss.stratified_loss(model, density, torch.tensor([1.0, 1.0, r]), batch_size=100_000)
    assert torch.allclose(got.double(), closed, rtol=0.02, atol=1e-6), (got, closed)


def test_stratified_and_paired_losses_agree_with_plain_monte_carlo():
    model = ss.ToyModel(4, 2, n_instances=3, seed=1)
    p = torch.tensor([[0.5], [0.2], [0.05]])
    imp = torch.tensor([1.0, 0.8, 0.6, 0.4])
    strat = ss.stratified_loss(model, p, imp, batch_size=50_000)
    paired = ss.paired_loss(model, p, imp, batch_size=400_000)
    plain = ss.evaluate(model, feature_probability=p, importance=imp, batch_size=400_000)
    assert torch.allclose(strat, plain, rtol=0.03), (strat, plain)
    assert torch.allclose(paired, plain, rtol=0.03), (paired, plain)
    # same draws for every instance: two copies of one model get exactly the same loss
    twin = ss.ToyModel(4, 2, n_instances=2, seed=1)
    with torch.no_grad():
        twin.W[1], twin.b[1] = twin.W[0], twin.b[0]
    loss = ss.paired_loss(twin, 0.1, batch_size=1000)
    assert loss[0] == loss[1]
    with pytest.raises(ValueError, match="n_features"):
        ss.stratified_loss(ss.ToyModel(13, 2), 0.1)


def test_closed_form_known_values():
    # d = 1: the dropped feature costs its variance 1/12; the antipodal pair costs (1 + r)/6
    got = phase.closed_form_losses(1.0, 2.0)
    assert torch.allclose(got, torch.tensor([2 / 12, 3 / 6, 1 / 12], dtype=got.dtype))
    assert phase.closed_form_losses(torch.ones(4, 1), torch.ones(1, 5)).shape == (4, 5, 3)


def test_boundaries_are_where_losses_tie():
    d = torch.linspace(0.02, 0.75, 30, dtype=torch.float64)
    low, high = phase.superposition_window(d)
    L_low, L_high = phase.closed_form_losses(d, low), phase.closed_form_losses(d, high)
    assert torch.allclose(L_low[:, 0], L_low[:, 1])  # ignored = superposed on the lower line
    assert torch.allclose(L_high[:, 1], L_high[:, 2])  # superposed = dedicated on the upper line
    # inside the window superposition is strictly cheapest, just outside it is not
    mid = (low * high).sqrt()
    inside = d < 4 / 7
    assert (phase.closed_form_phase(d[inside], mid[inside]) == 1).all()
    assert (phase.closed_form_phase(d, low * 0.9) != 1).all()
    assert (phase.closed_form_phase(d, high * 1.1) != 1).all()


def test_triple_point_and_dense_limit():
    d, r = phase.TRIPLE_POINT
    L = phase.closed_form_losses(d, r)
    assert torch.allclose(L, L[0].expand(3))
    low, high = phase.superposition_window(d)
    assert torch.isclose(low, high) and abs(low.item() - 1) < 1e-12
    # above d = 4/5 no importance makes superposition win; the dense border is r = 1
    dense = phase.closed_form_phase(torch.full((50,), 0.9), torch.logspace(-2, 2, 50))
    assert set(dense.tolist()) == {0, 2}
    assert phase.closed_form_phase(1.0, 0.99) == 0 and phase.closed_form_phase(1.0, 1.01) == 2
    assert torch.isinf(phase.superposition_window(0.85)[0])


def test_n3_window_and_triple_point():
    d = torch.linspace(0.02, 0.56, 20, dtype=torch.float64)
    low, high = phase.superposition_window(d, n_features=3)
    assert (high == 1).all(), "for n = 3, m = 2 superposition stops at r = 1 below the triple point"
    L = phase.closed_form_losses(d, 1.0, n_features=3)
    assert torch.allclose(L[:, 1], L[:, 2]), "at r = 1 the superposed and dedicated solutions tie"
    L = phase.closed_form_losses(*phase.TRIPLE_POINT, n_features=3)
    assert torch.allclose(L, L[0].expand(3))
    # the same lower boundary as n = 2, m = 1
    assert torch.allclose(low, phase.superposition_window(d)[0])
    # sparse and important: n = 3 gives the extra feature a dimension, n = 2 superposes it
    assert phase.closed_form_phase(0.05, 3.0, n_features=3) == 2
    assert phase.closed_form_phase(0.05, 3.0, n_features=2) == 1


def test_known_phases():
    assert phase.PHASES[phase.closed_form_phase(0.1, 1.0)] == "superposed"
    assert phase.PHASES[phase.closed_form_phase(0.1, 30.0)] == "dedicated"
    assert phase.PHASES[phase.closed_form_phase(0.1, 0.03)] == "ignored"


def test_grid_instances_layout():
    p, imp = phase.grid_instances([0.5, 2.0], [1.0, 0.1, 0.01], n_features=3, n_restarts=2)
    assert p.shape == imp.shape == (12, 3)
    # (importance, density, restart), restarts innermost
    assert imp[:, -1].tolist() == [0.5] * 6 + [2.0] * 6
    assert torch.allclose(p[:6, 0], torch.tensor([1.0, 1.0, 0.1, 0.1, 0.01, 0.01]))
    assert (imp[:, :-1] == 1).all() and (p == p[:, :1]).all()


def test_classify_hand_built_and_polytopes():
    Ws = torch.stack([phase.hand_built(name, 0.3)[0] for name in phase.PHASES])  # (3, 1, 2)
    assert phase.classify(Ws).tolist() == [0, 1, 2]
    angles = torch.tensor([0.0, 2.0, 4.0]) * torch.pi / 3
    triangle = torch.stack([angles.cos(), angles.sin()])  # (2, 3)
    dedicated = torch.tensor([[1.0, -1.0, 0.0], [0.0, 0.0, 1.0]])  # a pair on x, the extra on y
    ignored = torch.tensor([[1.0, 0.0, 0.0], [0.0, 1.0, 0.05]])
    assert phase.classify(torch.stack([triangle, dedicated, ignored])).tolist() == [1, 2, 0]


def test_away_from_boundary_and_agreement():
    r, d = torch.logspace(-1, 1, 9), torch.logspace(0, -2, 9)
    closed = phase.closed_form_phase(d[None, :], r[:, None])
    share, mask = phase.agreement(closed, r, d)
    assert share == 1.0 and 0 < mask.sum() < mask.numel()
    # every cell next to a change of phase is excluded
    change = (closed[1:] != closed[:-1])
    assert not mask[1:][change].any() and not mask[:-1][change].any()
    wrong = closed.clone()
    i, j = mask.nonzero()[0].tolist()
    wrong[i, j] = (wrong[i, j] + 1) % 3
    assert phase.agreement(wrong, r, d)[0] == pytest.approx(1 - 1 / mask.sum().item())


def test_phase_diagram_trains_clear_cells_deterministically():
    r, d = torch.tensor([0.1, 10.0]), torch.tensor([1.0, 0.05])
    kw = dict(n_restarts=3, steps=1500, lr=1e-2, batch_size=512, seed=3, progress=False)
    a = phase.train_phase_diagram(2, 1, r, d, **kw)
    b = phase.train_phase_diagram(2, 1, r, d, **kw)
    assert torch.equal(a.W, b.W) and torch.equal(a.phase, b.phase)
    assert a.W.shape == (2, 2, 1, 2) and a.all_phases.shape == (2, 2, 3)
    assert a.phase[0, 0] == 0, "a dense, unimportant extra feature should be ignored"
    assert a.phase[1, 0] == 2, "a dense, very important extra feature should take the dimension"
    closed = phase.closed_form_phase(d[None, :], r[:, None])
    assert torch.equal(a.phase, closed), (a.phase, closed)
    assert torch.isfinite(a.loss).all() and (a.loss > 0).all()
    # the kept W and b rebuild the kept model: re-scoring them gives the kept loss back
    p, imp = phase.grid_instances(r, d, 2)
    kept = ss.ToyModel(2, 1, n_instances=4)
    with torch.no_grad():
        kept.W.copy_(a.W.flatten(0, 1))
        kept.b.copy_(a.b.flatten(0, 1))
    again = ss.stratified_loss(kept, p, imp, batch_size=65_536, seed=3)
    assert torch.allclose(again.view(2, 2), a.loss, rtol=0.05), (again.view(2, 2) / a.loss)


def test_phase_diagram_repr_is_a_short_summary():
    r, d = torch.tensor([0.1, 10.0]), torch.tensor([1.0, 0.05])
    out = phase.train_phase_diagram(2, 1, r, d, n_restarts=2, steps=200, progress=False)
    text = repr(out)
    counts = torch.bincount(out.phase.flatten(), minlength=3).tolist()
    assert text.startswith("PhaseDiagram(2 importances x 2 feature_probabilities, n=2, m=1, 2 restarts")
    assert ", ".join(f"{c} {name}" for name, c in zip(phase.PHASES, counts, strict=True)) in text
    assert len(text) < 160 and "tensor" not in text, text


def test_classify_counts_a_feature_as_the_rest_of_the_package_does():
    default = inspect.signature(phase.classify).parameters["norm_threshold"].default
    assert default == ss.metrics.REPRESENTED_NORM
    # just below and just above the package's threshold: ignored, then given a dimension
    W = torch.zeros(2, 1, 2)
    W[0, 0, 1], W[1, 0, 1] = 0.99 * default, 1.01 * default
    assert phase.classify(W).tolist() == [0, 2]


def test_phase_diagram_superposes_sparse_equal_features():
    out = phase.train_phase_diagram(2, 1, [1.0], [0.05], n_restarts=4, steps=1500, progress=False)
    assert out.phase.item() == 1, "two equally important sparse features should share the dimension"
    W = out.W[0, 0, 0]
    assert W[0] * W[1] < 0 and W.abs().min() > 0.8, f"not an antipodal pair: {W}"


@pytest.mark.parametrize(
    "call, match",
    [
        (lambda: phase.closed_form_losses(0.0, 1.0), "feature_probability"),
        (lambda: phase.closed_form_losses(1.5, 1.0), "feature_probability"),
        (lambda: phase.superposition_window(-0.5), "feature_probability"),
        (lambda: phase.grid_instances([1.0], [0.5, 2.0], n_features=2), "feature_probabilities"),
        (lambda: phase.grid_instances([1.0, 0.0], [0.5], n_features=2), "importances"),
        (lambda: phase.away_from_boundary([1.0], [0.0]), "feature_probabilities"),
        (lambda: phase.closed_form_losses(0.5, -1.0), "importance"),
        (lambda: phase.hand_built("pentagon", 0.5), "phase"),
        (lambda: phase.closed_form_losses(0.5, 1.0, n_features=4), "n_features"),
        (lambda: ss.paired_loss(ss.ToyModel(2, 1), 1.5), "feature_probability"),
        (lambda: ss.stratified_loss(ss.AbsModel(2, 2), 0.5), "model"),
        (lambda: ss.stratified_loss(ss.ToyModel(2, 1), 0.5, batch_size=0), "batch_size"),
        (lambda: phase.grid_instances([1.0], [0.5], n_features=1), "n_features"),
        (lambda: phase.grid_instances([1.0], [0.5], n_features=2, n_restarts=0), "n_restarts"),
        (lambda: phase.classify(torch.ones(2, 1, 2), norm_threshold=0), "norm_threshold"),
        (lambda: phase.agreement(torch.zeros(2, 2, dtype=torch.long), [1.0], [0.5]), "phase"),
        (lambda: phase.away_from_boundary([1.0], [0.5], margin=0), "margin"),
    ],
)
def test_bad_input_raises(call, match):
    with pytest.raises(ValueError, match=match):
        call()


# --- correlated features (supersim.data.sample_correlated_features) ----------------------------


def test_correlated_sets_fire_together_anticorrelated_never():
    g = torch.Generator().manual_seed(0)
    p = 0.2
    x = ss.sample_correlated_features(
        100_000, p, 2, n_correlated=1, n_anticorrelated=1, n_independent=2, set_size=3, generator=g
    )
    assert x.shape == (100_000, 2, 8)
    on = x != 0
    n = on.shape[0] * on.shape[1]
    se = (p * (1 - p) / n) ** 0.5
    assert (on.float().mean(dim=(0, 1)) - p).abs().max() < 5 * se, "every feature fires with probability p"
    corr, anti, indep = on[..., :3], on[..., 3:6], on[..., 6:]
    assert (corr.all(-1) | ~corr.any(-1)).all(), "a correlated set fires all together or not at all"
    assert (anti.sum(-1) <= 1).all(), "two members of an anticorrelated set fired together"
    both = (indep[..., 0] & indep[..., 1]).float().mean()
    assert abs(both - p * p) < 5 * (p * p / n) ** 0.5, "independent features should co-occur at p^2"
    vals = x[on]
    assert abs(vals.mean().item() - 0.5) < 0.01 and vals.max() < 1
    # values within a correlated set are independent draws, not copies
    assert not torch.equal(x[..., 0][corr[..., 0]], x[..., 1][corr[..., 0]])


def test_correlated_per_instance_probability_and_determinism():
    p = torch.tensor([[0.5], [0.05]])
    kw = dict(n_correlated=2, n_anticorrelated=1)
    a = ss.sample_correlated_features(50_000, p, 2, generator=torch.Generator().manual_seed(1), **kw)
    b = ss.sample_correlated_features(50_000, p, 2, generator=torch.Generator().manual_seed(1), **kw)
    assert torch.equal(a, b)
    freq = (a != 0).float().mean(dim=(0, 2))
    assert abs(freq[0] - 0.5) < 0.01 and abs(freq[1] - 0.05) < 0.005


@pytest.mark.parametrize(
    "kwargs, match",
    [
        (dict(feature_probability=0.6, n_anticorrelated=1), "feature_probability"),
        (dict(feature_probability=-0.1, n_correlated=1), "feature_probability"),
        (dict(feature_probability=0.1), "no features"),
        (dict(feature_probability=0.1, n_correlated=-1), "n_correlated"),
        (dict(feature_probability=0.1, n_independent=2, set_size=0), "set_size"),
        (dict(feature_probability=0.1, n_independent=2, batch_size=0), "batch_size"),
    ],
)
def test_correlated_bad_input(kwargs, match):
    kwargs.setdefault("batch_size", 8)
    with pytest.raises(ValueError, match=match):
        ss.sample_correlated_features(**kwargs)


def test_training_on_correlated_features_learns_and_is_deterministic():
    # chapter 4's page on non-uniform superposition trains on correlated pairs through a sampler
    def sampler(batch, gen):
        return ss.sample_correlated_features(batch, 0.1, 3, n_correlated=2, generator=gen)

    runs = []
    for _ in range(2):
        model = ss.ToyModel(4, 2, n_instances=3, seed=5)
        hist = ss.train(model, sampler=sampler, steps=300, lr=1e-2, seed=2, progress=False)
        runs.append((model.W.detach().clone(), hist))
    assert runs[0][1].shape == (300, 3)
    assert torch.equal(runs[0][0], runs[1][0])
    assert (runs[0][1][-50:].mean(0) < runs[0][1][:10].mean(0)).all(), "the loss should fall"


# --- figures ------------------------------------------------------------------------------


def test_phase_figures_draw():
    r, d = torch.logspace(-1, 1, 5), torch.logspace(0, -2, 6)
    closed = phase.closed_form_phase(d[None, :], r[:, None])
    fig = ss.plot.phase_diagram(closed, r, d, marks=~phase.away_from_boundary(r, d), n_features=3)
    assert len(fig.axes) == 1
    plt.close(fig)
    with pytest.raises(ValueError, match="phase must be"):
        ss.plot.phase_diagram(closed.T, r, d)
    fig = ss.plot.closed_form_loss_curves(0.1, empirical=(r, phase.closed_form_losses(0.1, r)[:, 1]))
    assert len(fig.axes[0].lines) == 3
    plt.close(fig)
    W = torch.randn(3, 4, 12)
    fig = ss.plot.dimensionality_scatter(W, torch.tensor([1.0, 0.3, 0.1]))
    assert len(fig.axes) == 1
    plt.close(fig)
    with pytest.raises(ValueError, match="one feature probability per instance"):
        ss.plot.dimensionality_scatter(W, torch.tensor([1.0, 0.3]))
    fig = ss.plot.dimensionality_histogram(W)
    assert len(fig.axes) == 1
    plt.close(fig)
    # one count per represented feature: ||W_i|| above the threshold, by default the package's
    norms = W.norm(dim=1)
    for kwargs, cut in (({}, ss.metrics.REPRESENTED_NORM), ({"norm_threshold": 2.0}, 2.0)):
        fig = ss.plot.dimensionality_histogram(W, **kwargs)
        counted = sum(p.get_height() for p in fig.axes[0].patches)
        assert counted == (norms > cut).sum().item() > 0, (kwargs, counted)
        plt.close(fig)
