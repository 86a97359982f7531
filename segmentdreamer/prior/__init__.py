"""Priors (the contract and its registry: base.py) and the conditioning the losses feed them."""

from ..config import DEFAULT_NEGATIVE_PROMPT
from .base import Prior, load_prior, register_prior
from .conditioning import PromptEmbeddings, ViewConditioning, view_conditioning
from .diffusion_prior import DiffusionPrior
from .guidance import GuidedNoise, NoiseFn, classifier_free_guidance, guided_noise, perp_neg_guidance
from .schedule import NoiseSchedule
from .views import ObservedViews

__all__ = [
    "DEFAULT_NEGATIVE_PROMPT",
    "DiffusionPrior",
    "GuidedNoise",
    "NoiseFn",
    "NoiseSchedule",
    "ObservedViews",
    "Prior",
    "PromptEmbeddings",
    "ViewConditioning",
    "classifier_free_guidance",
    "guided_noise",
    "load_prior",
    "perp_neg_guidance",
    "register_prior",
    "view_conditioning",
]
