"""The toy models: shapes, the forward pass against its formula, seeds, bad input."""

import pytest
import torch

import supersim as ss


def test_toy_model_shapes_and_formula():
    m = ss.ToyModel(6, 3, n_instances=4, device="cpu")
    assert m.W.shape == (4, 3, 6) and m.b.shape == (4, 6)
    x = torch.rand(10, 4, 6)
    with torch.no_grad():
        m.b.normal_()
        out = m(x)
    assert out.shape == (10, 4, 6)
    k = 2  # instance k on its own: x' = ReLU(W^T W x + b)
    want = torch.relu(x[:, k] @ m.W[k].T @ m.W[k] + m.b[k])
    assert torch.allclose(out[:, k], want, atol=1e-6)
    assert torch.allclose(m.hidden(x)[:, k], x[:, k] @ m.W[k].T, atol=1e-6)


def test_linear_and_hidden_relu_variants():
    x = torch.rand(5, 2, 4) - 0.5
    lin = ss.ToyModel(4, 2, 2, activation="linear")
    assert torch.allclose(lin(x)[:, 0], x[:, 0] @ lin.W[0].T @ lin.W[0] + lin.b[0], atol=1e-6)
    hid = ss.ToyModel(4, 2, 2, hidden_relu=True)
    h = torch.relu(x[:, 1] @ hid.W[1].T)
    assert torch.allclose(hid(x)[:, 1], torch.relu(h @ hid.W[1] + hid.b[1]), atol=1e-6)
    assert "hidden_relu=True" in repr(hid) and "activation='linear'" in repr(lin)


def test_abs_model_shapes_and_formula():
    m = ss.AbsModel(3, 6, n_instances=2)
    assert m.W1.shape == (2, 6, 3) and m.W2.shape == (2, 3, 6) and m.b.shape == (2, 3)
    x = torch.rand(7, 2, 3) * 2 - 1
    want = torch.relu(torch.relu(x[:, 1] @ m.W1[1].T) @ m.W2[1].T + m.b[1])
    assert torch.allclose(m(x)[:, 1], want, atol=1e-6)
    assert torch.equal(m.target(x), x.abs())


def test_relu_pair_computes_abs_exactly():
    # the construction chapter 5 rests on: |x| = ReLU(x) + ReLU(-x)
    m = ss.AbsModel(1, 2)
    with torch.no_grad():
        m.W1.copy_(torch.tensor([[[1.0], [-1.0]]]))
        m.W2.copy_(torch.tensor([[[1.0, 1.0]]]))
        m.b.zero_()
    x = torch.linspace(-1, 1, 41).view(-1, 1, 1)
    assert torch.allclose(m(x), x.abs())


@pytest.mark.parametrize("make", [lambda: ss.ToyModel(5, 3, 4, hidden_relu=True),
                                  lambda: ss.AbsModel(5, 3, 4)])
def test_encode_and_decode_are_the_forward_pass_in_the_public_layout(make):
    m = make()
    x = torch.rand(7, 4, 5) * 2 - 1  # (B, I, F)
    h = m.encode(x)  # (B, I, H)
    assert h.shape == (7, 4, 3) and torch.equal(h, m.hidden(x))
    assert torch.equal(m.decode(h), m(x))
    k = 1  # instance k on its own, one example at a time
    W1 = m.W if isinstance(m, ss.ToyModel) else m.W1
    assert torch.allclose(h[:, k], torch.relu(x[:, k] @ W1[k].T), atol=1e-6)
    assert isinstance(m, ss.models.BatchedModel)


@pytest.mark.parametrize(
    ("call", "match"),
    [
        # the instances-first layout of old, (I, B, F), is named as a mistake
        (lambda m: m(torch.zeros(4, 7, 5)),
         r"x must be a batch laid out \(batch, instances, features\) = \(B, 4, 5\), got shape \(4, 7, 5\)"),
        (lambda m: m.encode(torch.zeros(4, 7, 5)), r"x must be a batch laid out \(batch, instances"),
        (lambda m: m.hidden(torch.zeros(4, 5)), r"x must be a batch laid out"),
        (lambda m: m.decode(torch.zeros(7, 4, 5)),
         r"h must be a batch laid out \(batch, instances, hidden\) = \(B, 4, 3\)"),
        (lambda m: m(torch.zeros(0, 4, 5)), "x must hold at least one example"),
        (lambda m: m(torch.full((2, 4, 5), float("nan"))), "x must be finite"),
        (lambda m: m(torch.ones(2, 4, 5, dtype=torch.bool)), "x must hold real numbers"),
        (lambda m: m("x"), "x must be a tensor or an array"),
        (lambda m: m.as_batch(torch.zeros(2, 4, 5), axis="batch"), "axis must be"),
    ],
)
def test_a_batch_that_does_not_fit_names_the_argument_and_layout(call, match):
    with pytest.raises(ValueError, match=match):
        call(ss.ToyModel(5, 3, 4))
    with pytest.raises(ValueError, match=match):
        call(ss.AbsModel(5, 3, 4))


def test_inputs_follow_the_model_dtype_and_device():
    m = ss.ToyModel(5, 3, 4, seed=1).double()
    x = torch.rand(6, 4, 5)  # float32, as the samplers draw
    assert m(x).dtype == torch.float64 and m.encode(x.tolist()).dtype == torch.float64
    assert torch.allclose(m(x), m(x.double()), rtol=0, atol=0)
    meta = ss.ToyModel(5, 3, 4, device="meta")
    out = meta(x)  # moved to the model's device: no values, but the right shape
    assert out.device.type == "meta" and out.shape == (6, 4, 5)


def test_a_new_model_needs_only_encode_and_decode():
    class Untied(ss.models.BatchedModel):
        def __init__(self):
            super().__init__(4, 2, 3)
            self.A = torch.nn.Parameter(torch.randn(3, 2, 4))
            self.B = torch.nn.Parameter(torch.randn(3, 4, 2))

        def encode(self, x):
            return torch.einsum("bif,ihf->bih", self.as_batch(x), self.A)

        def decode(self, h):
            return torch.einsum("bih,ifh->bif", self.as_batch(h, "h", "hidden"), self.B)

    m = Untied()
    x = torch.rand(6, 3, 4)
    assert torch.allclose(m(x)[:, 1], x[:, 1] @ m.A[1].T @ m.B[1].T, atol=1e-6)
    assert repr(m).startswith("Untied(n_features=4, d_hidden=2, n_instances=3")
    before = m.A.detach().clone()
    ss.train(m, feature_probability=0.5, steps=3, batch_size=8, progress=False)
    assert not torch.equal(before, m.A), "the plain loop trains any BatchedModel"
    with pytest.raises(NotImplementedError):
        ss.models.BatchedModel(2, 1).encode(torch.zeros(1, 1, 2))


def test_same_seed_same_weights_and_instances_differ():
    a, b, c = ss.ToyModel(5, 2, 3, seed=1), ss.ToyModel(5, 2, 3, seed=1), ss.ToyModel(5, 2, 3, seed=2)
    assert torch.equal(a.W, b.W) and not torch.equal(a.W, c.W)
    assert not torch.equal(a.W[0], a.W[1])


def test_init_scale_is_xavier():
    W = ss.ToyModel(200, 50, 20).W
    assert abs(W.std().item() - (2 / 250) ** 0.5) < 0.002


@pytest.mark.parametrize(
    "args, kwargs, match",
    [
        ((0, 2), {}, "n_features"),
        ((5, -1), {}, "d_hidden"),
        ((5, 2, 0), {}, "n_instances"),
        ((5, 2), {"activation": "tanh"}, "activation"),
        ((5, 2.5), {}, "d_hidden"),
    ],
)
def test_bad_input(args, kwargs, match):
    with pytest.raises(ValueError, match=match):
        ss.ToyModel(*args, **kwargs)


def test_wrong_input_shape():
    with pytest.raises(ValueError, match="x must be a batch laid out"):
        ss.ToyModel(5, 2, 3)(torch.rand(4, 5))
    with pytest.raises(ValueError, match="n_features"):
        ss.AbsModel(0, 2)
