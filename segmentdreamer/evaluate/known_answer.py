"""Known-answer metrics: a learned scene against the ground truth, over the evaluation ring.

PSNR and SSIM (torchmetrics) of the RGB renders on a white background, and the silhouette IoU of the
alpha masks (alpha > 0.5), per view and their means. Both scenes are rendered with the same cameras.
"""

from __future__ import annotations

import torch
from torch import Tensor
from torchmetrics.functional.image import peak_signal_noise_ratio, structural_similarity_index_measure

from ..scene.cameras import evaluation_ring
from ..scene.gaussians import activate
from ..scene.render import render


@torch.no_grad()
def ring_renders(params: torch.nn.ParameterDict, views: int, resolution: int, batch: int = 8) -> tuple[Tensor, Tensor]:
    """(rgb [V, 3, H, W] on white, alpha [V, 1, H, W]) from the evaluation ring (elevation 0, radius 3.5)."""
    gaussians = {k: v.detach().float().cpu() for k, v in activate(params).items()}
    cameras = evaluation_ring(views, 0.0, 3.5, 0.55, resolution, resolution)
    rgbs, alphas = [], []
    for start in range(0, views, batch):
        cams = cameras[start : start + batch]
        out = render(**gaussians, viewmats=cams.viewmats, Ks=cams.Ks, width=resolution, height=resolution,
                     backgrounds=torch.ones(len(cams), 3))
        rgbs.append(out.rgb.clamp(0, 1))
        alphas.append(out.alpha)
    return torch.cat(rgbs), torch.cat(alphas)


def compare(learned: torch.nn.ParameterDict, truth: torch.nn.ParameterDict, views: int = 120, resolution: int = 64) -> dict:
    """PSNR (dB), SSIM and silhouette IoU of ``learned`` against ``truth``, means over the ring's views."""
    rgb, alpha = ring_renders(learned, views, resolution)
    gt_rgb, gt_alpha = ring_renders(truth, views, resolution)
    psnr = peak_signal_noise_ratio(rgb, gt_rgb, data_range=1.0, reduction="none", dim=(1, 2, 3))
    ssim = structural_similarity_index_measure(rgb, gt_rgb, data_range=1.0, reduction="none")
    mask, gt_mask = alpha > 0.5, gt_alpha > 0.5
    iou = (mask & gt_mask).flatten(1).sum(1) / (mask | gt_mask).flatten(1).sum(1).clamp_min(1)
    return {"psnr": float(psnr.mean()), "ssim": float(ssim.mean()), "iou": float(iou.float().mean()), "views": views,
            "resolution": resolution, "psnr_per_view": psnr.tolist()}
