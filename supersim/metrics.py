"""What a trained toy model's weights say about superposition (Elhage et al. 2022).

All functions take W as (instances, hidden, features), columns being feature directions; a
single (hidden, features) matrix is accepted too and gives results without the instances axis.
They accept torch tensors or numpy arrays and return torch tensors.

Taught in chapter 4 ("Toy models of superposition").
"""

from __future__ import annotations

import numpy as np
import torch

from . import _util

__all__ = [
    "REPRESENTED_NORM",
    "feature_norms",
    "superposition",
    "feature_dimensionality",
    "dimensions_per_feature",
    "represented",
    "n_represented",
]

_EPS = 1e-12
#: A feature counts as represented when its direction's norm ||W_i|| exceeds this: trained
#: models put a feature near norm 1 or near 0, so any cut well between works the same.
REPRESENTED_NORM = 0.5


def _out(t: torch.Tensor, squeeze: bool) -> torch.Tensor:
    t = t.float()
    return t.squeeze(0) if squeeze else t


def feature_norms(W: torch.Tensor | np.ndarray) -> torch.Tensor:
    """||W_i||: how strongly each feature is represented, (instances, features)."""
    W, sq = _util.batched(W, "W", "(hidden, features)")
    return _out(W.norm(dim=1), sq)


def _overlaps(W: torch.Tensor) -> torch.Tensor:
    """(W_i_hat . W_j)^2 for every pair, (instances, features_i, features_j)."""
    norms = W.norm(dim=1, keepdim=True)  # (I, 1, F)
    W_hat = W / norms.clamp_min(_EPS)
    return (W_hat.transpose(1, 2) @ W).square()  # (I, F, F)


def superposition(W: torch.Tensor | np.ndarray) -> torch.Tensor:
    """sum_{j != i} (W_i_hat . W_j)^2: how much other features share feature i's direction."""
    W, sq = _util.batched(W, "W", "(hidden, features)")
    ov = _overlaps(W)
    return _out(ov.sum(-1) - ov.diagonal(dim1=1, dim2=2), sq)


def feature_dimensionality(W: torch.Tensor | np.ndarray) -> torch.Tensor:
    """D_i = ||W_i||^2 / sum_j (W_i_hat . W_j)^2: the fraction of a dimension feature i owns.

    1 for a feature with a dimension of its own, 1/2 for an antipodal pair, 2/5 for a pentagon;
    0 (not NaN) for a feature the model did not learn.
    """
    W, sq = _util.batched(W, "W", "(hidden, features)")
    norms2 = W.square().sum(dim=1)  # (I, F)
    denom = _overlaps(W).sum(-1)  # includes j = i, which contributes ||W_i||^2
    D = torch.where(norms2 > _EPS, norms2 / denom.clamp_min(_EPS), torch.zeros_like(norms2))
    return _out(D, sq)


def dimensions_per_feature(W: torch.Tensor | np.ndarray) -> torch.Tensor:
    """D* = d_hidden / ||W||_F^2 per instance: hidden dimensions spent per learned feature.

    inf for an all-zero W: a model that learned no feature has spent its dimensions on none.
    """
    W, sq = _util.batched(W, "W", "(hidden, features)")
    frob2 = W.square().sum(dim=(1, 2))
    return _out(W.shape[1] / frob2, sq)  # x / 0 = inf on purpose


def represented(W: torch.Tensor | np.ndarray, norm_threshold: float = REPRESENTED_NORM) -> torch.Tensor:
    """Which features have ||W_i|| above `norm_threshold`: a bool (instances, features) mask.

    The chapters' test for "the model gave this feature a direction" (chapter 4), e.g. to pick
    a model's represented directions, `W[:, represented(W)]` for a (hidden, features) W.
    """
    norm_threshold = _util.number(norm_threshold, "norm_threshold", low=0)
    W, sq = _util.batched(W, "W", "(hidden, features)")
    keep = W.norm(dim=1) > norm_threshold
    return keep.squeeze(0) if sq else keep


def n_represented(W: torch.Tensor | np.ndarray, norm_threshold: float = REPRESENTED_NORM) -> torch.Tensor:
    """How many features have ||W_i|| above `norm_threshold`, per instance (an int tensor)."""
    return represented(W, norm_threshold).sum(-1)
