"""CLIP score: 100 x cos(image features, prompt features) per view with CLIP ViT-L/14 (docs/method.md, "Evaluation").

Weights: a transformers-layout folder (``openai/clip-vit-large-patch14``) named by ``models.clip``.
Images go through the model's own ``CLIPImageProcessor`` (resize, centre crop, CLIP normalisation):
uint8 arrays as they are, float tensors in [0, 1] without re-scaling; anything else is rejected, since
images in the wrong range silently lower every score.
"""

from __future__ import annotations

import os

import numpy as np
import torch
from torch import Tensor

from ..models import resolve_model
from .metric import RunScorer, RunToScore
from .views import check_image_range, score_views


class ClipScorer:
    """Scores images against prompts; build with :meth:`from_pretrained`."""

    def __init__(self, model, processor, device: str | torch.device = "cpu"):
        self.model, self.processor, self.device = model.to(device).eval(), processor, torch.device(device)

    @classmethod
    def from_pretrained(cls, id_or_folder: str | os.PathLike, device: str | torch.device = "cpu") -> ClipScorer:
        from transformers import CLIPModel, CLIPProcessor

        folder = resolve_model(id_or_folder, "models.clip", "a transformers CLIP ViT-L/14 folder (openai/clip-vit-large-patch14)")
        return cls(CLIPModel.from_pretrained(folder, local_files_only=True),
                   CLIPProcessor.from_pretrained(folder, local_files_only=True), device)

    @torch.no_grad()
    def text_features(self, prompts: list[str]) -> Tensor:
        """L2-normalised text features [P, D]."""
        tokens = self.processor(text=prompts, return_tensors="pt", padding=True, truncation=True).to(self.device)
        return torch.nn.functional.normalize(_features(self.model.get_text_features(**tokens)), dim=-1)

    @torch.no_grad()
    def image_features(self, images: Tensor | np.ndarray) -> Tensor:
        """L2-normalised image features [B, D] of images [B, 3, H, W] in [0, 1] (float) or [B, H, W, 3] uint8."""
        check_image_range(images)
        floats = not (isinstance(images, np.ndarray) or images.dtype == torch.uint8)
        batch = list(images.cpu()) if floats else list(images)
        pixels = self.processor(images=batch, return_tensors="pt", do_rescale=not floats)["pixel_values"].to(self.device)
        return torch.nn.functional.normalize(_features(self.model.get_image_features(pixel_values=pixels)), dim=-1)

    def score(self, images: Tensor | np.ndarray, prompt: str) -> Tensor:
        """100 x cosine similarity per image [B]."""
        return 100.0 * (self.image_features(images) @ self.text_features([prompt])[0])

    def score_and_retrieve(self, images: Tensor | np.ndarray, prompt: str, distractors: list[str]) -> tuple[Tensor, Tensor]:
        """(CLIP score [B], retrieved [B] bool): whether ``prompt`` beats every distractor for each image.

        CLIP R-precision (R@1, as DreamFields / DreamFusion): the fraction of images whose own prompt is
        the most similar of the candidate set {prompt} + distractors; a tie counts as a miss."""
        similarity = self.image_features(images) @ self.text_features([prompt, *distractors]).T  # [B, 1 + P]
        own = similarity[:, 0]
        best_other = similarity[:, 1:].max(dim=1).values if distractors else torch.full_like(own, -2.0)
        return 100.0 * own, own > best_other


def _features(output) -> Tensor:
    """transformers 5 may wrap projected features in an output object."""
    return output if isinstance(output, Tensor) else output.pooler_output


def clip_run_scorer(models: dict[str, str], device) -> RunScorer:
    """The ``clip`` metric (:mod:`.metric`): CLIP-L per view, their mean, and R-precision among the other prompts."""
    scorer = ClipScorer.from_pretrained(models["clip"], device)

    def score(run: RunToScore) -> dict:
        distractors = list(dict.fromkeys(p for p in run.other_prompts if p != run.prompt))
        return score_views(scorer, run.views, run.prompt, distractors=distractors)

    return score
