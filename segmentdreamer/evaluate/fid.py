"""FID between a method's renders and a reference set (docs/method.md, "Evaluation"), with one declared implementation.

Implementation: torchmetrics' ``FrechetInceptionDistance`` on torch-fidelity's InceptionV3
("inception-v3-compat", 2048-d pool features; weights from ``models.inception``, never downloaded).
Reference statistics (feature sums, covariance sums, count) are cached per (extractor, file list).

For smoke runs, :class:`TinyFeatures` is a small fixed random network: its numbers are labelled
``TINY-FEATURE DISTANCE (not FID)`` everywhere they appear, so they are never mistaken for FID.
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

import numpy as np
import torch
from torch import Tensor, nn

from ..models import MissingWeightsError

INCEPTION_NAME = "FID (torchmetrics FrechetInceptionDistance, torch-fidelity InceptionV3 inception-v3-compat, 2048-d)"
TINY_NAME = "TINY-FEATURE DISTANCE (not FID: random 16-d features, smoke runs only)"
STATE_KEYS = ("real_features_sum", "real_features_cov_sum", "real_features_num_samples")


class TinyFeatures(nn.Module):
    """A fixed random conv net: uint8 images [N, 3, H, W] -> 16 features. For smoke runs only."""

    num_features = 16

    def __init__(self, seed: int = 0):
        super().__init__()
        generator = torch.Generator().manual_seed(seed)
        self.conv1 = nn.Conv2d(3, 8, 5, stride=4)
        self.conv2 = nn.Conv2d(8, 16, 3, stride=2)
        for param in self.parameters():
            param.data = torch.randn(param.shape, generator=generator) * 0.2
        self.requires_grad_(False)

    def forward(self, images: Tensor) -> Tensor:
        x = nn.functional.interpolate(images.float() / 255.0, size=(64, 64), mode="bilinear", antialias=True, align_corners=False)
        return torch.tanh(self.conv2(torch.relu(self.conv1(x)))).mean(dim=(2, 3)).double()


def make_metric(extractor: str, inception_weights: str | os.PathLike | None = None):
    """(torchmetrics FID metric, its label). ``extractor``: "inception" or "tiny"."""
    from torchmetrics.image.fid import FrechetInceptionDistance

    if extractor == "tiny":
        return FrechetInceptionDistance(feature=TinyFeatures(), reset_real_features=False), TINY_NAME
    if extractor != "inception":
        raise ValueError(f"eval.fid.extractor must be 'inception' or 'tiny', got {extractor!r}")
    if inception_weights is None or not Path(inception_weights).is_file():
        raise MissingWeightsError(
            f"models.inception = {str(inception_weights)!r} is not a file: put torch-fidelity's "
            f"weights-inception-2015-12-05-6726825d.pth there (nothing is downloaded)."
        )
    metric = FrechetInceptionDistance(feature=2048, reset_real_features=False, feature_extractor_weights_path=str(inception_weights))
    return metric, INCEPTION_NAME


def _read_images(paths: list[Path]) -> Tensor:
    import imageio.v3 as iio

    return torch.from_numpy(np.stack([iio.imread(p)[..., :3] for p in paths])).permute(0, 3, 1, 2).contiguous()


def _feed(metric, paths: list[Path], real: bool, batch: int) -> None:
    from tqdm import tqdm

    for start in tqdm(range(0, len(paths), batch), desc="fid " + ("reference" if real else "renders"), leave=False):
        metric.update(_read_images(paths[start : start + batch]).to(metric.device), real=real)


def reference_key(paths: list[Path], label: str) -> str:
    digest = hashlib.sha256(label.encode())
    for path in paths:
        digest.update(f"{path.name}\0{path.stat().st_size}\0".encode())
    return digest.hexdigest()[:24]


def compute_fid(reference: list[Path], generated: list[Path], extractor: str = "inception", inception_weights=None,
                cache_dir: str | os.PathLike | None = None, batch: int = 50, device: str | torch.device = "cpu") -> dict:
    """FID of ``generated`` against ``reference`` PNGs, with image counts and the implementation's name."""
    if not reference or not generated:
        raise ValueError(f"FID needs images on both sides (reference: {len(reference)}, generated: {len(generated)})")
    metric, label = make_metric(extractor, inception_weights)
    metric = metric.to(device)
    cache = Path(cache_dir) / f"{reference_key(reference, label)}.pt" if cache_dir else None
    if cache is not None and cache.is_file():
        state = torch.load(cache, weights_only=True)
        for key in STATE_KEYS:
            setattr(metric, key, state[key].to(metric.device))
    else:
        _feed(metric, reference, real=True, batch=batch)
        if cache is not None:
            cache.parent.mkdir(parents=True, exist_ok=True)
            torch.save({key: getattr(metric, key).cpu() for key in STATE_KEYS}, cache)
    _feed(metric, generated, real=False, batch=batch)
    return {"value": float(metric.compute()), "implementation": label, "reference_images": len(reference),
            "generated_images": len(generated)}
