"""Text conditioning per view: azimuth-interpolated prompts and Perp-Neg weights (docs/method.md, "Notation").

The prompt is encoded three times ("<p>, front view", "<p>, side view", "<p>, back view"). For a view
at azimuth a (degrees, 0 = front), with q the interpolation weight:

- a in [-90, 90):  q = 1 - |a|/90,         text = q*front + (1-q)*side
- otherwise:       q = 1 - (|a| - 90)/90,  text = q*side  + (1-q)*back

With Perp-Neg the view text is the first of K+1 = 3 prompts with weights
  a in [-90, 90): [interp, front, side], [1, 0 if q>0.8 else -2e^{-2q}, 0 if q<0.2 else -2e^{-10(1-q)}]
  otherwise:      [interp, side, front], [1, 0 if q>0.8 else -e^{-10q}, -2]
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from torch import Tensor

VIEW_SUFFIXES = {"front": ", front view", "side": ", side view", "back": ", back view"}


@dataclass(frozen=True)
class PromptEmbeddings:
    """Encoder outputs for one prompt, each [L, D] (L tokens, D channels).

    Attributes:
        front, side, back: the view-dependent prompts.
        negative: the negative prompt, CFG's unconditional branch.
        empty: the empty prompt, the condition of every unconditional ODE step.
    """

    front: Tensor
    side: Tensor
    back: Tensor
    negative: Tensor
    empty: Tensor


@dataclass(frozen=True)
class ViewConditioning:
    """The conditioning of a batch of B views.

    Attributes:
        text: [B, L, D] azimuth-interpolated view text (the y of the paper).
        negative: [B, L, D] negative prompt (unconditional CFG branch).
        empty: [B, L, D] empty prompt (the condition written ∅ in the paper).
        perp_neg_texts: [B, K, L, D] Perp-Neg prompts (k = 0 is ``text``), or None without Perp-Neg.
        perp_neg_weights: [B, K] their weights (weight 1 for k = 0), or None.
    """

    text: Tensor
    negative: Tensor
    empty: Tensor
    perp_neg_texts: Tensor | None = None
    perp_neg_weights: Tensor | None = None

    @property
    def batch_size(self) -> int:
        return int(self.text.shape[0])

    @property
    def uses_perp_neg(self) -> bool:
        return self.perp_neg_texts is not None


def wrap_azimuth(azimuth_deg: float) -> float:
    """Azimuth in degrees wrapped to [-180, 180)."""
    return (azimuth_deg + 180.0) % 360.0 - 180.0


def interpolation_weight(azimuth_deg: float) -> tuple[float, bool]:
    """(q, frontal): q weights the nearer-to-front prompt; frontal is True for a in [-90, 90)."""
    a = wrap_azimuth(azimuth_deg)
    if -90.0 <= a < 90.0:
        return 1.0 - abs(a) / 90.0, True
    return 1.0 - (abs(a) - 90.0) / 90.0, False


def perp_neg_weights(q: float, frontal: bool) -> list[float]:
    """Perp-Neg weights of [interp, first negative, second negative] (official constants)."""
    if frontal:
        front_w = 0.0 if q > 0.8 else -2.0 * math.exp(-2.0 * q)
        side_w = 0.0 if q < 0.2 else -2.0 * math.exp(-10.0 * (1.0 - q))
        return [1.0, front_w, side_w]
    side_w = 0.0 if q > 0.8 else -math.exp(-10.0 * q)
    return [1.0, side_w, -2.0]


def view_conditioning(embeddings: PromptEmbeddings, azimuths_deg: Tensor, perp_neg: bool = False) -> ViewConditioning:
    """Conditioning for B views at the given azimuths ([B], degrees, 0 = front)."""
    texts, extras, weights = [], [], []
    for azimuth in azimuths_deg.tolist():
        q, frontal = interpolation_weight(azimuth)
        near, far = (embeddings.front, embeddings.side) if frontal else (embeddings.side, embeddings.back)
        interp = q * near + (1.0 - q) * far
        texts.append(interp)
        if perp_neg:
            first, second = (embeddings.front, embeddings.side) if frontal else (embeddings.side, embeddings.front)
            extras.append(torch.stack([interp, first, second]))
            weights.append(perp_neg_weights(q, frontal))
    batch = len(texts)
    text = torch.stack(texts)
    return ViewConditioning(
        text=text,
        negative=embeddings.negative.expand(batch, -1, -1),
        empty=embeddings.empty.expand(batch, -1, -1),
        perp_neg_texts=torch.stack(extras) if perp_neg else None,
        perp_neg_weights=torch.tensor(weights, dtype=text.dtype, device=text.device) if perp_neg else None,
    )
