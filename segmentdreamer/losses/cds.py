"""CDS: Consistency Distillation Sampling (Consistent3D), its official code ported to 3DGS (docs/method.md, "Losses").

Variance-exploding view: sigma_t = s_t / a_t, z_t = z0 + sigma_t eps*, and the UNet sees a_t z_t.

    p      = min(step / (0.6 total_steps), 1)
    t_next = round(700 - 600 sqrt(p)) clamped to [100, 880]   (shared by the batch)
    t      = t_next + U[100, 300) per view, clamped to [100, 980]
    eps_t    = eps_cfg(z_t, t)
    z_next   = z_t + (sigma_next - sigma_t) eps_t
    eps_next = eps_cfg(z_next, t_next)
    dL/dz0   = clamp(eps_t - eps_next, -c, c) / B,   c = 2 + 6 p

so z0 moves along +(eps_next - eps_t). CFG in Consistent3D's form: eps(text) + g (eps(text) - eps(uncond)).
Port choices (also in the Table 1 caption): the unconditional branch is our negative prompt
(Consistent3D used the empty prompt); g = 30 for the table (the paper ran 20-40; Consistent3D annealed
100 -> 50). Perp-Neg is not part of Consistent3D and is not offered here.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import ClassVar

import torch
from torch import Tensor

from ..prior.base import Prior
from ..prior.guidance import classifier_free_guidance
from .base import LossInput, LossOut
from .common import RandomStateMixin, finite_gradient, inject_gradient
from .settings import CDSSettings


@dataclass
class CDSLoss(CDSSettings, RandomStateMixin):
    """The loss; its hyperparameters, defaults and ranges are :class:`~.settings.CDSSettings`."""

    Settings: ClassVar[type] = CDSSettings
    seed: int = 0
    """The run seed (fresh noise and offsets); not a setting of the ``loss:`` block."""

    def __post_init__(self) -> None:
        self.validate_settings()
        self._init_random_state()

    def progress(self, step: int, total_steps: int) -> float:
        return min(step / max(self.anneal_fraction * total_steps, 1.0), 1.0)

    def sample_timesteps(self, step: int, total_steps: int, batch_size: int) -> tuple[int, Tensor]:
        """(t_next shared by the batch, t LongTensor [B])."""
        p = self.progress(step, total_steps)
        t_next = round(self.t_next_start + (self.t_next_end - self.t_next_start) * math.sqrt(p))
        t_next = min(max(t_next, 100), 880)
        gaps = torch.randint(self.t_gap_min, self.t_gap_max, (batch_size,), generator=self.run_generator)
        return t_next, (t_next + gaps).clamp(100, 980)

    def __call__(self, prior: Prior, batch: LossInput) -> LossOut:
        z0, schedule, cond = batch.latents, prior.schedule, batch.cond
        bsz = z0.shape[0]
        if cond.uses_perp_neg:
            raise ValueError("CDS has no Perp-Neg form; run it with perp_neg off")
        if self.fixed_noise is None:
            self.fixed_noise = torch.randn(tuple(z0.shape[1:]), generator=self.noise_generator)
        eps_star = self.fixed_noise.to(device=z0.device, dtype=z0.dtype).expand_as(z0)
        t_next, t = self.sample_timesteps(batch.step, batch.total_steps, bsz)

        def ve_sigma(at: int | Tensor) -> Tensor:
            return schedule.sigma(at, z0) / schedule.alpha(at, z0)

        def eps_guided(z_ve: Tensor, at: int | Tensor) -> Tensor:
            noise = classifier_free_guidance(prior.predict_noise, schedule.alpha(at, z0) * z_ve, at, cond, 1.0)
            return noise.text + self.guidance_scale * (noise.text - noise.negative)

        with torch.no_grad():
            z_t = z0.detach() + ve_sigma(t) * eps_star
            eps_t = eps_guided(z_t, t)
            z_next = z_t + (ve_sigma(t_next) - ve_sigma(t)) * eps_t
            eps_next = eps_guided(z_next, t_next)
            bound = self.clamp_start + (self.clamp_end - self.clamp_start) * self.progress(batch.step, batch.total_steps)
            grad, hidden = finite_gradient((eps_t - eps_next).clamp(-bound, bound) / bsz)
        logs = {"t": t.tolist(), "t_next": t_next, "clamp": bound, "grad_norm": grad.norm()}
        return LossOut(loss=inject_gradient(z0, grad) + hidden, grad=grad, logs=logs)
