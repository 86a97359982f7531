"""Guided noise predictions: classifier-free guidance and Perp-Neg, each ONE batched UNet call.

``NoiseFn`` is the single primitive the losses use: one UNet forward over a batch,
(x [N, C, h, w], t LongTensor [N], embedding [N, L, D]) -> eps [N, C, h, w]. CFG concatenates its
branches into one call of batch 2B; Perp-Neg one call of batch (1 + K)B (docs/method.md, "Notation").
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import torch
from torch import Tensor

from .conditioning import ViewConditioning

NoiseFn = Callable[[Tensor, Tensor, Tensor], Tensor]


@dataclass(frozen=True)
class GuidedNoise:
    """Noise predictions at one (x, t), each [B, C, h, w].

    Attributes:
        guided: eps(neg) + g * (eps(text) - eps(neg)), or the Perp-Neg combination.
        text: eps(x, t, view text).
        negative: eps(x, t, negative prompt).
    """

    guided: Tensor
    text: Tensor
    negative: Tensor


def timesteps_for(t: int | Tensor, batch: int) -> Tensor:
    """A LongTensor [batch] of timesteps from an int or a [batch] tensor."""
    if isinstance(t, int):
        return torch.full((batch,), t, dtype=torch.long)
    return t.to(torch.long).reshape(batch)


def unconditional_noise(noise_fn: NoiseFn, x: Tensor, t: int | Tensor, cond: ViewConditioning) -> Tensor:
    """eps(x, t, ∅): the empty prompt's prediction, the condition of every unconditional ODE step."""
    return noise_fn(x, timesteps_for(t, x.shape[0]), cond.empty)


def classifier_free_guidance(noise_fn: NoiseFn, x: Tensor, t: int | Tensor, cond: ViewConditioning, scale: float) -> GuidedNoise:
    """eps_cfg(x, t) = eps(x, t, neg) + scale * (eps(x, t, text) - eps(x, t, neg)); one call of batch 2B."""
    batch = x.shape[0]
    ts = timesteps_for(t, batch)
    eps = noise_fn(torch.cat([x, x]), torch.cat([ts, ts]), torch.cat([cond.negative, cond.text]))
    negative, text = eps.chunk(2)
    return GuidedNoise(guided=negative + scale * (text - negative), text=text, negative=negative)


def perpendicular_component(v: Tensor, u: Tensor) -> Tensor:
    """The part of v perpendicular to u, per sample over all other dimensions. v, u: [B, ...]."""
    dims = tuple(range(1, v.dim()))
    coef = (v * u).sum(dims, keepdim=True) / (u * u).sum(dims, keepdim=True).clamp_min(torch.finfo(u.dtype).tiny)
    return v - coef * u


def perp_neg_guidance(noise_fn: NoiseFn, x: Tensor, t: int | Tensor, cond: ViewConditioning, scale: float) -> GuidedNoise:
    """Perp-Neg: d_k = eps(text_k) - eps(neg); eps = eps(neg) + scale * (d_0 + sum_k w_k perp(d_k, d_0)).

    One UNet call of batch (1 + K)B, ordered [neg; text_0; ...; text_{K-1}] (each block B views).
    """
    assert cond.perp_neg_texts is not None and cond.perp_neg_weights is not None
    batch, num_texts = cond.perp_neg_texts.shape[:2]
    ts = timesteps_for(t, batch)
    texts = cond.perp_neg_texts.transpose(0, 1).reshape(num_texts * batch, *cond.perp_neg_texts.shape[2:])
    eps = noise_fn(x.repeat(1 + num_texts, 1, 1, 1), ts.repeat(1 + num_texts), torch.cat([cond.negative, texts]))
    negative, *per_text = eps.chunk(1 + num_texts)
    deltas = [e - negative for e in per_text]
    combined = deltas[0]
    for k in range(1, num_texts):
        weight = cond.perp_neg_weights[:, k].to(x.dtype).reshape(batch, *([1] * (x.dim() - 1)))
        combined = combined + weight * perpendicular_component(deltas[k], deltas[0])
    return GuidedNoise(guided=negative + scale * combined, text=per_text[0], negative=negative)


def guided_noise(noise_fn: NoiseFn, x: Tensor, t: int | Tensor, cond: ViewConditioning, scale: float) -> GuidedNoise:
    """Perp-Neg when the conditioning carries its prompts, plain CFG otherwise."""
    if cond.uses_perp_neg:
        return perp_neg_guidance(noise_fn, x, t, cond, scale)
    return classifier_free_guidance(noise_fn, x, t, cond, scale)
