"""Point-E's point-cloud diffusion transformers, with the official module names (docs/method.md, "Point-E").

Two models share one backbone; their state dicts load the official checkpoints with ``strict=True``:

- :class:`TextPointTransformer` (``base40M-textvec``): tokens [CLIP text, time, 1024 points]; the CLIP
  text embedding (L2-normalised, x sqrt(dim)) goes through ``clip_embed``; a zero embedding is the
  unconditional branch.
- :class:`UpsamplePointTransformer` (``upsample``): tokens [time, 256 image-grid tokens (zeros in text
  mode, through ``clip_embed`` = LayerNorm + Linear), 1024 low-res points (scaled by the buffers
  ``channel_scales`` / ``channel_biases``, then ``cond_point_proj``), 3072 new points].

Points are [B, 6, N] (xyz, rgb in the diffusion's scaled space); outputs [B, 12, N] (eps and the
learned-range variance values). There are no positional embeddings: a point set has no order.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from torch import Tensor, nn


@dataclass(frozen=True)
class PointTransformerConfig:
    width: int = 512
    layers: int = 12
    heads: int = 8
    input_channels: int = 6
    output_channels: int = 12
    clip_dim: int = 768
    """base: CLIP text embedding size; upsampler: CLIP image-grid feature size (1024 for ViT-L/14)."""
    grid_tokens: int = 256


def timestep_embedding(t: Tensor, dim: int, max_period: float = 10000.0) -> Tensor:
    """Sinusoidal embedding [B, dim] of timesteps t [B]: cos then sin, frequencies max_period^(-k/half)."""
    half = dim // 2
    freqs = torch.exp(-math.log(max_period) * torch.arange(half, dtype=torch.float32, device=t.device) / half)
    args = t[:, None].float() * freqs[None]
    return torch.cat([torch.cos(args), torch.sin(args)], dim=-1)


class MLP(nn.Module):
    def __init__(self, width: int):
        super().__init__()
        self.c_fc = nn.Linear(width, 4 * width)
        self.c_proj = nn.Linear(4 * width, width)

    def forward(self, x: Tensor) -> Tensor:
        return self.c_proj(nn.functional.gelu(self.c_fc(x)))


class Attention(nn.Module):
    """Self-attention; c_qkv's output is split per head into interleaved (q, k, v) of head_dim each."""

    def __init__(self, width: int, heads: int):
        super().__init__()
        self.heads = heads
        self.c_qkv = nn.Linear(width, 3 * width)
        self.c_proj = nn.Linear(width, width)

    def forward(self, x: Tensor) -> Tensor:
        batch, tokens, width = x.shape
        qkv = self.c_qkv(x).view(batch, tokens, self.heads, -1).transpose(1, 2)  # [B, heads, T, 3 head_dim]
        q, k, v = qkv.split(width // self.heads, dim=-1)
        # softmax(q k^T / sqrt(head_dim)) v: the original scales q and k by head_dim^-1/4 each, the same product;
        # the fused kernel keeps the softmax in fp32 and never stores the T x T weights (4353 tokens upsampling)
        out = nn.functional.scaled_dot_product_attention(q, k, v)
        return self.c_proj(out.transpose(1, 2).reshape(batch, tokens, width))


class Block(nn.Module):
    def __init__(self, width: int, heads: int):
        super().__init__()
        self.attn = Attention(width, heads)
        self.ln_1 = nn.LayerNorm(width)
        self.mlp = MLP(width)
        self.ln_2 = nn.LayerNorm(width)

    def forward(self, x: Tensor) -> Tensor:
        x = x + self.attn(self.ln_1(x))
        return x + self.mlp(self.ln_2(x))


class Backbone(nn.Module):
    def __init__(self, width: int, layers: int, heads: int):
        super().__init__()
        self.resblocks = nn.ModuleList([Block(width, heads) for _ in range(layers)])

    def forward(self, x: Tensor) -> Tensor:
        for block in self.resblocks:
            x = block(x)
        return x


class PointTransformer(nn.Module):
    """The shared body: time MLP, input / output projections, pre/post LayerNorms, backbone."""

    def __init__(self, config: PointTransformerConfig):
        super().__init__()
        self.config = config
        width = config.width
        self.time_embed = MLP(width)
        self.ln_pre = nn.LayerNorm(width)
        self.backbone = Backbone(width, config.layers, config.heads)
        self.ln_post = nn.LayerNorm(width)
        self.input_proj = nn.Linear(config.input_channels, width)
        self.output_proj = nn.Linear(width, config.output_channels)

    def time_token(self, t: Tensor) -> Tensor:
        return self.time_embed(timestep_embedding(t, self.config.width))[:, None]

    def run(self, x: Tensor, extra_tokens: list[Tensor]) -> Tensor:
        """x [B, C, N] -> [B, C_out, N] after prepending ``extra_tokens`` (each [B, n, width])."""
        h = torch.cat(extra_tokens + [self.input_proj(x.permute(0, 2, 1))], dim=1)
        h = self.ln_post(self.backbone(self.ln_pre(h)))
        h = h[:, sum(token.shape[1] for token in extra_tokens) :]
        return self.output_proj(h).permute(0, 2, 1)


class TextPointTransformer(PointTransformer):
    """``base40M-textvec``."""

    def __init__(self, config: PointTransformerConfig = PointTransformerConfig()):
        super().__init__(config)
        self.clip_embed = nn.Linear(config.clip_dim, config.width)

    def forward(self, x: Tensor, t: Tensor, text_embedding: Tensor) -> Tensor:
        """x [B, 6, 1024], t [B], text_embedding [B, clip_dim] L2-normalised (zeros: unconditional)."""
        clip = self.clip_embed(math.sqrt(text_embedding.shape[-1]) * text_embedding)
        return self.run(x, [clip[:, None], self.time_token(t)])


class UpsamplePointTransformer(PointTransformer):
    """``upsample``: 1024 conditioning points -> 3072 more, unguided, image grid zero in text mode."""

    CHANNEL_SCALES = (2.0, 2.0, 2.0, 0.007843137255, 0.007843137255, 0.007843137255)
    CHANNEL_BIASES = (0.0, 0.0, 0.0, -1.0, -1.0, -1.0)

    def __init__(self, config: PointTransformerConfig = PointTransformerConfig(clip_dim=1024)):
        super().__init__(config)
        self.clip_embed = nn.Sequential(nn.LayerNorm(config.clip_dim), nn.Linear(config.clip_dim, config.width))
        self.cond_point_proj = nn.Linear(config.input_channels, config.width)
        self.register_buffer("channel_scales", torch.tensor(self.CHANNEL_SCALES))
        self.register_buffer("channel_biases", torch.tensor(self.CHANNEL_BIASES))

    def forward(self, x: Tensor, t: Tensor, low_res: Tensor) -> Tensor:
        """x [B, 6, 3072], t [B], low_res [B, 6, 1024] unscaled (xyz, rgb in 0..255)."""
        batch = x.shape[0]
        grid = torch.zeros(batch, self.config.grid_tokens, self.config.clip_dim, device=x.device, dtype=x.dtype)
        scaled = low_res * self.channel_scales[None, :, None] + self.channel_biases[None, :, None]
        low_res_tokens = self.cond_point_proj(scaled.permute(0, 2, 1))
        return self.run(x, [self.time_token(t), self.clip_embed(grid), low_res_tokens])


def config_from_state_dict(state: dict[str, Tensor], heads: int = 8) -> PointTransformerConfig:
    """Width, depth and CLIP size read off a checkpoint (heads are not in the shapes: given)."""
    width = state["ln_pre.weight"].shape[0]
    layers = len({key.split(".")[2] for key in state if key.startswith("backbone.resblocks.")})
    clip_key = "clip_embed.weight" if "clip_embed.weight" in state else "clip_embed.1.weight"
    return PointTransformerConfig(width=width, layers=layers, heads=heads, clip_dim=state[clip_key].shape[1],
                                  input_channels=state["input_proj.weight"].shape[1], output_channels=state["output_proj.weight"].shape[0])
