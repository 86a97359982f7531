"""A caption's ground truth: the Gaussian scene it describes, one draw per (caption, seed).

Each object is ``POINTS`` small opaque blobs filling its shape (box, ball, cylinder along z, cone with its tip up); a
scene's bounding box (before the draw's placement jitter) is centred at :data:`CENTRE` = (0, 0, 0.15): where the trainer puts the origin of a Point-E cloud
(:func:`~segmentdreamer.init.to_gaussians.pointe_frame` lifts it by 0.15), so every scene, moved back into Point-E's
frame, lies inside the box its diffusion clips samples to (|x|, |y|, |z| <= 0.5) and a Point-E trained on the world's
clouds (:func:`scene_points`) shares one frame with the ground truth. A nose is a ball of radius
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
GAP = 0.03
"""Space between two objects placed next to / in front of each other."""
CENTRE = (0.0, 0.0, 0.15)
"""Where a scene is centred (world units): Point-E's origin in the trainer's frame."""


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
    return _centred(parts, [(dx, dy, 0.0) for dx, dy in jitter], spec)


def _centred(parts: list[Part], jitter: list[tuple[float, float, float]], spec: SceneSpec) -> list[Part]:
    """``parts`` moved so that their bounding box, without this draw's placement jitter, is centred at :data:`CENTRE`."""
    owners = [index for index, obj in enumerate(spec.objects) for _ in range(2 if obj.nose else 1)]
    shift = []
    for axis in range(3):
        low = min(p.centre[axis] - jitter[o][axis] - p.half for p, o in zip(parts, owners))
        high = max(p.centre[axis] - jitter[o][axis] + p.half for p, o in zip(parts, owners))
        shift.append(CENTRE[axis] - 0.5 * (low + high))
    return [Part(p.shape, tuple(c + d for c, d in zip(p.centre, shift)), p.half, p.colour, p.is_nose) for p in parts]


def caption_scene(caption: str, seed: int = 0) -> torch.nn.ParameterDict:
    """The ground-truth Gaussians (the trainer's raw layout) of one draw of ``caption``."""
    generator = scene_generator(caption, seed)
    means, colours = _fill_parts(layout(parse_caption(caption), generator), POINTS, generator)
    return opaque_gaussians(means, colours, scale=0.03)


def scene_points(caption: str, seed: int, count: int) -> tuple[Tensor, Tensor]:
    """A coloured point cloud of the draw ``(caption, seed)``: (xyz [count, 3] in the trainer's frame, rgb [count, 3]
    in [0, 1]), the parts' shapes filled as in :func:`caption_scene` (a nose with a fifth of an object's share):
    the training data of the miniworld's Point-E. Same parts as :func:`caption_scene` of that draw."""
    generator = scene_generator(caption, seed)
    parts = layout(parse_caption(caption), generator)
    weights = torch.tensor([0.2 if part.is_nose else 1.0 for part in parts])
    counts = torch.multinomial(weights, count, replacement=True, generator=generator).bincount(minlength=len(parts))
    return _fill_parts(parts, counts.tolist(), generator)


def _fill_parts(parts: list[Part], counts: int | list[int], generator: torch.Generator) -> tuple[Tensor, Tensor]:
    """(means [N, 3], colours [N, 3]) of points uniform in each part: ``counts`` per part, or an object's count
    (a nose a fifth of it)."""
    means, colours = [], []
    for index, part in enumerate(parts):
        count = counts[index] if isinstance(counts, list) else counts // 5 if part.is_nose else counts
        means.append(torch.tensor(part.centre) + part.half * _unit_solid(part.shape, count, generator))
        colours.append(torch.tensor(part.colour).expand(count, 3))
    return torch.cat(means), torch.cat(colours)


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


def object_parts(caption: str, seed: int = 0) -> list[Part]:
    """The parts of the draw ``(caption, seed)`` that :func:`caption_scene` makes."""
    return layout(parse_caption(caption), scene_generator(caption, seed))

