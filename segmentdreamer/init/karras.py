"""The Karras et al. (2022) sampler with Heun steps, as Point-E runs it (docs/method.md, "Cameras, init and renders" and "Point-E").

A *denoiser* maps (x [B, C, N], sigma [B]) to the predicted clean data x0 [B, C, N]. Guidance acts on
x0: the denoiser is called once on [x; x] with the conditional and unconditional inputs stacked, and
x0 = uncond + scale * (cond - uncond). The sample of a stage is its last x0 prediction.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import Tensor
from tqdm import tqdm

Denoiser = Callable[[Tensor, Tensor], Tensor]


def karras_sigmas(steps: int, sigma_min: float, sigma_max: float, rho: float = 7.0) -> Tensor:
    """(sigma_max^(1/rho) + i/(n-1) (sigma_min^(1/rho) - sigma_max^(1/rho)))^rho for i < n, then 0. [n + 1]."""
    ramp = torch.linspace(0, 1, steps, dtype=torch.float64)
    low, high = sigma_min ** (1 / rho), sigma_max ** (1 / rho)
    return torch.cat([(high + ramp * (low - high)) ** rho, torch.zeros(1, dtype=torch.float64)])


def guided(denoiser: Callable[[Tensor, Tensor], Tensor], scale: float) -> Denoiser:
    """x0 guidance: ``denoiser`` sees [x; x] and returns [x0_cond; x0_uncond]."""

    def guided_denoiser(x: Tensor, sigma: Tensor) -> Tensor:
        cond, uncond = denoiser(torch.cat([x, x]), torch.cat([sigma, sigma])).chunk(2)
        return uncond + scale * (cond - uncond)

    return guided_denoiser


@torch.no_grad()
def heun_sample(
    denoiser: Denoiser,
    shape: tuple[int, ...],
    steps: int,
    sigma_min: float,
    sigma_max: float,
    rho: float,
    s_churn: float = 0.0,
    s_tmin: float = 0.0,
    s_tmax: float = float("inf"),
    s_noise: float = 1.0,
    generator: torch.Generator | None = None,
    device: str | torch.device = "cpu",
    progress: bool = True,
    description: str = "karras",
) -> Tensor:
    """Returns the last x0 prediction [shape]. Noise is drawn from ``generator`` (CPU) at every step."""
    sigmas = karras_sigmas(steps, sigma_min, sigma_max, rho)
    x = (torch.randn(shape, generator=generator, dtype=torch.float64) * sigma_max).float().to(device)
    ones = torch.ones(shape[0], device=device)
    gamma_max = min(s_churn / steps, 2**0.5 - 1)
    denoised = x
    for i in tqdm(range(steps), desc=description, disable=not progress, leave=False):
        sigma, sigma_next = float(sigmas[i]), float(sigmas[i + 1])
        gamma = gamma_max if s_tmin <= sigma <= s_tmax else 0.0
        noise = torch.randn(shape, generator=generator).to(device) * s_noise
        sigma_hat = sigma * (gamma + 1)
        if gamma > 0:
            x = x + noise * (sigma_hat**2 - sigma**2) ** 0.5
        denoised = denoiser(x, sigma_hat * ones)
        slope = (x - denoised) / sigma_hat
        if sigma_next == 0:
            x = x + slope * (sigma_next - sigma_hat)
        else:
            x_euler = x + slope * (sigma_next - sigma_hat)
            slope_next = (x_euler - denoiser(x_euler, sigma_next * ones)) / sigma_next
            x = x + 0.5 * (slope + slope_next) * (sigma_next - sigma_hat)
    return denoised
