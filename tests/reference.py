"""Independent references: for the loss tests a toy analytic noise predictor and hand-written formulas; for
the renderer a dense compositor (every pixel against every Gaussian, no tiles).

Nothing here imports the package's solver: the schedule is rebuilt from SD 2.1-base's betas, and the
DDIM step is written out, so a test that compares a loss with these formulas can fail.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import torch
from torch import Tensor

from segmentdreamer.prior.conditioning import PromptEmbeddings
from segmentdreamer.prior.schedule import NoiseSchedule

BETAS = torch.linspace(0.00085**0.5, 0.012**0.5, 1000, dtype=torch.float64) ** 2
ABAR = torch.cumprod(1.0 - BETAS, 0)


def a(t: int) -> float:
    return float(ABAR[t].sqrt())


def sig(t: int) -> float:
    return float((1.0 - ABAR[t]).sqrt())


def col(values, like: Tensor) -> Tensor:
    """Per-sample scalars [N] -> [N, 1, 1, 1]."""
    return torch.as_tensor(values, dtype=like.dtype).reshape(-1, 1, 1, 1)


def ddim(x: Tensor, t, u, eps: Tensor) -> Tensor:
    """Phi written out: a_u (x - s_t eps) / a_t + s_u eps (t, u ints or lists per sample)."""
    at = col([a(v) for v in t], x) if isinstance(t, list) else a(t)
    st = col([sig(v) for v in t], x) if isinstance(t, list) else sig(t)
    au = col([a(v) for v in u], x) if isinstance(u, list) else a(u)
    su = col([sig(v) for v in u], x) if isinstance(u, list) else sig(u)
    return au * (x - st * eps) / at + su * eps


@dataclass
class ToyPrior:
    """eps(x, t, emb) = c(t) M x + b(emb, t), linear in x so every step is computable by hand.

    c(t) = 0.3 + t / 2000 per sample; M a fixed 4x4 channel mix; b = bias_scale (1 + t/1000) mean_L(emb)[:4].
    Records every call's (batch size, timesteps).
    """

    bias_scale: float = 1.0
    schedule: NoiseSchedule = field(default_factory=lambda: NoiseSchedule(ABAR.clone()))
    calls: list = field(default_factory=list)
    decode_calls: int = 0

    def __post_init__(self) -> None:
        gen = torch.Generator().manual_seed(123)
        self.mix = 0.5 * torch.randn(4, 4, generator=gen, dtype=torch.float64)
        self.colour = torch.randn(3, 4, generator=gen, dtype=torch.float64)

    def scale(self, t) -> Tensor:
        return 0.3 + torch.as_tensor(t, dtype=torch.float64) / 2000.0

    def eps(self, x: Tensor, t, emb: Tensor) -> Tensor:
        """The toy prediction for per-sample timesteps t (list or tensor [N]) without recording."""
        t = torch.as_tensor(t, dtype=torch.float64).reshape(-1).to(x.device)
        mixed = torch.einsum("ij,njhw->nihw", self.mix.to(x), x)
        bias = self.bias_scale * (1.0 + t / 1000.0).reshape(-1, 1).to(x.dtype) * emb.mean(1)[:, :4].to(x)
        return self.scale(t).to(x).reshape(-1, 1, 1, 1) * mixed + bias[:, :, None, None]

    def predict_noise(self, x: Tensor, t: Tensor, emb: Tensor) -> Tensor:
        self.calls.append((x.shape[0], t.tolist()))
        return self.eps(x, t, emb)

    def decode(self, latents: Tensor) -> Tensor:
        self.decode_calls += 1
        rgb = torch.sigmoid(torch.einsum("ij,njhw->nihw", self.colour.to(latents), latents))
        return torch.nn.functional.interpolate(rgb, scale_factor=8, mode="nearest").clamp(0, 1)


def toy_embeddings(length: int = 5, dim: int = 8, seed: int = 7) -> PromptEmbeddings:
    gen = torch.Generator().manual_seed(seed)
    parts = {name: torch.randn(length, dim, generator=gen, dtype=torch.float64) for name in ("front", "side", "back", "negative", "empty")}
    return PromptEmbeddings(**parts)


def cfg(toy: ToyPrior, x: Tensor, t, cond, g: float) -> Tensor:
    """eps(neg) + g (eps(text) - eps(neg)) with per-sample t."""
    ts = t if isinstance(t, list) else [t] * x.shape[0]
    neg, text = toy.eps(x, ts, cond.negative), toy.eps(x, ts, cond.text)
    return neg + g * (text - neg)


def empty_eps(toy: ToyPrior, x: Tensor, t: int, cond) -> Tensor:
    return toy.eps(x, [t] * x.shape[0], cond.empty)


def composite_dense(means2d: Tensor, conics: Tensor, opacities: Tensor, features: Tensor, depths: Tensor, visible: Tensor,
                    width: int, height: int) -> tuple[Tensor, Tensor]:
    """3DGS front-to-back compositing written out densely: every pixel centre [H*W] against every visible
    Gaussian [N] in depth order; alpha = min(o exp(-sigma), 0.999), skipped under 1/255 or for sigma < 0,
    stopping before the transmittance would fall to 1e-4. Returns features [H, W, C], transmittance [H, W].
    (A tile-based compositor must agree: beyond its bound, ceil(3.33 sigma_axis), alpha < 1/255 anyway.)"""
    order = torch.argsort(depths)
    order = order[visible[order]]
    ys, xs = torch.meshgrid(torch.arange(height, dtype=means2d.dtype), torch.arange(width, dtype=means2d.dtype), indexing="ij")
    dx = xs.reshape(-1, 1) + 0.5 - means2d[order, 0]
    dy = ys.reshape(-1, 1) + 0.5 - means2d[order, 1]
    a, b, c = conics[order].unbind(-1)
    sigma = 0.5 * (a * dx**2 + c * dy**2) + b * dx * dy
    alpha = torch.clamp_max(opacities[order] * torch.exp(-sigma), 0.999)
    alpha = torch.where((sigma >= 0) & (alpha >= 1.0 / 255.0), alpha, torch.zeros_like(alpha))
    transmittance_after = torch.cumprod(1.0 - alpha, dim=1)
    transmittance_before = torch.cat([torch.ones_like(alpha[:, :1]), transmittance_after[:, :-1]], dim=1)
    weights = alpha * transmittance_before * (transmittance_after > 1e-4)
    image = (weights @ features[order]).reshape(height, width, -1)
    return image, (1.0 - weights.sum(1)).reshape(height, width)
