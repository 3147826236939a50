"""supersim: superposition in neural networks, by simulation.

The helper package of the supersim book. Each module follows one concern of the book:
data (sparse features), models (toy models), train (one batched loop), metrics, plot, widgets.
"""

from ._fast import loss_and_grads
from .data import (
    finite_sampler,
    importance_decay,
    per_instance_feature,
    sample_correlated_features,
    sample_features,
    sparsity_sweep,
)
from .geometry import (
    coherence,
    cosine_matrix,
    jl_dimension,
    pack,
    random_unit_vectors,
    welch_bound,
)
from .metrics import (
    dimensions_per_feature,
    feature_dimensionality,
    feature_norms,
    n_represented,
    superposition,
)
from .models import AbsModel, ToyModel, resolve_device
from .sae import (
    SparseAutoencoder,
    fraction_recovered,
    ista,
    learn_dictionary,
    max_cosine,
    mmcs,
    sparse_synthetic,
    train_sae,
)
from .training import (
    best_of_restarts,
    evaluate,
    paired_loss,
    reconstruction_loss,
    stratified_loss,
    train,
)

__version__ = "0.1.0"

__all__ = [
    "AbsModel",
    "SparseAutoencoder",
    "ToyModel",
    "best_of_restarts",
    "coherence",
    "cosine_matrix",
    "dimensions_per_feature",
    "evaluate",
    "feature_dimensionality",
    "feature_norms",
    "finite_sampler",
    "fraction_recovered",
    "importance_decay",
    "ista",
    "jl_dimension",
    "learn_dictionary",
    "loss_and_grads",
    "max_cosine",
    "mmcs",
    "n_represented",
    "pack",
    "paired_loss",
    "per_instance_feature",
    "random_unit_vectors",
    "reconstruction_loss",
    "resolve_device",
    "sample_correlated_features",
    "sample_features",
    "sparse_synthetic",
    "sparsity_sweep",
    "stratified_loss",
    "superposition",
    "train",
    "train_sae",
    "welch_bound",
]

from . import (  # noqa: E402, F401  (submodules, for tab completion)
    adversarial,
    basis,
    corpus,
    dynamics,
    geometry,
    memorization,
    neurons,
    notebook,
    phase,
    plot,
    real,
    widgets,
)
