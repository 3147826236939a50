"""`dynamics.snapshot_losses` against the loop it replaces for the book's models.

Chapter 7 measures a fixed batch's loss at every one of 300 snapshots of twelve
ToyModel(50, 10) instances, on 4,096 examples. `snapshot_losses` used to load each snapshot
into the model and call `reconstruction_loss`, checking the batch again at every snapshot
(it still does so for models other than exactly `ToyModel` and `AbsModel`, which is the
baseline here: a subclass that changes nothing). For the book's two models it now checks
once and runs `supersim._fast.snapshot_losses`. Both are timed in the same run, interleaved
round by round so that other programs slow both alike; the script prints the median times,
their ratio and the largest relative difference of the losses (float rounding only).

    python benchmarks/bench_snapshot_losses.py            # chapter 7's sizes, 3 rounds
    python benchmarks/bench_snapshot_losses.py --quick    # 20 snapshots, one round
"""

from __future__ import annotations

import argparse
import statistics
import time

import torch

import supersim as ss
from supersim import dynamics


class PlainToy(ss.ToyModel):
    """A ToyModel that `snapshot_losses` does not recognise, so it takes the plain loop."""


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="20 snapshots, one round")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    n_snap, rounds = (20, 1) if args.quick else (300, args.rounds)
    n_feat, n_hid, n_inst, batch = 50, 10, 12, 4096
    fast, plain = (cls(n_feat, n_hid, n_instances=n_inst, seed=0) for cls in (ss.ToyModel, PlainToy))
    gen = torch.Generator().manual_seed(1)
    snaps = [
        (
            10 * (k + 1),
            {
                "W": 0.3 * torch.randn(n_inst, n_hid, n_feat, generator=gen),
                "b": 0.1 * torch.randn(n_inst, n_feat, generator=gen),
            },
        )
        for k in range(n_snap)
    ]
    x = ss.sample_features(batch, 0.25, n_inst, n_feat, generator=gen)
    times: dict[str, list[float]] = {"plain": [], "fast": []}
    losses = {}
    for _ in range(rounds):
        for name, model in (("plain", plain), ("fast", fast)):
            start = time.perf_counter()
            losses[name] = dynamics.snapshot_losses(model, snaps, x)
            times[name].append(time.perf_counter() - start)
    t_plain, t_fast = (statistics.median(times[n]) for n in ("plain", "fast"))
    diff = ((losses["fast"] - losses["plain"]).abs() / losses["plain"].abs()).max().item()
    print(
        f"snapshot_losses, {n_snap} snapshots of ToyModel({n_feat}, {n_hid}) x {n_inst}, "
        f"batch {batch}, {args.threads} threads, median of {rounds}"
    )
    print(
        f"plain loop {t_plain:.2f} s | fast {t_fast:.2f} s | ratio {t_plain / t_fast:.1f}x"
        f" | max relative difference {diff:.1e}"
    )


if __name__ == "__main__":
    main()
