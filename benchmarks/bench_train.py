"""Training throughput: the usual loop of the paper's notebook against `supersim.train`.

Elhage et al. (2022) train their toy models with a plain PyTorch loop (two `torch.rand` draws
per batch, einsum forward, autograd backward, AdamW). This script carries its own copy of that
loop, times it and `supersim.train` in the same run, interleaved round by round so that a busy
machine slows both alike, and prints one table:

    config | baseline steps/s (torch's threads, 1 thread) | supersim steps/s | ratio | losses

The ratio divides supersim's speed by the *better* of the two baseline thread settings (on a
busy 2-core machine torch's default of 2 threads can collapse, which would flatter supersim).
The losses are `supersim.evaluate` on one large batch after `--loss-steps` steps of each loop
from the same initial weights. `--target` instead times the n=200, m=20 sweep with the fast
schedule `FAST` against the baseline's loss after 10,000 steps from the same start (the
baseline run takes about 20 minutes here; `--reference` reuses a number measured before).

    python benchmarks/bench_train.py                 # the table (about 12 minutes here)
    python benchmarks/bench_train.py --rounds 2 --seconds 1 --loss-steps 200   # a rough table
    python benchmarks/bench_train.py --quick         # the first config, 1 short round (seconds)
    python benchmarks/bench_train.py --target --reference 0.053715   # seed 0, see README.md
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time

import torch
import torch.nn.functional as F
from torch import nn

import supersim as ss

# (name, n_features, d_hidden, n_instances, importance of feature i as a function of n)
CONFIGS = [
    ("n=5 m=2 I=8", 5, 2, 8, lambda n: 0.9 ** torch.arange(n)),
    ("n=5 m=2 I=25", 5, 2, 25, lambda n: 0.9 ** torch.arange(n)),
    ("n=5 m=2 I=50", 5, 2, 50, lambda n: 0.9 ** torch.arange(n)),
    ("n=20 m=5 I=42", 20, 5, 42, lambda n: 0.7 ** torch.arange(n)),
    ("n=100 m=20 I=10", 100, 20, 10, lambda n: 100 ** -torch.linspace(0, 1, n)),
    ("n=200 m=20 I=20", 200, 20, 20, lambda n: torch.ones(n)),
]
# The schedule that replaces 10,000 steps at lr 1e-3 for the n=200 sweep (see README.md).
FAST = dict(steps=2000, lr=1.5e-2, schedule="cosine")


class PaperModel(nn.Module):
    """The toy model as the paper's notebook writes it: W is (instances, features, hidden)."""

    def __init__(self, n_features, d_hidden, n_instances, feature_probability, importance):
        super().__init__()
        self.W = nn.Parameter(torch.empty(n_instances, n_features, d_hidden))
        nn.init.xavier_normal_(self.W)
        self.b_final = nn.Parameter(torch.zeros(n_instances, n_features))
        self.feature_probability = feature_probability  # (instances, 1)
        self.importance = importance  # (features,)

    def forward(self, features):
        hidden = torch.einsum("...if,ifh->...ih", features, self.W)
        out = torch.einsum("...ih,ifh->...if", hidden, self.W)
        return F.relu(out + self.b_final)

    def generate_batch(self, n_batch):
        shape = (n_batch, *self.W.shape[:2])
        feat = torch.rand(shape)
        active = torch.rand(shape) <= self.feature_probability
        return torch.where(active, feat, torch.zeros(()))


def baseline_train(model: PaperModel, steps: int, batch_size: int = 1024, lr: float = 1e-3):
    """The notebook's `optimize` loop (constant lr), minus its progress bar."""
    opt = torch.optim.AdamW(list(model.parameters()), lr=lr)
    for step in range(steps):
        opt.zero_grad(set_to_none=True)
        batch = model.generate_batch(batch_size)
        out = model(batch)
        error = model.importance * (batch.abs() - out) ** 2
        loss = error.mean(dim=(0, 2)).sum()  # mean over batch and features, sum over instances
        loss.backward()
        opt.step()
        if step % 100 == 0 or step + 1 == steps:
            loss.item()  # the notebook reads the loss for its progress bar


def make_pair(n, m, n_inst, importance_fn, seed=0):
    """A baseline model and a supersim model with the same initial weights."""
    p = ss.sparsity_sweep(n_inst)[:, None]  # (instances, 1): densities 1 .. 0.05
    imp = importance_fn(n).float()
    torch.manual_seed(seed)
    base = PaperModel(n, m, n_inst, p, imp)
    model = ss.ToyModel(n, m, n_inst, seed=seed)
    with torch.no_grad():
        model.W.copy_(base.W.transpose(1, 2))
    return base, model, p, imp


def with_threads(n, fn):
    old = torch.get_num_threads()
    torch.set_num_threads(n)
    try:
        return fn()
    finally:
        torch.set_num_threads(old)


def rate(fn, steps: int) -> float:
    t = time.perf_counter()
    fn(steps)
    return steps / (time.perf_counter() - t)


def throughput(cfg, rounds: int, seconds: float, default_threads: int):
    """Median steps/s of the baseline (torch's threads, 1 thread) and of supersim."""
    _, n, m, n_inst, imp_fn = cfg
    base, model, p, imp = make_pair(n, m, n_inst, imp_fn)
    runs = {
        "base": lambda s: with_threads(default_threads, lambda: baseline_train(base, s)),
        "base1": lambda s: with_threads(1, lambda: baseline_train(base, s)),
        "ss": lambda s: ss.train(model, feature_probability=p, importance=imp, steps=s,
                                 progress=False),
    }
    steps = {}
    for name, fn in runs.items():  # warm up, and size each run to about `seconds`
        fn(3)
        steps[name] = max(3, int(seconds * rate(fn, 5 if name != "ss" else 20)))
    out = {name: [] for name in runs}
    order = list(runs)
    for r in range(rounds):
        for name in order[r % 3:] + order[: r % 3]:  # rotate who goes first
            out[name].append(rate(runs[name], steps[name]))
    return {name: statistics.median(v) for name, v in out.items()}


def final_losses(cfg, steps: int):
    """Evaluated mean loss of each loop after `steps` steps from the same initial weights."""
    _, n, m, n_inst, imp_fn = cfg
    base, model, p, imp = make_pair(n, m, n_inst, imp_fn)
    with_threads(1, lambda: baseline_train(base, steps))  # 1 thread: the quicker one here
    ss.train(model, feature_probability=p, importance=imp, steps=steps, progress=False)
    as_ss = ss.ToyModel(n, m, n_inst)
    with torch.no_grad():
        as_ss.W.copy_(base.W.transpose(1, 2))
        as_ss.b.copy_(base.b_final)
    kw = dict(feature_probability=p, importance=imp, batch_size=50_000)
    return ss.evaluate(as_ss, **kw).mean().item(), ss.evaluate(model, **kw).mean().item()


def target(reference: float | None, seed: int = 0, repeats: int = 3):
    """Seconds for supersim's fast schedule to reach the baseline's 10,000-step loss at n=200.

    Both start from the same initial weights (the baseline's, drawn with `seed`).
    """
    _, n, m, n_inst, imp_fn = CONFIGS[-1]
    base, _, p, imp = make_pair(n, m, n_inst, imp_fn, seed=seed)
    kw = dict(feature_probability=p, importance=imp, batch_size=50_000)
    if reference is None:
        t = time.perf_counter()
        with_threads(1, lambda: baseline_train(base, 10_000))
        base_s = time.perf_counter() - t
        as_ss = ss.ToyModel(n, m, n_inst)
        with torch.no_grad():
            as_ss.W.copy_(base.W.transpose(1, 2))
            as_ss.b.copy_(base.b_final)
        reference = ss.evaluate(as_ss, **kw).mean().item()
        print(f"baseline: 10,000 steps in {base_s:.0f} s, loss {reference:.6f}")
    for _ in range(repeats):  # same seed, same result: the repeats only time it again
        _, model, p, imp = make_pair(n, m, n_inst, imp_fn, seed=seed)
        t = time.perf_counter()
        ss.train(model, feature_probability=p, importance=imp, progress=False, **FAST)
        secs = time.perf_counter() - t
        loss = ss.evaluate(model, **kw).mean().item()
        verdict = "at or below" if loss <= reference else "ABOVE"
        print(f"supersim {FAST}: {secs:.1f} s, loss {loss:.6f} "
              f"({verdict} the baseline's 10,000-step {reference:.6f})", flush=True)
    return reference


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--quick", action="store_true",
                    help="the first config only, 1 round of 0.2 s, losses after 50 steps: "
                         "checks that the script runs")
    ap.add_argument("--rounds", type=int, default=None, help="interleaved rounds (default 5)")
    ap.add_argument("--seconds", type=float, default=None, help="length of one timed run")
    ap.add_argument("--loss-steps", type=int, default=None, help="steps for the loss check")
    ap.add_argument("--target", action="store_true",
                    help="time the n=200 fast schedule instead of printing the table")
    ap.add_argument("--reference", type=float, default=None,
                    help="the baseline's 10,000-step loss at n=200, if already measured")
    ap.add_argument("--seed", type=int, default=0, help="initial weights for --target")
    ap.add_argument("--only", default=None, help="run configs whose name contains this")
    args = ap.parse_args(argv)
    rounds = args.rounds or (1 if args.quick else 5)
    seconds = args.seconds or (0.2 if args.quick else 3.0)
    loss_steps = args.loss_steps or (50 if args.quick else 1000)
    default_threads = torch.get_num_threads()

    if args.target:
        target(args.reference, args.seed)
        return 0
    print(f"torch {torch.__version__}, {default_threads} threads by default, "
          f"batch 1024, AdamW lr 1e-3; {rounds} rounds of ~{seconds:g} s; "
          f"losses after {loss_steps} steps")
    header = (f"| config | baseline steps/s ({default_threads} thr / 1 thr) | supersim steps/s "
              f"| ratio | loss baseline | loss supersim | diff |")
    print(header)
    print("|" + "---|" * 7)
    for cfg in CONFIGS[:1] if args.quick else CONFIGS:
        if args.only and args.only not in cfg[0]:
            continue
        t = throughput(cfg, rounds, seconds, default_threads)
        lb, ls = final_losses(cfg, loss_steps)
        best = max(t["base"], t["base1"])
        print(f"| {cfg[0]} | {t['base']:.0f} / {t['base1']:.0f} | {t['ss']:.0f} "
              f"| {t['ss'] / best:.1f}x | {lb:.5f} | {ls:.5f} | {100 * (ls - lb) / lb:+.1f}% |",
              flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
