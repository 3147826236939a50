"""supersim: superposition in neural networks, by simulation.

The helper package of the supersim book. Each module holds one concern, named after it; the
chapter that teaches it is in the module's docstring.

- `data`: sparse synthetic features (the feature probability 1 - S, importances, sweeps,
  correlated features, finite datasets) and the samplers that draw them.
- `basis`: features as directions, reading them back, and privileged bases (chapters 1, 2).
- `geometry`: how many almost-orthogonal directions fit in R^n: cosines, bounds, packings
  (chapter 3).
- `models`: the toy models `ToyModel` and `AbsModel`, batched over instances.
- `training`: the loss, the training loop (AdamW over all instances at once), `evaluate`,
  `best_of_restarts` and the exact evaluators `stratified_loss` and `paired_loss`.
- `_fast`: the same training, fast: hand-written gradients, a cache-sized layout and worker
  threads (private; `training.train` hands it the book's models).
- `_setup`: what both training loops share: a run's checked arguments, its learning-rate
  schedule, progress bar and snapshots (private).
- `metrics`: what trained weights say: feature norms, superposition, dimensionality, and
  `REPRESENTED_NORM`, the norm above which a feature counts as represented.
- `phase`: phase diagrams: closed-form losses and boundaries, and trained grids (chapter 4, the page
  "The geometry of superposition and phase changes").
- `neurons`: reading a model neuron by neuron, polysemanticity (chapter 4, the page
  "Non-uniform superposition and the privileged basis"; chapter 5).
- `sparse_coding`: sparse codes for a known dictionary (ISTA), dictionary learning, and
  scoring a dictionary against the true directions (chapter 6).
- `sae`: sparse autoencoders and their plain training loop (chapters 6, 9), and the variants
  practitioners train: TopK with AuxK, BatchTopK, JumpReLU, gated, Matryoshka (chapter 10).
- `ground_truth`: activations built from known features (independent, hierarchical,
  correlated, unequal), and scores of a dictionary against them (chapter 10).
- `_sae_fast`: what both SAE training loops share, and the fast one: hand-written gradients
  (private; `sae.train_sae` hands it the SAEs it knows).
- `dynamics`: following weights through training (chapter 7).
- `adversarial`: adversarial vulnerability of the toy model (chapter 7).
- `memorization`: memorization and dimensionality over training examples (chapter 8).
- `corpus`: labelled template sentences for the real network (chapter 9).
- `real`: a pretrained transformer's activations, offline (chapter 9, the `real` extra).
- `plot`: the book's figures; `widgets`: slider explorers and the in-browser live panel
  (its JavaScript in `supersim/live/`). Both load on first use, so that `import supersim`
  does not import matplotlib.pyplot.
- `notebook`: glue numbers into a chapter's prose and show source code.
- `_util`: the private helpers every module shares (argument checks, seeds, devices,
  threads, progress bars).
"""

from ._fast import loss_and_grads
from .data import (
    finite_sampler,
    importance_decay,
    per_instance_feature,
    sample_correlated_features,
    sample_features,
    sparse_sampler,
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
from .models import AbsModel, ToyModel
from .sae import SparseAutoencoder, train_sae
from .sparse_coding import (
    fraction_recovered,
    ista,
    learn_dictionary,
    max_cosine,
    mmcs,
    sparse_synthetic,
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
    "sample_correlated_features",
    "sample_features",
    "sparse_sampler",
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
    ground_truth,
    memorization,
    neurons,
    notebook,
    phase,
    real,
)

# `plot` and `widgets` import matplotlib.pyplot, which picks a backend when it loads; a user's
# `matplotlib.use(...)` after `import supersim` must still count, so they load on first use
# (PEP 562): `supersim.plot` and `from supersim import plot` work as before.
_ON_FIRST_USE = ("plot", "widgets")


def __getattr__(name: str):
    if name in _ON_FIRST_USE:
        import importlib

        return importlib.import_module(f".{name}", __name__)  # also sets supersim.<name>
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted({*globals(), *_ON_FIRST_USE})
