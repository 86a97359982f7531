"""Evaluation renders: the 120-view ring on a white background as PNGs, and a turntable video (SPEC 7)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from tqdm import tqdm

from .atomic import atomic_target
from .cameras import evaluation_ring
from .gaussians import activate, load_ply
from .render import render


@torch.no_grad()
def render_ring(
    ply: str | Path,
    out_dir: str | Path,
    views: int = 120,
    resolution: int = 512,
    elevation_deg: float = 0.0,
    radius: float = 3.5,
    fovx: float = 0.55,
    batch: int = 8,
    device: str | torch.device = "cpu",
    video: str | Path | None = "",
    fps: int = 30,
) -> list[Path]:
    """Render ``ply`` from the evaluation ring into ``out_dir/view_###.png`` and a turntable video at ``video``
    (``""``: ``out_dir/turntable.mp4``; ``None``: no video)."""
    import imageio.v3 as iio

    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    gaussians = {k: v.to(device) for k, v in activate(load_ply(ply)).items()}
    cameras = evaluation_ring(views, elevation_deg, radius, fovx, resolution, resolution)
    paths, frames = [], []
    for start in tqdm(range(0, views, batch), desc=f"render {Path(ply).parent.name}", unit="batch"):
        cams = cameras[start : start + batch].to(device)
        white = torch.ones(len(cams), 3, device=device)
        rgb = render(**gaussians, viewmats=cams.viewmats, Ks=cams.Ks, width=resolution, height=resolution, backgrounds=white).rgb
        images = (rgb.clamp(0, 1).permute(0, 2, 3, 1).cpu().numpy() * 255.0).round().astype(np.uint8)
        for offset, image in enumerate(images):
            path = out_dir / f"view_{start + offset:03d}.png"
            iio.imwrite(path, image)
            paths.append(path)
            frames.append(image)
    if video is not None:
        target = Path(video) if video else out_dir / "turntable.mp4"
        with atomic_target(target) as tmp:
            iio.imwrite(tmp, np.stack(frames), fps=fps, codec="libx264", macro_block_size=1)
    return paths
