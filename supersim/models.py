"""The toy models of Elhage et al. (2022), "Toy Models of Superposition", batched over instances.

Every parameter has a leading instances axis, so one module holds a whole sweep of independent
models (one per sparsity, importance or seed) that train together as one batched computation.

- `ToyModel`: n features squeezed into m < n hidden dimensions and read back with the same
  (tied) weights, x' = ReLU(W^T W x + b). Chapter 4 ("Toy models of superposition").
- `AbsModel`: a hidden ReLU layer that must *compute* the absolute value. Chapter 5.

Both are a `BatchedModel`: each writes its idea as two methods in the instances-first layout
that training uses, `encode` (I, B, F) -> (I, B, H) and `decode` (I, B, H) -> (I, B, F), and
the base class builds the (batch, instances, features) API from them (`hidden`, `forward`).

What `supersim.train` needs of a model it trains through autograd (any `nn.Module`):
`n_instances`, `n_features`, `signed_inputs` (whether active features are U[-1, 1] rather
than U[0, 1]), `encode`, `decode` and `target` (what the output should be, (I, B, F)), and
float32 parameters. Subclassing `BatchedModel` provides all but `encode` and `decode`.

Shapes: B = batch, I = instances, F = features (n), H = hidden dimensions (m).
"""

from __future__ import annotations

import torch
from torch import nn

from . import _util
from ._util import generator as _generator
from ._util import size as _check_size

ACTIVATIONS = ("relu", "linear")


def resolve_device(device: torch.device | str | None = None) -> torch.device:
    """The device a model or function uses: the CPU when `device` is None.

    A GPU is opt-in (`device="cuda"`): these models are small enough that a CPU is faster,
    and a device is never picked behind the caller's back.
    """
    return _util.device(device)


def _xavier(n_instances: int, fan_out: int, fan_in: int, device, gen) -> nn.Parameter:
    # Xavier-normal per instance (the paper's notebook applies it to the whole 3-D tensor,
    # which folds the instance count into the fan; per instance keeps runs comparable).
    std = (2.0 / (fan_in + fan_out)) ** 0.5
    # drawn on the CPU so that a seed gives the same weights on every device
    w = torch.randn(n_instances, fan_out, fan_in, generator=gen) * std
    return nn.Parameter(w.to(device))


class BatchedModel(nn.Module):
    """A sweep of independent encoder-decoder models, one per instance.

    A subclass defines `encode` (I, B, F) -> (I, B, H) and `decode` (I, B, H) -> (I, B, F);
    the base class checks the sizes and builds `hidden` and `forward` on (B, I, F) batches.
    """

    signed_inputs = False  # features are U[0, 1] when active; True: U[-1, 1]

    def __init__(self, n_features: int, d_hidden: int, n_instances: int = 1):
        super().__init__()
        self.n_features = _check_size(n_features, "n_features")
        self.d_hidden = _check_size(d_hidden, "d_hidden")
        self.n_instances = _check_size(n_instances, "n_instances")

    def encode(self, x: torch.Tensor) -> torch.Tensor:
        """Hidden activations: (I, B, F) -> (I, B, H)."""
        raise NotImplementedError

    def decode(self, h: torch.Tensor) -> torch.Tensor:
        """The output: (I, B, H) -> (I, B, F)."""
        raise NotImplementedError

    def target(self, x: torch.Tensor) -> torch.Tensor:
        """What the model is trained to output: its own input."""
        return x

    def hidden(self, x: torch.Tensor | list) -> torch.Tensor:
        """Hidden activations: (batch, instances, features) -> (batch, instances, hidden)."""
        x = self._check_input(x)
        return self.encode(x.transpose(0, 1)).transpose(0, 1)

    def forward(self, x: torch.Tensor | list) -> torch.Tensor:
        """(batch, instances, features) -> (batch, instances, features)."""
        x = self._check_input(x)
        return self.decode(self.encode(x.transpose(0, 1))).transpose(0, 1)

    def _check_input(self, x) -> torch.Tensor:
        """x as a tensor on the parameters' device and dtype, after checking its shape."""
        x = torch.as_tensor(x)
        want = (self.n_instances, self.n_features)
        if x.dim() != 3 or tuple(x.shape[1:]) != want:
            raise ValueError(f"x must have shape (batch, {want[0]}, {want[1]}), got {tuple(x.shape)}")
        w = next(self.parameters())
        return x.to(device=w.device, dtype=w.dtype)

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
        device, gen = resolve_device(device), _generator(seed)
        self.W = _xavier(self.n_instances, self.d_hidden, self.n_features, device, gen)  # (I, H, F)
        self.b = nn.Parameter(torch.zeros(self.n_instances, self.n_features, device=device))  # (I, F)

    # Each instance is one matmul of a bmm: (I, B, F) @ (I, F, H) -> (I, B, H).
    def encode(self, x: torch.Tensor) -> torch.Tensor:
        """h = W x (ReLU'd if `hidden_relu`): (I, B, F) -> (I, B, H)."""
        h = torch.bmm(x, self.W.transpose(1, 2))
        return torch.relu(h) if self.hidden_relu else h

    def decode(self, h: torch.Tensor) -> torch.Tensor:
        """x' = ReLU(W^T h + b) (no ReLU if linear): (I, B, H) -> (I, B, F)."""
        # b + h @ W: (I, B, H) @ (I, H, F) -> (I, B, F)
        out = torch.baddbmm(self.b.unsqueeze(1), h, self.W)
        return torch.relu(out) if self.activation == "relu" else out

    def extra_repr(self) -> str:
        hidden = ", hidden_relu=True" if self.hidden_relu else ""
        return f"{super().extra_repr()}, activation={self.activation!r}{hidden}"


class AbsModel(BatchedModel):
    """h = ReLU(W1 x), y = ReLU(W2 h + b), trained on signed sparse x with target abs(x).

    `W1` is (instances, hidden, features), `W2` is (instances, features, hidden).
    """

    signed_inputs = True  # features are U[-1, 1] when active

    def __init__(
        self,
        n_features: int,
        d_hidden: int,
        n_instances: int = 1,
        *,
        seed: int = 0,
        device: torch.device | str | None = None,
    ):
        super().__init__(n_features, d_hidden, n_instances)
        device, gen = resolve_device(device), _generator(seed)
        self.W1 = _xavier(self.n_instances, self.d_hidden, self.n_features, device, gen)  # (I, H, F)
        self.W2 = _xavier(self.n_instances, self.n_features, self.d_hidden, device, gen)  # (I, F, H)
        self.b = nn.Parameter(torch.zeros(self.n_instances, self.n_features, device=device))  # (I, F)

    def target(self, x: torch.Tensor) -> torch.Tensor:
        """What the model is trained to output: abs(x)."""
        return x.abs()

    def encode(self, x: torch.Tensor) -> torch.Tensor:
        """h = ReLU(W1 x): (I, B, F) -> (I, B, H)."""
        return torch.relu(torch.bmm(x, self.W1.transpose(1, 2)))

    def decode(self, h: torch.Tensor) -> torch.Tensor:
        """y = ReLU(W2 h + b): (I, B, H) -> (I, B, F)."""
        out = torch.baddbmm(self.b.unsqueeze(1), h, self.W2.transpose(1, 2))
        return torch.relu(out)
