"""Evaluation renders: the 120-view ring on a white background as PNGs, and a turntable video (docs/method.md, "Cameras, init and renders")."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from tqdm import tqdm

from ..atomic import atomic_target
from ..plan.layout import RUN_FILES, VIEW_FILE, VIEWS_COMPLETE
from .cameras import evaluation_ring
from .gaussians import activate, load_ply
from .render import render, to_uint8
from .render_folder import mark_views_complete
from .ring import RING

MIN_ALPHA = 0.01
"""A pixel counts as covered above this opacity."""


@torch.no_grad()
def render_ring(
    ply: str | Path,
    out_dir: str | Path,
    views: int = RING.views,
    resolution: int = RING.resolution,
    elevation_deg: float = RING.elevation,
    radius: float = RING.radius,
    fovx: float = RING.fovx,
    batch: int = 8,
    device: str | torch.device = "cpu",
    video: str | Path | None = "",
    fps: int = 30,
) -> list[Path]:
    """Render ``ply`` from the evaluation ring into ``out_dir/view_###.png`` and a turntable video at ``video``
    (``""``: ``out_dir/turntable.mp4``; ``None``: no video); ``out_dir/complete.json`` is written last.

    Raises PlyError (from :func:`load_ply`), before writing anything, for a .ply that is damaged, empty or holds
    non-finite values, and BlankRenderError, before the completion marker, when no view shows the asset.
    """
    import imageio.v3 as iio

    out_dir = Path(out_dir)
    params = load_ply(ply)
    out_dir.mkdir(parents=True, exist_ok=True)
    (out_dir / VIEWS_COMPLETE).unlink(missing_ok=True)
    gaussians = {k: v.to(device) for k, v in activate(params).items()}
    cameras = evaluation_ring(views, elevation_deg, radius, fovx, resolution, resolution)
    paths, frames, coverage = [], [], []
    for start in tqdm(range(0, views, batch), desc=f"render {Path(ply).parent.name}", unit="batch"):
        cams = cameras[start : start + batch].to(device)
        white = torch.ones(len(cams), 3, device=device)
        out = render(**gaussians, viewmats=cams.viewmats, Ks=cams.Ks, width=resolution, height=resolution, backgrounds=white)
        rgb = out.rgb
        coverage.append((out.alpha > MIN_ALPHA).float().mean(dim=(1, 2, 3)).cpu())
        images = to_uint8(rgb)
        for offset, image in enumerate(images):
            path = out_dir / VIEW_FILE.format(index=start + offset)
            iio.imwrite(path, image)
            paths.append(path)
            frames.append(image)
    covered = torch.cat(coverage)
    if float(covered.max()) == 0.0:
        raise BlankRenderError(f"{ply}: every view of the ring is blank (no pixel with alpha > {MIN_ALPHA}): the asset is "
                               "empty or outside the ring's view, and a blank asset is never scored")
    if video is not None:
        target = Path(video) if video else out_dir / RUN_FILES["turntable"]
        with atomic_target(target) as tmp:
            iio.imwrite(tmp, np.stack(frames), fps=fps, codec="libx264", macro_block_size=1)
    mark_views_complete(out_dir, len(paths), resolution=resolution, elevation_deg=elevation_deg, mean_coverage=float(covered.mean()))
    return paths


class BlankRenderError(RuntimeError):
    """The asset cannot be a result: nothing visible from the evaluation ring (non-finite ones: ``PlyError``)."""
