"""CLIP score: 100 x cos(image features, prompt features) per view with CLIP ViT-L/14 (SPEC 8).

Weights: a transformers-layout folder (``openai/clip-vit-large-patch14``) named by ``models.clip``.
Images go through the model's own ``CLIPImageProcessor`` (resize, centre crop, CLIP normalisation):
uint8 arrays as they are, float tensors in [0, 1] without re-scaling; anything else is rejected, since
images in the wrong range silently lower every score.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import torch
from torch import Tensor

from ..models import resolve_model


def check_image_range(images: Tensor | np.ndarray) -> None:
    """uint8 anything, or floats within [0, 1]; raises ValueError otherwise."""
    if isinstance(images, np.ndarray) and images.dtype == np.uint8:
        return
    if isinstance(images, Tensor) and images.dtype == torch.uint8:
        return
    low, high = float(images.min()), float(images.max())
    if low < -1e-6 or high > 1 + 1e-6:
        raise ValueError(f"float images must lie in [0, 1] (got [{low:.3g}, {high:.3g}]); pass uint8 for 0..255 images")


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


def _features(output) -> Tensor:
    """transformers 5 may wrap projected features in an output object."""
    return output if isinstance(output, Tensor) else output.pooler_output


def score_views(scorer: ClipScorer, views_dir: str | Path, prompt: str, batch: int = 16) -> dict:
    """Per-view scores of every ``view_*.png`` in ``views_dir`` and their mean (one run's JSON record)."""
    import imageio.v3 as iio

    paths = sorted(Path(views_dir).glob("view_*.png"))
    if not paths:
        raise FileNotFoundError(f"{views_dir}: no view_*.png (run `segmentdreamer render` first)")
    scores = []
    for start in range(0, len(paths), batch):
        images = np.stack([iio.imread(p)[..., :3] for p in paths[start : start + batch]])
        scores.extend(scorer.score(images, prompt).tolist())
    return {"prompt": prompt, "views": [p.name for p in paths], "scores": scores, "mean": float(np.mean(scores))}


def write_json(record: dict, path: str | Path) -> None:
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    Path(path).write_text(json.dumps(record, indent=2, ensure_ascii=False), encoding="utf-8")
