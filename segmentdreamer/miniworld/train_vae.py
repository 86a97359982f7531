"""The mini-SD's VAE: a diffusers ``AutoencoderKL`` that downsamples 4x, trained to reconstruct the renders.

Loss: mean squared error + mean absolute error of the reconstruction of a posterior sample, plus ``kl_weight`` x the
KL divergence to N(0, I) (Stable Diffusion's VAE uses 1e-6: a nearly deterministic code). The latent scale
(``scaling_factor``, 0.18215 for SD) is measured after training as 1 / the standard deviation of posterior samples
of training renders, so the UNet sees latents of unit variance, as SD's does.
"""

from __future__ import annotations

from pathlib import Path

import torch
from torch import Tensor

from .dataset import RenderedSet
from .loop import optimise
from .settings import MiniworldSettings, VaeSettings

SCALE_SAMPLES = 512
"""Training renders whose posterior samples set the latent scale."""


def build_vae(settings: VaeSettings, resolution: int):
    """A randomly initialised AutoencoderKL with ``len(channels)`` levels (downsampling 2^(levels - 1)), 4 latent channels."""
    from diffusers import AutoencoderKL

    levels = len(settings.channels)
    return AutoencoderKL(in_channels=3, out_channels=3, latent_channels=4, layers_per_block=settings.layers_per_block,
                         block_out_channels=settings.channels, down_block_types=("DownEncoderBlock2D",) * levels,
                         up_block_types=("UpDecoderBlock2D",) * levels, norm_num_groups=min(32, settings.channels[0]),
                         sample_size=resolution, scaling_factor=1.0)


def reconstruction_loss(vae, images: Tensor, kl_weight: float, generator: torch.Generator) -> Tensor:
    """MSE + L1 of the decoded posterior sample of ``images`` [B, 3, H, W] in [0, 1], + kl_weight x KL (per element)."""
    pixels = 2.0 * images - 1.0
    posterior = vae.encode(pixels).latent_dist
    noise = torch.randn(posterior.mean.shape, generator=generator).to(posterior.mean)
    decoded = vae.decode(posterior.mean + posterior.std * noise).sample
    error = decoded.float() - pixels
    kl = 0.5 * (posterior.mean.float() ** 2 + posterior.var.float() - 1.0 - posterior.logvar.float()).mean()
    return error.pow(2).mean() + error.abs().mean() + kl_weight * kl


@torch.no_grad()
def measure_scale(vae, data: RenderedSet, batch: int = 64) -> float:
    """1 / std of posterior samples of the first :data:`SCALE_SAMPLES` renders (every ``len // 512``-th)."""
    stride = max(1, len(data) // SCALE_SAMPLES)
    index = torch.arange(0, len(data), stride)[:SCALE_SAMPLES]
    samples = []
    for chunk in index.split(batch):
        posterior = vae.encode(2.0 * data.floats(chunk).to(vae.device) - 1.0).latent_dist
        samples.append(posterior.sample(torch.Generator(vae.device).manual_seed(0)).float())
    return float(1.0 / torch.cat(samples).std())


def train_vae(data: RenderedSet, settings: MiniworldSettings, work: Path, device: torch.device, progress: bool = True):
    """The trained AutoencoderKL (eval, fp32, on ``device``) with its measured ``scaling_factor`` in its config."""
    torch.manual_seed(settings.seed)
    vae = build_vae(settings.vae, settings.data.resolution).to(device)
    batch = settings.vae.training.batch

    def loss_at(step: int, generator: torch.Generator) -> Tensor:
        examples = torch.randint(len(data), (batch,), generator=generator)
        with torch.autocast(device.type, dtype=torch.bfloat16, enabled=device.type == "cuda"):
            return reconstruction_loss(vae, data.floats(examples).to(device), settings.vae.kl_weight, generator)

    vae = optimise("vae", vae, loss_at, settings.vae.training, work, settings.seed, progress=progress)
    vae.register_to_config(scaling_factor=measure_scale(vae, data))
    return vae
