"""GCS: Guided Consistency Sampling (Connect3D), as its official code (docs/method.md, "Losses"); a real objective.

    delta = int(80 + ceil(20 r));  indices t ~ U[20 + 480r, 500 + 480r), t = max(t, delta + 1),
    s = max(t - delta, 1),  e ~ U[max(t - 2 delta, 0), max(t - delta - 10, 1)), e = max(e, 1);
    each timestep is its index + 1.

The trajectory keeps the gradient through the solver's linear coefficients (UNet outputs detached):

    z_e  = a_e z0 + s_e eps                    fresh eps (randn + 0.1 offset); fixed eps* with Perp-Neg
    z~_s = Phi(z_e, e -> s, eps(z_e, e, ∅)),   z~_t = Phi(z~_s, s -> t, eps(z~_s, s, ∅))
    e_t  = eps_cfg(z~_t, t),                   z^_s = Phi(z~_t, t -> s, e_t)
    L_CC = ||Phi(z~_t, t -> e, eps(z~_t, t, ∅)) - sg(Phi(z^_s, s -> e, eps(z^_s, s, ∅)))||^2 / B
    x_e  = Phi(z~_t, t -> e, e_t);  x0_perp = x0(x_e, eps_cfg(x_e, e));  x0_null = x0(z_e, eps(z_e, e, ∅))
    L_CG = ||sg(x0_perp) - x0_null||^2 / B
    L_CP = ||img - sg(img + D(x0_perp) - D(x0_null))||^2 / B          (D: VAE decoder, clamped to [0, 1])
    loss = 0.1 (1.0 L_CC + 0.5 L_CG + 0.5 L_CP)

L_CP compares the RGB render even on iterations whose latents encode the disparity map: the official
code does so, and so do we. GCS trains with BEG (:mod:`.beg`), which the trainer applies.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import ClassVar

import torch
from torch import Tensor

from ..prior.base import Prior
from ..prior.guidance import guided_noise, unconditional_noise
from .base import LossInput, LossOut
from .common import RandomStateMixin, floor_int, randint, upcast, warmup_ratio
from .settings import GCSSettings
from .solver import phi, predict_x0


@dataclass
class GCSLoss(GCSSettings, RandomStateMixin):
    """The loss; its hyperparameters, defaults and ranges are :class:`~.settings.GCSSettings`."""

    Settings: ClassVar[type] = GCSSettings
    seed: int = 0
    """The run seed (fresh noise and offsets); not a setting of the ``loss:`` block."""

    def __post_init__(self) -> None:
        self.validate_settings()
        self._init_random_state()

    def sample_timesteps(self, step: int) -> tuple[int, int, int]:
        """(t, s, e) with e <= s < t, drawn from the noise generator."""
        r = warmup_ratio(step, self.warmup_steps)
        delta = int(self.delta_t + math.ceil((self.delta_t_start - self.delta_t) * r))
        t = randint(20 + floor_int(480 * r), 500 + floor_int(480 * r), self.noise_generator)
        t = max(t, delta + 1)
        s = max(t - delta, 1)
        e = randint(max(t - 2 * delta, 0), max(t - delta - 10, 1), self.noise_generator)
        return t + 1, s + 1, max(e, 1) + 1

    def _noise(self, z0: Tensor, perp_neg: bool) -> Tensor:
        if perp_neg:
            if self.fixed_noise is None:
                self.fixed_noise = self.offset_noise(tuple(z0.shape), self.noise_offset, self.noise_generator)
            return self.fixed_noise
        return self.offset_noise(tuple(z0.shape), self.noise_offset, self.run_generator)

    def __call__(self, prior: Prior, batch: LossInput) -> LossOut:
        if batch.images is None:
            raise ValueError("GCS needs the rendered images (LossInput.images) for its pixel term L_CP")
        z0, images, schedule, cond = batch.latents, batch.images, prior.schedule, batch.cond
        bsz, g = z0.shape[0], self.guidance_scale
        noise = self._noise(z0, cond.uses_perp_neg).to(device=z0.device, dtype=z0.dtype)
        t, s, e = self.sample_timesteps(batch.step)

        def eps_empty(x: Tensor, at: int) -> Tensor:
            with torch.no_grad():
                return unconditional_noise(prior.predict_noise, x.detach(), at, cond).to(x.dtype)

        z_e = schedule.alpha(e, z0) * z0 + schedule.sigma(e, z0) * noise
        eps_e = eps_empty(z_e, e)
        z_s = phi(z_e, e, s, eps_e, schedule)
        z_t = phi(z_s, s, t, eps_empty(z_s, s), schedule)
        with torch.no_grad():
            eps_t = guided_noise(prior.predict_noise, z_t.detach(), t, cond, g).guided
            z_hat_s = phi(z_t.detach(), t, s, eps_t, schedule)
            cc_target = phi(z_hat_s, s, e, eps_empty(z_hat_s, s), schedule)
            x_e = phi(z_t.detach(), t, e, eps_t, schedule)
            x0_perp = predict_x0(x_e, e, guided_noise(prior.predict_noise, x_e, e, cond, g).guided, schedule)
        cc_pred = phi(z_t, t, e, eps_empty(z_t, t), schedule)
        x0_null = predict_x0(z_e, e, eps_e, schedule)

        loss_cc = (upcast(cc_pred) - upcast(cc_target)).pow(2).sum() / bsz
        loss_cg = (upcast(x0_perp) - upcast(x0_null)).pow(2).sum() / bsz
        with torch.no_grad():
            decoded_perp, decoded_null = prior.decode(torch.cat([x0_perp, x0_null.detach()])).chunk(2)
            pixel_target = (images + decoded_perp.to(images.dtype) - decoded_null.to(images.dtype)).detach()
        loss_cp = (upcast(images) - upcast(pixel_target)).pow(2).sum() / bsz
        loss = self.loss_scale * (self.weight_cc * loss_cc + self.weight_cg * loss_cg + self.weight_cp * loss_cp)
        logs = {"t": t, "s": s, "e": e, "loss_cc": loss_cc.detach(), "loss_cg": loss_cg.detach(), "loss_cp": loss_cp.detach()}
        return LossOut(loss=loss, grad=None, logs=logs)  # non-finite values stay visible (on_nan decides)
