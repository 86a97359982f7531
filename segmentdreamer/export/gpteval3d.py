"""A run's renders in GPTEval3D's layout (Wu et al. 2024, github.com/3DTopia/GPTEval3D, assets/data_format.md).

    <root>/prompts.json                                   the prompt list, in order (a prompt's id is its index)
    <root>/methods/<method>/<prompt index>/<seed>/rgb_<i>.png, normal_<i>.png     i = 0 .. 119, 512 x 512

Views: 120 evenly spaced azimuths starting at the front, at threestudio's evaluation elevation of 15 degrees
(GPTEval3D asks for threestudio's camera angles: eval_elevation_deg 15, n_test_views 120, 512 px). Distance and
field of view are our evaluation ring's (3.5, 31.5 degrees horizontal), which frame our objects as
threestudio's 1.5 / 70 degrees frame theirs; our front is +y (theirs +x), so view 0 is the front in both.
RGB on white, as our ring. Normals: world-space surface normals from the rendered depth (finite differences
of the unprojected depth map, facing the camera), encoded as (n + 1) / 2, black where the opacity is below 0.5.
"""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import torch
from torch import Tensor

from ..scene.cameras import evaluation_ring
from ..scene.gaussians import activate, load_ply
from ..scene.render import render, to_uint8
from ..scene.ring import RING

GPTEVAL3D_RING = replace(RING, elevation=15.0)
"""GPTEval3D's protocol: threestudio's eval cameras, whose view count and image size are our ring's, 15 degrees up."""
GPTEVAL3D_VIEWS, GPTEVAL3D_ELEVATION, GPTEVAL3D_RESOLUTION = GPTEVAL3D_RING.views, GPTEVAL3D_RING.elevation, GPTEVAL3D_RING.resolution
MIN_NORMAL_ALPHA = 0.5
"""Pixels less opaque than this have no normal (black)."""


def depth_normals(depth: Tensor, alpha: Tensor, intrinsics: Tensor, viewmats: Tensor) -> Tensor:
    """World-space unit normals [B, 3, H, W] (0 where alpha < MIN_NORMAL_ALPHA) from accumulated depth [B, 1, H, W].

    Camera points P = z K^-1 (u, v, 1) (OpenCV: x right, y down, z forward) with z = depth / alpha; the normal
    is -(dP/du x dP/dv), central differences, which faces the camera; rotated to the world by c2w."""
    b, _, h, w = depth.shape
    z = (depth / alpha.clamp_min(1e-6))[:, 0]  # [B, H, W]
    v, u = torch.meshgrid(torch.arange(h, dtype=z.dtype, device=z.device), torch.arange(w, dtype=z.dtype, device=z.device),
                          indexing="ij")
    fx, fy = intrinsics[:, 0, 0, None, None], intrinsics[:, 1, 1, None, None]
    cx, cy = intrinsics[:, 0, 2, None, None], intrinsics[:, 1, 2, None, None]
    points = torch.stack([(u - cx) * z / fx, (v - cy) * z / fy, z], dim=1)  # [B, 3, H, W]
    padded = torch.nn.functional.pad(points, (1, 1, 1, 1), mode="replicate")
    along_u = padded[:, :, 1:-1, 2:] - padded[:, :, 1:-1, :-2]
    along_v = padded[:, :, 2:, 1:-1] - padded[:, :, :-2, 1:-1]
    normal = -torch.nn.functional.normalize(torch.cross(along_u, along_v, dim=1), dim=1)
    camera_to_world = torch.linalg.inv(viewmats)[:, :3, :3]  # [B, 3, 3]
    world = torch.einsum("bij,bjhw->bihw", camera_to_world, normal)
    return world * (alpha >= MIN_NORMAL_ALPHA)


def render_benchmark_views(ply: str | Path, out_dir: str | Path, device: str | torch.device = "cpu", batch: int = 8,
                           views: int = GPTEVAL3D_VIEWS, resolution: int = GPTEVAL3D_RESOLUTION) -> list[Path]:
    """rgb_<i>.png and normal_<i>.png for the GPTEval3D ring into ``out_dir``; returns the paths written."""
    import imageio.v3 as iio

    gaussians = {k: v.to(device) for k, v in activate(load_ply(ply)).items()}  # a damaged .ply stops before any folder
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    cameras = evaluation_ring(views, GPTEVAL3D_ELEVATION, width=resolution, height=resolution)
    written = []
    with torch.no_grad():
        for start in range(0, views, batch):
            cams = cameras[start:start + batch].to(device)
            out = render(**gaussians, viewmats=cams.viewmats, Ks=cams.Ks, width=resolution, height=resolution,
                         backgrounds=torch.ones(len(cams), 3, device=device))
            normals = depth_normals(out.depth, out.alpha, cams.Ks, cams.viewmats)
            encoded = torch.where(out.alpha >= MIN_NORMAL_ALPHA, (normals + 1.0) / 2.0, torch.zeros_like(normals))
            for offset in range(len(cams)):
                index = start + offset
                for name, image in (("rgb", out.rgb[offset]), ("normal", encoded[offset])):
                    path = out_dir / f"{name}_{index}.png"
                    iio.imwrite(path, to_uint8(image))
                    written.append(path)
    return written


def write_prompts(prompt_list: str | Path, out: str | Path) -> int:
    """``prompts.json`` from one of our prompt lists: its prompts in file order (a prompt's id is its index)."""
    from ..atomic import write_text
    from ..prompts import read_prompt_list

    prompts = [entry.prompt for entry in read_prompt_list(prompt_list).values()]
    write_text(json.dumps(prompts, indent=2, ensure_ascii=False), out)
    return len(prompts)
