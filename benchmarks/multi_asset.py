"""Per-asset milliseconds per iteration with several assets in one process, their UNet calls batched.

    python benchmarks/multi_asset.py [--methods sctd] [--assets 1,2,4] [--iters 10] [--compile] [--json OUT.json]

Full-size SD 2.1-base with random weights, fp16, 4 views at 512x512, 81,920 Gaussians per asset (as
train_step.py). For each K in ``--assets``: K trainers of the listed methods (cycled) share one prior through
``multi_asset.BatchingPrior`` and step in their own threads; a round is one iteration of every asset. The
table gives the median round time divided by K (per-asset ms per iteration) with its quartiles, and the ratio
to K = 1 measured in the same process: same machine, same moment.
"""

from __future__ import annotations

import argparse
import statistics
import threading
import time

import torch
from bench_common import Column, add_training_options, benchmark_config, full_size_prior, machine, report

from segmentdreamer.multi_asset import BatchingPrior
from segmentdreamer.train import Trainer


def round_times(prior, methods: list[str], assets: int, warmup: int, iters: int, out: str, first_step: int) -> list[float]:
    """Milliseconds of each timed round (every asset one iteration) with ``assets`` trainers sharing ``prior``."""
    shared = BatchingPrior(prior, members=assets)
    trainers = [Trainer(benchmark_config(methods[i % len(methods)]), f"{out}/k{assets}_{i}", prior=shared) for i in range(assets)]
    barrier = threading.Barrier(assets + 1)

    def work(trainer: Trainer) -> None:
        try:
            for step in range(warmup + iters):
                barrier.wait()  # rounds start together, so each round's time is its slowest asset's
                trainer.step(first_step + step)
        finally:
            shared.leave()

    threads = [threading.Thread(target=work, args=(t,)) for t in trainers]
    for thread in threads:
        thread.start()
    stamps = []
    for _ in range(warmup + iters):
        barrier.wait()  # round r starts once every asset finished round r - 1
        stamps.append(time.perf_counter())
    for thread in threads:
        thread.join()
    torch.cuda.synchronize()
    stamps.append(time.perf_counter())
    return [1000.0 * (b - a) for a, b in zip(stamps[warmup:-1], stamps[warmup + 1:])]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--methods", default="sctd")
    parser.add_argument("--assets", default="1,2,4")
    add_training_options(parser)
    args = parser.parse_args()
    prior = full_size_prior(args)
    methods = args.methods.split(",")
    rows = []
    for count in (int(k) for k in args.assets.split(",")):
        times = round_times(prior, methods, count, args.warmup, args.iters, args.out, args.first_step)
        per_asset = [t / count for t in times]
        q1, median, q3 = statistics.quantiles(per_asset, n=4) if len(per_asset) > 1 else (per_asset[0],) * 3
        rows.append({"assets": count, "median_ms": median, "q1_ms": q1, "q3_ms": q3, "times_ms": times})
    base = rows[0]["median_ms"]
    for row in rows:
        row["ratio"] = row["median_ms"] / base
    columns = [Column("assets", "assets", "{}", 8), Column("median_ms", "ms/asset-it"), Column("q1_ms", "q1", width=9),
               Column("q3_ms", "q3", width=9), Column("ratio", "vs first", "{:.2f}", 10)]
    report(f"{machine()}; {','.join(methods)}; 4 views 512x512, 81920 Gaussians, fp16 prior, "
           f"{f'prior compiled ({args.compile})' if args.compile else 'eager'}; a round = one iteration of every asset",
           columns, rows, args.json)


if __name__ == "__main__":
    main()
