"""Settings of the initialisation: the Point-E sampler and the workflow's ``init:`` block. Torch-free (the planner
and the workflow config read them); docs/method.md, "Cameras, init and renders", gives the sources."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated, Literal

from ..typed import AtLeastOne, Range


@dataclass(frozen=True)
class PointESampling:
    """The official Point-E sampler: Karras Heun steps per stage, its noise range and churn, CFG on the base's x0."""

    steps: Annotated[int, Range(1, 10000)] = 64
    sigma_min: float = 1e-3
    base_sigma_max: float = 120.0
    upsample_sigma_max: float = 160.0
    base_churn: float = 3.0
    upsample_churn: float = 0.0
    guidance_scale: float = 3.0
    rho: float = 7.0


@dataclass(frozen=True)
class InitSettings:
    """The workflow's ``init:`` block: how every prompt's initial Gaussians are made."""

    method: Literal["pointe", "sphere"] = "pointe"
    steps: Annotated[int, Range(1, 10000)] = PointESampling.steps
    """Karras Heun steps per Point-E stage."""
    copies: Annotated[int, AtLeastOne] = 20
    """Gaussians per Point-E point (4096 points x 20 = 81,920 Gaussians, the official init)."""
