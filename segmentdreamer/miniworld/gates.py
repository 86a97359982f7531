"""The miniworld models' quality gates, measured through the pipeline's own loaders.

- VAE: PSNR of the reconstruction (posterior mean, decoded) of renders;
- mini-SD: its samples (DDIM, classifier-free guidance, a random view prompt each) retrieved by the mini-CLIP
  among the evaluated captions (R@1). Size-blind: a caption that differs from the sample's only in its size words
  ("small", "big") is not a distractor, since the trainer's random radius and field of view change an object's
  apparent size by more than the size words do (strict R@1 is reported beside it);
- Point-E: the symmetric Chamfer distance (mean nearest-neighbour distance, both ways, world units) between a
  sample moved into the trainer's frame and the caption's ground-truth Gaussians; the distance between two draws of
  the same caption's truth is the floor it is reported against.
"""

from __future__ import annotations

import re

import torch
from torch import Tensor

from ..prior.conditioning import VIEW_SUFFIXES
from ..scene.compare import psnr_per_view


@torch.no_grad()
def vae_psnr(vae, images: Tensor, batch: int = 64) -> Tensor:
    """PSNR [N] of the VAE's reconstruction (decoded posterior mean) of images [N, 3, H, W] in [0, 1]."""
    values = []
    for chunk in images.split(batch):
        pixels = 2.0 * chunk.to(vae.device, vae.dtype) - 1.0
        decoded = vae.decode(vae.encode(pixels).latent_dist.mean).sample
        values.append(psnr_per_view((decoded.float() / 2.0 + 0.5).clamp(0.0, 1.0), chunk.to(vae.device)).float().cpu())
    return torch.cat(values)


def without_sizes(caption: str) -> str:
    """The caption with its size words removed ("a small red box" -> "a red box"; articles left as they are)."""
    return re.sub(r"\b(small|big) ", "", caption)


def view_prompts(captions: list[str], generator: torch.Generator) -> list[str]:
    """Each caption with a random one of the trainer's view suffixes (front, side, back)."""
    suffixes = list(VIEW_SUFFIXES.values())
    return [caption + suffixes[int(torch.randint(len(suffixes), (1,), generator=generator))] for caption in captions]


@torch.no_grad()
def sd_samples(pipeline, prompts: list[str], steps: int, guidance_scale: float, seed: int, batch: int = 16) -> Tensor:
    """One sample per prompt from a diffusers StableDiffusionPipeline: images [N, 3, H, W] in [0, 1] (CPU)."""
    images = []
    for start in range(0, len(prompts), batch):
        generator = torch.Generator(pipeline.device).manual_seed(seed + start)
        out = pipeline(prompts[start : start + batch], num_inference_steps=steps, guidance_scale=guidance_scale,
                       generator=generator, output_type="pt")
        images.append(out.images.float().cpu())
    return torch.cat(images)


def retrieval(similarity: Tensor, captions: list[str]) -> tuple[Tensor, Tensor]:
    """(strict, size-blind) R@1 hits [N] bool for similarity [N images, N captions] (image i shows caption i)."""
    own = similarity.diagonal()
    same = torch.eye(len(captions), dtype=torch.bool)
    blind = [without_sizes(c) for c in captions]
    twin = torch.tensor([[a == b for b in blind] for a in blind])
    strict = own > similarity.masked_fill(same, float("-inf")).max(dim=1).values
    size_blind = own > similarity.masked_fill(twin, float("-inf")).max(dim=1).values
    return strict, size_blind


def chamfer(points: Tensor, reference: Tensor) -> float:
    """Symmetric Chamfer distance: (mean over points of the nearest reference distance + the converse) / 2."""
    distances = torch.cdist(points.float(), reference.float())
    return float(0.5 * (distances.min(dim=1).values.mean() + distances.min(dim=0).values.mean()))
