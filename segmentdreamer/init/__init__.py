"""Initial Gaussians: Point-E (our implementation, official checkpoints) or a sphere (no weights)."""

from .pointe import PointE, PointESampling
from .to_gaussians import pointe_frame, points_to_gaussians

__all__ = ["PointE", "PointESampling", "points_to_gaussians", "pointe_frame"]
