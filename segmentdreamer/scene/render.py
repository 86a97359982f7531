"""Render 3D Gaussians: gsplat's CUDA rasterizer on GPU, the same math in pure PyTorch on CPU.

``render()`` is one pure function, tensors in and out (after gsplat's ``rasterization``). Both backends
compute the "classic" 3DGS image:

- projection: means_c = R x + t (OpenCV camera: x right, y down, z forward); 2D mean = K means_c / z;
  2D covariance J W Sigma W^T J^T + eps2d I (eps2d = 0.3) with the Jacobian's x/z, y/z clamped to 1.3x
  the frustum, as gsplat; Gaussians nearer than 0.01 are dropped; radius = ceil(3.33 sqrt(diag)).
- compositing front to back by depth at pixel centres: alpha = min(opacity exp(-sigma), 0.999),
  skipped under 1/255, stopping before transmittance would fall to 1e-4.
  Opacities are capped at 0.99 before rasterizing, which makes gsplat's 0.999 cap the official 0.99.
- rgb = sum w c + T * background;  D = sum w z (detached per-Gaussian depth: depth gradients reach the
  Gaussians only through alpha);  disparity = f / (D + 10 T + 1e-5), f = fx / W = 1 / (2 tan(fovx/2)),
  normalised per view by its minimum over pixels with T <= 0.1 and its maximum, clamped to [0, 1].
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from torch import Tensor

EPS2D = 0.3
NEAR_PLANE = 0.01
ALPHA_MIN = 1.0 / 255.0
ALPHA_MAX = 0.999
OPACITY_CAP = 0.99
T_MIN = 1e-4
TILE = 8
"""Pixel tile of the PyTorch compositor: 8 x 8 was fastest on a 2-core CPU (20k Gaussians, 64^2: 0.18 s forward)."""


@dataclass
class RenderOutput:
    """Per view b of B cameras.

    Attributes:
        rgb: [B, 3, H, W] composited over the background.
        alpha: [B, 1, H, W] accumulated opacity (1 - final transmittance).
        depth: [B, 1, H, W] D = sum_i z_i alpha_i T_i (not divided by alpha).
        disparity: [B, 1, H, W] normalised disparity in [0, 1].
        means2d: [B, N, 2] projected centres in pixels (``retain_grad``-ed: their gradient feeds densification).
        radii: [B, N] screen radius in pixels (0: not visible).
    """

    rgb: Tensor
    alpha: Tensor
    depth: Tensor
    disparity: Tensor
    means2d: Tensor
    radii: Tensor


def to_uint8(images: Tensor) -> np.ndarray:
    """Images [..., 3, H, W] in [0, 1] (clamped) -> uint8 arrays [..., H, W, 3] on the CPU, for PNGs and videos."""
    return (images.clamp(0.0, 1.0).movedim(-3, -1).cpu().numpy() * 255.0).round().astype("uint8")


def quaternion_to_matrix(quats: Tensor) -> Tensor:
    """Rotation matrices [N, 3, 3] from unit quaternions (w, x, y, z) [N, 4]."""
    w, x, y, z = quats.unbind(-1)
    return torch.stack(
        [
            1 - 2 * (y * y + z * z), 2 * (x * y - w * z), 2 * (x * z + w * y),
            2 * (x * y + w * z), 1 - 2 * (x * x + z * z), 2 * (y * z - w * x),
            2 * (x * z - w * y), 2 * (y * z + w * x), 1 - 2 * (x * x + y * y),
        ],
        dim=-1,
    ).reshape(*quats.shape[:-1], 3, 3)


def project(means, quats, scales, viewmat, K, width, height):
    """Camera-space projection of N Gaussians for one camera.

    Returns means2d [N, 2], conics [N, 3] (a, b, c of the inverse 2D covariance), depths [N], radii [N]
    (the larger axis; 0 when culled) and the per-axis radii [N, 2] the compositor bounds tiles with.
    """
    R, t = viewmat[:3, :3], viewmat[:3, 3]
    means_c = means @ R.T + t
    rot = quaternion_to_matrix(quats)
    M = rot * scales[:, None, :]
    cov_c = R @ (M @ M.transpose(1, 2)) @ R.T
    fx, fy, cx, cy = K[0, 0], K[1, 1], K[0, 2], K[1, 2]
    tx, ty, tz = means_c.unbind(-1)
    tan_x, tan_y = 0.5 * width / fx, 0.5 * height / fy
    cx_lim = tz * torch.clamp(tx / tz, min=-(cx / fx + 0.3 * tan_x), max=(width - cx) / fx + 0.3 * tan_x)
    cy_lim = tz * torch.clamp(ty / tz, min=-(cy / fy + 0.3 * tan_y), max=(height - cy) / fy + 0.3 * tan_y)
    zeros = torch.zeros_like(tz)
    J = torch.stack([fx / tz, zeros, -fx * cx_lim / tz**2, zeros, fy / tz, -fy * cy_lim / tz**2], -1).reshape(-1, 2, 3)
    cov2d = J @ cov_c @ J.transpose(1, 2) + EPS2D * torch.eye(2, dtype=means.dtype, device=means.device)
    det = (cov2d[:, 0, 0] * cov2d[:, 1, 1] - cov2d[:, 0, 1] * cov2d[:, 1, 0]).clamp_min(1e-10)
    conics = torch.stack([cov2d[:, 1, 1] / det, -0.5 * (cov2d[:, 0, 1] + cov2d[:, 1, 0]) / det, cov2d[:, 0, 0] / det], -1)
    means2d = torch.stack([fx * tx / tz + cx, fy * ty / tz + cy], -1)
    radius = torch.stack([torch.ceil(3.33 * cov2d[:, 0, 0].sqrt()), torch.ceil(3.33 * cov2d[:, 1, 1].sqrt())], -1).detach()
    visible = (
        (tz > NEAR_PLANE)
        & (means2d[:, 0].detach() + radius[:, 0] > 0) & (means2d[:, 0].detach() - radius[:, 0] < width)
        & (means2d[:, 1].detach() + radius[:, 1] > 0) & (means2d[:, 1].detach() - radius[:, 1] < height)
    )
    radii = torch.where(visible, radius.max(-1).values, torch.zeros_like(tz))
    return means2d, conics, tz, radii, radius * visible[:, None]


def _composite_torch(means2d, conics, opacities, features, depths, radius_xy, width, height):
    """Front-to-back compositing of one view, tile by tile. Returns features [H, W, C], transmittance [H, W]."""
    order = torch.argsort(depths.detach())
    mx, my = means2d[order, 0], means2d[order, 1]
    rx, ry = radius_xy[order, 0], radius_xy[order, 1]
    conic, opacity, feats = conics[order], opacities[order], features[order]
    live = (rx > 0) & (ry > 0)
    rows, trans_rows = [], []
    for y0 in range(0, height, TILE):
        row, trans_row = [], []
        for x0 in range(0, width, TILE):
            y1, x1 = min(y0 + TILE, height), min(x0 + TILE, width)
            hit = live & (mx.detach() + rx > x0) & (mx.detach() - rx < x1) & (my.detach() + ry > y0) & (my.detach() - ry < y1)
            idx = hit.nonzero().squeeze(1)
            ys, xs = torch.meshgrid(torch.arange(y0, y1, device=means2d.device), torch.arange(x0, x1, device=means2d.device), indexing="ij")
            px, py = xs.reshape(-1, 1).to(means2d.dtype) + 0.5, ys.reshape(-1, 1).to(means2d.dtype) + 0.5
            dx, dy = px - mx[idx], py - my[idx]
            c = conic[idx]
            sigma = 0.5 * (c[:, 0] * dx * dx + c[:, 2] * dy * dy) + c[:, 1] * dx * dy
            alpha = torch.clamp_max(opacity[idx] * torch.exp(-sigma), ALPHA_MAX)
            alpha = torch.where((sigma >= 0) & (alpha >= ALPHA_MIN), alpha, torch.zeros_like(alpha))
            survive = torch.cumprod(1.0 - alpha, dim=1)
            before = torch.cat([torch.ones_like(survive[:, :1]), survive[:, :-1]], dim=1)
            weights = alpha * before * (survive > T_MIN)
            row.append((weights @ feats[idx]).reshape(y1 - y0, x1 - x0, -1))
            trans_row.append((1.0 - weights.sum(1)).reshape(y1 - y0, x1 - x0))
        rows.append(torch.cat(row, dim=1))
        trans_rows.append(torch.cat(trans_row, dim=1))
    return torch.cat(rows, dim=0), torch.cat(trans_rows, dim=0)


def _rasterize_torch(means, quats, scales, opacities, colors, viewmats, Ks, width, height):
    """Pure-PyTorch rasterization of C cameras. Returns features [C, H, W, 4], alphas [C, H, W, 1], means2d, radii."""
    projections = [project(means, quats, scales, viewmat, K, width, height) for viewmat, K in zip(viewmats, Ks)]
    all_means2d = torch.stack([p[0] for p in projections])  # composited from below, so its .grad is the statistic
    images, alphas = [], []
    for view, (_, conics, depths, _, radius_xy) in enumerate(projections):
        features = torch.cat([colors, depths.detach()[:, None]], dim=-1)
        image, transmittance = _composite_torch(all_means2d[view], conics, opacities, features, depths, radius_xy, width, height)
        images.append(image)
        alphas.append((1.0 - transmittance)[..., None])
    return torch.stack(images), torch.stack(alphas), all_means2d, torch.stack([p[3] for p in projections])


def _rasterize_gsplat(means, quats, scales, opacities, colors, viewmats, Ks, width, height):
    from gsplat import rasterization

    depths = (means @ viewmats[:, :3, :3].transpose(1, 2) + viewmats[:, None, :3, 3])[..., 2]  # [C, N]
    features = torch.cat([colors.expand(len(viewmats), -1, -1), depths.detach()[..., None]], dim=-1)
    images, alphas, meta = rasterization(
        means, quats, scales, opacities, features, viewmats, Ks, width, height,
        near_plane=NEAR_PLANE, eps2d=EPS2D, rasterize_mode="classic", packed=False, render_mode="RGB",
    )
    radii = meta["radii"]
    radii = radii.max(-1).values if radii.dim() == 3 else radii
    return images, alphas, meta["means2d"], radii.float()


def normalized_disparity(depth: Tensor, transmittance: Tensor, focal: Tensor) -> Tensor:
    """disp = f / (D + 10 T + 1e-5) normalised per view by min over pixels with T <= 0.1 and max. [B, 1, H, W]."""
    disp = focal.reshape(-1, 1, 1, 1) / (depth + 10.0 * transmittance + 1e-5)
    flat, solid = disp.flatten(1), (transmittance <= 0.1).flatten(1)
    low = torch.where(solid, flat, torch.full_like(flat, float("inf"))).min(dim=1).values
    low = torch.where(torch.isfinite(low), low, flat.min(dim=1).values)
    high = flat.max(dim=1).values
    scaled = (disp - low.reshape(-1, 1, 1, 1)) / (high - low).clamp_min(1e-8).reshape(-1, 1, 1, 1)
    return scaled.clamp(0.0, 1.0)


def render(
    means: Tensor,
    quats: Tensor,
    scales: Tensor,
    opacities: Tensor,
    colors: Tensor,
    viewmats: Tensor,
    Ks: Tensor,
    width: int,
    height: int,
    backgrounds: Tensor,
    backend: str = "auto",
) -> RenderOutput:
    """Render N Gaussians into B cameras.

    Args:
        means: [N, 3] world positions.  quats: [N, 4] unit (w, x, y, z).  scales: [N, 3] standard deviations.
        opacities: [N] in [0, 1].  colors: [N, 3] RGB.
        viewmats: [B, 4, 4] world-to-camera (OpenCV).  Ks: [B, 3, 3] pinhole intrinsics in pixels.
        width, height: image size.  backgrounds: [B, 3] solid colour per view.
        backend: "gsplat" (CUDA), "torch" (any device), or "auto" (gsplat on CUDA tensors, else torch).

    Example:
        >>> out = render(**activated, viewmats=cams.viewmats, Ks=cams.Ks, width=512, height=512,
        ...              backgrounds=torch.ones(4, 3))
        >>> out.rgb.shape
        torch.Size([4, 3, 512, 512])
    """
    if backend == "auto":
        backend = "gsplat" if means.is_cuda else "torch"
    rasterize = {"gsplat": _rasterize_gsplat, "torch": _rasterize_torch}[backend]
    opacities = opacities.clamp_max(OPACITY_CAP)
    features, alphas, means2d, radii = rasterize(means, quats, scales, opacities, colors, viewmats, Ks, width, height)
    if means2d.requires_grad:
        means2d.retain_grad()
    features, alpha = features.permute(0, 3, 1, 2), alphas.permute(0, 3, 1, 2)
    transmittance = 1.0 - alpha
    rgb = features[:, :3] + transmittance * backgrounds[:, :, None, None].to(features)
    depth = features[:, 3:4]
    disparity = normalized_disparity(depth, transmittance, Ks[:, 0, 0] / width)
    return RenderOutput(rgb=rgb, alpha=alpha, depth=depth, disparity=disparity, means2d=means2d, radii=radii)


def build_cuda_extensions() -> str:
    """Compile gsplat's CUDA extension now (one tiny render) so parallel GPU jobs find it built.

    gsplat JIT-compiles into ``TORCH_EXTENSIONS_DIR`` on first use (about 80 s on an H100); several jobs
    compiling at once would race. Returns a one-line description; on a machine without CUDA, says so.
    """
    import os
    import time

    if not torch.cuda.is_available():
        return "no CUDA device: nothing to build (the CPU renderer is pure PyTorch)"
    start = time.perf_counter()
    device = torch.device("cuda")
    eye = torch.eye(4, device=device)
    eye[2, 3] = 3.0
    K = torch.tensor([[32.0, 0, 16], [0, 32.0, 16], [0, 0, 1]], device=device)
    render(torch.zeros(1, 3, device=device), torch.tensor([[1.0, 0, 0, 0]], device=device), torch.full((1, 3), 0.1, device=device),
           torch.ones(1, device=device), torch.ones(1, 3, device=device), eye[None], K[None], 32, 32, torch.ones(1, 3, device=device))
    torch.cuda.synchronize()
    folder = os.environ.get("TORCH_EXTENSIONS_DIR", "the default torch extensions folder")
    return f"gsplat CUDA extension ready in {folder} ({time.perf_counter() - start:.0f} s on {torch.cuda.get_device_name()})"
