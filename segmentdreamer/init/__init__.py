"""Initial Gaussians: Point-E (our implementation, official checkpoints) or a sphere (no weights).

The settings (``settings.py``) import no torch; the models load on first access (``from segmentdreamer.init import PointE``).
"""

from __future__ import annotations

import importlib

from .settings import InitSettings, PointESampling

_LAZY = {"PointE": ".pointe", "initial_gaussians": ".initial_gaussians", "pointe_frame": ".to_gaussians", "points_to_gaussians": ".to_gaussians"}


def __getattr__(name: str):
    if name in _LAZY:
        return getattr(importlib.import_module(_LAZY[name], __name__), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


__all__ = ["InitSettings", "PointESampling", *_LAZY]
