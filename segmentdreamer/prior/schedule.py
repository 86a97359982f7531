"""The DDPM noise schedule of the prior, as the tables a_t, s_t and lambda_t (docs/method.md, "Notation").

Timesteps are integers t in [0, T-1] and every table is indexed ``alphas_cumprod[t]`` (never t-1):

    a_t = sqrt(alphas_cumprod[t]),  s_t = sqrt(1 - alphas_cumprod[t]),  lambda_t = ln(a_t / s_t).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor

Timesteps = int | Tensor
"""A timestep: a Python int (shared by the batch) or a LongTensor of shape [N] (one per sample)."""


@dataclass(frozen=True)
class NoiseSchedule:
    """Variance-preserving schedule tables.

    Attributes:
        alphas_cumprod: [T] float64, the cumulative product of (1 - beta).
    """

    alphas_cumprod: Tensor

    @classmethod
    def scaled_linear(
        cls, beta_start: float = 0.00085, beta_end: float = 0.012, num_train_timesteps: int = 1000
    ) -> NoiseSchedule:
        """Stable Diffusion's ``scaled_linear`` betas (SD 2.1-base: 0.00085..0.012 over 1000 steps)."""
        betas = torch.linspace(beta_start**0.5, beta_end**0.5, num_train_timesteps, dtype=torch.float64) ** 2
        return cls(torch.cumprod(1.0 - betas, dim=0))

    @classmethod
    def from_scheduler(cls, scheduler) -> NoiseSchedule:
        """Tables of a diffusers scheduler (its ``alphas_cumprod``), kept in float64."""
        return cls(scheduler.alphas_cumprod.detach().to(torch.float64).cpu())

    @property
    def num_timesteps(self) -> int:
        return int(self.alphas_cumprod.shape[0])

    def alpha(self, t: Timesteps, like: Tensor) -> Tensor:
        """a_t broadcastable against ``like`` ([N, 1, 1, 1] for a tensor t, [] for an int t)."""
        return self._gather(self.alphas_cumprod.sqrt(), t, like)

    def sigma(self, t: Timesteps, like: Tensor) -> Tensor:
        """s_t = sqrt(1 - abar_t), broadcastable against ``like``."""
        return self._gather((1.0 - self.alphas_cumprod).sqrt(), t, like)

    def log_snr(self, t: Timesteps, like: Tensor) -> Tensor:
        """lambda_t = ln(a_t / s_t), broadcastable against ``like``."""
        table = 0.5 * (self.alphas_cumprod.log() - torch.log1p(-self.alphas_cumprod))
        return self._gather(table, t, like)

    def one_minus_alphas_cumprod(self, t: Timesteps, like: Tensor) -> Tensor:
        """1 - abar_t (= s_t^2), the SDS weighting of threestudio."""
        return self._gather(1.0 - self.alphas_cumprod, t, like)

    def _gather(self, table: Tensor, t: Timesteps, like: Tensor) -> Tensor:
        if isinstance(t, int):
            if not 0 <= t < self.num_timesteps:
                raise IndexError(f"timestep {t} outside [0, {self.num_timesteps - 1}]")
            return table[t].to(device=like.device, dtype=like.dtype)
        t = t.to(device=table.device, dtype=torch.long)
        if t.numel() and (int(t.min()) < 0 or int(t.max()) >= self.num_timesteps):
            raise IndexError(f"timesteps outside [0, {self.num_timesteps - 1}]: {t.tolist()}")
        values = table[t].to(device=like.device, dtype=like.dtype)
        return values.reshape(-1, *([1] * (like.dim() - 1)))
