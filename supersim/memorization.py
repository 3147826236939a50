"""Memorization in the toy model: dimensionality over training examples (Henighan et al. 2023).

Trained on a finite set of T examples (`data.finite_sampler`), the toy model can store the
examples themselves instead of the features. The hidden vector of example j is h_j = W x_j,
and the feature dimensionality formula applied to these vectors instead of the columns of W,

    D_j = ||h_j||^2 / sum_k (h_j_hat . h_k)^2,

says how much of a hidden dimension example j has to itself. Memorizing models give their
few examples clean polygons (high D_j); generalizing ones give the features the polygons.

Taught in chapter 8 ("Memorization and double descent").

Shapes: T = examples, I = instances, F = features, H = hidden.
"""

from __future__ import annotations

import numpy as np
import torch

from . import _util
from .metrics import feature_dimensionality

__all__ = [
    "hidden_vectors",
    "example_dimensionality",
    "typical_dimensionality",
]


def hidden_vectors(W: torch.Tensor | np.ndarray, x: torch.Tensor | np.ndarray) -> torch.Tensor:
    """h_j = W x_j for every example, as columns: W (I, H, F), x (T, I, F) -> (I, H, T)."""
    W = _util.float_tensor(W, "W", min_dim=3, max_dim=3, shape="(instances, hidden, features)")
    x = _util.float_tensor(x, "x", min_dim=3, max_dim=3, shape="(examples, instances, features)")
    if x.shape[1:] != (W.shape[0], W.shape[2]):
        raise ValueError(
            f"x must be (examples, instances, features) with W's instances and features "
            f"{(W.shape[0], W.shape[2])}, got {tuple(x.shape)}"
        )
    W, x = W.detach(), x.detach()
    return torch.einsum("ihf,tif->iht", W, x.to(W.dtype))


def example_dimensionality(
    W: torch.Tensor | np.ndarray, x: torch.Tensor | np.ndarray
) -> torch.Tensor:
    """D_j of every training example, (I, T): feature dimensionality over h_j = W x_j.

    0 for an example the model maps to zero (e.g. an empty one).
    """
    return feature_dimensionality(hidden_vectors(W, x))


def typical_dimensionality(D: torch.Tensor | np.ndarray) -> torch.Tensor:
    """sum D^2 / sum D over the last axis: the D of a typical item, weighted by share.

    Items are examples or features. A clean polygon of k items in two dimensions gives
    2/k (1/2 for an antipodal pair, 2/5 for a pentagon) however many other items hold
    nothing; many items with small shares give a small value. (...) -> (...) without the
    last axis.
    """
    D = _util.float_tensor(D, "D", low=0, shape="dimensionalities along the last axis")
    return D.square().sum(-1) / D.sum(-1).clamp_min(1e-12)
