"""The scene a run starts from, as its config says: the sphere drawn with the run's seed, or the init .ply."""

from __future__ import annotations

from pathlib import Path

import torch

from ..config import ConfigError, TrainConfig
from ..scene.gaussians import from_points, load_ply, sphere_points


def initial_gaussians(config: TrainConfig) -> torch.nn.ParameterDict:
    """The ``sphere`` init drawn with the run's seed, or the Gaussians of the init .ply (``config.init``)."""
    if config.init == "sphere":
        return from_points(sphere_points(config.sphere_points, generator=torch.Generator().manual_seed(config.seed)))
    path = Path(config.init)
    if not path.is_file():
        raise ConfigError(f"init: {path} does not exist (a Point-E .ply from `segmentdreamer init`, or 'sphere')")
    return load_ply(path)
