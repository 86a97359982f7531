"""The two expensive parts of every training step, alone: UNet forward and VAE-encoder forward + backward.

    python benchmarks/prior_kernels.py [--variants eager,cudnn_benchmark,compiled,cudagraphs] [--iters 20] [--json OUT]

SD 2.1-base architectures with random weights, fp16 (the trainer's dtype on CUDA). For each variant:

- UNet forward at batch 4 (an unconditional ODE step over 4 views) and batch 8 (a CFG pair), no grad;
- VAE encoder forward + backward to the images at 4 x 512^2 (the gradient the losses hand the renders).

Variants: ``eager``; ``cudnn_benchmark`` (cuDNN autotuned convolutions); ``compiled`` (torch.compile,
default mode, channels-last UNet: ``DiffusionPrior.compile_unet``); ``cudagraphs`` (torch.compile
``mode="reduce-overhead"``: the UNet replayed as a CUDA graph, outputs cloned); ``compiled_encoder`` (the VAE
encoder compiled, channels-last; UNet eager). CUDA-event timing, medians
over ``--iters`` calls after warm-up (compilation happens in the warm-up).
"""

from __future__ import annotations

import argparse
import json
import statistics

import torch

from segmentdreamer.tiny_models import full_size_stable_diffusion


def median_ms(function, warmup: int, iters: int) -> float:
    for _ in range(warmup):
        function()
    times = []
    for _ in range(iters):
        start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
        start.record()
        function()
        end.record()
        torch.cuda.synchronize()
        times.append(start.elapsed_time(end))
    return statistics.median(times)


def unet_call(prior, batch: int):
    x = torch.randn(batch, 4, 64, 64, device="cuda", dtype=torch.float16)
    t = torch.full((batch,), 500, dtype=torch.long, device="cuda")
    text = torch.randn(batch, 77, 1024, device="cuda", dtype=torch.float16)

    @torch.no_grad()
    def call():
        return prior.predict_noise(x, t, text)

    return call


def encoder_call(prior, batch: int = 4):
    images = torch.rand(batch, 3, 512, 512, device="cuda", requires_grad=True)
    generator = torch.Generator("cuda").manual_seed(0)

    def call():
        latents = prior.encode(images, generator)
        latents.float().square().sum().backward()
        images.grad = None

    return call


def apply_variant(prior, variant: str) -> None:
    torch.backends.cudnn.benchmark = variant != "eager"
    if variant == "compiled":
        prior.compile_unet()
    elif variant == "cudagraphs":
        prior.compile_unet(mode="reduce-overhead")
    elif variant == "compiled_encoder":
        prior.vae = prior.vae.to(memory_format=torch.channels_last)
        prior.vae.encoder.forward = torch.compile(prior.vae.encoder.forward, dynamic=False)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--variants", default="eager,cudnn_benchmark,compiled,cudagraphs")
    parser.add_argument("--warmup", type=int, default=5)
    parser.add_argument("--iters", type=int, default=20)
    parser.add_argument("--json", default=None)
    args = parser.parse_args()
    rows = []
    for variant in args.variants.split(","):
        torch._dynamo.reset()
        prior = full_size_stable_diffusion("cuda", torch.float16)
        apply_variant(prior, variant)
        row = {"variant": variant}
        for batch in (4, 8):
            row[f"unet_b{batch}_ms"] = median_ms(unet_call(prior, batch), args.warmup, args.iters)
        row["vae_encoder_fwd_bwd_b4_ms"] = median_ms(encoder_call(prior), args.warmup, args.iters)
        rows.append(row)
        print(row, flush=True)
        del prior
        torch.cuda.empty_cache()
    header = f"{torch.cuda.get_device_name()}, torch {torch.__version__}; fp16; medians of {args.iters} calls in ms"
    print(header)
    print(f"{'variant':<17}{'UNet b4':>9}{'UNet b8':>9}{'VAE enc f+b b4':>16}")
    for r in rows:
        print(f"{r['variant']:<17}{r['unet_b4_ms']:>9.1f}{r['unet_b8_ms']:>9.1f}{r['vae_encoder_fwd_bwd_b4_ms']:>16.1f}")
    if args.json:
        with open(args.json, "w") as handle:
            json.dump({"setup": header, "rows": rows}, handle, indent=2)


if __name__ == "__main__":
    main()
