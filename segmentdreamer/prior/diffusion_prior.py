"""The Stable Diffusion prior: UNet, VAE, text encoder, tokenizer and DDIM schedule (docs/method.md, "Notation"; README "Models and offline use").

Everything the losses need from Stable Diffusion goes through this object:

- ``encode(images)``: z0 = 0.18215 x a sample of the VAE posterior of (2*img - 1), gradient through
  the encoder; ``decode(latents)``: images in [0, 1].
- ``predict_noise(x, t, embedding)``: one UNet forward (the only UNet entry point, so a wrapper can
  count calls).
- ``prompt_embeddings(prompt, negative)``: the view prompts, negative and empty prompt, cached on disk.
- ``schedule``: a_t, s_t, lambda_t tables.

dtype and device conversion happens here and nowhere else: inputs are cast to the model dtype, and
outputs come back in the model dtype (fp16 on CUDA by default, as the official code).
"""

from __future__ import annotations

import os
from pathlib import Path

import torch
from torch import Tensor

from ..config import DEFAULT_NEGATIVE_PROMPT
from ..models import check_diffusers_weights, resolve_model
from .base import Prior
from .conditioning import VIEW_SUFFIXES, PromptEmbeddings
from .schedule import NoiseSchedule
from .text_cache import TextEmbeddingCache


def compile_unet_forward(unet, mode: str = "default", dynamic_batch: bool = False) -> None:
    """Fuse the UNet's attention projections, make it channels-last and ``torch.compile`` its forward in place.

    Fusing (diffusers' ``fuse_qkv_projections``): one matrix product for Q, K, V of each self-attention and
    one for K, V of each cross-attention, instead of three and two (the UNet is launch-bound at the batch
    sizes the losses use). Static shapes (one graph per batch size), or with ``dynamic_batch`` one graph for every
    batch size of inputs whose dimension 0 the caller marks dynamic (:meth:`DiffusionPrior.predict_noise` does).
    The module stays itself (its config, dtype and device read as before), so a pipeline holding it needs no
    change. Used by :meth:`DiffusionPrior.compile_unet` and the FID reference pipeline.
    """
    unet.fuse_qkv_projections()
    unet.to(memory_format=torch.channels_last)
    unet.forward = torch.compile(unet.forward, dynamic=None if dynamic_batch else False, mode=mode)


def use_explicit_vae_attention(vae) -> None:
    """Run the VAE's self-attention as the explicit softmax(QK^T / sqrt(d)) V product (diffusers' ``AttnProcessor``).

    Same math as the default ``scaled_dot_product_attention`` processor, but faster where the prior needs it:
    the VAE's mid-block attention is one head of 512 channels over (H/8)(W/8) tokens, a head size no flash
    kernel takes, so SDPA picks its memory-efficient kernel, whose backward alone took 17 ms of the encoder's
    69 ms forward + backward (4 x 512^2, H100, fp16); two batched matrix products and a softmax take ~1 ms
    (``benchmarks/prior_profile.py``, BENCHMARKS.md). The scores are materialised: [B, HW/64, HW/64] fp32.
    """
    from diffusers.models.attention_processor import AttnProcessor

    vae.set_attn_processor(AttnProcessor())


def load_diffusion_prior(spec: str, dtype=None, device="cpu", cache_dir=None) -> DiffusionPrior:
    """The default prior kind (:mod:`.base`): ``models.sd`` is a Stable Diffusion folder or cached hub id."""
    return DiffusionPrior.from_pretrained(spec, dtype=dtype, device=device, cache_dir=cache_dir)


class DiffusionPrior(Prior):
    """A loaded latent diffusion model. Build it with :meth:`from_pretrained`."""

    def __init__(self, unet, vae, text_encoder, tokenizer, scheduler, model_key: str, cache_dir=None):
        self.unet = unet
        self.vae = vae
        use_explicit_vae_attention(vae)
        self.text_encoder = text_encoder
        self.tokenizer = tokenizer
        self.schedule = NoiseSchedule.from_scheduler(scheduler)
        self.latent_scale = float(vae.config.scaling_factor)
        self.text_cache = TextEmbeddingCache(cache_dir, model_key)
        self._copy_unet_output = False
        self._dynamic_batch = False

    @classmethod
    def from_pretrained(
        cls,
        id_or_folder: str | os.PathLike,
        dtype: torch.dtype | None = None,
        device: str | torch.device = "cpu",
        cache_dir: str | os.PathLike | None = None,
        config_key: str = "models.sd",
    ) -> DiffusionPrior:
        """Load a diffusers-layout Stable Diffusion folder (or cached hub id) without network access.

        Args:
            id_or_folder: folder with unet/, vae/, text_encoder/, tokenizer/, scheduler/ (or a cached hub id).
            dtype: model dtype; default fp16 on CUDA, fp32 elsewhere.
            device: where the networks live.
            cache_dir: text-embedding cache folder (None: memory only).
            config_key: the config key named in errors.
        """
        folder = resolve_model(id_or_folder, config_key, "a diffusers-layout Stable Diffusion 2.1-base folder")
        check_diffusers_weights(folder, ("unet", "vae", "text_encoder"), config_key)
        from diffusers import AutoencoderKL, DDIMScheduler, UNet2DConditionModel  # heavy: after the weights are found
        from transformers import CLIPTextModel, CLIPTokenizer

        device = torch.device(device)
        dtype = dtype or (torch.float16 if device.type == "cuda" else torch.float32)
        kwargs = dict(local_files_only=True)
        unet = UNet2DConditionModel.from_pretrained(folder, subfolder="unet", torch_dtype=dtype, **kwargs)
        vae = AutoencoderKL.from_pretrained(folder, subfolder="vae", torch_dtype=dtype, **kwargs)
        text_encoder = CLIPTextModel.from_pretrained(folder, subfolder="text_encoder", torch_dtype=dtype, **kwargs)
        tokenizer = CLIPTokenizer.from_pretrained(folder, subfolder="tokenizer", **kwargs)
        scheduler = DDIMScheduler.from_pretrained(folder, subfolder="scheduler", **kwargs)
        for module in (unet, vae, text_encoder):
            module.to(device).eval().requires_grad_(False)
        return cls(unet, vae, text_encoder, tokenizer, scheduler, model_key=str(Path(folder).resolve()), cache_dir=cache_dir)

    def compile_unet(self, mode: str = "default", dynamic_batch: bool = False) -> None:
        """``torch.compile`` the UNet (static shapes: one graph per batch size a loss uses), channels-last.

        ``mode="default"`` fuses kernels; ``"reduce-overhead"`` also replays each graph as a CUDA graph
        (the UNet is launch-bound at 4-8 samples), whose outputs ``predict_noise`` then copies out. Same math
        as eager up to fp16 rounding (tests/test_gpu.py compares every loss's gradient). The first
        iterations pay the compilation (about a minute per batch size on an H100).

        ``dynamic_batch``: one graph whose batch size is symbolic, for callers whose batch sizes vary without
        bound (several assets' calls batched together, :mod:`~segmentdreamer.training.multi_asset`: sums of every live
        asset's call sizes, more sizes than torch's recompile limit of 8 would compile).
        """
        compile_unet_forward(self.unet, mode, dynamic_batch)
        self._copy_unet_output = mode == "reduce-overhead"
        self._dynamic_batch = dynamic_batch

    def compile(self, unet_mode: str = "default", dynamic_batch: bool = False) -> None:
        """What ``train.compile_prior`` does: :meth:`compile_unet` in ``unet_mode`` (and ``dynamic_batch``),
        :meth:`compile_encoder` and :meth:`compile_decoder`."""
        self.compile_unet(unet_mode, dynamic_batch)
        self.compile_encoder()
        self.compile_decoder()

    def compile_encoder(self) -> None:
        """``torch.compile`` the VAE encoder's forward (default mode, static shapes, NCHW), backward included.

        Every loss encodes the B renders with gradient each iteration; eager, the encoder is ~30 % of an SCTD
        step (GroupNorm + SiLU chains at 512^2). Compiled in NCHW it fuses them: forward + backward 51.0 ->
        38.3 ms for 4 x 512^2 on an H200 (a channels-last compile was slower). BENCHMARKS.md, "Speed II".
        """
        self.vae.encoder.forward = torch.compile(self.vae.encoder.forward, dynamic=False)

    def compile_decoder(self) -> None:
        """``torch.compile`` the VAE decoder (default mode, static shapes): fused GroupNorm + SiLU and upsampling.

        Only GCS decodes during training (its pixel term, 2B latents per iteration): 122 -> 68 ms for 8 latents
        to 512^2 on an H100 (BENCHMARKS.md). Compilation happens at the first :meth:`decode`.
        """
        self.vae.decoder.forward = torch.compile(self.vae.decoder.forward, dynamic=False)

    @property
    def dtype(self) -> torch.dtype:
        return self.unet.dtype

    @property
    def device(self) -> torch.device:
        return self.unet.device

    def encode(self, images: Tensor, generator: torch.Generator | None = None) -> Tensor:
        """z0 = scale * sample of the VAE posterior of (2 * images - 1); gradient flows to ``images``.

        Args:
            images: [B, 3, H, W] in [0, 1] (not clamped), any float dtype and memory layout.
            generator: draws the posterior sample (a CPU or device generator of the VAE's device).
        Returns:
            [B, 4, H/8, W/8] in the model dtype.
        """
        # NCHW-contiguous: renders arrive as permuted [B, H, W, 3] (channels-last strides), which would run every
        # eager VAE layer channels-last and convert layouts around each GroupNorm (slower on CUDA; BENCHMARKS.md)
        pixels = (2.0 * images - 1.0).to(self.dtype, memory_format=torch.contiguous_format)
        posterior = self.vae.encode(pixels).latent_dist
        noise = torch.randn(posterior.mean.shape, generator=generator, dtype=torch.float32,
                            device=generator.device if generator is not None else posterior.mean.device)
        return (posterior.mean + posterior.std * noise.to(posterior.mean)) * self.latent_scale

    def decode(self, latents: Tensor) -> Tensor:
        """Images in [0, 1], [B, 3, 8h, 8w], from latents [B, 4, h, w]."""
        images = self.vae.decode((latents / self.latent_scale).to(self.dtype)).sample
        return (images / 2.0 + 0.5).clamp(0.0, 1.0)

    def predict_noise(self, x: Tensor, t: Tensor, embedding: Tensor) -> Tensor:
        """One UNet forward: eps(x, t, embedding). x [N, 4, h, w], t LongTensor [N], embedding [N, L, D]."""
        x, t, embedding = x.to(self.dtype), t.to(self.device), embedding.to(device=self.device, dtype=self.dtype)
        if self._dynamic_batch:
            for tensor in (x, t, embedding):
                if tensor.dim() > 0:  # N symbolic in the compiled graph: no recompile for a new batch size
                    torch._dynamo.maybe_mark_dynamic(tensor, 0)
        eps = self.unet(x, t, encoder_hidden_states=embedding).sample
        return eps.clone() if self._copy_unet_output else eps  # a CUDA graph's output is overwritten by its next replay

    @torch.no_grad()
    def embed(self, prompt: str) -> Tensor:
        """Text-encoder output [L, D] of one prompt (cached on disk by (model, prompt))."""

        def compute(text: str) -> Tensor:
            tokens = self.tokenizer(
                text, padding="max_length", max_length=self.tokenizer.model_max_length, truncation=True, return_tensors="pt"
            )
            return self.text_encoder(tokens.input_ids.to(self.device))[0][0]

        return self.text_cache.get(prompt, compute).to(device=self.device, dtype=self.dtype)

    def prompt_embeddings(self, prompt: str, negative_prompt: str = DEFAULT_NEGATIVE_PROMPT) -> PromptEmbeddings:
        """Front/side/back view prompts, the negative prompt and the empty prompt (docs/method.md, "Text conditioning")."""
        views = {name: self.embed(prompt + suffix) for name, suffix in VIEW_SUFFIXES.items()}
        return PromptEmbeddings(**views, negative=self.embed(negative_prompt), empty=self.embed(""))
