"""A caption's ground truth: the Gaussian scene it describes, one draw per (caption, seed).

Each object is ``POINTS`` small opaque blobs filling its shape (box, ball, cylinder along z, cone with its tip up),
centred so that the scene sits around the origin inside the cameras' view (|x| < 0.6); a nose is a ball of radius
0.3 x the object's half extent on its +y face, at 0.3 of its height. A caption is a distribution, not a point mass:
each seed draws sizes (x U(0.9, 1.1)), placement (+- 0.03 in x and y) and colours (+- 0.03 per channel) anew,
deterministically from (caption, seed). Positions of the parts (:func:`layout`) are exposed for the tests and
the 3D-truth metrics.
"""

from __future__ import annotations

import hashlib
import math
from dataclasses import dataclass

import torch
from torch import Tensor

from ..scene.gaussians import opaque_gaussians
from .world import COLOURS, RELATIONS, SceneSpec, parse_caption

POINTS = 500
"""Gaussians per object (a nose has a fifth of that)."""
GAP = 0.04
"""Space between two objects placed next to / in front of each other."""


@dataclass(frozen=True)
class Part:
    """One solid of the scene: its shape, centre [3], half extent and colour (RGB in [0, 1])."""

    shape: str
    centre: tuple[float, float, float]
    half: float
    colour: tuple[float, float, float]
    is_nose: bool = False


def scene_generator(caption: str, seed: int) -> torch.Generator:
    """The generator of one draw of ``caption``: seeded from the caption's text and ``seed``, stable across runs."""
    digest = hashlib.sha256(f"{caption}\0{seed}".encode()).digest()
    return torch.Generator().manual_seed(int.from_bytes(digest[:8], "little"))


def layout(spec: SceneSpec, generator: torch.Generator) -> list[Part]:
    """The parts of the scene ``spec`` describes, with this draw's sizes, placement and colours."""
    def uniform(low: float, high: float) -> float:
        return low + (high - low) * float(torch.rand((), generator=generator))

    halves = [obj.half * uniform(0.9, 1.1) for obj in spec.objects]
    jitter = [(uniform(-0.03, 0.03), uniform(-0.03, 0.03)) for _ in spec.objects]
    if spec.relation is None:
        offsets = [(0.0, 0.0, 0.0)]
    else:
        direction = RELATIONS[spec.relation]
        touching = spec.relation == "on top of"
        distance = halves[0] + halves[1] + (0.0 if touching else GAP)
        offsets = [tuple(0.5 * distance * d for d in direction), tuple(-0.5 * distance * d for d in direction)]
    parts = []
    for obj, half, (dx, dy), offset in zip(spec.objects, halves, jitter, offsets):
        centre = (offset[0] + dx, offset[1] + dy, offset[2])
        parts.append(Part(obj.shape, centre, half, _jittered(COLOURS[obj.colour], generator)))
        if obj.nose:
            nose_half = 0.3 * half
            nose_centre = (centre[0], centre[1] + half + 0.5 * nose_half, centre[2] + 0.3 * half)
            parts.append(Part("ball", nose_centre, nose_half, _jittered(COLOURS[obj.nose], generator), is_nose=True))
    return parts


def caption_scene(caption: str, seed: int = 0) -> torch.nn.ParameterDict:
    """The ground-truth Gaussians (the trainer's raw layout) of one draw of ``caption``."""
    generator = scene_generator(caption, seed)
    parts = layout(parse_caption(caption), generator)
    means, colours = [], []
    for part in parts:
        count = POINTS // 5 if part.is_nose else POINTS
        means.append(torch.tensor(part.centre) + part.half * _unit_solid(part.shape, count, generator))
        colours.append(torch.tensor(part.colour).expand(count, 3))
    return opaque_gaussians(torch.cat(means), torch.cat(colours), scale=0.03)


def _jittered(rgb: tuple[float, float, float], generator: torch.Generator) -> tuple[float, float, float]:
    noise = (torch.rand(3, generator=generator) * 0.06 - 0.03).tolist()
    return tuple(min(1.0, max(0.0, c + n)) for c, n in zip(rgb, noise))


def _unit_solid(shape: str, count: int, generator: torch.Generator) -> Tensor:
    """``count`` points [count, 3] uniform in the shape of half extent 1 centred at the origin (cylinder and cone
    along z; the cone's tip up)."""
    if shape == "box":
        return torch.rand(count, 3, generator=generator) * 2.0 - 1.0
    if shape == "ball":
        direction = torch.nn.functional.normalize(torch.randn(count, 3, generator=generator), dim=-1)
        return direction * torch.rand(count, 1, generator=generator).pow(1.0 / 3.0)
    angle = torch.rand(count, generator=generator) * 2.0 * math.pi
    if shape == "cylinder":
        radius = torch.rand(count, generator=generator).sqrt()
        height = torch.rand(count, generator=generator) * 2.0 - 1.0
    elif shape == "cone":  # radius shrinks linearly from 1 at z = -1 to 0 at z = 1: volume density ~ (1 - u)^2
        u = 1.0 - torch.rand(count, generator=generator).pow(1.0 / 3.0)  # height fraction from the base
        radius = (1.0 - u) * torch.rand(count, generator=generator).sqrt()
        height = 2.0 * u - 1.0
    else:
        raise ValueError(f"unknown shape {shape!r} (known: box, ball, cylinder, cone)")
    return torch.stack([radius * torch.cos(angle), radius * torch.sin(angle), height], dim=-1)


def object_parts(spec: SceneSpec, seed: int, caption: str) -> list[Part]:
    """:func:`layout` of ``spec`` for the draw ``(caption, seed)`` that :func:`caption_scene` makes."""
    return layout(spec, scene_generator(caption, seed))

