"""What every per-view metric shares: the image-range check, reading a render folder, one JSON per run."""

from __future__ import annotations

from pathlib import Path
from typing import Protocol

import numpy as np
import torch
from torch import Tensor

from ..scene.render_folder import view_paths


class ViewScorer(Protocol):
    """A metric that scores a batch of images against one prompt (CLIP score, ImageReward)."""

    def score(self, images: np.ndarray, prompt: str) -> Tensor:
        """Scores [B] of uint8 images [B, H, W, 3]."""


def check_image_range(images: Tensor | np.ndarray) -> None:
    """uint8 anything, or floats within [0, 1]; raises ValueError otherwise."""
    if isinstance(images, np.ndarray) and images.dtype == np.uint8:
        return
    if isinstance(images, Tensor) and images.dtype == torch.uint8:
        return
    low, high = float(images.min()), float(images.max())
    if low < -1e-6 or high > 1 + 1e-6:
        raise ValueError(f"float images must lie in [0, 1] (got [{low:.3g}, {high:.3g}]); pass uint8 for 0..255 images")


def score_views(scorer: ViewScorer, views_dir: str | Path, prompt: str, batch: int = 16, distractors: list[str] | None = None) -> dict:
    """Per-view scores of every ``view_*.png`` in ``views_dir`` and their mean (one run's JSON record).

    With ``distractors`` (the other prompts of the list; CLIP only) the record also has ``r_precision``: the
    fraction of views whose own prompt is retrieved first among them (``scorer.score_and_retrieve``)."""
    import imageio.v3 as iio
    from tqdm.auto import tqdm

    paths = view_paths(views_dir)
    scores: list[float] = []
    retrieved: list[bool] = []
    for start in tqdm(range(0, len(paths), batch), desc=f"scoring {Path(views_dir).name}", unit="batch", leave=False):
        images = np.stack([iio.imread(p)[..., :3] for p in paths[start : start + batch]])
        if distractors is None:
            scores.extend(scorer.score(images, prompt).tolist())
        else:
            score, hit = scorer.score_and_retrieve(images, prompt, distractors)
            scores.extend(score.tolist())
            retrieved.extend(hit.tolist())
    record = {"prompt": prompt, "views": [p.name for p in paths], "scores": scores, "mean": float(np.mean(scores))}
    if distractors is not None:
        record.update(r_precision=float(np.mean(retrieved)), retrieval_candidates=1 + len(distractors))
    return record
