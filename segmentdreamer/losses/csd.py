"""CSD: Classifier Score Distillation (Yu et al., ICLR 2024; docs/method.md, "Losses").

    t ~ U[20, 980] per view, eps ~ N(0, I) fresh,  z_t = a_t z0 + s_t eps
    dL/dz0 = (1 - abar_t) [w_text (eps(z_t; text) - eps(z_t; empty)) - w_neg (eps(z_t; negative) - eps(z_t; empty))] / B

SDS's gradient with its generative term (eps(z_t; text) - eps) dropped: only the implicit classifier's score pulls.
Timesteps, noise and weighting are SDS's (the loss derives from it); one UNet call of batch 2B (3B with the negative
term).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

import torch

from ..prior.base import Prior
from ..prior.guidance import timesteps_for
from .base import LossInput, LossOut
from .sds import SDSLoss
from .settings import CSDSettings


@dataclass
class CSDLoss(CSDSettings, SDSLoss):
    """The loss; its hyperparameters, defaults and ranges are :class:`~.settings.CSDSettings`."""

    Settings: ClassVar[type] = CSDSettings

    def __call__(self, prior: Prior, batch: LossInput) -> LossOut:
        if batch.cond.uses_perp_neg:
            raise ValueError("CSD has no Perp-Neg form (perp_neg: false; its negative prompt enters as negative_scale)")
        return super().__call__(prior, batch)

    def score(self, prior: Prior, z_t: torch.Tensor, t: torch.Tensor, noise: torch.Tensor, batch: LossInput) -> torch.Tensor:
        """w_text (eps(text) - eps(empty)) - w_neg (eps(negative) - eps(empty)) [B, C, h, w], one UNet call; the
        drawn noise does not enter (no generative term)."""
        cond, bsz = batch.cond, z_t.shape[0]
        branches = [cond.text, cond.empty] + ([cond.negative] if self.negative_scale else [])
        ts = timesteps_for(t, bsz)
        eps = prior.predict_noise(z_t.repeat(len(branches), 1, 1, 1), ts.repeat(len(branches)), torch.cat(branches))
        text, empty, *negative = eps.chunk(len(branches))
        score = self.guidance_scale * (text - empty)
        return score - self.negative_scale * (negative[0] - empty) if negative else score
