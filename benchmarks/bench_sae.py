"""`train_sae`: the plain autograd loop against the fast path, and the fast path's two TopK steps.

`train_sae(fast=False)` runs the plain loop of `supersim/sae.py` (autograd); by default the
kinds of `SparseAutoencoder` take the same steps in `supersim/_sae_fast.py`, with hand-written
gradients (`tests/test_sae.py` checks that both give the same numbers to float rounding).
Inside the fast path a TopK SAE gives gradient only to the k latents each sample keeps, so
after the encoder's (B, D) x (D, S) product the rest of a step (decoding, the backward pass,
the weight gradients) needs only those k rows: `_sae_fast._topk_loss_and_grads`. The dense
step (`_dense_loss_and_grads`) multiplies by all S latents five times; `train_sae` takes the
sparse one when k <= d_sae / 32, where it pays (the table in benchmarks/README.md).

This script trains the same SAE from the same start on the same data each way, interleaving
them round by round so that other programs slow all alike, and prints the median
milliseconds per step (wall and CPU) and the ratio of the plain loop's CPU time to the fast
path's (the step `train_sae` picks):

    python benchmarks/bench_sae.py             # chapter 9's sizes, chapter 6's, and two more
    python benchmarks/bench_sae.py --threads 1
    python benchmarks/bench_sae.py --quick     # the small configs, a few steps: a smoke run
"""

from __future__ import annotations

import argparse
import statistics
import time

import torch

import supersim as ss
from supersim import _sae_fast

# (kind, d_in, d_sae, instances, k): chapter 9's residual-stream dictionaries first, then
# chapter 6's synthetic problems and its lambda sweep (6 lambdas x 3 seeds)
CONFIGS = [
    ("topk", 384, 3072, 2, 32),
    ("topk", 384, 3072, 1, 32),
    ("topk", 384, 768, 1, 32),
    ("topk", 64, 512, 4, 8),
    ("l1", 16, 64, 3, None),
    ("l1", 8, 64, 18, None),
]
QUICK = CONFIGS[3:]
# the step each way takes: the plain loop, the fast path with each of its loss-and-gradient steps
WAYS = {
    "plain": None,
    "dense": _sae_fast._dense_loss_and_grads,
    "sparse": _sae_fast._topk_loss_and_grads,
}


def step_ms(config, way: str, steps: int, data: torch.Tensor) -> tuple[float, float]:
    """Milliseconds per step, (wall, CPU), of `steps` steps of `train_sae` taken `way`."""
    kind, d_in, d_sae, n, k = config
    extra = {"k": k} if kind == "topk" else {}
    sae = ss.SparseAutoencoder(d_in, d_sae, n_instances=n, kind=kind, seed=0, **extra)
    original = _sae_fast.loss_and_grads
    if WAYS[way] is not None:  # force one step; the package picks by k <= d_sae / 32
        _sae_fast.loss_and_grads = WAYS[way]
    try:
        wall, cpu = time.perf_counter(), time.process_time()
        ss.train_sae(sae, data, steps=steps, batch_size=256, lr=3e-3, seed=0, progress=False,
                     fast=way != "plain")
        return (time.perf_counter() - wall) / steps * 1e3, (time.process_time() - cpu) / steps * 1e3
    finally:
        _sae_fast.loss_and_grads = original


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=None, help="steps per timed run (default 40)")
    parser.add_argument("--rounds", type=int, default=None, help="interleaved rounds (default 3)")
    parser.add_argument("--threads", type=int, default=None)
    parser.add_argument("--quick", action="store_true", help="the small configs, 5 steps, 1 round")
    args = parser.parse_args()
    steps = args.steps or (5 if args.quick else 40)
    rounds = args.rounds or (1 if args.quick else 3)
    if args.threads:
        torch.set_num_threads(args.threads)
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, {steps} steps x "
          f"{rounds} rounds, batch 256; ms/step as wall / CPU")
    print("kind | d_in | d_sae | instances | k | plain | fast, dense step | fast, sparse step | "
          "plain / fast (CPU)")
    for config in QUICK if args.quick else CONFIGS:
        kind, d_in, d_sae, n, k = config
        data = torch.randn(8192, d_in, generator=torch.Generator().manual_seed(1))
        ways = ["plain", "dense", "sparse"] if kind == "topk" else ["plain", "dense"]
        for way in ways:  # untimed: the first steps pay for one-off set-up (allocator, einsum paths)
            step_ms(config, way, 2, data)
        times = {way: [] for way in ways}
        for _ in range(rounds):
            for way in ways:
                times[way].append(step_ms(config, way, steps, data))
        med = {w: [statistics.median(t[i] for t in times[w]) for i in (0, 1)] for w in ways}
        picked = "sparse" if kind == "topk" and 32 * k <= d_sae else "dense"
        cells = [f"{med[w][0]:.1f} / {med[w][1]:.1f}" if w in med else "-" for w in WAYS]
        print(f"{kind} | {d_in} | {d_sae} | {n} | {k or '-'} | {' | '.join(cells)} | "
              f"{med['plain'][1] / med[picked][1]:.1f}x ({picked})", flush=True)


if __name__ == "__main__":
    main()
