"""Ground-truth scenes built in code, for the known-answer prior: no files, no weights.

``totem`` is asymmetric and multi-coloured so that no orientation or azimuth mistake can hide: a blue
base (bottom, -z), a red head (top, +z), a green nose in front (+y, the front direction of the cameras'
convention), a yellow tail behind (-y) and one magenta arm to the right (+x, none on the left).
``crate`` is a grey block of the same size, the second object for the text-selection setting.
"""

from __future__ import annotations

import torch
from torch import Tensor

from .gaussians import opaque_gaussians

# (centre xyz, half sizes xyz, rgb)
TOTEM_PARTS = (
    ((0.0, 0.0, -0.35), (0.30, 0.30, 0.12), (0.15, 0.25, 0.90)),  # base, blue
    ((0.0, 0.0, 0.05), (0.16, 0.16, 0.30), (0.95, 0.95, 0.95)),  # body, white-ish grey
    ((0.0, 0.0, 0.45), (0.20, 0.20, 0.14), (0.90, 0.15, 0.15)),  # head, red
    ((0.0, 0.28, 0.40), (0.06, 0.14, 0.06), (0.10, 0.80, 0.20)),  # nose, green, front (+y)
    ((0.0, -0.30, -0.05), (0.05, 0.16, 0.05), (0.95, 0.85, 0.10)),  # tail, yellow, back (-y)
    ((0.30, 0.0, 0.10), (0.16, 0.05, 0.05), (0.85, 0.20, 0.85)),  # arm, magenta, right (+x) only
)
CRATE_PARTS = (((0.0, 0.0, 0.0), (0.3, 0.3, 0.4), (0.5, 0.5, 0.5)),)
SCENES = {"totem": TOTEM_PARTS, "crate": CRATE_PARTS}


def build_scene(name: str, points_per_part: int = 400, seed: int = 0) -> torch.nn.ParameterDict:
    """The raw Gaussian parameters (the trainer's layout) of scene ``name``: opaque, small, coloured blobs.

    Each part is ``points_per_part`` Gaussians uniform in its box, scale 0.04, opacity 0.95.
    """
    if name not in SCENES:
        raise KeyError(f"unknown known-answer scene {name!r} (known: {', '.join(SCENES)})")
    generator = torch.Generator().manual_seed(seed)
    means, colours = [], []
    for centre, half, rgb in SCENES[name]:
        unit = torch.rand(points_per_part, 3, generator=generator) * 2.0 - 1.0
        means.append(torch.tensor(centre) + unit * torch.tensor(half))
        colours.append(torch.tensor(rgb).expand(points_per_part, 3))
    return opaque_gaussians(torch.cat(means), torch.cat(colours))


def scene_names() -> tuple[str, ...]:
    return tuple(SCENES)


def part_colours(name: str) -> Tensor:
    """[P, 3] the colours of a scene's parts (for tests that check where each colour lands)."""
    return torch.tensor([rgb for _, _, rgb in SCENES[name]])
