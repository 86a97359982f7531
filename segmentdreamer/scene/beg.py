"""BEG: Brightness-Equalized Generation (Connect3D), a hook the trainer calls each iteration (docs/method.md, "Losses").

For ``start < step < end``: per view take the ``quantile`` of the per-pixel channel mean over the
pixels brighter than 0, then the ``quantile`` of those values over the views; if it exceeds
``threshold``, multiply the colour features (f_dc, f_rest) by ``factor`` and zero their Adam moments.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

import torch
from torch import Tensor


@dataclass
class BrightnessEqualizer:
    start: int = 1000
    end: int = 4500
    quantile: float = 0.85
    threshold: float = 0.9
    factor: float = 0.8

    def brightness(self, images: Tensor) -> Tensor:
        """The batch brightness statistic (0-dim) of images [B, 3, H, W] in [0, 1]."""
        per_view = []
        for view in images.detach().float().mean(dim=1).flatten(1):
            lit = view[view > 0]
            per_view.append(torch.quantile(lit, self.quantile) if lit.numel() else view.new_zeros(()))
        return torch.quantile(torch.stack(per_view), self.quantile)

    def triggered(self, images: Tensor, step: int) -> bool:
        """Whether to equalize at this step (reads one number from the device when in the window)."""
        if not self.start < step < self.end:
            return False
        return bool(self.brightness(images) > self.threshold)

    @torch.no_grad()
    def equalize(self, colour_params: Iterable[Tensor], optimizers: Iterable[torch.optim.Optimizer]) -> None:
        """Scale the colour features by ``factor`` in place and zero their Adam moments (in any optimizer)."""
        optimizers = list(optimizers)
        for param in colour_params:
            param.mul_(self.factor)
            for optimizer in optimizers:
                state = optimizer.state.get(param, {})
                for moment in ("exp_avg", "exp_avg_sq"):
                    if moment in state:
                        state[moment].zero_()
