"""Point-E clouds cached on disk per (init prompt, seed, sampler steps): sampling costs minutes, the cloud is reused."""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from pathlib import Path

import torch
from torch import Tensor

from ..atomic import atomic_target
from .settings import PointESampling


def cached_cloud(cache_dir: str | Path, init_prompt: str, seed: int, sample: Callable[[], tuple[Tensor, Tensor]],
                 steps: int = PointESampling.steps) -> tuple[Tensor, Tensor]:
    """(xyz, rgb) from ``cache_dir/<hash>.pt`` or from ``sample()`` (then stored, atomically).

    ``steps`` (Heun steps per stage) is part of the key; the official count keeps the key of earlier caches.
    """
    extra = "" if steps == PointESampling.steps else f"\0steps={steps}"
    key = hashlib.sha256(f"pointe\0{init_prompt}\0{seed}{extra}".encode("utf-8")).hexdigest()[:24]
    path = Path(cache_dir) / f"{key}.pt"
    if path.is_file():
        record = torch.load(path, weights_only=True)
        if record["init_prompt"] == init_prompt and record["seed"] == seed:
            return record["xyz"], record["rgb"]
    xyz, rgb = sample()
    with atomic_target(path) as tmp:
        torch.save({"init_prompt": init_prompt, "seed": seed, "xyz": xyz, "rgb": rgb}, tmp)
    return xyz, rgb
