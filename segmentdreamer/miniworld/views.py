"""Training examples of the miniworld: a caption's ground truth seen as the trainer sees its own scenes.

Each example is one render of one draw of a caption, from the trainer's camera distribution (its
:class:`~segmentdreamer.scene.cameras.TrainingCameraSampler` with :class:`~segmentdreamer.config.CameraConfig`'s
ranges of elevation, azimuth, radius and field of view, jitter included), on the trainer's backgrounds (black, or a
uniform random colour with the trainer's ``random_background_prob``), with the view-dependent prompt the trainer's
text conditioning interpolates between: the caption plus the suffix of the nearest of front, side and back.
So a prior trained on these examples is asked, in training, exactly the kind of question SCTD and the baselines
ask it. The renderer is the trainer's (gsplat on CUDA, the PyTorch one on a CPU).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor

from ..config import AugmentConfig, CameraConfig
from ..prior.conditioning import VIEW_SUFFIXES, wrap_azimuth
from ..scene.cameras import TrainingCameraSampler
from ..scene.gaussians import activate
from ..scene.render import render
from .scenes import caption_scene


@dataclass(frozen=True)
class ViewBatch:
    """B examples of one caption: images [B, 3, H, W] in [0, 1], their prompts, azimuths [B] (degrees, 0 = front)."""

    images: Tensor
    prompts: list[str]
    azimuths: Tensor


def view_prompt(caption: str, azimuth_deg: float) -> str:
    """The caption with the suffix of the nearest named view: front within 45 degrees of azimuth 0, back within 45
    of 180, side otherwise (the three prompts the trainer's conditioning interpolates between)."""
    a = abs(wrap_azimuth(azimuth_deg))
    view = "front" if a < 45.0 else "back" if a > 135.0 else "side"
    return caption + VIEW_SUFFIXES[view]


def render_views(caption: str, seed: int, count: int, resolution: int, generator: torch.Generator,
                 device: str | torch.device = "cpu", cameras: CameraConfig = CameraConfig(),
                 augment: AugmentConfig = AugmentConfig()) -> ViewBatch:
    """``count`` examples of the draw ``(caption, seed)``; ``generator`` (CPU) draws the cameras and backgrounds, so a
    data loader that owns one generator is reproducible."""
    sampler = TrainingCameraSampler(cameras, resolution, resolution, seed=int(torch.randint(2**31, (1,), generator=generator)))
    views = sampler.sample(count)
    random = torch.rand(count, generator=generator) < augment.random_background_prob
    backgrounds = torch.where(random[:, None], torch.rand(count, 3, generator=generator), torch.zeros(count, 3))
    gaussians = {k: v.detach().to(device) for k, v in activate(caption_scene(caption, seed)).items()}
    out = render(**gaussians, viewmats=views.viewmats.to(device), Ks=views.Ks.to(device), width=resolution,
                 height=resolution, backgrounds=backgrounds.to(device))
    return ViewBatch(out.rgb.clamp(0.0, 1.0), [view_prompt(caption, a) for a in views.azimuths.tolist()], views.azimuths)
