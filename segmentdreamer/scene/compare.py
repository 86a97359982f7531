"""A learned scene against a reference scene, over the evaluation ring: the render comparison.

PSNR and SSIM of the RGB renders on a white background, and the silhouette IoU of the alpha masks
(alpha > 0.5), per view and their means. Both scenes are rendered with the same cameras. SSIM is Wang et
al.'s with torchmetrics' defaults (11-tap Gaussian window, sigma 1.5, K1 = 0.01, K2 = 0.03, borders
reflected), written out here because importing torchmetrics alone takes ~6 s on a 2-core CPU: most of a
short known-answer run's learning-curve cost and of each scoring job. tests/test_known_answer.py checks
both metrics equal torchmetrics' per view.

Used by the known-answer prior's learning curve (``prior/target_scene.py``) and its scores
(``evaluate/known_answer.py``); it lives with the scene so that neither imports the other.
"""

from __future__ import annotations

import torch
from torch import Tensor

from .cameras import evaluation_ring
from .gaussians import activate
from .render import render
from .ring import COMPARISON_RESOLUTION, RING


@torch.no_grad()
def ring_renders(params: torch.nn.ParameterDict, views: int, resolution: int, batch: int = 8) -> tuple[Tensor, Tensor]:
    """(rgb [V, 3, H, W] on white, alpha [V, 1, H, W]) from the evaluation ring's cameras (:data:`~.ring.RING`,
    elevation 0 whatever the config's: a comparison of two scenes, not a score), ``views`` views at ``resolution``."""
    gaussians = {k: v.detach().float().cpu() for k, v in activate(params).items()}
    cameras = evaluation_ring(views, 0.0, RING.radius, RING.fovx, resolution, resolution)
    rgbs, alphas = [], []
    for start in range(0, views, batch):
        cams = cameras[start : start + batch]
        out = render(**gaussians, viewmats=cams.viewmats, Ks=cams.Ks, width=resolution, height=resolution,
                     backgrounds=torch.ones(len(cams), 3))
        rgbs.append(out.rgb.clamp(0, 1))
        alphas.append(out.alpha)
    return torch.cat(rgbs), torch.cat(alphas)


def compare(learned: torch.nn.ParameterDict, truth: torch.nn.ParameterDict, views: int = RING.views,
            resolution: int = COMPARISON_RESOLUTION) -> dict:
    """PSNR (dB), SSIM and silhouette IoU of ``learned`` against ``truth``, means over the ring's views."""
    return compare_renders(*ring_renders(learned, views, resolution), *ring_renders(truth, views, resolution))


def ssim_per_view(rgb: Tensor, gt_rgb: Tensor, sigma: float = 1.5, k1: float = 0.01, k2: float = 0.03) -> Tensor:
    """SSIM of each view [V] of images [V, C, H, W] in [0, 1]: the mean over channels and pixels of
    (2 mu_x mu_y + c1)(2 s_xy + c2) / ((mu_x^2 + mu_y^2 + c1)(s_x^2 + s_y^2 + c2)), local moments under a Gaussian
    window (11 x 11 taps at sigma 1.5) over the images reflected at their borders,
    c_i = k_i^2; computed in the images' dtype."""
    x, y = rgb, gt_rgb.to(rgb.dtype)
    radius = int(3.5 * sigma + 0.5)
    taps = torch.exp(-0.5 * (torch.arange(-radius, radius + 1, dtype=torch.float64) / sigma) ** 2)
    taps = (taps / taps.sum()).to(device=x.device, dtype=x.dtype)
    channels = x.shape[1]
    window = (taps[:, None] * taps[None, :]).expand(channels, 1, -1, -1)
    moments = torch.nn.functional.pad(torch.cat([x, y, x * x, y * y, x * y]), (radius,) * 4, mode="reflect")
    mu_x, mu_y, xx, yy, xy = torch.nn.functional.conv2d(moments, window, groups=channels).split(x.shape[0])
    var_x, var_y = (xx - mu_x**2).clamp_min(0.0), (yy - mu_y**2).clamp_min(0.0)
    c1, c2 = k1**2, k2**2
    index = (2 * mu_x * mu_y + c1) * (2 * (xy - mu_x * mu_y) + c2) / ((mu_x**2 + mu_y**2 + c1) * (var_x + var_y + c2))
    return index.flatten(1).mean(1)


def psnr_per_view(rgb: Tensor, gt_rgb: Tensor) -> Tensor:
    """PSNR in dB of each view [V] of images [V, 3, H, W] in [0, 1]: -10 log10(mean squared error)."""
    mse = (rgb.double() - gt_rgb.double()).pow(2).flatten(1).mean(1)
    return -10.0 * torch.log10(mse.clamp_min(torch.finfo(torch.float64).tiny))


def compare_renders(rgb: Tensor, alpha: Tensor, gt_rgb: Tensor, gt_alpha: Tensor) -> dict:
    """The metrics of :func:`compare` from ring renders (rgb [V, 3, H, W], alpha [V, 1, H, W], and the truth's)."""
    views, resolution = rgb.shape[0], rgb.shape[-1]
    psnr, ssim = psnr_per_view(rgb, gt_rgb), ssim_per_view(rgb, gt_rgb)
    mask, gt_mask = alpha > 0.5, gt_alpha > 0.5
    iou = (mask & gt_mask).flatten(1).sum(1) / (mask | gt_mask).flatten(1).sum(1).clamp_min(1)
    return {"psnr": float(psnr.mean()), "ssim": float(ssim.mean()), "iou": float(iou.float().mean()), "views": views,
            "resolution": resolution, "psnr_per_view": psnr.tolist()}
