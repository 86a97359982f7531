"""Point-E's Gaussian diffusion: schedules, data scaling and the x0 prediction (docs/method.md, "Point-E").

1024 discrete steps; the base uses the cosine schedule (offset 0.008, betas capped at 0.999), the
upsampler linear betas (1000/1024) x (1e-4 .. 0.02). Data live in a scaled space: xyz x 2,
rgb / 255 x 2 - 1. The models predict eps plus learned-range variance values; only the x0 prediction
(clipped to [-1, 1]) is needed by the Karras sampler, the variance is given for completeness.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch
from torch import Tensor

CHANNEL_SCALES = np.array([2.0, 2.0, 2.0, 2.0 / 255.0, 2.0 / 255.0, 2.0 / 255.0])
CHANNEL_BIASES = np.array([0.0, 0.0, 0.0, -1.0, -1.0, -1.0])


def cosine_betas(steps: int = 1024, offset: float = 0.008, max_beta: float = 0.999) -> np.ndarray:
    def abar(u: float) -> float:
        return math.cos((u + offset) / (1 + offset) * math.pi / 2) ** 2

    return np.array([min(1 - abar((i + 1) / steps) / abar(i / steps), max_beta) for i in range(steps)], dtype=np.float64)


def linear_betas(steps: int = 1024) -> np.ndarray:
    scale = 1000.0 / steps
    return np.linspace(scale * 1e-4, scale * 0.02, steps, dtype=np.float64)


@dataclass
class PointDiffusion:
    """Tables of one stage's diffusion (float64 numpy, as the original)."""

    betas: np.ndarray

    @classmethod
    def cosine(cls) -> PointDiffusion:
        return cls(cosine_betas())

    @classmethod
    def linear(cls) -> PointDiffusion:
        return cls(linear_betas())

    @property
    def alphas_cumprod(self) -> np.ndarray:
        return np.cumprod(1.0 - self.betas)

    @property
    def num_timesteps(self) -> int:
        return len(self.betas)

    def sigma_to_t(self, sigma: float) -> int:
        """Karras sigma -> discrete step: abar = 1 / (sigma^2 + 1), interpolated to a fractional index, floored."""
        abar = 1.0 / (sigma**2 + 1.0)
        table = self.alphas_cumprod
        if abar > table[0]:
            return 0
        if abar <= table[-1]:
            return self.num_timesteps - 1
        return int(np.interp(abar, table[::-1], np.arange(self.num_timesteps)[::-1]))

    def predict_x0(self, x: Tensor, t: Tensor, eps: Tensor, clip: bool = True) -> Tensor:
        """x0 = sqrt(1/abar_t) x - sqrt(1/abar_t - 1) eps for x, eps [B, C, N], t LongTensor [B]."""
        abar = torch.as_tensor(self.alphas_cumprod, device=x.device)[t].reshape(-1, 1, 1)
        x0 = (torch.sqrt(1.0 / abar) * x.double() - torch.sqrt(1.0 / abar - 1.0) * eps.double()).to(x.dtype)
        return x0.clamp(-1.0, 1.0) if clip else x0

    def learned_log_variance(self, t: Tensor, values: Tensor) -> Tensor:
        """Learned-range variance: frac * log(beta_t) + (1 - frac) * log(posterior variance), frac = (v + 1) / 2."""
        abar = self.alphas_cumprod
        abar_prev = np.append(1.0, abar[:-1])
        posterior = self.betas * (1.0 - abar_prev) / (1.0 - abar)
        min_log = torch.as_tensor(np.log(np.append(posterior[1], posterior[1:])), device=values.device)[t].reshape(-1, 1, 1)
        max_log = torch.as_tensor(np.log(self.betas), device=values.device)[t].reshape(-1, 1, 1)
        frac = (values.double() + 1.0) / 2.0
        return (frac * max_log + (1.0 - frac) * min_log).to(values.dtype)


def scale_points(points: Tensor) -> Tensor:
    """Unscaled (xyz, rgb 0..255) [B, 6, N] -> the diffusion's space."""
    return points * torch.as_tensor(CHANNEL_SCALES, dtype=points.dtype, device=points.device)[None, :, None] + torch.as_tensor(
        CHANNEL_BIASES, dtype=points.dtype, device=points.device
    )[None, :, None]


def unscale_points(scaled: Tensor) -> Tensor:
    """The diffusion's space -> xyz and rgb in 0..255, [B, 6, N]."""
    scales = torch.as_tensor(CHANNEL_SCALES, dtype=scaled.dtype, device=scaled.device)[None, :, None]
    biases = torch.as_tensor(CHANNEL_BIASES, dtype=scaled.dtype, device=scaled.device)[None, :, None]
    return (scaled - biases) / scales
