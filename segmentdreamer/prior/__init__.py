"""The Stable Diffusion prior and the conditioning the losses feed it."""

from ..config import DEFAULT_NEGATIVE_PROMPT
from .conditioning import PromptEmbeddings, ViewConditioning, view_conditioning
from .diffusion_prior import DiffusionPrior
from .guidance import GuidedNoise, NoiseFn, classifier_free_guidance, guided_noise, perp_neg_guidance
from .schedule import NoiseSchedule

__all__ = [
    "DEFAULT_NEGATIVE_PROMPT",
    "DiffusionPrior",
    "GuidedNoise",
    "NoiseFn",
    "NoiseSchedule",
    "PromptEmbeddings",
    "ViewConditioning",
    "classifier_free_guidance",
    "guided_noise",
    "perp_neg_guidance",
    "view_conditioning",
]
