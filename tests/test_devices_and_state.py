"""Devices, torch's private fused AdamW, and global state.

- Nothing picks CUDA by itself: with `torch.cuda.is_available` patched to say True, every
  public constructor and function still works on the CPU (the chapters run under the same
  patch in the nbval run, see conftest.py). A GPU is opt-in, tested where one exists.
- A torch whose private `_fused_adamw_` breaks falls back to the plain AdamW update.
- `import supersim` and every plot function leave matplotlib's rcParams, torch's thread count,
  the warning filters and the global random states alone, and two trainings in two Python
  threads do not change each other's numbers.
"""

from __future__ import annotations

import inspect
import json
import random
import subprocess
import sys
import threading
import warnings

import matplotlib
import numpy as np
import pytest
import torch
from conftest import CELL_TIMEOUT

import supersim as ss
from supersim import plot

matplotlib.use("Agg")
FAST = sys.modules["supersim._fast"]  # the fast path of ss.train


@pytest.fixture
def cuda_claimed(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)


def test_cuda_asked_for_without_a_device_is_a_clear_error(monkeypatch):
    # torch.device("cuda") is accepted on any machine; the failure came later, inside torch
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    for make in (
        lambda: ss.ToyModel(5, 2, device="cuda"),
        lambda: ss.SparseAutoencoder(2, 6, kind="topk", k=2, device="cuda:0"),
    ):
        with pytest.raises(ValueError, match="no CUDA device"):
            make()
    assert ss.ToyModel(5, 2, device="cpu").W.device == torch.device("cpu")


def test_counts_accept_zero_dimensional_integer_tensors():
    # integer() took them and size() did not: the same count failed as n_features only
    model = ss.ToyModel(torch.tensor(5), torch.tensor(2), n_instances=torch.tensor(3))
    assert (model.n_features, model.d_hidden, model.n_instances) == (5, 2, 3)
    for bad in (torch.tensor(0), torch.tensor(2.0), torch.tensor([5])):
        with pytest.raises(ValueError, match="n_features"):
            ss.ToyModel(bad, 2)


def test_nothing_picks_cuda_by_itself(cuda_claimed):
    cpu = torch.device("cpu")
    toy, absm = ss.ToyModel(5, 2, 2), ss.AbsModel(4, 3)
    sae = ss.SparseAutoencoder(2, 6, kind="topk", k=2)
    for module in (toy, absm, sae):
        assert {p.device for p in module.parameters()} == {cpu}
    assert ss.random_unit_vectors(5, 3).device == cpu
    assert ss.pack(6, 3, restarts=2, steps=5).device == cpu
    assert ss.sample_features(4, 0.5, n_features=5).device == cpu
    assert ss.sample_correlated_features(4, 0.2, n_correlated=1).device == cpu
    acts, dirs, codes = ss.sparse_synthetic(32, 4, 2, feature_probability=0.3)
    assert {acts.device, dirs.device, codes.device} == {cpu}
    # the main path of every chapter: train, evaluate, fit an SAE, code and learn a dictionary
    ss.train(toy, feature_probability=0.1, steps=5, batch_size=16)
    ss.train(absm, feature_probability=0.1, steps=5, batch_size=16)
    assert ss.evaluate(toy, feature_probability=0.1, batch_size=64).device == cpu
    ss.train_sae(sae, acts, steps=5)
    assert ss.ista(acts, dirs, 0.1, steps=5).device == cpu
    D, _ = ss.learn_dictionary(acts, 4, 0.1, iters=2, ista_steps=3)
    assert D.device == cpu


def test_inputs_follow_the_model():
    """A model takes inputs from anywhere (lists, NumPy, float64) onto its own device and dtype."""
    toy = ss.ToyModel(3, 2, 1, seed=1)
    x = np.random.default_rng(0).random((4, 1, 3))  # float64
    out = toy(x)
    assert out.dtype == torch.float32 and torch.allclose(out, toy(torch.tensor(x, dtype=torch.float32)))
    sae = ss.SparseAutoencoder(2, 4, kind="topk", k=1)
    recon, latents = sae(np.zeros((3, 2)))
    assert recon.shape == (3, 1, 2) and latents.shape == (3, 1, 4)  # shared, one instance


@pytest.mark.parametrize("make", [lambda **kw: ss.ToyModel(5, 2, 3, seed=1, **kw),
                                  lambda **kw: ss.AbsModel(5, 4, 3, seed=1, **kw)])
def test_the_loss_and_its_gradients_take_inputs_to_the_model(make):
    """x and importance (float32 from the samplers, on the CPU) move to the model's dtype and
    device: a float64 model computes in float64, a model elsewhere computes there."""
    x = ss.sample_features(16, 0.5, 3, 5, signed=make().signed_inputs, seed=0)  # float32
    imp = ss.importance_decay(5, 0.9).expand(3, 5)
    model = make().double()
    loss = ss.reconstruction_loss(model, x, imp)
    hand, grads = ss.loss_and_grads(model, x, imp)
    assert loss.dtype == hand.dtype == torch.float64
    assert {g.dtype for g in grads.values()} == {torch.float64}
    exact = ss.reconstruction_loss(model, x.double(), imp.double())
    assert torch.equal(loss, exact) and torch.allclose(hand, exact.detach(), rtol=1e-12)
    meta = make(device="meta")  # no GPU needed: a device that holds shapes only
    loss = ss.reconstruction_loss(meta, x, imp)
    hand, grads = ss.loss_and_grads(meta, x.tolist(), imp.numpy())
    assert loss.device.type == hand.device.type == "meta" and loss.shape == hand.shape == (3,)
    assert all(g.device.type == "meta" for g in grads.values())


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_everything_runs_on_a_gpu_when_asked():
    gpu = torch.device("cuda")
    toy = ss.ToyModel(5, 2, 3, device="cuda")
    ss.train(toy, feature_probability=0.1, steps=50, batch_size=64)
    assert toy.W.device.type == "cuda"
    loss = ss.evaluate(toy, feature_probability=0.1, batch_size=1000)
    assert torch.isfinite(loss).all()
    x = ss.sample_features(8, 0.1, 3, 5)  # CPU data, moved by the model
    assert toy(x).device.type == "cuda"
    assert ss.reconstruction_loss(toy, x, torch.ones(3, 5)).device.type == "cuda"
    acts, dirs, _ = ss.sparse_synthetic(256, 6, 3, feature_probability=0.2)
    sae = ss.SparseAutoencoder(3, 12, kind="topk", k=2, device="cuda")
    ss.train_sae(sae, acts, steps=50)
    assert sae.W_dec.device.type == "cuda"
    assert 0 <= float(ss.mmcs(sae.W_dec, dirs)) <= 1
    assert ss.ista(acts.to(gpu), dirs.to(gpu), 0.1, steps=5).device.type == "cuda"
    D, _ = ss.learn_dictionary(acts.to(gpu), 6, 0.1, iters=2, ista_steps=3)
    assert D.device.type == "cuda"
    plot.feature_directions(toy.W[0])


def test_a_broken_fused_adamw_falls_back_to_the_plain_update(monkeypatch):
    def reference():
        model = ss.ToyModel(5, 2, 4, seed=2)
        history = ss.train(model, feature_probability=0.1, steps=300, batch_size=256, seed=3)
        return model, history

    fused_model, fused_history = reference()

    def broken(*args, **kwargs):
        raise TypeError("_fused_adamw_() got an unexpected keyword argument 'beta1'")

    monkeypatch.setattr(torch, "_fused_adamw_", broken)
    monkeypatch.setattr(FAST, "_FUSED", {})  # forget the cached probe
    plain_model, plain_history = reference()
    assert FAST._FUSED == {"cpu": False}
    # the same update written out: equal up to float rounding
    assert torch.allclose(plain_history, fused_history, rtol=1e-4, atol=1e-6)
    assert torch.allclose(plain_model.W, fused_model.W, atol=1e-4)


# ----------------------------------------------------------------------------------------------
# Global state

def _state() -> dict:
    return {
        "rc": dict(matplotlib.rcParams),
        "threads": torch.get_num_threads(),
        "warnings": list(warnings.filters),
        "torch_rng": torch.get_rng_state(),
        "np_rng": np.random.get_state()[1].copy(),
        "py_rng": random.getstate(),
    }


def _assert_same(before: dict, after: dict, what: str) -> None:
    changed = [k for k, v in before["rc"].items() if after["rc"].get(k) != v and k != "backend"]
    assert not changed, f"{what} changed rcParams: {changed}"
    assert after["threads"] == before["threads"], f"{what} changed torch's thread count"
    assert after["warnings"] == before["warnings"], f"{what} changed the warning filters"
    assert torch.equal(after["torch_rng"], before["torch_rng"]), f"{what} drew from torch's global RNG"
    assert np.array_equal(after["np_rng"], before["np_rng"]), f"{what} drew from NumPy's global RNG"
    assert after["py_rng"] == before["py_rng"], f"{what} drew from Python's global RNG"


def test_import_leaves_global_state_alone():
    code = """
import json, random, warnings
import numpy as np, torch, matplotlib
def state():
    return dict(rc={k: repr(v) for k, v in matplotlib.rcParams.items()}, threads=torch.get_num_threads(),
                warnings=repr(warnings.filters), torch_rng=torch.get_rng_state().tolist(),
                np_rng=np.random.get_state()[1].tolist(), py_rng=repr(random.getstate()))
before = state()
import supersim
print(json.dumps([before, state()]))
"""
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    before, after = json.loads(out.stdout)
    for key in before:
        assert before[key] == after[key], f"import supersim changed {key}"


def _plot_calls(g: torch.Generator) -> dict:
    """A valid call of every public plot function, on small random inputs."""
    W = torch.randn(2, 5, generator=g)
    Ws = torch.randn(3, 2, 5, generator=g)
    W1, W2 = torch.randn(4, 5, generator=g), torch.randn(5, 4, generator=g)
    V = ss.random_unit_vectors(6, 3, seed=0)
    R = torch.rand(4, 3, generator=g)
    learned = torch.randn(8, 2, generator=g)
    poly, errors = torch.rand(2, 4, generator=g) * 5, torch.randn(200, generator=g)
    scores, phases = torch.rand(3, 2, generator=g), torch.randint(0, 3, (3, 4), generator=g)
    imps, dens = torch.tensor([0.5, 1.0, 2.0]), torch.tensor([0.1, 0.3, 0.6, 1.0])
    return {
        "feature_directions": lambda: plot.feature_directions(
            W, importance=torch.rand(5, generator=g), arrows=True, labels=list("abcde"), learned=learned,
        ),
        "feature_directions_grid": lambda: plot.feature_directions_grid(Ws, titles=["a", "b", "c"]),
        "wtw": lambda: plot.wtw(W, colorbar=True),
        "norm_bars": lambda: plot.norm_bars(W),
        "sweep_panels": lambda: plot.sweep_panels(Ws, titles=["a", "b", "c"]),
        "superposition_colorbar": lambda: plot.superposition_colorbar(*plot._axes(None, (2, 2))),
        "neuron_matrix": lambda: plot.neuron_matrix(W1, colorbar=True),
        "neuron_stack": lambda: plot.neuron_stack(W1, signed=True, legend=True),
        "neuron_graph": lambda: plot.neuron_graph(W1, W2),
        "neuron_stack_grid": lambda: plot.neuron_stack_grid(torch.stack([W1, W1]), titles=["a", "b"]),
        "polysemanticity_bars": lambda: plot.polysemanticity_bars(poly, labels=["a", "b"]),
        "readback_histogram": lambda: plot.readback_histogram(errors, predicted_std=1.0),
        "neuron_responses": lambda: plot.neuron_responses(R),
        "response_matrix": lambda: plot.response_matrix(R),
        "cosine_match": lambda: plot.cosine_match(learned, W.T),
        "max_cosine_bars": lambda: plot.max_cosine_bars(learned, W.T),
        "recovery_curve": lambda: plot.recovery_curve([1, 2, 3], scores, xlabel="x"),
        "phase_diagram": lambda: plot.phase_diagram(phases, imps, dens),
        "closed_form_loss_curves": lambda: plot.closed_form_loss_curves(0.3),
        "dimensionality_scatter": lambda: plot.dimensionality_scatter(Ws, [1.0, 0.5, 0.1]),
        "dimensionality_histogram": lambda: plot.dimensionality_histogram(Ws),
        "cosine_histogram": lambda: plot.cosine_histogram(V),
        "line_packing_3d": lambda: plot.line_packing_3d(V),
        "seed_dots": lambda: plot.seed_dots(
            torch.rand(2, 2, 3, generator=g), groups=["a", "b"], series=["x", "y"], legend=True
        ),
    }


def test_plot_functions_leave_global_state_alone():
    import matplotlib.pyplot as plt

    calls = _plot_calls(torch.Generator().manual_seed(0))
    public = {n for n, f in inspect.getmembers(plot, inspect.isfunction)
              if f.__module__ == plot.__name__ and not n.startswith("_")}
    assert public == set(calls), f"plot functions without a check: {public ^ set(calls)}"
    for name, call in calls.items():
        before = _state()
        fig = call()
        _assert_same(before, _state(), f"plot.{name}")
        plt.close(fig)


def test_two_trainings_in_two_threads_do_not_disturb_each_other():
    def toy_run():
        model = ss.ToyModel(20, 5, 8, seed=4)
        ss.train(model, feature_probability=0.05, steps=400, batch_size=512, seed=5)
        return model.W.detach().clone()

    def sae_run():
        acts, _, _ = ss.sparse_synthetic(2048, 32, 16, feature_probability=0.05, seed=1)
        sae = ss.SparseAutoencoder(16, 64, kind="l1", l1_coeff=0.05, seed=2)
        ss.train_sae(sae, acts, steps=300, batch_size=256, threads=2)
        return sae.W_dec.detach().clone()

    threads_before = torch.get_num_threads()
    alone = toy_run(), sae_run()
    results: dict = {}
    workers = [threading.Thread(target=lambda: results.__setitem__("toy", toy_run())),
               threading.Thread(target=lambda: results.__setitem__("sae", sae_run()))]
    for w in workers:
        w.start()
    for w in workers:
        w.join()
    assert torch.equal(results["toy"], alone[0])
    assert torch.equal(results["sae"], alone[1])
    assert torch.get_num_threads() == threads_before


def test_the_chapters_kernels_claim_a_gpu():
    """The patch the nbval run relies on (conftest.py) really reaches a notebook's kernel."""
    nbformat = pytest.importorskip("nbformat")
    nbclient = pytest.importorskip("nbclient")
    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(
        "import torch, supersim\nprint(torch.cuda.is_available(), supersim.ToyModel(3, 2).W.device)"
    )])
    nbclient.NotebookClient(nb, timeout=CELL_TIMEOUT, kernel_name="python3").execute()
    assert nb.cells[0].outputs[0]["text"].strip() == "True cpu"


def test_one_rule_for_threads(monkeypatch):
    from supersim import _util

    assert _util.threads_for(_util.THREAD_WORK - 1) == 1
    assert _util.threads_for(_util.THREAD_WORK - 1, 4) == 1, "a cap does not force threads"
    assert _util.threads_for(_util.THREAD_WORK, 3) == 3
    assert _util.threads_for(_util.THREAD_WORK) == torch.get_num_threads()
    # the modules ask the rule: a tiny plain-loop training and a tiny ista run on one thread
    asked = []
    real = _util.threads_for

    def spy(work, most=None):
        asked.append(real(work, most))
        return asked[-1]

    monkeypatch.setattr(_util, "threads_for", spy)
    ss.train(ss.ToyModel(5, 2, 2), feature_probability=0.5, steps=2, batch_size=8,
             progress=False, fast=False)
    acts, dirs, _ = ss.sparse_synthetic(16, 4, 3, feature_probability=0.3)
    ss.sparse_coding.ista(acts, dirs, 0.1, steps=2)
    assert asked == [1, 1], asked
