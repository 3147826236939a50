"""The toy models of Elhage et al. (2022), "Toy Models of Superposition", batched over instances.

Every parameter has a leading instances axis, so one module holds a whole sweep of independent
models (one per sparsity, importance or seed) that train together as one batched computation.

- `ToyModel`: n features squeezed into m < n hidden dimensions and read back with the same
  (tied) weights, x' = ReLU(W^T W x + b). Chapter 4 ("Toy models of superposition").
- `AbsModel`: a hidden ReLU layer that must *compute* the absolute value. Chapter 5.

Shapes: B = batch, I = instances, F = features (n), H = hidden dimensions (m).
"""

from __future__ import annotations

import torch
from torch import nn

from . import _util
from ._util import generator as _generator
from ._util import size as _check_size

ACTIVATIONS = ("relu", "linear")


def resolve_device(device=None) -> torch.device:
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


class ToyModel(nn.Module):
    """x' = ReLU(W^T W x + b) (or without the ReLU), with an optional ReLU on the hidden layer.

    `W` is (instances, hidden, features): column i of W[k] is the direction given to feature i.
    The initial weights come from `seed` (xavier-normal), so a model is reproducible by default;
    instances of one model start from different draws.
    """

    signed_inputs = False  # features are U[0, 1] when active

    def __init__(
        self,
        n_features: int,
        d_hidden: int,
        n_instances: int = 1,
        *,
        activation: str = "relu",
        hidden_relu: bool = False,
        seed: int = 0,
        device=None,
    ):
        super().__init__()
        self.n_features = _check_size(n_features, "n_features")
        self.d_hidden = _check_size(d_hidden, "d_hidden")
        self.n_instances = _check_size(n_instances, "n_instances")
        if activation not in ACTIVATIONS:
            raise ValueError(f"activation must be one of {ACTIVATIONS}, got {activation!r}")
        self.activation = activation
        self.hidden_relu = _util.flag(hidden_relu, "hidden_relu")
        device, gen = resolve_device(device), _generator(seed)
        self.W = _xavier(self.n_instances, self.d_hidden, self.n_features, device, gen)  # (I, H, F)
        self.b = nn.Parameter(torch.zeros(self.n_instances, self.n_features, device=device))  # (I, F)

    def target(self, x: torch.Tensor) -> torch.Tensor:
        """What the model is trained to output: its own input."""
        return x

    def hidden(self, x: torch.Tensor) -> torch.Tensor:
        """Hidden activations h = W x (ReLU'd if `hidden_relu`): (B, I, F) -> (B, I, H)."""
        x = self._check_input(x)
        return self._hidden(x.transpose(0, 1)).transpose(0, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """(batch, instances, features) -> (batch, instances, features)."""
        x = self._check_input(x)
        return self._forward(x.transpose(0, 1)).transpose(0, 1)

    # The training loop works in (I, B, F) layout, where each instance is one matmul of a bmm.
    def _hidden(self, x: torch.Tensor) -> torch.Tensor:
        h = torch.bmm(x, self.W.transpose(1, 2))  # (I, B, F) @ (I, F, H) -> (I, B, H)
        return torch.relu(h) if self.hidden_relu else h

    def _forward(self, x: torch.Tensor) -> torch.Tensor:
        out = torch.baddbmm(self.b.unsqueeze(1), self._hidden(x), self.W)  # (I, B, H) @ (I, H, F)
        return torch.relu(out) if self.activation == "relu" else out

    def _check_input(self, x) -> torch.Tensor:
        """x as a tensor on the parameters' device and dtype, after checking its shape."""
        x = torch.as_tensor(x)
        want = (self.n_instances, self.n_features)
        if x.dim() != 3 or tuple(x.shape[1:]) != want:
            raise ValueError(f"x must have shape (batch, {want[0]}, {want[1]}), got {tuple(x.shape)}")
        w = next(self.parameters())
        return x.to(device=w.device, dtype=w.dtype)

    def extra_repr(self) -> str:
        hidden = ", hidden_relu=True" if self.hidden_relu else ""
        return (
            f"n_features={self.n_features}, d_hidden={self.d_hidden}, "
            f"n_instances={self.n_instances}, activation={self.activation!r}{hidden}"
        )


class AbsModel(nn.Module):
    """h = ReLU(W1 x), y = ReLU(W2 h + b), trained on signed sparse x with target abs(x).

    `W1` is (instances, hidden, features), `W2` is (instances, features, hidden).
    """

    signed_inputs = True  # features are U[-1, 1] when active

    def __init__(
        self, n_features: int, d_hidden: int, n_instances: int = 1, *, seed: int = 0, device=None
    ):
        super().__init__()
        self.n_features = _check_size(n_features, "n_features")
        self.d_hidden = _check_size(d_hidden, "d_hidden")
        self.n_instances = _check_size(n_instances, "n_instances")
        device, gen = resolve_device(device), _generator(seed)
        self.W1 = _xavier(self.n_instances, self.d_hidden, self.n_features, device, gen)  # (I, H, F)
        self.W2 = _xavier(self.n_instances, self.n_features, self.d_hidden, device, gen)  # (I, F, H)
        self.b = nn.Parameter(torch.zeros(self.n_instances, self.n_features, device=device))  # (I, F)

    def target(self, x: torch.Tensor) -> torch.Tensor:
        """What the model is trained to output: abs(x)."""
        return x.abs()

    def hidden(self, x: torch.Tensor) -> torch.Tensor:
        """Hidden activations h = ReLU(W1 x): (B, I, F) -> (B, I, H)."""
        x = ToyModel._check_input(self, x)
        return self._hidden(x.transpose(0, 1)).transpose(0, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """(batch, instances, features) -> (batch, instances, features)."""
        x = ToyModel._check_input(self, x)
        return self._forward(x.transpose(0, 1)).transpose(0, 1)

    def _hidden(self, x: torch.Tensor) -> torch.Tensor:
        return torch.relu(torch.bmm(x, self.W1.transpose(1, 2)))  # (I, B, H)

    def _forward(self, x: torch.Tensor) -> torch.Tensor:
        out = torch.baddbmm(self.b.unsqueeze(1), self._hidden(x), self.W2.transpose(1, 2))
        return torch.relu(out)  # (I, B, F)

    def extra_repr(self) -> str:
        return (
            f"n_features={self.n_features}, d_hidden={self.d_hidden}, "
            f"n_instances={self.n_instances}"
        )
