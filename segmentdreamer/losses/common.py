"""Pieces the losses share: the warm-up ratio, fp32 reductions, gradient injection, integer draws, the random state.

Kept apart from :mod:`.base` (the contract) because these need torch and the contract must not.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor


def warmup_ratio(step: int, warmup_steps: int = 1500) -> float:
    """r = 1 - min(step / warmup_steps, 1): 1 at the start, 0 from ``warmup_steps`` on (docs/method.md, "Notation")."""
    return 1.0 - min(step / warmup_steps, 1.0)


def upcast(x: Tensor) -> Tensor:
    """fp16 / bf16 -> fp32 for reductions; fp32 and fp64 stay as they are."""
    return x.float() if x.dtype in (torch.float16, torch.bfloat16) else x


def inject_gradient(latents: Tensor, grad: Tensor) -> Tensor:
    """0.5 * ||z0 - sg(z0 - grad)||^2 summed, whose gradient with respect to z0 is exactly ``grad``."""
    target = (latents - grad).detach()
    return 0.5 * (upcast(latents) - upcast(target)).pow(2).sum()


def finite_gradient(raw: Tensor) -> tuple[Tensor, Tensor]:
    """The official codes' ``torch.nan_to_num(raw)``, and what it hid: a 0-dim tensor, 0 where every entry of
    ``raw`` was finite, NaN where one was not.

    Added to the loss (``inject_gradient(z0, grad) + hidden``), it leaves the gradient as the official code has it
    and makes the iteration's loss non-finite, so the trainer's ``divergence.on_nan`` policy sees a prior that
    returned NaN or inf (stop: the run diverges; skip: no update) instead of training on zeros. No host sync.
    """
    hidden = torch.where(torch.isfinite(raw).all(), 0.0, float("nan"))
    return torch.nan_to_num(raw), hidden


def randint(low: int, high: int, generator: torch.Generator) -> int:
    """One integer uniform in [low, high) from ``generator`` (torch.randint semantics)."""
    return int(torch.randint(low, high, (1,), generator=generator).item())


def floor_int(value: float) -> int:
    return int(math.floor(value))


class RandomStateMixin:
    """Generators owned by a loss, saved and restored with its checkpoint.

    ``noise_generator`` (seeded with ``noise_seed``) draws the fixed noise and the timesteps of the
    methods that follow the official code's ``noise_gen``; ``run_generator`` (seeded with the run seed)
    draws the fresh noise and the noise offsets. Draws happen on the CPU, so CPU and GPU runs agree.
    """

    seed: int
    noise_seed: int

    def _init_random_state(self) -> None:
        self.noise_generator = torch.Generator().manual_seed(self.noise_seed)
        self.run_generator = torch.Generator().manual_seed(self.seed)
        self.fixed_noise: Tensor | None = None

    def state_dict(self) -> dict:
        return {
            "noise_generator": self.noise_generator.get_state(),
            "run_generator": self.run_generator.get_state(),
            "fixed_noise": self.fixed_noise,
        }

    def load_state_dict(self, state: dict) -> None:
        self.noise_generator.set_state(state["noise_generator"])
        self.run_generator.set_state(state["run_generator"])
        self.fixed_noise = state["fixed_noise"]

    def offset_noise(self, shape: tuple[int, ...], offset: float, generator: torch.Generator) -> Tensor:
        """randn(shape) from ``generator`` + offset * randn(1, C, 1, 1) from the run generator (CPU, fp32)."""
        noise = torch.randn(shape, generator=generator)
        if offset:
            noise = noise + offset * torch.randn((1, shape[1], 1, 1), generator=self.run_generator)
        return noise
