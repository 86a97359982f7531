"""Priors (the contract and its registry: base.py) and the conditioning the losses feed them.

The contract and the registry import no torch, so the planner and the preflight read which kinds of prior exist;
the priors themselves and their conditioning load on first access (``from segmentdreamer.prior import DiffusionPrior``).
"""

from __future__ import annotations

import importlib

from ..config import DEFAULT_NEGATIVE_PROMPT
from .base import PRIOR_KINDS, Prior, load_prior, prior_kind, register_prior

_LAZY = {"PromptEmbeddings": ".conditioning", "ViewConditioning": ".conditioning", "view_conditioning": ".conditioning",
         "DiffusionPrior": ".diffusion_prior", "GuidedNoise": ".guidance", "NoiseFn": ".guidance",
         "classifier_free_guidance": ".guidance", "guided_noise": ".guidance", "perp_neg_guidance": ".guidance",
         "NoiseSchedule": ".schedule", "ObservedViews": ".views"}


def __getattr__(name: str):
    if name in _LAZY:
        return getattr(importlib.import_module(_LAZY[name], __name__), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


__all__ = ["DEFAULT_NEGATIVE_PROMPT", "PRIOR_KINDS", "Prior", "load_prior", "prior_kind", "register_prior", *_LAZY]
