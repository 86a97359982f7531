"""Per-asset milliseconds per iteration with several assets in one process, their UNet calls batched.

    python benchmarks/multi_asset.py [--methods sctd] [--assets 1,2,4] [--iters 10] [--compile] [--json OUT.json]

Full-size SD 2.1-base with random weights, fp16, 4 views at 512x512, 81,920 Gaussians per asset (as
train_step.py). For each K in ``--assets``: K trainers of the listed methods (cycled) share one prior through
``multi_asset.BatchingPrior`` and step in their own threads; a round is one iteration of every asset. With
``--compile``, K = 1 runs on a prior compiled for static shapes (a lone job) and K > 1 on one compiled with a
dynamic batch size (what a multi-asset job compiles). The
table gives the median round time divided by K (per-asset ms per iteration) with its quartiles, and the ratio
to K = 1 measured in the same process: same machine, same moment.
"""

from __future__ import annotations

import argparse

from bench_common import (
    Column,
    add_training_options,
    batched_round_times,
    benchmark_config,
    full_size_prior,
    machine,
    quartiles,
    report,
)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--methods", default="sctd")
    parser.add_argument("--assets", default="1,2,4")
    add_training_options(parser)
    args = parser.parse_args()
    methods = args.methods.split(",")
    counts = [int(k) for k in args.assets.split(",")]
    # compiled: one asset runs the static-shape graphs of a lone job, several the dynamic-batch one of a multi-asset job
    kind = {count: args.compile is not None and count > 1 for count in counts}
    priors = {dynamic: full_size_prior(args, dynamic_batch=dynamic) for dynamic in set(kind.values())}
    rows = []
    for count in counts:
        configs = [benchmark_config(methods[i % len(methods)]) for i in range(count)]
        times = batched_round_times(priors[kind[count]], configs, f"{args.out}/k{count}", args.first_step, args.warmup,
                                    rounds=args.iters)
        per_asset = [t / count for t in times]
        q1, median, q3 = quartiles(per_asset)
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
