"""A kind of prior from outside the package, as docs/architecture.md "Adding a prior" shows: the known-answer prior of a scene
seen in a mirror (x -> -x), selected by ``models.sd: mirrored-scene:<scene>``.

The whole extension: a subclass of the prior contract (here of a prior that follows it) and one line to register.
"""

from segmentdreamer.prior import register_prior
from segmentdreamer.prior.target_scene import TargetScenePrior
from segmentdreamer.scene.known_scenes import build_scene


class MirroredScenePrior(TargetScenePrior):
    """The ground truth is the named scene with its x coordinates negated."""

    @classmethod
    def load(cls, spec: str, dtype=None, device="cpu", cache_dir=None) -> "MirroredScenePrior":
        scene = build_scene(spec.removeprefix("mirrored-scene:"))
        scene["means"].data[:, 0] *= -1.0
        return cls([scene], device)


register_prior("mirrored-scene:", MirroredScenePrior.load)
