"""The mini Point-E: the official two transformers (:mod:`~segmentdreamer.init.transformer`) at a small width,
trained on the miniworld's coloured point clouds with Point-E's own diffusions.

- base (text -> 1024 points): cosine schedule, 1024 steps; conditioned on the mini-CLIP's L2-normalised text
  features of the caption (zeros with probability ``text_dropout``: the unconditional branch of its guidance 3.0);
- upsampler (1024 -> 3072 more points): linear schedule, conditioned on the 1024 points (its image grid stays zero,
  as in text mode).

Clouds are :func:`~.scenes.scene_points` moved into Point-E's frame (the inverse of the trainer's ``pointe_frame``:
y flipped, z lowered by 0.15), so a sample goes through ``segmentdreamer init`` unchanged and lands on the ground
truth. Both predict the noise of the 6 data channels (the variance channels of the official output are not trained:
the Karras sampler never reads them). Each step takes a fresh random split of a cloud's 4096 points.
"""

from __future__ import annotations

from pathlib import Path

import torch
from torch import Tensor

from ..init.diffusion import PointDiffusion
from ..init.transformer import PointTransformerConfig, TextPointTransformer, UpsamplePointTransformer
from .loop import optimise
from .scenes import scene_points
from .settings import MiniworldSettings, PointESettings

POINTS, COARSE = 4096, 1024


def to_pointe_frame(xyz: Tensor) -> Tensor:
    """The trainer's frame -> Point-E's (the inverse of ``init.to_gaussians.pointe_frame``): y flipped, z - 0.15."""
    moved = xyz.clone()
    moved[..., 1] = -moved[..., 1]
    moved[..., 2] = moved[..., 2] - 0.15
    return moved


def world_clouds(captions: list[str], draws: int) -> tuple[Tensor, Tensor]:
    """(xyz [C * draws, 4096, 3] in Point-E's frame, rgb [C * draws, 4096, 3] in [0, 1]), caption-major."""
    clouds = [scene_points(caption, draw, POINTS) for caption in captions for draw in range(draws)]
    return to_pointe_frame(torch.stack([xyz for xyz, _ in clouds])), torch.stack([rgb for _, rgb in clouds])


def build_pointe(settings: PointESettings, text_dim: int) -> tuple[TextPointTransformer, UpsamplePointTransformer]:
    """Randomly initialised base and upsampler at ``settings``' size."""
    config = PointTransformerConfig(width=settings.width, layers=settings.layers, heads=settings.heads)
    return (TextPointTransformer(PointTransformerConfig(**{**config.__dict__, "clip_dim": text_dim})),
            UpsamplePointTransformer(PointTransformerConfig(**{**config.__dict__, "clip_dim": settings.grid_dim})))


def scaled(xyz: Tensor, rgb: Tensor) -> Tensor:
    """Point-E's diffusion space [B, 6, N]: xyz x 2, rgb x 2 - 1 (rgb in [0, 1])."""
    return torch.cat([2.0 * xyz, 2.0 * rgb - 1.0], dim=-1).transpose(1, 2)


def diffusion_loss(model, x0: Tensor, diffusion: PointDiffusion, generator: torch.Generator, **condition) -> Tensor:
    """Noise-prediction MSE of the 6 data channels at uniform discrete steps; x0 [B, 6, N]."""
    abars = torch.tensor(diffusion.alphas_cumprod, dtype=torch.float32, device=x0.device)
    t = torch.randint(diffusion.num_timesteps, (x0.shape[0],), generator=generator).to(x0.device)
    noise = torch.randn(x0.shape, generator=generator).to(x0)
    abar = abars[t][:, None, None]
    out = model(abar.sqrt() * x0 + (1.0 - abar).sqrt() * noise, t, **condition)
    return torch.nn.functional.mse_loss(out[:, : x0.shape[1]].float(), noise)


def _split(count: int, generator: torch.Generator, device: torch.device) -> Tensor:
    """A random order [count, 4096] of each cloud's points."""
    return torch.rand(count, POINTS, generator=generator).argsort(dim=1).to(device)


def train_pointe(captions: list[str], text_features: Tensor, settings: MiniworldSettings, work: Path, device: torch.device,
                 progress: bool = True) -> tuple[TextPointTransformer, UpsamplePointTransformer]:
    """Both trained models (eval, fp32, on ``device``). ``text_features`` [C, D]: L2-normalised CLIP text features of
    ``captions``."""
    torch.manual_seed(settings.seed)
    draws = settings.data.point_draws
    xyz, rgb = (tensor.to(device) for tensor in world_clouds(captions, draws))
    features = text_features.to(device).float()
    base, upsampler = (model.to(device) for model in build_pointe(settings.pointe, features.shape[-1]))
    cosine, linear = PointDiffusion.cosine(), PointDiffusion.linear()

    def pick(batch: int, generator: torch.Generator) -> tuple[Tensor, Tensor, Tensor]:
        clouds = torch.randint(len(xyz), (batch,), generator=generator).to(device)
        order = _split(batch, generator, device)
        gather = order[..., None].expand(-1, -1, 3)
        return clouds, xyz[clouds].gather(1, gather), rgb[clouds].gather(1, gather)

    def base_loss(step: int, generator: torch.Generator) -> Tensor:
        clouds, points, colours = pick(settings.pointe.base.batch, generator)
        text = features[clouds // draws]
        keep = torch.rand(len(clouds), generator=generator).to(device) >= settings.pointe.text_dropout
        x0 = scaled(points[:, :COARSE], colours[:, :COARSE])
        with torch.autocast(device.type, dtype=torch.bfloat16, enabled=device.type == "cuda"):
            return diffusion_loss(base, x0, cosine, generator, text_embedding=text * keep[:, None])

    def upsampler_loss(step: int, generator: torch.Generator) -> Tensor:
        _, points, colours = pick(settings.pointe.upsampler.batch, generator)
        low_res = torch.cat([points[:, :COARSE], 255.0 * colours[:, :COARSE]], dim=-1).transpose(1, 2)
        x0 = scaled(points[:, COARSE:], colours[:, COARSE:])
        with torch.autocast(device.type, dtype=torch.bfloat16, enabled=device.type == "cuda"):
            return diffusion_loss(upsampler, x0, linear, generator, low_res=low_res)

    base = optimise("pointe_base", base, base_loss, settings.pointe.base, work, settings.seed, progress=progress)
    upsampler = optimise("pointe_upsample", upsampler, upsampler_loss, settings.pointe.upsampler, work, settings.seed + 1,
                         progress=progress)
    return base, upsampler
