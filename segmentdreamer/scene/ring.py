"""The evaluation ring: the one definition of the views every asset is rendered and scored on (docs/method.md,
"Cameras, init and renders"). Torch-free, so the planner and the workflow config read it.

``views`` cameras 360 / views degrees apart starting at the front (+y), at ``elevation`` degrees, ``radius`` from the
origin, horizontal field of view ``fovx`` radians, square ``resolution`` pixels, white background.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated

from ..typed import AtLeastOne, Positive, Range


@dataclass(frozen=True)
class RingSettings:
    views: Annotated[int, AtLeastOne] = 120
    """Azimuth 3 degrees apart (threestudio's n_test_views, as the paper's evaluation)."""
    resolution: Annotated[int, Range(8, 8192)] = 512
    elevation: Annotated[float, Range(-89.0, 89.0)] = 0.0
    """Degrees above the horizon."""
    radius: Annotated[float, Positive] = 3.5
    fovx: Annotated[float, Range(0.01, 3.0)] = 0.55
    """Radians (31.5 degrees)."""


RING = RingSettings()
"""The evaluation ring's defaults (config ``eval.views``, ``eval.resolution``, ``eval.elevation`` change them)."""

COMPARISON_RESOLUTION = 64
"""Pixels of the ring's views when two scenes are compared (known-answer and 3D-truth scores): enough for PSNR, SSIM
and silhouettes of the scenes we compare, cheap on a CPU."""
