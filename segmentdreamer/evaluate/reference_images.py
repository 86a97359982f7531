"""The FID reference set: Stable Diffusion 2.1 images of a prompt list (docs/method.md, "Evaluation"; paper: 50,000).

Image k uses prompt k mod P and its own seed (seed + k), so every image is reproducible on its own and
the set can be made in any order, in batches, and resumed: files already on disk are skipped.
"""

from __future__ import annotations

import os
from pathlib import Path

import torch
from tqdm import tqdm

from ..atomic import atomic_target
from ..models import resolve_model
from ..prior.diffusion_prior import compile_unet_forward
from .settings import FidSettings


def reference_name(index: int) -> str:
    return f"ref_{index:06d}.png"


def missing_indices(out_dir: str | Path, count: int) -> list[int]:
    out_dir = Path(out_dir)
    return [k for k in range(count) if not (out_dir / reference_name(k)).is_file()]


def generate_reference_images(
    sd: str | os.PathLike,
    prompts: list[str],
    count: int,
    out_dir: str | Path,
    batch: int = FidSettings.batch,
    seed: int = FidSettings.seed,
    steps: int = FidSettings.steps,
    guidance_scale: float = 7.5,
    resolution: int = FidSettings.resolution,
    device: str | torch.device = "cpu",
    compile_unet: bool = False,
) -> int:
    """Write the missing ``ref_######.png`` of ``count`` images; returns how many were written.

    ``compile_unet``: the fast path on CUDA: the UNet as ``compile_unet_forward`` makes it (attention
    projections fused, channels-last, ``torch.compile``d, one graph per batch size) and the VAE decoder
    compiled; about a minute of compilation, then faster steps (BENCHMARKS.md). Same images up to fp16
    rounding.
    """
    from diffusers import StableDiffusionPipeline

    if not prompts:
        raise ValueError("no prompts for the reference images")
    todo = missing_indices(out_dir, count)
    if not todo:
        return 0
    folder = resolve_model(sd, "models.sd", "a diffusers-layout Stable Diffusion 2.1-base folder")
    device = torch.device(device)
    dtype = torch.float16 if device.type == "cuda" else torch.float32
    pipeline = StableDiffusionPipeline.from_pretrained(folder, torch_dtype=dtype, safety_checker=None, requires_safety_checker=False,
                                                       local_files_only=True).to(device)
    pipeline.set_progress_bar_config(disable=True)
    if compile_unet and device.type == "cuda":
        compile_unet_forward(pipeline.unet)
        pipeline.vae.decoder.forward = torch.compile(pipeline.vae.decoder.forward, dynamic=False)
    Path(out_dir).mkdir(parents=True, exist_ok=True)
    for start in tqdm(range(0, len(todo), batch), desc="reference images", unit="batch"):
        indices = todo[start : start + batch]
        generators = [torch.Generator(device).manual_seed(seed + k) for k in indices]
        images = pipeline([prompts[k % len(prompts)] for k in indices], num_inference_steps=steps, guidance_scale=guidance_scale,
                          height=resolution, width=resolution, generator=generators).images
        for k, image in zip(indices, images):
            with atomic_target(Path(out_dir) / reference_name(k)) as tmp:
                image.save(tmp)
    return len(todo)
