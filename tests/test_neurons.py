"""Tests for supersim.neurons (neuron-level reading of W1) and the chapter 5 figures."""

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402
import torch  # noqa: E402

import supersim as ss  # noqa: E402
from supersim import neurons, plot  # noqa: E402


def textbook_abs(n_features: int):
    """The hand-built |x| network: neuron 2i is ReLU(x_i), neuron 2i+1 is ReLU(-x_i)."""
    W1 = torch.zeros(2 * n_features, n_features)
    W2 = torch.zeros(n_features, 2 * n_features)
    for i in range(n_features):
        W1[2 * i, i], W1[2 * i + 1, i] = 1.0, -1.0
        W2[i, 2 * i] = W2[i, 2 * i + 1] = 1.0
    return W1, W2


def asymmetric_pair():
    """Two features on one neuron with weights (2, -1/2), reciprocal read-out, and an inhibitor."""
    W1 = torch.tensor([[2.0, -0.5], [1.0, 0.0]])  # neuron 0 shared, neuron 1 driven by x0
    W2 = torch.tensor([[0.5, 0.0], [2.0, -4.0]])  # y1 reads neuron 0 x2; neuron 1 inhibits y1
    return W1, W2


# --- the measure -------------------------------------------------------------------------------


def test_textbook_network_really_computes_abs():
    W1, W2 = textbook_abs(3)
    x = torch.rand(100, 3) * 2 - 1
    y = torch.relu(torch.relu(x @ W1.T) @ W2.T)
    assert torch.allclose(y, x.abs())


def test_shares_are_squared_weight_fractions():
    W1 = torch.tensor([[3.0, 4.0, 0.0], [0.0, 0.0, 0.0]])
    s = neurons.neuron_shares(W1)
    assert torch.allclose(s[0], torch.tensor([9 / 25, 16 / 25, 0.0]))
    assert torch.equal(s[1], torch.zeros(3)), "an all-zero neuron has no shares, not NaN"


def test_sizeable_features_counts_shares_above_threshold():
    W1 = torch.tensor(
        [
            [1.0, 0.0, 0.0, 0.0],  # monosemantic
            [1.0, -1.0, 0.0, 0.0],  # two equal features
            [1.0, 0.5, 0.5, 0.5],  # shares 1/1.75, then 0.25/1.75 = 0.14 each: four features
            [1.0, 0.2, 0.0, 0.0],  # share 0.04/1.04 < 0.1: one feature
        ]
    )
    count = neurons.sizeable_features(W1, threshold=0.1)
    assert count.tolist() == [1, 2, 4, 1]
    assert count.dtype == torch.int64
    assert neurons.sizeable_features(W1, threshold=0.2).tolist() == [1, 2, 1, 1]


def test_polysemanticity_is_the_effective_number_of_features():
    W1 = torch.tensor(
        [
            [0.0, 2.0, 0.0, 0.0],  # one feature: 1
            [1.0, -1.0, 0.0, 0.0],  # two equal: 2
            [1.0, 1.0, -1.0, 1.0],  # four equal: 4
            [3.0, 4.0, 0.0, 0.0],  # shares 9/25, 16/25: 625 / (81 + 256)
            [0.0, 0.0, 0.0, 0.0],  # nothing: 0, not NaN
        ]
    )
    n_eff = neurons.neuron_polysemanticity(W1)
    assert torch.allclose(n_eff, torch.tensor([1.0, 2.0, 4.0, 625 / 337, 0.0]))
    # scale-free: a neuron's input weights can be rescaled without changing it
    assert torch.allclose(neurons.neuron_polysemanticity(5 * W1), n_eff)


def test_instances_axis_and_numpy_input():
    W1 = torch.randn(3, 6, 5)
    batched = neurons.neuron_polysemanticity(W1)
    assert batched.shape == (3, 6)
    for k in range(3):
        assert torch.allclose(neurons.neuron_polysemanticity(W1[k].numpy()), batched[k])
    assert neurons.sizeable_features(W1).shape == (3, 6)
    assert neurons.neuron_shares(W1).shape == (3, 6, 5)
    assert neurons.neuron_norms(W1).shape == (3, 6)
    assert torch.allclose(neurons.neuron_shares(W1).sum(-1), torch.ones(3, 6))


def test_primary_feature_and_sign():
    W1 = torch.tensor([[0.1, -0.9, 0.3], [0.5, 0.2, 0.0]])
    index, sign = neurons.primary_feature(W1)
    assert index.tolist() == [1, 0]
    assert sign.tolist() == [-1.0, 1.0]


def test_sort_neurons_puts_important_primaries_first():
    W1 = torch.tensor(
        [
            [0.0, 0.0, 1.0],  # primary 2
            [0.0, 1.0, 0.0],  # primary 1
            [1.0, 0.9, 0.0],  # primary 0, share 0.55
            [1.0, 0.0, 0.0],  # primary 0, share 1
        ]
    )
    assert neurons.sort_neurons(W1).tolist() == [3, 2, 1, 0]
    # with importance growing with the index, feature 2 comes first
    assert neurons.sort_neurons(W1, importance=[1.0, 2.0, 3.0]).tolist() == [0, 1, 3, 2]
    order = neurons.sort_neurons(torch.randn(4, 7, 5))
    assert order.shape == (4, 7)
    assert all(sorted(o.tolist()) == list(range(7)) for o in order)


def test_sign_pairs_of_the_textbook_network():
    W1, W2 = textbook_abs(3)
    pairs = neurons.sign_pair_neurons(W1, W2)
    assert pairs.shape == (3, 2)
    assert pairs.tolist() == [[1, 1]] * 3
    # drop feature 1's negative side: its pair is gone
    W1[3] = 0
    assert neurons.sign_pair_neurons(W1, W2).tolist() == [[1, 1], [1, 0], [1, 1]]
    # a neuron read out with the wrong sign does not count
    W2[0, 0] = -1.0
    assert neurons.sign_pair_neurons(W1, W2)[0].tolist() == [0, 1]


def test_asymmetric_motif_found_in_the_hand_built_example():
    W1, W2 = asymmetric_pair()
    # the circuit first: it computes ReLU(x0) and ReLU(-x1), one feature on at a time
    x = torch.tensor([[0.8, 0.0], [0.3, 0.0], [0.0, -0.7], [0.0, -0.2]])
    y = torch.relu(torch.relu(x @ W1.T) @ W2.T)
    assert torch.allclose(y[:2], torch.relu(x[:2])), "x0 is read back and kept out of y1"
    assert torch.allclose(y[2:, 1], -x[2:, 1]), "x1 is read back at full size"
    assert torch.allclose(y[2:, 0], -x[2:, 1] / 4), "x1 leaks only a quarter into y0"
    assert neurons.asymmetric_motifs(W1, W2) == [(0, 0, 0, 1, 1)]
    # a weak path for x1 (small gain) is not the motif
    assert neurons.asymmetric_motifs(W1, W2, min_gain=1.5) == []
    # without the inhibitor the leak into y1 stays, and the motif is incomplete
    W2_no = W2.clone()
    W2_no[1, 1] = 0.0
    assert neurons.asymmetric_motifs(W1, W2_no) == []
    # equal weights are not asymmetric
    W1_sym = torch.tensor([[1.0, -1.0], [1.0, 0.0]])
    assert neurons.asymmetric_motifs(W1_sym, W2) == []


def test_no_motif_in_the_textbook_network():
    W1, W2 = textbook_abs(4)
    assert neurons.asymmetric_motifs(W1, W2) == []


@pytest.mark.parametrize(
    "call, name",
    [
        (lambda: neurons.sizeable_features(torch.ones(2, 3), threshold=0.0), "threshold"),
        (lambda: neurons.sizeable_features(torch.ones(2, 3), threshold=1.5), "threshold"),
        (lambda: neurons.neuron_polysemanticity(torch.ones(2, 3, 4, 5)), "W1"),
        (lambda: neurons.neuron_shares(torch.ones(3)), "W1"),
        (lambda: neurons.neuron_shares(torch.ones(1, 2, 3, 4)), "W1"),
        (lambda: neurons.sort_neurons(torch.ones(2, 3), importance=[1.0, 2.0]), "importance"),
        (lambda: neurons.sign_pair_neurons(torch.ones(2, 3), torch.ones(2, 3)), "W2"),
        (lambda: neurons.sign_pair_neurons(torch.ones(2, 3), torch.ones(3, 2), 0), "threshold"),
        (lambda: neurons.asymmetric_motifs(torch.ones(2, 3), torch.ones(3, 2), ratio=0.5), "ratio"),
        (lambda: neurons.asymmetric_motifs(torch.ones(2, 3), torch.ones(2, 2)), "W2"),
        (
            lambda: neurons.asymmetric_motifs(torch.ones(2, 3), torch.ones(3, 2), min_inhibition=0),
            "min_inhibition",
        ),
        (
            lambda: neurons.asymmetric_motifs(torch.ones(2, 3), torch.ones(3, 2), min_share=2),
            "min_share",
        ),
        (
            lambda: neurons.asymmetric_motifs(torch.ones(2, 3), torch.ones(3, 2), min_gain=-1),
            "min_gain",
        ),
    ],
)
def test_bad_input_names_the_argument(call, name):
    with pytest.raises(ValueError, match=name):
        call()


def test_trained_dense_model_is_monosemantic_and_deterministic():
    """A short run of the chapter's n=3, m=6 setup: same seed, same weights; neurons one-feature."""
    def run():
        model = ss.AbsModel(3, 6, 2, seed=3)
        ss.train(model, feature_probability=1.0, steps=300, lr=1e-2, seed=3, progress=False)
        return model.W1.detach().clone()

    a, b = run(), run()
    assert torch.equal(a, b), "same seed must give the same weights"
    n_eff = neurons.neuron_polysemanticity(a)
    assert n_eff.max() < 1.5, f"dense |x| training should not mix features on a neuron: {n_eff}"


# --- the figures ---------------------------------------------------------------------------------


def test_neuron_matrix_draws_one_image_of_w1():
    W1, _ = textbook_abs(3)
    fig = plot.neuron_matrix(W1, colorbar=True, title="W1")
    ax = fig.axes[0]
    assert len(ax.images) == 1
    assert ax.images[0].get_array().shape == (6, 3)
    assert len(fig.axes) == 2, "the colour bar adds an axes"
    plt.close(fig)
    with pytest.raises(ValueError, match="W1"):
        plot.neuron_matrix(torch.ones(2, 3, 4))


def test_neuron_stack_has_a_bar_per_neuron_and_feature():
    W1 = torch.randn(7, 4)
    fig = plot.neuron_stack(W1, legend=True)
    ax = fig.axes[0]
    assert len(ax.containers) == 4, "one bar container per feature"
    assert all(len(c) == 7 for c in ax.containers), "one bar per neuron"
    tops = np.zeros(7)
    for c in ax.containers:
        tops = np.maximum(tops, [r.get_y() + r.get_height() for r in c])
    assert np.allclose(tops, W1.abs().sum(1).numpy(), atol=1e-6), "bars stack |W1| per neuron"
    assert len(ax.get_legend().get_texts()) == 4
    plt.close(fig)


def test_neuron_stack_signed_order_and_shade():
    W1 = torch.tensor([[1.0, -2.0], [0.5, 0.5], [-1.0, 0.0]])
    fig = plot.neuron_stack(W1, signed=True, order=[2, 0, 1], shade=[False, True, False])
    ax = fig.axes[0]
    first = ax.containers[0]  # feature 0, neurons in the order 2, 0, 1
    assert [r.get_height() for r in first] == [-1.0, 1.0, 0.5]
    second = ax.containers[1]
    assert second[1].get_height() == -2.0 and second[1].get_y() == 0.0, "negatives stack down"
    assert len(ax.patches) == 6 + 1, "six bars and one shaded band (neuron 1, now last)"
    plt.close(fig)
    with pytest.raises(ValueError, match="order"):
        plot.neuron_stack(W1, order=[0, 0, 1])


def test_neuron_stack_lumps_small_shares_into_one_block():
    W1 = torch.tensor([[1.0, 0.1, -0.1, 0.0], [0.0, 0.6, 0.8, 0.0]])
    fig = plot.neuron_stack(W1, min_share=0.05)
    ax = fig.axes[0]
    # feature 3 is zero everywhere, so it is skipped; features 0, 1, 2 and the lump remain
    assert len(ax.containers) == 3 + 1, "one container per feature left, plus the lump"
    lump = ax.containers[-1]
    # neuron 0: features 1 and 2 have share 0.01/1.02 < 0.05 and go to the lump on top
    assert np.isclose(lump[0].get_height(), 0.2) and np.isclose(lump[0].get_y(), 1.0)
    assert lump[1].get_height() == 0.0
    assert ax.containers[1][0].get_height() == 0.0, "a lumped feature draws nothing itself"
    tops = [r.get_y() + r.get_height() for r in lump]
    assert np.allclose(tops, W1.abs().sum(1).numpy()), "the stack still adds up to sum |W1|"
    plt.close(fig)
    with pytest.raises(ValueError, match="min_share"):
        plot.neuron_stack(W1, min_share=0.0)


def test_neuron_graph_draws_one_line_per_strong_edge():
    W1, W2 = textbook_abs(3)
    fig = plot.neuron_graph(W1, W2)
    ax = fig.axes[0]
    assert len(ax.lines) == 6 + 6, "6 input edges and 6 output edges"
    assert len(ax.collections) == 3, "one scatter per layer of nodes"
    plt.close(fig)
    fig = plot.neuron_graph(W1, W2, min_weight=2.0)
    assert len(fig.axes[0].lines) == 0
    plt.close(fig)
    with pytest.raises(ValueError, match="W2"):
        plot.neuron_graph(W1, W2.T)


def test_neuron_stack_grid_one_panel_per_instance():
    gen = torch.Generator().manual_seed(0)
    W1 = 1 + 0.1 * torch.rand(5, 6, 10, generator=gen)  # every share near 0.1, none lumped
    orders = neurons.sort_neurons(W1)
    shades = neurons.neuron_polysemanticity(W1) > 1.5
    fig = plot.neuron_stack_grid(
        W1, titles=list("abcde"), orders=orders, shades=shades, min_share=0.05, ncols=3
    )
    drawn = [ax for ax in fig.axes if ax.axison]
    assert len(drawn) == 5 and len(fig.axes) == 6
    assert all(len(ax.containers) == 10 + 1 for ax in drawn), "ten features and the lump"
    assert [ax.get_title() for ax in drawn] == list("abcde")
    plt.close(fig)


def test_polysemanticity_bars_stack_to_one():
    n_eff = torch.tensor([[1.0, 1.1, 1.2, 1.0], [1.0, 2.0, 3.0, 7.5]])
    fig = plot.polysemanticity_bars(n_eff, labels=["dense", "sparse"])
    ax = fig.axes[0]
    assert len(ax.containers) == 3, "groups 1, 2-3, 4+"
    heights = np.array([[r.get_height() for r in c] for c in ax.containers])
    assert np.allclose(heights.sum(0), 1.0)
    assert heights[:, 0].tolist() == [1.0, 0.0, 0.0]
    assert heights[:, 1].tolist() == [0.25, 0.5, 0.25]
    assert [t.get_text() for t in ax.get_legend().get_texts()] == ["1", "2-3", "4+"]
    assert [t.get_text() for t in ax.get_xticklabels()] == ["dense", "sparse"]
    plt.close(fig)
    with pytest.raises(ValueError, match="label"):
        plot.polysemanticity_bars(n_eff, labels=["one"])
    with pytest.raises(ValueError, match="names"):
        plot.polysemanticity_bars(n_eff, labels=["a", "b"], names=["x"])


def test_no_superposition_loss_is_the_mean_over_features_of_the_dropped_costs():
    """p/3 - p^2/4 per dropped feature (E x^2 - (E|x|)^2 for x = 0 w.p. 1 - p, else U[-1, 1]),
    weighted by importance, divided by n: with equal importance, (n - m/2) of them."""
    imp = ss.importance_decay(10, 0.8)
    p = torch.tensor([1.0, 0.1, 0.01])[:, None]
    got = neurons.no_superposition_loss(10, 6, p, imp)
    want = (p / 3 - p**2 / 4) * imp[3:].sum() / 10
    assert got.shape == (3,)
    assert torch.allclose(got, want.squeeze(1).float(), rtol=1e-6)
    # an odd neuron serves nothing; equal importance: the cost of n - m//2 features
    flat = neurons.no_superposition_loss(8, 5, 0.5)
    assert torch.allclose(flat, torch.tensor([6 * (0.5 / 3 - 0.25 / 4) / 8]))
    # with probabilities that differ, the most costly features are the ones served
    pf = torch.tensor([0.1, 0.9, 0.5, 0.2])
    cost = pf / 3 - pf**2 / 4
    assert torch.allclose(neurons.no_superposition_loss(4, 4, pf), (cost[0] + cost[3]) / 4)


def test_no_superposition_model_is_the_closed_form_by_evaluate():
    imp = ss.importance_decay(12, 0.8)
    p = torch.tensor([1.0, 0.1, 0.02])[:, None]
    model = neurons.no_superposition_model(12, 8, p, imp)
    assert isinstance(model, ss.AbsModel) and model.n_instances == 3 and model.leak == 0
    closed = neurons.no_superposition_loss(12, 8, p, imp)
    got = ss.evaluate(model, feature_probability=p, importance=imp, batch_size=400_000, seed=1)
    assert torch.allclose(got, closed, rtol=0.02), (got, closed)
    # it computes both sides of the four most important features exactly, nothing else
    sides = neurons.computed_sides(model)
    assert sides.shape == (3, 12, 2)
    assert sides[:, :4].all() and not sides[:, 4:].any()
    x = torch.linspace(-1, 1, 9)[:, None, None] * torch.eye(12)[0]  # feature 0 alone
    assert torch.allclose(model(x.expand(9, 3, 12))[..., 0], x[..., 0].abs().expand(9, 3))
    # a dropped output is the constant p/2, its best guess
    assert torch.allclose(model.b[:, 4:], (p / 2).expand(3, 8))


def test_computed_sides_tells_the_sides_apart():
    model = neurons.no_superposition_model(5, 4, 0.5)
    with torch.no_grad():
        model.W1[0, 1].zero_()  # feature 0 loses its negative-side neuron
        model.W2[0, 1, 2] = 0.5  # feature 1's positive side at half gain: error 1/12 > tol
    sides = neurons.computed_sides(model)[0]
    assert sides[0].tolist() == [True, False]
    assert sides[1].tolist() == [False, True]
    assert not sides[2:].any()
    loose = neurons.computed_sides(model, tolerance=0.1)[0]  # 1/12 passes a loose tolerance
    assert loose[1].tolist() == [True, True]


def test_leaky_output_passes_negative_pre_activations_at_its_slope():
    model = ss.AbsModel(3, 2, 1, leak=0.25, seed=0)
    h = torch.tensor([[[1.0, 2.0]]])
    pre = torch.einsum("bih,ifh->bif", h, model.W2) + model.b
    assert torch.allclose(model.decode(h), torch.where(pre > 0, pre, 0.25 * pre))
    model.leak = 0
    assert torch.allclose(model.decode(h), pre.relu())
    assert "leak" not in repr(model)


def test_computed_sides_with_importance_counts_a_shared_pair_once():
    # feature 2 wired to feature 0's pair: both own outputs exact, each leaks into the other
    imp = torch.tensor([1.0, 1.0, 0.01, 0.01, 0.01])
    model = neurons.no_superposition_model(5, 4, 0.5, imp)
    with torch.no_grad():
        model.W1[0, 0, 2], model.W1[0, 1, 2] = 1.0, -1.0
        model.W2[0, 2, :2] = 1.0
        model.b[0, 2] = 0.0
    own = neurons.computed_sides(model)[0]
    assert own[:3].all() and not own[3:].any()
    sides = neurons.computed_sides(model, imp)[0]
    # feature 0 leaks 0.01 / 1 * mean(x^2) ~ 0.0035 < 1/120 into output 2: it counts;
    # feature 2 leaks 1 / 0.01 times as much into output 0: it does not
    assert sides[:2].all() and not sides[2:].any()
    # the leak is in units of the feature's own importance: equal importance drops both
    equal = neurons.computed_sides(model, 1.0)[0]
    assert not equal[0].any() and equal[1].all() and not equal[2:].any()
    # a feature that moves no other output keeps its sides with any importance
    assert torch.equal(neurons.computed_sides(model, imp)[0, 1], own[1])
