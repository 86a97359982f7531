"""ISM: Interval Score Matching (LucidDreamer), as its official code (docs/method.md, "Losses").

    delta = int(80 + 20 r);  index i ~ U[20, 500 + 480 r),  t = i + 1,  s = max(i - delta, 0) + 1
    x_1 = a_1 z0 + s_1 eps                                  fresh eps (randn + 0.1 offset)
    x_s = DDIM inversion of x_1 with eps(., ∅) in jumps of 200 (1 -> 201 -> ... -> s, at most 5)
    x_t = Phi(x_s, s -> t, eps(x_s, s, ∅))                  that eps is the target
    grad = 0.1 (s_t / a_t) (eps_cfg(x_t, t) - eps(x_s, s, ∅))     g = 7.5
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import partial
from typing import ClassVar

import torch

from ..prior.base import Prior
from ..prior.guidance import guided_noise, unconditional_noise
from .base import LossInput, LossOut
from .common import RandomStateMixin, finite_gradient, floor_int, inject_gradient, randint, warmup_ratio
from .settings import ISMSettings
from .solver import invert


@dataclass
class ISMLoss(ISMSettings, RandomStateMixin):
    """The loss; its hyperparameters, defaults and ranges are :class:`~.settings.ISMSettings`."""

    Settings: ClassVar[type] = ISMSettings
    seed: int = 0
    """The run seed (fresh noise and offsets); not a setting of the ``loss:`` block."""

    def __post_init__(self) -> None:
        self.validate_settings()
        self._init_random_state()

    def sample_timesteps(self, step: int) -> tuple[int, int]:
        """(t, s): the interval end points of this iteration."""
        r = warmup_ratio(step, self.warmup_steps)
        delta = int(self.delta_t + (self.delta_t_start - self.delta_t) * r)
        index = randint(20, 500 + floor_int(480 * r), self.run_generator)
        return index + 1, max(index - delta, 0) + 1

    def inversion_timesteps(self, s: int) -> list[int]:
        """1, 1 + jump, ... capped at s, at most ``xs_max_steps`` jumps."""
        steps = [1]
        while steps[-1] < s and len(steps) <= self.xs_max_steps:
            steps.append(min(steps[-1] + self.xs_jump, s))
        return steps

    def __call__(self, prior: Prior, batch: LossInput) -> LossOut:
        z0, schedule, cond = batch.latents, prior.schedule, batch.cond
        t, s = self.sample_timesteps(batch.step)
        noise = self.offset_noise(tuple(z0.shape), self.noise_offset, self.run_generator).to(device=z0.device, dtype=z0.dtype)

        eps_empty = partial(unconditional_noise, prior.predict_noise, cond=cond)
        with torch.no_grad():
            x_1 = schedule.alpha(1, z0) * z0.detach() + schedule.sigma(1, z0) * noise
            to_s = self.inversion_timesteps(s)
            x_s = invert(x_1, to_s, eps_empty, schedule)[0] if len(to_s) > 1 else x_1
            x_t, target = invert(x_s, [s, t], eps_empty, schedule)
            eps_t = guided_noise(prior.predict_noise, x_t, t, cond, self.guidance_scale).guided
            weight = self.grad_scale * schedule.sigma(t, z0) / schedule.alpha(t, z0)
            grad, hidden = finite_gradient(weight * (eps_t - target))
        logs = {"t": t, "s": s, "grad_norm": grad.norm()}
        return LossOut(loss=inject_gradient(z0, grad) + hidden, grad=grad, logs=logs)
