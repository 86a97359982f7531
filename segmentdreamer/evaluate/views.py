"""What every per-view metric shares: the image-range check, reading a render folder, one JSON per run."""

from __future__ import annotations

from pathlib import Path
from typing import Protocol

import numpy as np
import torch
from torch import Tensor

from ..plan.layout import VIEWS_COMPLETE


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


def mark_views_complete(views_dir: str | Path, views: int, **facts) -> None:
    """Write ``complete.json`` (the view count and any facts) into a render folder: the last file a render writes."""
    from ..atomic import write_json

    write_json({"views": views, **facts}, Path(views_dir) / VIEWS_COMPLETE)


def view_paths(views_dir: str | Path) -> list[Path]:
    """The ``view_*.png`` files of a finished render folder, in view order.

    Raises FileNotFoundError for a folder that a render did not finish (no ``complete.json``, or fewer
    views than it records): an emptied or half-written folder is never scored.
    """
    import json

    folder = Path(views_dir)
    marker = folder / VIEWS_COMPLETE
    if not marker.is_file():
        raise FileNotFoundError(f"{folder}: no {VIEWS_COMPLETE}: the render job did not finish here "
                                "(rerun it: snakemake --forcerun render, or `segmentdreamer render`)")
    paths = sorted(folder.glob("view_*.png"))
    expected = json.loads(marker.read_text(encoding="utf-8"))["views"]
    if len(paths) != expected:
        raise FileNotFoundError(f"{folder}: {len(paths)} view_*.png but the render wrote {expected}: rerun the render job")
    return paths


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
