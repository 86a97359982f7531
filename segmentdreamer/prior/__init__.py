"""The Stable Diffusion prior and the conditioning the losses feed it."""

from ..config import DEFAULT_NEGATIVE_PROMPT
from .conditioning import PromptEmbeddings, ViewConditioning, view_conditioning
from .diffusion_prior import DiffusionPrior
from .guidance import GuidedNoise, NoiseFn, classifier_free_guidance, guided_noise, perp_neg_guidance
from .schedule import NoiseSchedule
from .views import ObservedViews


def load_prior(spec: str, dtype=None, device="cpu", cache_dir=None):
    """The prior ``models.sd`` names: a Stable Diffusion folder / cached hub id, or ``target-scene:<scene>``."""
    from ..models import is_target_scene
    from .target_scene import TargetScenePrior

    if is_target_scene(spec):
        return TargetScenePrior.from_spec(spec, device)
    return DiffusionPrior.from_pretrained(spec, dtype=dtype, device=device, cache_dir=cache_dir)


__all__ = [
    "DEFAULT_NEGATIVE_PROMPT",
    "DiffusionPrior",
    "GuidedNoise",
    "NoiseFn",
    "NoiseSchedule",
    "ObservedViews",
    "PromptEmbeddings",
    "ViewConditioning",
    "classifier_free_guidance",
    "guided_noise",
    "load_prior",
    "perp_neg_guidance",
    "view_conditioning",
]
