"""The miniworld's 3D-truth metrics: the truth scores perfectly against itself, and each failure moves its metric."""

from __future__ import annotations

import dataclasses

import pytest
import torch

from segmentdreamer.miniworld.scenes import _fill_parts, caption_scene, object_parts
from segmentdreamer.miniworld.truth_metrics import back_views, truth_metrics
from segmentdreamer.scene.gaussians import opaque_gaussians

CAPTION = "a big blue box with a red nose"
SMALL = {"views": 8, "resolution": 48}


def scene_of(parts, seed=0):
    means, colours = _fill_parts(parts, 500, torch.Generator().manual_seed(seed))
    return opaque_gaussians(means, colours, scale=0.03)


def test_the_truth_scores_perfectly_against_itself():
    metrics = truth_metrics(caption_scene(CAPTION), CAPTION, **SMALL)
    assert metrics["psnr"] > 100 and metrics["ssim"] == pytest.approx(1.0, abs=1e-4) and metrics["iou"] == 1.0
    assert metrics["surface_distance"] < 1e-4 and metrics["saturation_ratio"] == pytest.approx(1.0)
    assert metrics["multi_face"] == 0.0
    assert truth_metrics(caption_scene("a big blue box"), "a big blue box", **SMALL)["multi_face"] is None  # no front


def test_another_captions_truth_scores_worse_on_every_render_and_shape_metric():
    own = truth_metrics(caption_scene(CAPTION, 1), CAPTION, **SMALL)  # another draw of the same caption
    other = truth_metrics(caption_scene("a big yellow cylinder next to a big green ball"), CAPTION, **SMALL)
    assert other["psnr"] < own["psnr"] - 3 and other["iou"] < own["iou"] - 0.1
    assert other["surface_distance"] > 2 * own["surface_distance"]


def test_a_second_face_on_the_back_is_measured_as_multi_face():
    parts = object_parts(CAPTION)
    nose = next(part for part in parts if part.is_nose)
    body = next(part for part in parts if not part.is_nose)
    mirrored = dataclasses.replace(nose, centre=(nose.centre[0], 2 * body.centre[1] - nose.centre[1], nose.centre[2]))
    janus = truth_metrics(scene_of(parts + [mirrored]), CAPTION, **SMALL)
    assert janus["multi_face"] > 0.02
    assert truth_metrics(scene_of(parts), CAPTION, **SMALL)["multi_face"] < 0.005  # the same fill without it


def test_over_saturated_colours_raise_the_saturation_ratio():
    parts = object_parts(CAPTION)
    vivid = [dataclasses.replace(p, colour=tuple(min(1.0, max(0.0, 0.5 + 1.6 * (c - 0.5))) for c in p.colour)) for p in parts]
    washed = [dataclasses.replace(p, colour=tuple(0.5 + 0.4 * (c - 0.5) for c in p.colour)) for p in parts]
    assert truth_metrics(scene_of(vivid), CAPTION, **SMALL)["saturation_ratio"] > 1.05
    assert truth_metrics(scene_of(washed), CAPTION, **SMALL)["saturation_ratio"] < 0.95


def test_back_views_are_those_facing_the_back():
    assert back_views(8).tolist() == [False, False, False, False, True, False, False, False]  # 180 degrees only
    assert back_views(24).sum() == 5  # 150, 165, 180, -165, -150
