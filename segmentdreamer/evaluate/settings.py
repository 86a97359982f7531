"""Settings of the evaluation: the workflow's ``eval:`` block (the ring every asset is scored on, which metrics, FID and
its reference set). Torch-free: the planner loads the block with the strict typed loader, so every default has this
one home and the schema keeps types and ranges only."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Annotated, Literal

from ..scene.ring import RING
from ..typed import AtLeastOne, Range, SeedRange


@dataclass(frozen=True)
class FidSettings:
    """FID of each method's renders against Stable Diffusion images of the same prompts (docs/method.md, "Evaluation")."""

    features: Literal["inception", "tiny"] = "inception"
    """inception: FID; tiny: the smoke runs' tiny feature network ("TINY-FEATURE DISTANCE (not FID)")."""
    reference_images: Annotated[int, Range(2, None)] = 50000
    batch: Annotated[int, AtLeastOne] = 32
    """Reference images per Stable Diffusion call (4.6 images/s compiled on an H200, BENCHMARKS.md; 16 on a GPU
    with less than 40 GB)."""
    steps: Annotated[int, AtLeastOne] = 50
    resolution: Annotated[int, Range(8, 8192)] = 512
    seed: Annotated[int, SeedRange] = 0
    compile: bool = True
    """CUDA: fused attention projections, torch.compile'd UNet and VAE decoder for the reference images; no effect on
    the CPU."""


@dataclass(frozen=True)
class EvaluationSettings:
    """The workflow's ``eval:`` block."""

    views: Annotated[int, AtLeastOne] = RING.views
    resolution: Annotated[int, Range(8, 8192)] = RING.resolution
    elevation: Annotated[float, Range(-89.0, 89.0)] = RING.elevation
    image_reward: bool = True
    """False drops the ImageReward metric (its column and its weights)."""
    r_precision: bool = False
    """True adds CLIP R-precision to Table 1 (each view's prompt ranked first among the prompt set's)."""
    truth: bool = False
    """The prompts describe scenes with a known ground truth (e.g. the miniworld's captions): metrics that need one run."""
    fid: FidSettings = field(default_factory=FidSettings)
