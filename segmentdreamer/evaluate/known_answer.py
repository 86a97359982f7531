"""Known-answer scores of a finished run: its learned scene and its start against the ground truth.

The comparison itself (ring renders, PSNR, SSIM, silhouette IoU) is :mod:`segmentdreamer.scene.compare`.
"""

from __future__ import annotations

from pathlib import Path

import torch

from ..scene.compare import compare_renders, ring_renders
from ..scene.ring import COMPARISON_RESOLUTION, RING


def evaluate_run(run_config: str | Path, ply: str | Path, out_json: str | Path, video: str | Path | None = None,
                 views: int = RING.views, resolution: int = COMPARISON_RESOLUTION, video_frames: int = 40, fps: int = 10) -> dict:
    """Score a finished known-answer run: the learned .ply and its starting scene against the ground truth.

    The ground truth is the first scene of the run's ``models.sd`` (``target-scene:<scene>...``); the start is
    what the trainer began from (its sphere init with the run's seed, or its init .ply). Writes ``out_json``
    ({psnr, ssim, iou, psnr_per_view, start: {...}, scene}) and, if ``video`` is given, the ground truth's and
    the learned scene's turntables side by side (ground truth left) as an animated GIF (plays in every browser,
    the Snakemake report's pages and GitHub included), ``video_frames`` of the ring's views evenly spaced (40:
    every 9 degrees, ~130 kB at 64 px, so that a page embedding one per method stays below the 2 MB a browser
    accepts in a data URL).
    """
    from ..atomic import atomic_target, write_json
    from ..config import ConfigError, load_config
    from ..init.initial_gaussians import initial_gaussians
    from ..models import is_target_scene
    from ..prior.target_scene import TargetScenePrior
    from ..scene.gaussians import load_ply

    config = load_config(run_config)
    if not is_target_scene(config.models.sd):
        raise ConfigError(f"models.sd = {config.models.sd!r}: known-answer scores need the target-scene prior "
                          "(models.sd: target-scene:<scene>; workflow/demo.yaml)")
    truth = TargetScenePrior.from_spec(config.models.sd).ground_truth
    start = initial_gaussians(config)
    gt_rgb, gt_alpha = ring_renders(truth, views, resolution)
    rgb, alpha = ring_renders(load_ply(ply), views, resolution)
    result = compare_renders(rgb, alpha, gt_rgb, gt_alpha)
    start_metrics = compare_renders(*ring_renders(start, views, resolution), gt_rgb, gt_alpha)
    result["start"] = {key: start_metrics[key] for key in ("psnr", "ssim", "iou")}
    result["scene"] = config.models.sd
    if video is not None:
        import imageio.v3 as iio

        every = max(1, views // video_frames)
        pairs = torch.cat([gt_rgb[::every], rgb[::every]], dim=-1)
        frames = (pairs.permute(0, 2, 3, 1).numpy() * 255.0).round().astype("uint8")
        with atomic_target(Path(video)) as tmp:
            iio.imwrite(tmp, frames, extension=".gif", duration=1000.0 / fps, loop=0)
    write_json(result, out_json)
    return result
