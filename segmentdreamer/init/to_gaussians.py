"""Point cloud -> initial Gaussians (docs/method.md, "Cameras, init and renders").

The 4096 Point-E points are moved into the trainer's frame (y -> -y, z -> z + 0.15), then ONE set of 20
offsets (radius U(0, 0.05), polar U(0, pi), azimuth U(0, 2 pi)) is added to every point: 81,920
Gaussians, grey (127/255), isotropic 3-NN scales, identity rotation, opacity 0.1.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor

from ..scene.gaussians import from_points
from .settings import InitSettings


def ball_offsets(count: int, radius: float, generator: torch.Generator) -> Tensor:
    """[count, 3]: radius U(0, radius), polar U(0, pi), azimuth U(0, 2 pi) (as the official code)."""
    r = torch.rand(count, generator=generator) * radius
    polar = torch.rand(count, generator=generator) * math.pi
    azimuth = torch.rand(count, generator=generator) * 2 * math.pi
    return torch.stack([r * torch.sin(polar) * torch.cos(azimuth), r * torch.sin(polar) * torch.sin(azimuth), r * torch.cos(polar)], -1)


def pointe_frame(xyz: Tensor, z_offset: float = 0.15) -> Tensor:
    """Point-E's frame -> the trainer's: y flipped, lifted by ``z_offset``. [N, 3]."""
    moved = xyz.clone()
    moved[:, 1] = -moved[:, 1]
    moved[:, 2] = moved[:, 2] + z_offset
    return moved


def points_to_gaussians(xyz: Tensor, seed: int = 0, copies: int = InitSettings.copies, radius: float = 0.05) -> torch.nn.ParameterDict:
    """Gaussians [N * copies] around the (already moved) points [N, 3]."""
    offsets = ball_offsets(copies, radius, torch.Generator().manual_seed(seed))
    return from_points((xyz[None] + offsets[:, None]).reshape(-1, 3), opacity=0.1)
