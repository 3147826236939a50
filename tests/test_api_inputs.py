"""One input policy for the whole public API (`supersim.__all__`), walked argument by argument.

Every public name has a valid call below and a list of bad values per argument: a wrong type,
NaN, inf, a negative or zero size, an empty or misshapen tensor, a value out of range. Each
must raise ValueError (TypeError for a wrong type is also allowed) naming the argument, before
any work is done. NumPy integers are integers, and degenerate but valid inputs (all-zero
weights, p = 0, p = 1) give documented results.
"""

from __future__ import annotations

import inspect
import math

import numpy as np
import pytest
import torch

import supersim as ss

NAN, INF = float("nan"), float("inf")
SIZE = ["3", 2.5, 0, -1, True, NAN]  # a positive integer
SEED = [-1, 1.5, "0", True, NAN]
PROB = [-0.1, 1.5, NAN, INF, "a"]  # a probability in [0, 1]
POS = [0.0, -1.0, NAN, INF, "a"]  # a finite number > 0
NONNEG = [-1.0, NAN, INF, "a"]  # a finite number >= 0
FLAG = ["yes", 2, None]
DEVICE = ["gpu-please", 3.5]


def _W():
    return torch.randn(2, 3, 5, generator=torch.Generator().manual_seed(0))


def _toy():
    return ss.ToyModel(5, 2, 2, seed=0)


def _batch():
    return torch.rand(2, 4, 5, generator=torch.Generator().manual_seed(0))  # (I, B, F)


def _sae():
    return ss.SparseAutoencoder(4, 8, kind="l1", l1_coeff=0.1, seed=0)


def _acts():
    return torch.rand(64, 4, generator=torch.Generator().manual_seed(0))


def _dictionary():
    return ss.random_unit_vectors(6, 4, seed=0)


def _unit():
    return ss.random_unit_vectors(5, 3, seed=0)


W_BAD = [torch.zeros(0, 3), torch.ones(3), torch.full((2, 3), NAN), torch.full((2, 3), INF), "W"]
V_BAD = [torch.zeros(0, 3), torch.ones(3), torch.full((2, 3), NAN), "V"]

# name -> (function, valid arguments as a factory of (args, kwargs), {argument: bad values})
# Positional arguments are named by their parameter names, so one table drives both.
API = {
    "ToyModel": (ss.ToyModel, lambda: dict(n_features=5, d_hidden=2, n_instances=2), {
        "n_features": SIZE, "d_hidden": SIZE, "n_instances": SIZE, "seed": SEED,
        "activation": ["gelu", 1], "hidden_relu": FLAG, "device": DEVICE,
    }),
    "AbsModel": (ss.AbsModel, lambda: dict(n_features=5, d_hidden=4, n_instances=2), {
        "n_features": SIZE, "d_hidden": SIZE, "n_instances": SIZE, "seed": SEED,
        "device": DEVICE,
    }),
    "SparseAutoencoder": (ss.SparseAutoencoder, lambda: dict(d_in=4, d_sae=8, kind="topk", k=2), {
        "d_in": SIZE, "d_sae": SIZE, "n_instances": SIZE, "kind": ["relu", 3],
        "k": [0, 9, 1.5, "2", True], "seed": SEED, "device": DEVICE,
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
    "finite_sampler": (ss.finite_sampler, lambda: dict(x=torch.rand(4, 2, 3)), {
        "x": [torch.zeros(0, 1, 3), torch.ones(3), torch.full((4, 1, 3), NAN),
              torch.full((4, 1, 3), INF), torch.ones(4, 1, 3, dtype=torch.int64), "x"],
    }),
    "fraction_recovered": (ss.fraction_recovered, lambda: dict(learned=_unit(), truth=_unit()), {
        "learned": V_BAD, "truth": V_BAD + [torch.ones(2, 4)], "threshold": PROB,
        "absolute": FLAG,
    }),
    "loss_and_grads": (ss.loss_and_grads, lambda: dict(
        model=_toy(), x=_batch(), importance=torch.ones(2, 5)), {
        "model": [torch.nn.Linear(2, 2), "model", type("Sub", (ss.ToyModel,), {})(5, 2, 2)],
        "x": [torch.zeros(2, 4, 6), torch.zeros(4, 5), "x"],
        "importance": [torch.ones(5), torch.ones(3, 5), 1.0],
    }),
    "max_cosine": (ss.max_cosine, lambda: dict(learned=_unit(), truth=_unit()), {
        "learned": V_BAD, "truth": V_BAD + [torch.ones(2, 4)], "absolute": FLAG,
    }),
    "mmcs": (ss.mmcs, lambda: dict(learned=_unit(), truth=_unit()), {
        "learned": V_BAD, "truth": V_BAD, "absolute": FLAG,
    }),
    "importance_decay": (ss.importance_decay, lambda: dict(n_features=5, ratio=0.9), {
        "n_features": SIZE, "ratio": [0.0, -0.5, 1.5, NAN, INF, "a"],
    }),
    "ista": (ss.ista, lambda: dict(h=_acts(), dictionary=_dictionary(), l1_coeff=0.1, steps=5), {
        "h": [torch.zeros(0, 4), torch.full((3, 4), NAN), torch.ones(3, 5), "h"],
        "dictionary": [torch.zeros(0, 4), torch.full((6, 4), INF), torch.ones(6, 3), "D"],
        "l1_coeff": NONNEG, "steps": SIZE, "nonneg": FLAG, "init": [torch.zeros(64, 5)],
    }),
    "jl_dimension": (ss.jl_dimension, lambda: dict(k=100, eps=0.1), {
        "k": SIZE, "eps": [0.0, 1.0, -0.1, NAN, INF, "a"],
    }),
    "learn_dictionary": (ss.learn_dictionary, lambda: dict(h=_acts(), n_atoms=6, l1_coeff=0.1,
                                                           iters=2, ista_steps=3), {
        "h": [torch.zeros(0, 4), torch.full((3, 4), NAN), torch.ones(3), "h"], "n_atoms": SIZE,
        "l1_coeff": NONNEG, "iters": SIZE, "ista_steps": SIZE, "nonneg": FLAG, "seed": SEED,
    }),
    "paired_loss": (ss.paired_loss, lambda: dict(
        model=_toy(), feature_probability=0.1, batch_size=64), {
        "model": [torch.nn.Linear(2, 2), "model"], "feature_probability": PROB + [torch.ones(3)],
        "importance": [-1.0, NAN, INF, "a"], "batch_size": SIZE, "seed": SEED,
    }),
    "per_instance_feature": (ss.per_instance_feature, lambda: dict(
        value=0.5, n_instances=2, n_features=3, name="value"), {
        "value": [-1.0, NAN, INF, "a", torch.ones(4)], "n_instances": SIZE, "n_features": SIZE,
        "name": [3, None], "device": DEVICE,
    }),
    "pack": (ss.pack, lambda: dict(k=6, n=3, restarts=2, steps=5), {
        "k": SIZE, "n": SIZE, "restarts": SIZE, "steps": SIZE, "lr": POS,
        "beta": [(0.0, 1.0), (2.0, 1.0), (1.0, INF), 3.0, ("a", 1.0)], "seed": SEED,
        "device": DEVICE, "threads": SIZE, "one_sided": FLAG,
    }),
    "random_unit_vectors": (ss.random_unit_vectors, lambda: dict(k=5, n=3), {
        "k": SIZE, "n": SIZE, "n_sets": SIZE, "seed": SEED, "dtype": [torch.int64, "float"],
        "device": DEVICE,
    }),
    "reconstruction_loss": (ss.reconstruction_loss, lambda: dict(
        model=_toy(), x=_batch(), importance=torch.ones(2, 5)), {
        "model": [torch.nn.Linear(2, 2), "model"], "x": [torch.zeros(2, 4, 6), torch.zeros(4, 5), "x"],
        "importance": [torch.ones(5), torch.ones(3, 5), 1.0],
    }),
    "resolve_device": (ss.resolve_device, lambda: dict(device=None), {"device": DEVICE}),
    "sample_correlated_features": (ss.sample_correlated_features, lambda: dict(
        batch_size=8, feature_probability=0.2, n_correlated=1, n_anticorrelated=1), {
        "batch_size": SIZE, "feature_probability": PROB + [0.6],  # 0.6 > 1 / set_size
        "n_instances": SIZE, "n_correlated": [-1, 1.5, "1"], "n_anticorrelated": [-1, 1.5],
        "n_independent": [-1, 1.5], "set_size": SIZE, "generator": [0, "gen"], "device": DEVICE,
    }),
    "sample_features": (ss.sample_features, lambda: dict(batch_size=8, feature_probability=0.2,
                                                         n_features=5), {
        "batch_size": SIZE, "feature_probability": PROB + [torch.ones(3)], "n_instances": SIZE,
        "n_features": SIZE, "signed": FLAG, "generator": [0, "gen"], "device": DEVICE,
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
        "sae": [_toy(), "sae"], "activations": [torch.zeros(0, 4), torch.full((8, 4), NAN),
                                                torch.ones(8, 5), "h"],
        "steps": SIZE, "batch_size": SIZE, "lr": POS, "resample_every": SIZE,
        "dead_window": SIZE, "seed": SEED, "progress": ["yes", 1], "threads": SIZE,
    }),
    "welch_bound": (ss.welch_bound, lambda: dict(k=10, n=3), {"k": SIZE, "n": SIZE}),
}

CASES = [
    pytest.param(name, arg, bad, id=f"{name}-{arg}-{bad!r}"[:80])
    for name, (_, _, bads) in API.items()
    for arg, values in bads.items()
    for bad in values
]


def test_the_table_covers_every_public_name():
    assert set(API) == set(ss.__all__)
    for name, (fn, good, bads) in API.items():
        fn(**good())  # the valid call works
        params = inspect.signature(fn).parameters
        for arg in bads:
            assert arg in params, f"{name} has no argument {arg!r}"


@pytest.mark.parametrize(("name", "arg", "bad"), CASES)
def test_bad_input_raises_a_clear_error(name, arg, bad):
    fn, good, _ = API[name]
    kwargs = good()
    kwargs[arg] = bad
    with pytest.raises((ValueError, TypeError)) as info:
        fn(**kwargs)
    assert arg in str(info.value), f"{name}({arg}={bad!r}): the message must name {arg!r}: {info.value}"


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


def test_an_ambiguous_probability_column_needs_n_features():
    with pytest.raises(ValueError, match="n_features is required"):
        ss.sample_features(4, torch.full((3, 1), 0.2), n_instances=3)
    x = ss.sample_features(4, torch.full((3, 1), 0.2), n_instances=3, n_features=5)
    assert x.shape == (4, 3, 5)


def test_inf_importance_is_rejected_rather_than_trained_to_nan():
    with pytest.raises(ValueError, match="importance"):
        ss.train(_toy(), feature_probability=0.1, importance=math.inf, steps=2, batch_size=8)
