"""supersim: superposition in neural networks, by simulation.

The helper package of the supersim book. Each module follows one concern of the book:
data (sparse features), models (toy models), train (one batched loop), metrics, plot, widgets.
"""

from .data import importance_decay, sample_features, sparsity_sweep
from .metrics import (
    dimensions_per_feature,
    feature_dimensionality,
    feature_norms,
    n_represented,
    superposition,
)
from .models import AbsModel, ToyModel, resolve_device
from .train import best_of_restarts, evaluate, train

__version__ = "0.1.0"

__all__ = [
    "AbsModel",
    "ToyModel",
    "best_of_restarts",
    "dimensions_per_feature",
    "evaluate",
    "feature_dimensionality",
    "feature_norms",
    "importance_decay",
    "n_represented",
    "resolve_device",
    "sample_features",
    "sparsity_sweep",
    "superposition",
    "train",
]

from . import notebook, plot, widgets  # noqa: E402, F401  (submodules, for tab completion)
