"""The expensive calls of every training step, alone: UNet forward, VAE-encoder forward + backward, VAE decoder.

    python benchmarks/prior_kernels.py [--variants eager,sdpa_vae_attention,compiled,cudagraphs] [--iters 20] [--json OUT]

SD 2.1-base architectures with random weights, fp16 (the trainer's dtype on CUDA). Parts (``PARTS``, shared
with ``prior_profile.py``):

- ``unet_b4`` / ``unet_b8``: one UNet forward (an unconditional ODE step over 4 views / a CFG pair), no grad;
- ``encoder_b4``: VAE encoder forward + backward to 4 renders of 512^2, given as the rasterizer returns them
  ([B, H, W, 3] permuted to [B, 3, H, W]); what every loss's gradient crosses;
- ``decoder_b8``: VAE decoder forward of 8 latents to 512^2, no grad (GCS's pixel term).

Variants: ``eager`` (the prior as the trainer builds it: explicit-product VAE attention); ``sdpa_vae_attention``
(diffusers' default SDPA processor in the VAE instead, the prior before that choice); ``cudnn_benchmark``
(cuDNN autotuned convolutions); ``compiled`` (``compile_prior``: UNet ``torch.compile``d channels-last, VAE
decoder compiled); ``cudagraphs`` (the UNet with ``mode="reduce-overhead"``, outputs cloned; decoder compiled);
``compiled_encoder`` (the VAE encoder compiled, channels-last). CUDA-event medians over ``--iters`` calls after
warm-up (compilation happens in the warm-up).
"""

from __future__ import annotations

import argparse

import torch
from bench_common import Column, machine, median_cuda_ms, report

from segmentdreamer.testing.tiny_models import full_size_stable_diffusion


def unet_part(prior, batch: int):
    x = torch.randn(batch, 4, 64, 64, device="cuda", dtype=torch.float16)
    t = torch.full((batch,), 500, dtype=torch.long, device="cuda")
    text = torch.randn(batch, 77, 1024, device="cuda", dtype=torch.float16)

    @torch.no_grad()
    def call():
        return prior.predict_noise(x, t, text)

    return call


def encoder_part(prior, batch: int = 4):
    renders = torch.rand(batch, 512, 512, 3, device="cuda", requires_grad=True)  # as the rasterizer returns them
    generator = torch.Generator("cuda").manual_seed(0)

    def call():
        prior.encode(renders.permute(0, 3, 1, 2), generator).float().square().sum().backward()
        renders.grad = None

    return call


def decoder_part(prior, batch: int = 8):
    latents = torch.randn(batch, 4, 64, 64, device="cuda", dtype=torch.float16)

    @torch.no_grad()
    def call():
        return prior.decode(latents)

    return call


PARTS = {
    "unet_b4": lambda prior: unet_part(prior, 4),
    "unet_b8": lambda prior: unet_part(prior, 8),
    "encoder_b4": encoder_part,
    "decoder_b8": decoder_part,
}
VARIANTS = ("eager", "sdpa_vae_attention", "cudnn_benchmark", "compiled", "cudagraphs", "compiled_encoder")


def apply_variant(prior, variant: str) -> None:
    if variant not in VARIANTS:
        raise SystemExit(f"--variants: unknown {variant!r} (known: {', '.join(VARIANTS)})")
    torch.backends.cudnn.benchmark = variant == "cudnn_benchmark"
    if variant == "sdpa_vae_attention":
        from diffusers.models.attention_processor import AttnProcessor2_0

        prior.vae.set_attn_processor(AttnProcessor2_0())
    elif variant in ("compiled", "cudagraphs"):
        prior.compile(unet_mode="default" if variant == "compiled" else "reduce-overhead")
    elif variant == "compiled_encoder":
        prior.vae = prior.vae.to(memory_format=torch.channels_last)
        prior.vae.encoder.forward = torch.compile(prior.vae.encoder.forward, dynamic=False)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--variants", default="eager,sdpa_vae_attention,compiled,cudagraphs")
    parser.add_argument("--parts", default=",".join(PARTS))
    parser.add_argument("--warmup", type=int, default=5)
    parser.add_argument("--iters", type=int, default=20)
    parser.add_argument("--json", default=None)
    args = parser.parse_args()
    parts = args.parts.split(",")
    rows = []
    for variant in args.variants.split(","):
        torch._dynamo.reset()
        prior = full_size_stable_diffusion("cuda", torch.float16)
        apply_variant(prior, variant)
        row = {"variant": variant}
        for part in parts:
            row[f"{part}_ms"] = median_cuda_ms(PARTS[part](prior), args.warmup, args.iters)
        rows.append(row)
        print(row, flush=True)
        del prior
        torch.cuda.empty_cache()
    columns = [Column("variant", "variant", "{}", 20), *(Column(f"{part}_ms", part, width=12) for part in parts)]
    report(f"{machine()}; fp16; medians of {args.iters} calls in ms", columns, rows, args.json)


if __name__ == "__main__":
    main()
