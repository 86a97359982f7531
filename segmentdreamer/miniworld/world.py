"""The miniworld's language: the words, the caption grammar, and the caption lists (training and held out).

A caption names one object, or two objects and a relation::

    object   := ("a " | "an ") [size " "] colour " " shape [" with a(n) " colour " nose"]
    caption  := object [" " relation " " object]
    size     := small | big             shape := box | ball | cylinder | cone
    relation := on top of | next to | in front of

e.g. "a small red box with a green nose on top of a big blue cylinder". The nose is the part that defines an
object's front: it sits on the object's +y face, the cameras' front (azimuth 0), so a back view never shows it.
Relations place the first object relative to the second: on top of = +z, next to = +x, in front of = +y.

The held-out captions use colour-shape pairs that no training caption contains (:data:`HELD_OUT_PAIRS`), so a
model that scores them well has composed the words, not memorised the objects.
"""

from __future__ import annotations

import random
import re
from dataclasses import dataclass

WORLD_VERSION = 1
"""Bump when the world (words, grammar, scenes, cameras) changes: shipped models are trained on one version."""
MODEL_MARKER = "miniworld.json"
"""Written into each model folder trained on the world ({"world_version": n}): the pipeline's preflight then checks
the mini-SD as what it is (epsilon prediction) instead of refusing it for not being Stable Diffusion 2.1-base."""

COLOURS: dict[str, tuple[float, float, float]] = {
    "red": (0.85, 0.12, 0.12), "green": (0.15, 0.70, 0.20), "blue": (0.15, 0.30, 0.90), "yellow": (0.95, 0.85, 0.10),
    "orange": (0.95, 0.50, 0.10), "purple": (0.55, 0.20, 0.75), "white": (0.93, 0.93, 0.93), "black": (0.08, 0.08, 0.08),
    "pink": (0.95, 0.55, 0.70), "cyan": (0.10, 0.80, 0.85),
}
"""Named colours and their RGB in [0, 1]."""
SHAPES = ("box", "ball", "cylinder", "cone")
SIZES: dict[str, float] = {"small": 0.125, "big": 0.19}
"""Half extent of an object (world units) per size word; no word: halfway."""
DEFAULT_HALF = 0.165
RELATIONS: dict[str, tuple[float, float, float]] = {"on top of": (0.0, 0.0, 1.0), "next to": (1.0, 0.0, 0.0),
                                                     "in front of": (0.0, 1.0, 0.0)}
"""Relation -> the direction from the second object to the first."""
HELD_OUT_PAIRS = frozenset((colour, shape) for i, colour in enumerate(COLOURS) for j, shape in enumerate(SHAPES)
                           if (i + 3 * j) % 5 == 0)
"""Colour-shape pairs kept out of every training caption (8 of the 40)."""

_OBJECT = (rf"an? (?:(?P<size{{n}}>{'|'.join(SIZES)}) )?(?P<colour{{n}}>{'|'.join(COLOURS)}) (?P<shape{{n}}>{'|'.join(SHAPES)})"
           rf"(?: with an? (?P<nose{{n}}>{'|'.join(COLOURS)}) nose)?")
_CAPTION = re.compile(rf"^{_OBJECT.format(n=0)}(?: (?P<relation>{'|'.join(RELATIONS)}) {_OBJECT.format(n=1)})?$")


def article(word: str) -> str:
    """"an" before a vowel ("an orange box"), else "a"."""
    return "an" if word[0] in "aeiou" else "a"


class CaptionError(ValueError):
    """A caption outside the miniworld's grammar (the message quotes it and the grammar)."""


@dataclass(frozen=True)
class ObjectSpec:
    """One object of a caption."""

    colour: str
    shape: str
    size: str | None = None
    nose: str | None = None
    """The nose's colour, or None for an object without a front."""

    @property
    def half(self) -> float:
        return SIZES[self.size] if self.size else DEFAULT_HALF

    def words(self) -> str:
        first = self.size or self.colour
        nose = f" with {article(self.nose)} {self.nose} nose" if self.nose else ""
        return f"{article(first)} {self.size + ' ' if self.size else ''}{self.colour} {self.shape}{nose}"


@dataclass(frozen=True)
class SceneSpec:
    """What a caption says: one or two objects and, with two, how the first stands to the second."""

    objects: tuple[ObjectSpec, ...]
    relation: str | None = None

    def caption(self) -> str:
        first = self.objects[0].words()
        return first if self.relation is None else f"{first} {self.relation} {self.objects[1].words()}"


def parse_caption(caption: str) -> SceneSpec:
    """The :class:`SceneSpec` of ``caption``; raises :class:`CaptionError` for text outside the grammar."""
    match = _CAPTION.match(caption.strip())
    if not match:
        raise CaptionError(f"{caption!r} is not a miniworld caption: 'a(n) [small|big] <colour> <box|ball|cylinder|cone> "
                           f"[with a(n) <colour> nose] [on top of|next to|in front of <another object>]' "
                           f"(colours: {', '.join(COLOURS)})")
    objects = [ObjectSpec(match[f"colour{n}"], match[f"shape{n}"], match[f"size{n}"], match[f"nose{n}"])
               for n in ((0, 1) if match["relation"] else (0,))]
    return SceneSpec(tuple(objects), match["relation"])


def _random_object(rng: random.Random, held_out: bool) -> ObjectSpec:
    while True:
        colour, shape = rng.choice(list(COLOURS)), rng.choice(SHAPES)
        if ((colour, shape) in HELD_OUT_PAIRS) == held_out:
            break
    nose = rng.choice(list(COLOURS)) if rng.random() < 0.4 else None
    return ObjectSpec(colour, shape, rng.choice([None, *SIZES]), None if nose == colour else nose)


def training_captions(count: int = 320, seed: int = 0) -> list[str]:
    """``count`` distinct captions (every single object of an allowed colour-shape pair, then random pairs of objects),
    none with a held-out colour-shape pair; deterministic for ``seed``."""
    singles = [ObjectSpec(c, s, size).words() for c in COLOURS for s in SHAPES for size in (None, *SIZES)
               if (c, s) not in HELD_OUT_PAIRS]
    return _fill(singles, count, seed, held_out=False)


def held_out_captions(count: int = 40, seed: int = 1) -> list[str]:
    """``count`` distinct captions whose objects all use held-out colour-shape pairs (unseen combinations)."""
    singles = [ObjectSpec(c, s).words() for c, s in sorted(HELD_OUT_PAIRS)]
    return _fill(singles, count, seed, held_out=True)


def _fill(singles: list[str], count: int, seed: int, held_out: bool) -> list[str]:
    rng = random.Random(seed)
    captions = dict.fromkeys(singles[:count])
    while len(captions) < count:
        first, second = _random_object(rng, held_out), _random_object(rng, held_out)
        captions[SceneSpec((first, second), rng.choice(list(RELATIONS))).caption()] = None
    return list(captions)
