"""`train_sae` for TopK SAEs: the sparse step (only the k kept latents) against the dense one.

A TopK SAE gives gradient only to the k latents each sample keeps, so after the encoder's
(B, D) x (D, S) product the rest of a step (decoding, the backward pass, the weight gradients)
needs only those k rows: `supersim.sae._topk_loss_and_grads`. The dense step
(`_dense_loss_and_grads`, what every SAE used before) multiplies by all S latents five times.
`train_sae` takes the sparse step when k <= d_sae / 32, where it pays (the table below).
Both compute the same loss and gradients (tests/test_sae.py checks it). This script trains the
same SAE from the same start on the same data with each step, interleaving them round by
round so that other programs slow both alike, and prints the median seconds per step
(wall and CPU) and the ratio:

    python benchmarks/bench_sae.py             # chapter 9's sizes and two smaller ones
    python benchmarks/bench_sae.py --threads 1
    python benchmarks/bench_sae.py --quick        # 3 steps, 1 round: checks it runs (seconds)
"""

from __future__ import annotations

import argparse
import statistics
import time

import torch

import supersim as ss
from supersim import sae as sae_module

# (d_in, d_sae, instances, k): chapter 9's residual-stream dictionaries first
CONFIGS = [(384, 3072, 2, 32), (384, 3072, 1, 32), (384, 768, 1, 32), (64, 512, 4, 8)]


def step_seconds(config, dense: bool, steps: int, data: torch.Tensor) -> tuple[float, float]:
    d_in, d_sae, n, k = config
    sae = ss.SparseAutoencoder(d_in, d_sae, n_instances=n, kind="topk", k=k, seed=0)
    original = sae_module.sae_loss_and_grads
    # force one path: the package itself picks the sparse one only when k <= d_sae / 32
    sae_module.sae_loss_and_grads = (
        sae_module._dense_loss_and_grads if dense else sae_module._topk_loss_and_grads
    )
    try:
        wall, cpu = time.perf_counter(), time.process_time()
        ss.train_sae(sae, data, steps=steps, batch_size=256, lr=3e-3, seed=0, progress=False)
        return (time.perf_counter() - wall) / steps, (time.process_time() - cpu) / steps
    finally:
        sae_module.sae_loss_and_grads = original


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=40)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--threads", type=int, default=None)
    parser.add_argument("--quick", action="store_true", help="3 steps, 1 round, 2,048 samples")
    args = parser.parse_args()
    n_samples = 8192
    if args.quick:
        args.steps, args.rounds, n_samples = 3, 1, 2048
    if args.threads:
        torch.set_num_threads(args.threads)
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, {args.steps} steps x "
          f"{args.rounds} rounds, batch 256")
    print("d_in | d_sae | instances | k | dense ms/step (wall / cpu) | sparse ms/step (wall / cpu)"
          " | ratio (wall)")
    for config in CONFIGS:
        data = torch.randn(n_samples, config[0], generator=torch.Generator().manual_seed(1))
        times = {False: [], True: []}
        for _ in range(args.rounds):
            for dense in (True, False):
                times[dense].append(step_seconds(config, dense, args.steps, data))
        med = {d: [statistics.median(t[i] for t in times[d]) * 1e3 for i in (0, 1)] for d in times}
        print(f"{config[0]} | {config[1]} | {config[2]} | {config[3]} | "
              f"{med[True][0]:.1f} / {med[True][1]:.1f} | {med[False][0]:.1f} / {med[False][1]:.1f} | "
              f"{med[True][0] / med[False][0]:.1f}x", flush=True)


if __name__ == "__main__":
    main()
