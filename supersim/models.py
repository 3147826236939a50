"""The toy models of Elhage et al. (2022), "Toy Models of Superposition", batched over instances.

Every parameter has a leading instances axis, so one module holds a whole sweep of independent
models (one per sparsity, importance or seed) that train together as one batched computation.

- `ToyModel`: n features squeezed into m < n hidden dimensions and read back with the same
  (tied) weights, x' = ReLU(W^T W x + b). Chapter 4 ("Toy models of superposition").
- `AbsModel`: a hidden ReLU layer that must *compute* the absolute value. Chapter 5.

Both are a `BatchedModel`: each writes its idea as two methods, `encode` (B, I, F) ->
(B, I, H) and `decode` (B, I, H) -> (B, I, F), and the base class builds `hidden` and
`forward` from them. Every batch is laid out (batch, instances, features), as the samplers
of `supersim.data` draw it; a batch of another shape raises ValueError naming the layout, and
a batch from elsewhere (a list, NumPy, float64, another device) moves to the model's device
and dtype.

What `supersim.train` needs of a model it trains through autograd (any `nn.Module`):
`n_instances`, `n_features`, `signed_inputs` (whether active features are U[-1, 1] rather
than U[0, 1]), `encode`, `decode` and `target` (what the output should be, (B, I, F)), and
float32 parameters. Subclassing `BatchedModel` provides all but `encode` and `decode`.

Shapes: B = batch, I = instances, F = features (n), H = hidden dimensions (m).
"""

from __future__ import annotations

import torch
from torch import nn

from . import _util
from ._util import Array

__all__ = ["AbsModel", "BatchedModel", "ToyModel"]

ACTIVATIONS = ("relu", "linear")


def _xavier(n_instances: int, fan_out: int, fan_in: int, device, gen) -> nn.Parameter:
    # Xavier-normal per instance (the paper's notebook applies it to the whole 3-D tensor,
    # which folds the instance count into the fan; per instance keeps runs comparable).
    std = (2.0 / (fan_in + fan_out)) ** 0.5
    # drawn on the CPU so that a seed gives the same weights on every device
    w = torch.randn(n_instances, fan_out, fan_in, generator=gen) * std
    return nn.Parameter(w.to(device))


class BatchedModel(nn.Module):
    """A sweep of independent encoder-decoder models, one per instance.

    A subclass defines `encode` (B, I, F) -> (B, I, H) and `decode` (B, I, H) -> (B, I, F),
    each starting with `as_batch` to check its input; the base class checks the sizes and
    builds `hidden` and `forward` from them. The model runs on the CPU unless a subclass puts
    its parameters elsewhere (`device="cuda"`): a GPU is never picked by itself.
    """

    signed_inputs = False  # features are U[0, 1] when active; True: U[-1, 1]

    def __init__(self, n_features: int, d_hidden: int, n_instances: int = 1):
        super().__init__()
        self.n_features = _util.size(n_features, "n_features")
        self.d_hidden = _util.size(d_hidden, "d_hidden")
        self.n_instances = _util.size(n_instances, "n_instances")

    def encode(self, x: torch.Tensor) -> torch.Tensor:
        """Hidden activations: (B, I, F) -> (B, I, H)."""
        raise NotImplementedError

    def decode(self, h: torch.Tensor) -> torch.Tensor:
        """The output: (B, I, H) -> (B, I, F)."""
        raise NotImplementedError

    def target(self, x: torch.Tensor | Array) -> torch.Tensor:
        """What the model is trained to output for a batch x (B, I, F): x itself."""
        return self.as_batch(x)

    def hidden(self, x: torch.Tensor | Array) -> torch.Tensor:
        """Hidden activations: (batch, instances, features) -> (batch, instances, hidden)."""
        return self.encode(self.as_batch(x))

    def forward(self, x: torch.Tensor | Array) -> torch.Tensor:
        """(batch, instances, features) -> (batch, instances, features)."""
        return self.decode(self.encode(self.as_batch(x)))

    def as_batch(self, x: torch.Tensor | Array, name: str = "x", axis: str = "features") -> torch.Tensor:
        """x checked as a (batch, instances, `axis`) batch of this model ("features" or
        "hidden") and moved to its device and dtype; ValueError naming `name` otherwise."""
        name = _util.text(name, "name", empty=False)
        if axis not in ("features", "hidden"):
            raise ValueError(f"axis must be 'features' or 'hidden', got {axis!r}")
        width = self.n_features if axis == "features" else self.d_hidden
        like = next(self.parameters(), None)
        return _util.batch(x, name, self.n_instances, width, axis=axis, like=like)

    def extra_repr(self) -> str:
        return (
            f"n_features={self.n_features}, d_hidden={self.d_hidden}, "
            f"n_instances={self.n_instances}"
        )


class ToyModel(BatchedModel):
    """x' = ReLU(W^T W x + b) (or without the ReLU), with an optional ReLU on the hidden layer.

    `W` is (instances, hidden, features): column i of W[k] is the direction given to feature i.
    The initial weights come from `seed` (xavier-normal), so a model is reproducible by default;
    instances of one model start from different draws.
    """

    def __init__(
        self,
        n_features: int,
        d_hidden: int,
        n_instances: int = 1,
        *,
        activation: str = "relu",
        hidden_relu: bool = False,
        seed: int = 0,
        device: torch.device | str | None = None,
    ):
        super().__init__(n_features, d_hidden, n_instances)
        if activation not in ACTIVATIONS:
            raise ValueError(f"activation must be one of {ACTIVATIONS}, got {activation!r}")
        self.activation = activation
        self.hidden_relu = _util.flag(hidden_relu, "hidden_relu")
        device, gen = _util.device(device), _util.generator(seed)
        self.W = _xavier(self.n_instances, self.d_hidden, self.n_features, device, gen)  # (I, H, F)
        self.b = nn.Parameter(torch.zeros(self.n_instances, self.n_features, device=device))  # (I, F)

    # einsum names the axes: b batch, i instance, f feature, h hidden; each instance i
    # has its own matrix W[i], (H, F).
    def encode(self, x: torch.Tensor) -> torch.Tensor:
        """h = W x (ReLU'd if `hidden_relu`): (B, I, F) -> (B, I, H)."""
        x = self.as_batch(x)  # checked, on the model's device and dtype
        h = torch.einsum("bif,ihf->bih", x, self.W)  # h[b, i] = W[i] @ x[b, i]
        return torch.relu(h) if self.hidden_relu else h

    def decode(self, h: torch.Tensor) -> torch.Tensor:
        """x' = ReLU(W^T h + b) (no ReLU if linear): (B, I, H) -> (B, I, F)."""
        h = self.as_batch(h, "h", "hidden")
        out = torch.einsum("bih,ihf->bif", h, self.W) + self.b  # W[i]^T h[b, i] + b[i]
        return torch.relu(out) if self.activation == "relu" else out

    def extra_repr(self) -> str:
        hidden = ", hidden_relu=True" if self.hidden_relu else ""
        return f"{super().extra_repr()}, activation={self.activation!r}{hidden}"


class AbsModel(BatchedModel):
    """h = ReLU(W1 x), y = ReLU(W2 h + b), trained on signed sparse x with target abs(x).

    `W1` is (instances, hidden, features), `W2` is (instances, features, hidden).

    `leak` (default 0, the model of the paper) is the slope with which the output passes
    negative pre-activations: with leak > 0, y = LeakyReLU(W2 h + b), in `decode` and in the
    fast path's gradient. Chapter 5 trains with
    a leak for a while so that an output pushed below zero still learns, then sets
    `model.leak = 0`; every loss it reports is of the true ReLU model.
    """

    signed_inputs = True  # features are U[-1, 1] when active

    def __init__(
        self,
        n_features: int,
        d_hidden: int,
        n_instances: int = 1,
        *,
        leak: float = 0.0,
        seed: int = 0,
        device: torch.device | str | None = None,
    ):
        super().__init__(n_features, d_hidden, n_instances)
        self.leak = leak  # checked by the property below
        device, gen = _util.device(device), _util.generator(seed)
        self.W1 = _xavier(self.n_instances, self.d_hidden, self.n_features, device, gen)  # (I, H, F)
        self.W2 = _xavier(self.n_instances, self.n_features, self.d_hidden, device, gen)  # (I, F, H)
        self.b = nn.Parameter(torch.zeros(self.n_instances, self.n_features, device=device))  # (I, F)

    def target(self, x: torch.Tensor | Array) -> torch.Tensor:
        """What the model is trained to output for a batch x (B, I, F): abs(x)."""
        return self.as_batch(x).abs()

    def encode(self, x: torch.Tensor) -> torch.Tensor:
        """h = ReLU(W1 x): (B, I, F) -> (B, I, H)."""
        x = self.as_batch(x)  # checked, on the model's device and dtype
        return torch.relu(torch.einsum("bif,ihf->bih", x, self.W1))  # W1[i] @ x[b, i]

    def decode(self, h: torch.Tensor) -> torch.Tensor:
        """y = ReLU(W2 h + b): (B, I, H) -> (B, I, F), with the leak if there is one."""
        h = self.as_batch(h, "h", "hidden")
        out = torch.einsum("bih,ifh->bif", h, self.W2) + self.b
        if self.leak == 0:
            return torch.relu(out)
        return torch.nn.functional.leaky_relu(out, self.leak)  # slope `leak` below 0

    @property
    def leak(self) -> float:
        """The output's slope below zero: 0 (a ReLU, the default) or up to but not 1."""
        return self._leak

    @leak.setter
    def leak(self, value: float) -> None:
        self._leak = _util.number(value, "leak", low=0, high=1, high_open=True)

    def extra_repr(self) -> str:
        return super().extra_repr() + (f", leak={self.leak}" if self.leak else "")
