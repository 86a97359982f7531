"""3D-truth metrics of a learned scene against the ground truth its caption describes (the miniworld Table 1's
columns beside CLIP score).

Both scenes are rendered on the evaluation ring (elevation 0, radius 3.5, white background:
:func:`~segmentdreamer.scene.compare.ring_renders`), and compared as

- ``psnr``, ``ssim``, ``iou``: the render comparison of the known-answer demo (:mod:`~segmentdreamer.scene.compare`);
- ``surface_distance``: the symmetric Chamfer distance (world units) between the centres of the learned Gaussians
  that are opaque (opacity > 0.5) and the truth's blobs: where the object is, whatever its colour;
- ``saturation_ratio``: the mean HSV saturation ((max - min) / max) of the learned object's pixels (alpha > 0.5) over
  the truth's: above 1 is over-saturation, the failure CDS-style guidance is known for;
- ``multi_face``: for a caption whose object has a front (a nose), the share of the object's pixels in the back
  views (|azimuth| > 135 degrees) that have the nose's colour, minus the truth's share there (the nose's colour may
  belong to another part seen from behind): above 0 is a second face, the Janus failure; None without a nose.
"""

from __future__ import annotations

import torch
from torch import Tensor

from ..evaluate.metric import RunScorer, RunToScore
from ..scene.compare import compare_renders, ring_renders
from ..scene.gaussians import activate
from ..scene.ring import COMPARISON_RESOLUTION
from .gates import chamfer
from .scenes import caption_scene, object_parts

OPAQUE = 0.5
NOSE_TOLERANCE = 0.15
"""A pixel has the nose's colour when every channel is within this of it."""
BACK = 135.0
"""Views with |azimuth| above this (degrees from the front) are back views."""


def surface_distance(learned: torch.nn.ParameterDict, truth: torch.nn.ParameterDict) -> float:
    """Chamfer distance between the opaque learned Gaussians' centres and the truth's (inf when none is opaque)."""
    gaussians = activate(learned)
    opaque = gaussians["means"][gaussians["opacities"] > OPAQUE].detach().float()
    if len(opaque) == 0:
        return float("inf")
    return chamfer(opaque, truth["means"].detach().float())


def saturation(rgb: Tensor, alpha: Tensor) -> float:
    """Mean HSV saturation of the object's pixels (alpha > 0.5) of renders rgb [V, 3, H, W], alpha [V, 1, H, W]."""
    high, low = rgb.amax(dim=1), rgb.amin(dim=1)
    values = ((high - low) / high.clamp_min(1e-6))[alpha[:, 0] > OPAQUE]
    return float(values.mean()) if len(values) else 0.0


def colour_share(rgb: Tensor, alpha: Tensor, colour: tuple[float, float, float]) -> Tensor:
    """Per view [V]: the share of the object's pixels within :data:`NOSE_TOLERANCE` of ``colour`` in every channel."""
    near = ((rgb - torch.tensor(colour, dtype=rgb.dtype)[:, None, None]).abs() <= NOSE_TOLERANCE).all(dim=1)
    inside = alpha[:, 0] > OPAQUE
    return (near & inside).flatten(1).sum(1) / inside.flatten(1).sum(1).clamp_min(1)


def back_views(count: int) -> Tensor:
    """Which of the ring's ``count`` views look at the back ([count] bool)."""
    azimuths = (torch.arange(count, dtype=torch.float32) * (360.0 / count) + 180.0) % 360.0 - 180.0
    return azimuths.abs() > BACK


def truth_metrics(learned: torch.nn.ParameterDict, caption: str, seed: int = 0, views: int = 24,
                  resolution: int = COMPARISON_RESOLUTION) -> dict:
    """Every metric of the module docstring for ``learned`` against the draw ``(caption, seed)`` of its ground truth."""
    truth = caption_scene(caption, seed)
    rgb, alpha = ring_renders(learned, views, resolution)
    truth_rgb, truth_alpha = ring_renders(truth, views, resolution)
    metrics = compare_renders(rgb, alpha, truth_rgb, truth_alpha)
    metrics.pop("psnr_per_view")
    truth_saturation = saturation(truth_rgb, truth_alpha)
    metrics["surface_distance"] = surface_distance(learned, truth)
    metrics["saturation_ratio"] = saturation(rgb, alpha) / max(truth_saturation, 1e-6)
    noses = [part for part in object_parts(caption, seed) if part.is_nose]
    if noses:
        back = back_views(views)
        extra = [colour_share(rgb[back], alpha[back], nose.colour) - colour_share(truth_rgb[back], truth_alpha[back], nose.colour)
                 for nose in noses]
        metrics["multi_face"] = float(torch.stack(extra).amax(dim=0).clamp_min(0.0).mean())
    else:
        metrics["multi_face"] = None
    return metrics


def truth_scorer(models: dict[str, str], device) -> RunScorer:
    """The ``truth_psnr`` metric (segmentdreamer/evaluate/metric.py): a run's Gaussians against its caption's ground
    truth (draw 0), every value of :func:`truth_metrics`; the record's ``mean`` is the ring PSNR."""
    from ..scene.gaussians import load_ply

    def score(run: RunToScore) -> dict:
        if run.ply is None:
            raise ValueError("the truth metrics score the run's Gaussians: give --ply")
        values = truth_metrics(load_ply(run.ply), run.prompt, seed=0)
        return {"mean": values["psnr"], "truth_ssim": values["ssim"], "truth_iou": values["iou"],
                **{key: values[key] for key in ("surface_distance", "saturation_ratio", "multi_face")}}

    return score
