"""What every per-view metric shares: the image-range check, reading a render folder, one JSON per run."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Protocol

import numpy as np
import torch
from torch import Tensor


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


def view_paths(views_dir: str | Path) -> list[Path]:
    """The ``view_*.png`` files of a render folder, in view order; raises if there are none."""
    paths = sorted(Path(views_dir).glob("view_*.png"))
    if not paths:
        raise FileNotFoundError(f"{views_dir}: no view_*.png (run `segmentdreamer render` first)")
    return paths


def score_views(scorer: ViewScorer, views_dir: str | Path, prompt: str, batch: int = 16) -> dict:
    """Per-view scores of every ``view_*.png`` in ``views_dir`` and their mean (one run's JSON record)."""
    import imageio.v3 as iio
    from tqdm.auto import tqdm

    paths = view_paths(views_dir)
    scores: list[float] = []
    for start in tqdm(range(0, len(paths), batch), desc=f"scoring {Path(views_dir).name}", unit="batch", leave=False):
        images = np.stack([iio.imread(p)[..., :3] for p in paths[start : start + batch]])
        scores.extend(scorer.score(images, prompt).tolist())
    return {"prompt": prompt, "views": [p.name for p in paths], "scores": scores, "mean": float(np.mean(scores))}


def write_json(record: dict, path: str | Path) -> None:
    """``record`` as indented UTF-8 JSON (prompts keep their unicode), parent folders created."""
    from ..atomic import atomic_target

    with atomic_target(path) as tmp:
        Path(tmp).write_text(json.dumps(record, indent=2, ensure_ascii=False), encoding="utf-8")
