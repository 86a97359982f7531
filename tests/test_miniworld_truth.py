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


def test_the_truth_metric_scores_a_run_against_its_own_captions_truth(tmp_path):
    """The registered metric (eval.truth) through `segmentdreamer evaluate`: a run whose Gaussians are its caption's
    truth gets a near-perfect record, one holding another caption's truth does not; Table 1 shows the six columns,
    the saturation ratio ranked by its distance to 1."""
    import json

    from segmentdreamer.cli import main
    from segmentdreamer.report.table1 import write_table1
    from segmentdreamer.scene.gaussians import save_ply

    prompts = tmp_path / "captions.tsv"
    prompts.write_text(f"prompt_id\tprompt\tinit_prompt\nnosed\t{CAPTION}\t{CAPTION}\n", encoding="utf-8")
    records = {}
    for name, scene in (("own", caption_scene(CAPTION)), ("other", caption_scene("a big yellow cylinder next to a big green ball"))):
        run = tmp_path / name
        run.mkdir()
        save_ply(scene, run / "gaussians.ply")
        assert main(["evaluate", "--metric", "truth_psnr", "--views", str(run), "--ply", str(run / "gaussians.ply"),
                     "--prompts", str(prompts), "--prompt-id", "nosed", "--device", "cpu", "--out", str(run / "truth_psnr.json")]) == 0
        records[name] = json.loads((run / "truth_psnr.json").read_text())
    own, other = records["own"], records["other"]
    assert own["mean"] > 60 and own["truth_iou"] > 0.999 and own["surface_distance"] < 1e-3 and own["multi_face"] == 0.0
    assert other["mean"] < own["mean"] - 20 and other["truth_iou"] < 0.8 and other["surface_distance"] > 0.05

    from segmentdreamer.evaluate.metric import METRICS

    manifest = {"prompt_set": "mw", "metric_columns": METRICS["truth_psnr"].columns(),
                "methods": {name: {"truth_psnr": [str(tmp_path / name / "truth_psnr.json")], "fid": None} for name in records}}
    (tmp_path / "manifest.json").write_text(json.dumps(manifest))
    write_table1(tmp_path / "manifest.json", tmp_path / "table")
    markdown = (tmp_path / "table.md").read_text()
    for title in ("PSNR vs truth", "SSIM vs truth", "IoU vs truth", "Surface dist.", "Saturation / truth", "Multi-face"):
        assert title in markdown
    assert markdown.splitlines()[2].startswith("| own | **")  # best PSNR bold on the run that is its truth
