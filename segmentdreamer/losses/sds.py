"""SDS: Score Distillation Sampling (DreamFusion), as threestudio implements it (docs/method.md, "Losses").

    t ~ U[20, 980] per view, eps ~ N(0, I) fresh,  z_t = a_t z0 + s_t eps
    dL/dz0 = (1 - abar_t) (eps_cfg(z_t, t) - eps) / B        with g = 100
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

import torch

from ..prior.base import Prior
from ..prior.guidance import guided_noise
from .base import LossInput, LossOut
from .common import RandomStateMixin, finite_gradient, inject_gradient
from .settings import SDSSettings


@dataclass
class SDSLoss(SDSSettings, RandomStateMixin):
    """The loss; its hyperparameters, defaults and ranges are :class:`~.settings.SDSSettings`."""

    Settings: ClassVar[type] = SDSSettings
    seed: int = 0
    """The run seed (fresh noise and offsets); not a setting of the ``loss:`` block."""

    def __post_init__(self) -> None:
        self.validate_settings()
        self._init_random_state()

    def __call__(self, prior: Prior, batch: LossInput) -> LossOut:
        z0, schedule = batch.latents, prior.schedule
        bsz = z0.shape[0]
        t = torch.randint(self.t_min, self.t_max + 1, (bsz,), generator=self.run_generator)
        noise = self.offset_noise(tuple(z0.shape), 0.0, self.run_generator).to(device=z0.device, dtype=z0.dtype)
        with torch.no_grad():
            z_t = schedule.alpha(t, z0) * z0.detach() + schedule.sigma(t, z0) * noise
            grad, hidden = finite_gradient(schedule.one_minus_alphas_cumprod(t, z0) * self.score(prior, z_t, t, noise, batch) / bsz)
        logs = {"t": t.tolist(), "grad_norm": grad.norm()}
        return LossOut(loss=inject_gradient(z0, grad) + hidden, grad=grad, logs=logs)

    def score(self, prior: Prior, z_t: torch.Tensor, t: torch.Tensor, noise: torch.Tensor, batch: LossInput) -> torch.Tensor:
        """What (1 - abar_t) / B weighs into the gradient [B, C, h, w]: eps_cfg(z_t, t) - eps (one UNet call of 2B)."""
        return guided_noise(prior.predict_noise, z_t, t, batch.cond, self.guidance_scale).guided - noise
