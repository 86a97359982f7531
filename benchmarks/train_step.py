"""Milliseconds per training iteration of every method, at full size, on one GPU.

    python benchmarks/train_step.py [--methods sctd,sds,ism,cds,gcs] [--iters 10] [--json OUT.json]

SD 2.1-base architectures with random weights (weights do not change the cost), fp16 prior, 4 views at
512x512, 81,920 Gaussians (the Point-E init's count), the full 3DGS recipe of the trainer. Each method
runs ``--warmup`` iterations, then ``--iters`` timed ones (CUDA synchronised around each); the table
gives the median and the projected minutes for 5000 iterations.
"""

from __future__ import annotations

import argparse
import json
import statistics
import time

import torch

from segmentdreamer.config import TrainConfig
from segmentdreamer.tiny_models import full_size_stable_diffusion
from segmentdreamer.train import Trainer


def time_method(method: str, prior, warmup: int, iters: int, out_dir: str, first_step: int) -> dict:
    config = TrainConfig(prompt="a DSLR photo of a corgi", method=method, sphere_points=81920, device="cuda")
    trainer = Trainer(config, f"{out_dir}/{method}", prior=prior)
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
            "gaussians": int(trainer.params["means"].shape[0])}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--methods", default="sctd,sds,ism,cds,gcs")
    parser.add_argument("--warmup", type=int, default=3)
    parser.add_argument("--iters", type=int, default=10)
    parser.add_argument("--first-step", type=int, default=3001, help="iteration number of the first step (after warm-up schedules)")
    parser.add_argument("--out", default="/tmp/segmentdreamer-bench")
    parser.add_argument("--json", default=None)
    parser.add_argument("--compile", nargs="?", const="default", default=None, metavar="MODE",
                        help="torch.compile the UNet (DiffusionPrior.compile_unet): default | reduce-overhead")
    args = parser.parse_args()
    prior = full_size_stable_diffusion("cuda", torch.float16)
    if args.compile:
        prior.compile_unet(args.compile)
    rows = [time_method(m, prior, args.warmup, args.iters, args.out, args.first_step) for m in args.methods.split(",")]
    import diffusers
    import gsplat

    header = (f"{torch.cuda.get_device_name()}, torch {torch.__version__}, diffusers {diffusers.__version__}, "
              f"gsplat {gsplat.__version__}; 4 views 512x512, 81920 Gaussians, fp16 prior, "
              f"{f'UNet compiled ({args.compile})' if args.compile else 'eager'}")
    print(header)
    print(f"{'method':<8}{'median ms':>11}{'min':>9}{'max':>9}{'min/5000 it':>13}{'peak GB':>9}")
    for r in rows:
        print(f"{r['method']:<8}{r['median_ms']:>11.1f}{r['min_ms']:>9.1f}{r['max_ms']:>9.1f}{r['minutes_per_5000']:>13.1f}{r['peak_memory_gb']:>9.1f}")
    if args.json:
        with open(args.json, "w") as handle:
            json.dump({"setup": header, "rows": rows}, handle, indent=2)


if __name__ == "__main__":
    main()
