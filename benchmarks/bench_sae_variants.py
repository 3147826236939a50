"""Chapter 10's training: every run as one instance of a stacked SAE, against one SAE per run.

Chapter 10 trains each SAE variant on many runs at once (ground truths x sparsity settings x
seeds, plus the copies that start at the true features), as the instances of one SAE object:
`train_sae` then takes one batched step for all of them. The baseline is what a reader without
instances would write: the same runs, each its own single-instance SAE, trained one after the
other with the same steps, batch size and learning rate. Both are timed in the same run,
interleaved round by round so that other programs on the machine slow both alike, and the
script prints the median seconds per 100 steps of all runs and the ratio baseline / stacked.

The variants other than ReLU + L1 train through the plain autograd loop of `supersim/sae.py`
(only the kinds of `SparseAutoencoder` have the hand-written fast path), so for them a step is
mostly Python and autograd overhead, nearly independent of the number of instances.

    python benchmarks/bench_sae_variants.py           # the chapter's plan, 3 rounds
    python benchmarks/bench_sae_variants.py --quick   # 2 variants, 8 runs, a few steps
"""

from __future__ import annotations

import argparse
import statistics
import time

import torch

import supersim as ss

VARIANTS = {  # the chapter's six, with a sparsity setting each
    "ReLU + L1": (ss.SparseAutoencoder, {"l1_coeff": 0.25}),
    "TopK": (ss.sae.TopKSAE, {"k": 2}),
    "BatchTopK": (ss.sae.BatchTopKSAE, {"k": 2}),
    "JumpReLU": (ss.sae.JumpReLUSAE, {"l0_coeff": 0.006}),
    "Gated": (ss.sae.GatedSAE, {"l1_coeff": 0.25}),
    "Matryoshka": (ss.sae.MatryoshkaSAE, {"k": 2}),
}


def seconds(variant: str, runs: int, steps: int, data: torch.Tensor, stacked: bool) -> float:
    """Wall seconds to train `runs` runs of `variant` for `steps` steps, stacked or one by one."""
    make, knob = VARIANTS[variant]
    start = time.perf_counter()
    if stacked:
        sae = make(data.shape[-1], 64, n_instances=runs, seed=0, **knob)
        ss.train_sae(sae, data, steps=steps, seed=0, progress=False)
    else:
        for i in range(runs):
            sae = make(data.shape[-1], 64, n_instances=1, seed=i, **knob)
            ss.train_sae(sae, data[:, i], steps=steps, seed=0, progress=False)
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=None, help="steps per run (default 200)")
    parser.add_argument("--rounds", type=int, default=None, help="interleaved rounds (default 3)")
    parser.add_argument("--runs", type=int, default=None, help="runs per variant (default 20)")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--quick", action="store_true", help="2 variants, 8 runs, 10 steps, 1 round")
    args = parser.parse_args()
    steps = args.steps or (10 if args.quick else 200)
    rounds = args.rounds or (1 if args.quick else 3)
    runs = args.runs or (8 if args.quick else 20)
    torch.set_num_threads(args.threads)
    truth = ss.ground_truth.independent_features(64, 32, feature_probability=0.036, n_instances=runs)
    data = truth.sample(16384, seed=1)[0]  # (N, runs, 32): one dataset per run
    print(
        f"torch {torch.__version__}, {torch.get_num_threads()} thread(s), {runs} runs x "
        f"{steps} steps x {rounds} rounds, batch 128, 64 latents on d = 32"
    )
    print("variant | one SAE per run, s / 100 steps | stacked, s / 100 steps | ratio")
    for variant in list(VARIANTS)[:2] if args.quick else VARIANTS:
        for stacked in (False, True):  # untimed: the first steps pay for one-off set-up
            seconds(variant, runs, 2, data, stacked)
        times = {False: [], True: []}
        for _ in range(rounds):
            for stacked in (False, True):
                times[stacked].append(seconds(variant, runs, steps, data, stacked))
        one, many = (statistics.median(times[s]) / steps * 100 for s in (False, True))
        print(f"{variant} | {one:.2f} | {many:.2f} | {one / many:.1f}x", flush=True)


if __name__ == "__main__":
    main()
