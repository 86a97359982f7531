"""Milliseconds per training iteration of every method, at full size, on one GPU.

    python benchmarks/train_step.py [--methods sctd,sctd:perp_neg,sds,ism,cds,gcs] [--iters 10] [--json OUT.json]

SD 2.1-base architectures with random weights (weights do not change the cost), fp16 prior, 4 views at
512x512, 81,920 Gaussians (the Point-E init's count), the full 3DGS recipe of the trainer. Each method
runs ``--warmup`` iterations, then ``--iters`` timed ones (CUDA synchronised around each); the table
gives the median and the projected minutes for 5000 iterations. ``method:perp_neg`` runs the method with
Perp-Neg guidance (one UNet call of batch 4B per guided prediction: negative + 3 view prompts, instead of CFG's 2B).
"""

from __future__ import annotations

import argparse
import statistics
import time

import torch
from bench_common import Column, add_training_options, benchmark_config, full_size_prior, machine, report

from segmentdreamer.training.trainer import Trainer


def time_method(method: str, prior, warmup: int, iters: int, out_dir: str, first_step: int) -> dict:
    trainer = Trainer(benchmark_config(method), f"{out_dir}/{method.replace(':', '_')}", prior=prior)
    times = []
    torch.cuda.reset_peak_memory_stats()
    for i in range(warmup + iters):
        torch.cuda.synchronize()
        start = time.perf_counter()
        trainer.step(first_step + i)
        torch.cuda.synchronize()
        if i >= warmup:
            times.append(1000.0 * (time.perf_counter() - start))
    median = statistics.median(times)
    return {"method": method, "median_ms": median, "min_ms": min(times), "max_ms": max(times),
            "minutes_per_5000": median * 5000 / 60000.0, "peak_memory_gb": torch.cuda.max_memory_allocated() / 2**30,
            "gaussians": int(trainer.params["means"].shape[0]), "times_ms": times}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--methods", default="sctd,sctd:perp_neg,sds,ism,cds,gcs")
    add_training_options(parser)
    args = parser.parse_args()
    prior = full_size_prior(args)
    rows = [time_method(m, prior, args.warmup, args.iters, args.out, args.first_step) for m in args.methods.split(",")]
    columns = [Column("method", "method", "{}", 14), Column("median_ms", "median ms"), Column("min_ms", "min", width=9),
               Column("max_ms", "max", width=9), Column("minutes_per_5000", "min/5000 it", width=13),
               Column("peak_memory_gb", "peak GB", width=9)]
    report(f"{machine()}; 4 views 512x512, 81920 Gaussians, fp16 prior, "
           f"{f'prior compiled ({args.compile})' if args.compile else 'eager'}", columns, rows, args.json)


if __name__ == "__main__":
    main()
