"""Seconds to sample one Point-E cloud (base40M-textvec + upsample, 64 + 64 Heun steps) at full size.

    python benchmarks/pointe_sample.py [--device cuda] [--json OUT.json]

Random weights with the official architectures (weights do not change the cost); CLIP ViT-L/14 text tower
from open_clip with random weights.
"""

from __future__ import annotations

import argparse
import time

import torch
from bench_common import Column, machine, report

from segmentdreamer.init.pointe import PointE
from segmentdreamer.init.transformer import PointTransformerConfig, TextPointTransformer, UpsamplePointTransformer


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--device", default="cuda")
    parser.add_argument("--json", default=None)
    args = parser.parse_args()
    import open_clip

    clip = open_clip.create_model("ViT-L-14", device=args.device).eval()
    model = PointE(TextPointTransformer(), UpsamplePointTransformer(PointTransformerConfig(clip_dim=1024)), clip,
                   open_clip.get_tokenizer("ViT-L-14"), device=args.device)
    model.sample("a corgi", seed=0, progress=False)  # warm-up
    if args.device == "cuda":
        torch.cuda.synchronize()
    start = time.perf_counter()
    xyz, _ = model.sample("a corgi", seed=1, progress=False)
    if args.device == "cuda":
        torch.cuda.synchronize()
    seconds = time.perf_counter() - start
    row = {"device": args.device, "seconds": seconds, "points": int(xyz.shape[0])}
    report(f"Point-E sample (4096 points, 64 + 64 Heun steps, fp32); {machine()}",
           [Column("device", "device", "{}", 8), Column("seconds", "seconds"), Column("points", "points", "{}", 8)], [row], args.json)


if __name__ == "__main__":
    main()
