"""SCTD: Segmented Consistency Trajectory Distillation, the paper's loss (Sec. 4, Eq. 9-11; docs/method.md, "Losses").

Per iteration, for the B views of z0 [B, 4, h, w] and one (t, s, s_m) shared by the batch:

    z_sm  = a_sm z0 + s_sm eps*                                   fixed noise eps* (docs/method.md, "Notation")
    z~_t  = Phi(Phi(z_sm, s_m->s, ∅), s->t, ∅)   if t >= t_tau    Eq. 11: unconditional inversion
          = Phi(z_sm, s_m->t, ∅)                 otherwise
    e_t   = eps_cfg(z~_t, t)                                      CFG (or Perp-Neg), one batched call
    z^_s  = Phi(z~_t, t->s, e_t)
    A     = G^m(z^_s, s, ∅)     = Phi(z^_s, s->s_m, eps(z^_s, s, ∅))
    B     = G^m(z~_t, t, y)     = Phi(z~_t, t->s_m, e_t)
    C     = G^m(z~_t, t, ∅)  ~=  z_sm  (the approximation of Sec. 4.4)

``weighting="code"`` (default, the official code): grad = 0.1 (s_t/a_t) [(A - C) + k (C - B)],
the residual of Eq. 9 without its generative-prior term, handed to z0 (through J^T / a_sm when C is
computed, J = dC/dz0). ``weighting="paper"``: Eq. 10 taken literally as a loss,
b(t) (||sg(A) - C||^2 + k^2 ||C - sg(B)||^2), b(t) = 1 / (a_sm s_t/a_t - s_sm)^2. The two differ
in the sign of the self-consistency pull and in k vs k^2 (docs/method.md, "SCTD" step 7).

The cross weight k (:attr:`SCTDLoss.cross_weight`): our CFG is eps_neg + g (eps_text - eps_neg); the paper's
Eq. 7 writes eps(y) + w (eps(y) - eps(∅)), so the paper's w is g - 1 and its (w + 1) is g. The official code's
default path (code weighting, guided B) weights the cross term g + 1; wherever a switch selects the paper's
equations (``weighting="paper"``, or ``guided_cross_term=False``: the paper's G(., y)), k is the paper's w + 1 = g.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import partial
from typing import ClassVar

import torch
from torch import Tensor

from ..prior.base import Prior
from ..prior.guidance import guided_noise, unconditional_noise
from .base import LossInput, LossOut
from .common import RandomStateMixin, finite_gradient, floor_int, inject_gradient, randint, upcast, warmup_ratio
from .segments import segment_edges, segment_start
from .settings import SCTDSettings
from .solver import phi


@dataclass
class SCTDLoss(SCTDSettings, RandomStateMixin):
    """The loss; its hyperparameters, defaults and ranges are :class:`~.settings.SCTDSettings`."""

    Settings: ClassVar[type] = SCTDSettings
    seed: int = 0
    """The run seed (fresh noise and offsets); not a setting of the ``loss:`` block."""

    def __post_init__(self) -> None:
        self.validate_settings()
        self.edges = segment_edges(self.segmentation, self.num_segments, self.t_tau)
        self._init_random_state()

    def sample_timesteps(self, step: int) -> tuple[int, int, int]:
        """(t, s, s_m) for this iteration (docs/method.md, "SCTD" step 2), drawn from the noise generator."""
        r = warmup_ratio(step, self.warmup_steps)
        low = 20 + floor_int(480 * r) if self.t_schedule == "shift_both" else 20
        t = randint(low, 500 + floor_int(480 * r), self.noise_generator) + 1
        s_m = segment_start(self.edges, t)
        t = max(t, s_m + self.min_gap)
        s = randint(s_m + self.s_margin, t - self.s_margin, self.noise_generator)
        return t, s, s_m

    @property
    def cross_weight(self) -> float:
        """k, the cross-consistency weight: g + 1 on the official code's path (code weighting, guided B), else the
        paper's (w + 1) with its CFG scale w = g - 1, i.e. g (module docstring)."""
        official = self.weighting == "code" and self.guided_cross_term
        return self.guidance_scale + 1.0 if official else self.guidance_scale

    def two_step_inversion(self, t: int) -> bool:
        return t >= self.t_tau if self.inversion_threshold == "ge" else t > self.t_tau

    def __call__(self, prior: Prior, batch: LossInput) -> LossOut:
        z0 = batch.latents
        schedule, cond, g = prior.schedule, batch.cond, self.guidance_scale
        if self.fixed_noise is None:
            self.fixed_noise = self.offset_noise(tuple(z0.shape), self.noise_offset, self.noise_generator)
        eps_star = self.fixed_noise.to(device=z0.device, dtype=z0.dtype)
        t, s, s_m = self.sample_timesteps(batch.step)
        eps_empty = partial(unconditional_noise, prior.predict_noise, cond=cond)
        z_sm = schedule.alpha(s_m, z0) * z0 + schedule.sigma(s_m, z0) * eps_star
        with torch.no_grad():
            z_sm_const = z_sm.detach()
            if self.two_step_inversion(t):
                z_s_inv = phi(z_sm_const, s_m, s, eps_empty(z_sm_const, s_m), schedule)
                eps_inv = eps_empty(z_s_inv, s)
                z_t = phi(z_s_inv, s, t, eps_inv, schedule)
            else:
                eps_inv = eps_empty(z_sm_const, s_m)
                z_t = phi(z_sm_const, s_m, t, eps_inv, schedule)
            noise_t = guided_noise(prior.predict_noise, z_t, t, cond, g)
            z_hat_s = phi(z_t, t, s, noise_t.guided, schedule)
            self_target = phi(z_hat_s, s, s_m, eps_empty(z_hat_s, s), schedule)  # A
            cross_eps = noise_t.guided if self.guided_cross_term else noise_t.text
            cross_target = phi(z_t, t, s_m, cross_eps, schedule)  # B

        if self.approx:
            c = z_sm
        else:
            c = self._unconditional_consistency(prior, z_sm, z_t, t, s_m, cond)
        out = self._weighted(schedule, z0, c, self_target, cross_target, t, s_m)
        out.logs.update(t=t, s=s, s_m=s_m, two_step_inversion=int(self.two_step_inversion(t)))
        return out

    def _unconditional_consistency(self, prior: Prior, z_sm: Tensor, z_t_const: Tensor, t: int, s_m: int, cond) -> Tensor:
        """C = G^m(z~_t, t, ∅) with autograd through that UNet call and z~_t's linear dependence on z_sm.

        The inversion's UNet outputs are held constant, so z~_t = z~_t(const) + (a_t / a_sm)(z_sm - sg(z_sm)).
        """
        schedule = prior.schedule
        z_t = z_t_const + (schedule.alpha(t, z_sm) / schedule.alpha(s_m, z_sm)) * (z_sm - z_sm.detach())
        eps = unconditional_noise(prior.predict_noise, z_t, t, cond).to(z_t.dtype)
        return phi(z_t, t, s_m, eps, schedule)

    def _weighted(self, schedule, z0: Tensor, c: Tensor, a: Tensor, b: Tensor, t: int, s_m: int) -> LossOut:
        k = self.cross_weight
        c_const = c.detach()
        logs = {
            "self_consistency_norm": (a - c_const).norm().detach(),
            "cross_consistency_norm": (c_const - b).norm().detach(),
        }
        if self.weighting == "code":
            residual = (a - c_const) + k * (c_const - b)
            grad, hidden = finite_gradient(self.grad_scale * (schedule.sigma(t, z0) / schedule.alpha(t, z0)) * residual)
            logs["grad_norm"] = grad.norm().detach()
            if self.approx:
                return LossOut(loss=inject_gradient(z0, grad) + hidden, grad=grad, logs=logs)
            # d/dz0 of sum(C * sg(grad)) / a_sm is J^T grad / a_sm (equal to grad when C = z_sm)
            loss = (upcast(c) * upcast(grad)).sum() / schedule.alpha(s_m, upcast(z0))
            return LossOut(loss=loss, grad=None, logs=logs)
        a_sm, s_sm = schedule.alpha(s_m, z0), schedule.sigma(s_m, z0)
        weight = 1.0 / (a_sm * schedule.sigma(t, z0) / schedule.alpha(t, z0) - s_sm) ** 2
        loss = upcast(weight) * ((upcast(a) - upcast(c)).pow(2).sum() + k**2 * (upcast(c) - upcast(b)).pow(2).sum())
        return LossOut(loss=loss, grad=None, logs=logs)
