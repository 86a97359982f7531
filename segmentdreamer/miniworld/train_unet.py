"""The mini-SD's UNet: a diffusers ``UNet2DConditionModel`` trained on the VAE's latents of the renders.

Stable Diffusion 2.1-base's recipe at miniature scale: the text encoder is frozen (here: the mini-CLIP's text tower,
as SD freezes OpenCLIP's), its last hidden states [77, width] condition the UNet through cross-attention, the noise
schedule is SD's (1000 steps, scaled-linear betas 0.00085 .. 0.012), the target is the noise (epsilon prediction),
and a fraction ``caption_dropout`` of the examples gets the empty prompt so that classifier-free guidance has its
unconditional branch. A quarter of the conditioned examples use the bare caption (as a user's prompt would), the
rest the example's view prompt (what the trainer's conditioning asks). Latents and text states are computed once.
"""

from __future__ import annotations

from pathlib import Path

import torch
from torch import Tensor

from ..testing.tiny_models import clip_tokenizer
from .dataset import RenderedSet
from .loop import optimise
from .settings import MiniworldSettings, UnetSettings

BARE_CAPTION_PROB = 0.25


def build_unet(settings: UnetSettings, latent_size: int, text_width: int):
    """A randomly initialised UNet2DConditionModel: cross-attention at every level but the deepest (as SD 2.1)."""
    from diffusers import UNet2DConditionModel

    levels = len(settings.channels)
    return UNet2DConditionModel(
        sample_size=latent_size, in_channels=4, out_channels=4, layers_per_block=settings.layers_per_block,
        block_out_channels=settings.channels, down_block_types=("CrossAttnDownBlock2D",) * (levels - 1) + ("DownBlock2D",),
        up_block_types=("UpBlock2D",) + ("CrossAttnUpBlock2D",) * (levels - 1), cross_attention_dim=text_width,
        attention_head_dim=tuple(c // settings.head_width for c in settings.channels), use_linear_projection=True,
        norm_num_groups=min(32, settings.channels[0] // 2),
    )


def sd_scheduler():
    """Stable Diffusion 2.1-base's DDIM scheduler settings (epsilon prediction)."""
    from diffusers import DDIMScheduler

    return DDIMScheduler(num_train_timesteps=1000, beta_start=0.00085, beta_end=0.012, beta_schedule="scaled_linear",
                         clip_sample=False, set_alpha_to_one=False, steps_offset=1, prediction_type="epsilon")


def text_encoder_of(clip):
    """A CLIPTextModel holding the CLIP's text tower (the mini-SD's frozen text encoder), eval, no grad."""
    from transformers import CLIPTextModel

    encoder = CLIPTextModel(clip.config.text_config).to(clip.device)
    getattr(encoder, "text_model", encoder).load_state_dict(clip.text_model.state_dict())  # transformers 5: no wrapper
    return encoder.eval().requires_grad_(False)


@torch.no_grad()
def text_states(text_encoder, texts: list[str], batch: int = 256) -> Tensor:
    """Last hidden states [T, 77, width] of ``texts`` as the prior computes them (SD's tokenizer pads with "!")."""
    tokenizer = clip_tokenizer(pad_token="!")
    states = []
    for start in range(0, len(texts), batch):
        ids = tokenizer(texts[start : start + batch], padding="max_length", max_length=77, truncation=True,
                        return_tensors="pt").input_ids
        states.append(text_encoder(ids.to(text_encoder.device))[0])
    return torch.cat(states)


@torch.no_grad()
def encode_latents(vae, data: RenderedSet, batch: int = 128) -> tuple[Tensor, Tensor]:
    """(posterior means, posterior stds), each [N, 4, h, w] fp16 on the VAE's device, unscaled."""
    means, stds = [], []
    for chunk in torch.arange(len(data)).split(batch):
        posterior = vae.encode(2.0 * data.floats(chunk).to(vae.device) - 1.0).latent_dist
        means.append(posterior.mean.half())
        stds.append(posterior.std.half())
    return torch.cat(means), torch.cat(stds)


def denoising_loss(unet, latents: Tensor, states: Tensor, alphas_cumprod: Tensor, generator: torch.Generator) -> Tensor:
    """Epsilon-prediction MSE at uniform timesteps: latents [B, 4, h, w] (scaled), states [B, 77, D]."""
    t = torch.randint(len(alphas_cumprod), (latents.shape[0],), generator=generator).to(latents.device)
    noise = torch.randn(latents.shape, generator=generator).to(latents)
    abar = alphas_cumprod.to(latents.device)[t][:, None, None, None]
    noisy = abar.sqrt() * latents + (1.0 - abar).sqrt() * noise
    return torch.nn.functional.mse_loss(unet(noisy, t, encoder_hidden_states=states).sample.float(), noise)


def train_unet(data: RenderedSet, vae, clip, settings: MiniworldSettings, work: Path, device: torch.device,
               progress: bool = True):
    """The trained UNet's EMA weights (eval, fp32, on ``device``)."""
    torch.manual_seed(settings.seed)
    means, stds = encode_latents(vae, data)
    scale = float(vae.config.scaling_factor)
    texts = list(dict.fromkeys([""] + data.captions + data.prompts))
    row = {text: i for i, text in enumerate(texts)}
    states = text_states(text_encoder_of(clip), texts)
    prompt_rows = torch.tensor([row[p] for p in data.prompts], device=device)
    caption_rows = torch.tensor([row[data.captions[int(c)]] for c in data.caption_index], device=device)
    alphas_cumprod = sd_scheduler().alphas_cumprod.float()
    unet = build_unet(settings.unet, means.shape[-1], states.shape[-1]).to(device)
    batch = settings.unet.training.batch

    def loss_at(step: int, generator: torch.Generator) -> Tensor:
        examples = torch.randint(len(data), (batch,), generator=generator).to(device)
        draw = torch.rand(batch, generator=generator).to(device)
        rows = torch.where(draw < BARE_CAPTION_PROB, caption_rows[examples], prompt_rows[examples])
        rows = torch.where(draw > 1.0 - settings.unet.caption_dropout, torch.zeros_like(rows), rows)  # row 0: ""
        noise = torch.randn(means[examples].shape, generator=generator).to(means)
        latents = (means[examples] + stds[examples] * noise).float() * scale
        with torch.autocast(device.type, dtype=torch.bfloat16, enabled=device.type == "cuda"):
            return denoising_loss(unet, latents, states[rows], alphas_cumprod, generator)

    return optimise("unet", unet, loss_at, settings.unet.training, work, settings.seed, ema_decay=settings.unet.ema,
                    progress=progress)
