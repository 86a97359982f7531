"""Acceptance 5-7: tiny models in real formats, the losses on real VAE latents, missing weights."""

import os
import sys

import pytest
import torch

from segmentdreamer.losses import LOSSES, LossInput, loss_class
from segmentdreamer.models import MissingWeightsError, resolve_model
from segmentdreamer.prior import DiffusionPrior, view_conditioning

from . import processes


def rendered_views(seed=0, size=64):
    gen = torch.Generator().manual_seed(seed)
    return torch.rand((4, 3, size, size), generator=gen).requires_grad_()


def test_make_tiny_models_cli_output_loads_through_from_pretrained(tmp_path):
    made = processes.run([sys.executable, "-m", "segmentdreamer.cli", "make-tiny-models", str(tmp_path)], 600)
    assert made.returncode == 0, made.stderr[-3000:]
    def megabytes(*parts):
        return sum(f.stat().st_size for part in parts for f in (tmp_path / part).rglob("*") if f.is_file()) / 2**20

    assert megabytes("sd", "clip") < 20, f"tiny SD + CLIP take {megabytes('sd', 'clip'):.1f} MB"
    assert megabytes("pointe") < 8, f"tiny Point-E takes {megabytes('pointe'):.1f} MB"
    prior = DiffusionPrior.from_pretrained(tmp_path / "sd", dtype=torch.float32)
    assert prior.schedule.num_timesteps == 1000 and prior.latent_scale == pytest.approx(0.18215)
    assert prior.tokenizer.pad_token == "!"
    from transformers import CLIPModel, CLIPProcessor

    clip = CLIPModel.from_pretrained(tmp_path / "clip", local_files_only=True)
    processor = CLIPProcessor.from_pretrained(tmp_path / "clip", local_files_only=True)
    features = clip.get_text_features(**processor(text=["a corgi"], return_tensors="pt"))
    assert torch.isfinite(torch.as_tensor(features.pooler_output if hasattr(features, "pooler_output") else features)).all()


def test_tiny_models_are_deterministic(tmp_path, tiny_models):
    from segmentdreamer.testing.tiny_models import make_tiny_stable_diffusion

    make_tiny_stable_diffusion(tmp_path / "sd")
    for part in ("unet/diffusion_pytorch_model.safetensors", "vae/diffusion_pytorch_model.safetensors", "text_encoder/model.safetensors"):
        assert (tmp_path / "sd" / part).read_bytes() == (tiny_models / "sd" / part).read_bytes()


def test_tokenizer_ids_equal_open_clip(tiny_prior):
    import open_clip

    reference = open_clip.get_tokenizer("ViT-L-14")
    for prompt in ['A DSLR photo of a "corgi" / with a hat; rm -rf $HOME', "Zombie JOKER, head, 8K — ünïcödé"]:
        ours = tiny_prior.tokenizer(prompt, padding="max_length", max_length=77).input_ids
        assert ours == reference([prompt])[0].tolist()


def test_text_embeddings_are_cached_on_disk(tiny_models, tmp_path, monkeypatch):
    prior = DiffusionPrior.from_pretrained(tiny_models / "sd", dtype=torch.float32, cache_dir=tmp_path)
    first = prior.embed("a corgi")
    assert len(list(tmp_path.glob("*.pt"))) == 1
    fresh = DiffusionPrior.from_pretrained(tiny_models / "sd", dtype=torch.float32, cache_dir=tmp_path)
    monkeypatch.setattr(fresh, "text_encoder", None)  # a cache miss would now fail
    torch.testing.assert_close(fresh.embed("a corgi"), first)


def test_encode_has_gradient_and_decode_range(tiny_prior):
    images = rendered_views()
    z0 = tiny_prior.encode(images, torch.Generator().manual_seed(0))
    assert z0.shape == (4, 4, 8, 8)
    z0.square().sum().backward()
    assert images.grad is not None and images.grad.abs().sum() > 0
    decoded = tiny_prior.decode(z0.detach())
    assert decoded.shape == (4, 3, 64, 64) and decoded.min() >= 0 and decoded.max() <= 1


def test_encode_hands_the_vae_nchw_pixels_whatever_the_render_layout(tiny_prior, monkeypatch):
    """Renders come as permuted [B, H, W, 3] tensors (channels-last strides); the VAE gets NCHW-contiguous pixels
    (its eager channels-last path is slower on CUDA), and the latents do not depend on the input's layout."""
    seen = []
    encode = tiny_prior.vae.encode
    monkeypatch.setattr(tiny_prior.vae, "encode", lambda pixels: seen.append(pixels) or encode(pixels))
    hwc = torch.rand((4, 64, 64, 3), generator=torch.Generator().manual_seed(0))
    permuted = hwc.permute(0, 3, 1, 2)
    assert not permuted.is_contiguous()
    from_permuted = tiny_prior.encode(permuted, torch.Generator().manual_seed(1))
    from_contiguous = tiny_prior.encode(permuted.contiguous(), torch.Generator().manual_seed(1))
    assert all(pixels.is_contiguous() for pixels in seen)
    torch.testing.assert_close(from_permuted, from_contiguous)


def test_compile_is_compile_prior_unet_encoder_decoder(tiny_prior, monkeypatch):
    """``DiffusionPrior.compile`` (what ``train.compile_prior`` calls) compiles the UNet in the given mode, the
    VAE encoder and the decoder."""
    calls = []
    monkeypatch.setattr(tiny_prior, "compile_unet", lambda mode, dynamic_batch: calls.append(("unet", mode, dynamic_batch)))
    monkeypatch.setattr(tiny_prior, "compile_encoder", lambda: calls.append(("encoder",)))
    monkeypatch.setattr(tiny_prior, "compile_decoder", lambda: calls.append(("decoder",)))
    tiny_prior.compile()
    tiny_prior.compile(unet_mode="reduce-overhead", dynamic_batch=True)
    assert calls == [("unet", "default", False), ("encoder",), ("decoder",), ("unet", "reduce-overhead", True), ("encoder",),
                     ("decoder",)]


@pytest.mark.parametrize("setting,device,expected", [(None, "cuda", True), (None, "cpu", False), (True, "cpu", False),
                                                     (False, "cuda", False), (True, "cuda", True)])
def test_compile_prior_defaults_to_on_exactly_on_cuda(setting, device, expected):
    from segmentdreamer.config import TrainConfig
    from segmentdreamer.training.trainer import compiles_prior

    assert compiles_prior(TrainConfig(compile_prior=setting), torch.device(device)) is expected


def test_explicit_vae_attention_computes_what_sdpa_computes(tiny_models):
    """The prior runs the VAE's attention as the explicit softmax product (a speed choice, BENCHMARKS.md): the
    encoder's output and the gradient it hands the images equal those of diffusers' default SDPA processor."""
    from diffusers.models.attention_processor import AttnProcessor, AttnProcessor2_0

    vae = DiffusionPrior.from_pretrained(tiny_models / "sd", dtype=torch.float64).vae
    processors = vae.attn_processors.values()
    assert processors and all(type(p) is AttnProcessor for p in processors)
    images = torch.rand((2, 3, 64, 64), generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    weights = torch.randn((2, 8, 8, 8), generator=torch.Generator().manual_seed(1), dtype=torch.float64)
    results = []
    for processor in (AttnProcessor2_0(), AttnProcessor()):
        vae.set_attn_processor(processor)
        x = images.clone().requires_grad_()
        moments = vae.quant_conv(vae.encoder(2 * x - 1))  # posterior mean and log-variance [2, 8, 8, 8]
        (moments * weights).sum().backward()
        results.append((moments.detach(), x.grad))
    # the explicit path takes its softmax in fp32 (the VAE's upcast_softmax), so float64 agrees to fp32 precision
    torch.testing.assert_close(results[0][0], results[1][0], rtol=1e-5, atol=1e-7)
    torch.testing.assert_close(results[0][1], results[1][1], rtol=1e-5, atol=1e-7)


# A method without a Perp-Neg form (its supports_perp_neg trait: CDS) rejects one with a clear error (test_losses_baselines)
CASES = [(name, False) for name in sorted(LOSSES)] + [(name, True) for name in sorted(LOSSES) if LOSSES[name].supports_perp_neg]


@pytest.mark.parametrize("name,perp_neg", CASES)
def test_every_loss_on_real_latents(tiny_prior, name, perp_neg):
    cond = view_conditioning(tiny_prior.prompt_embeddings("a corgi"), torch.tensor([0.0, 90.0, 180.0, -90.0]), perp_neg=perp_neg)

    def one_run():
        loss = loss_class(name)(seed=1)
        grads = []
        for step in range(3):
            images = rendered_views(step)
            z0 = tiny_prior.encode(images, torch.Generator().manual_seed(step))
            out = loss(tiny_prior, LossInput(latents=z0, cond=cond, step=step, total_steps=30, images=images))
            assert out.loss.dim() == 0 and torch.isfinite(out.loss)
            out.loss.backward()
            assert images.grad is not None and torch.isfinite(images.grad).all()
            if out.grad is not None:
                assert out.grad.shape == z0.shape and out.grad.dtype == z0.dtype
            grads.append(images.grad.clone())
            if step == 0:
                fixed = None if loss.fixed_noise is None else loss.fixed_noise.clone()
        if fixed is not None:
            assert torch.equal(fixed, loss.fixed_noise)
        return grads

    first, second = one_run(), one_run()
    for a, b in zip(first, second):
        torch.testing.assert_close(a, b, rtol=0, atol=0)


def test_missing_folder_or_uncached_hub_id_fails_naming_the_key(tmp_path):
    with pytest.raises(MissingWeightsError, match=r"models\.sd"):
        resolve_model(tmp_path / "nowhere", "models.sd", "a diffusers folder")
    with pytest.raises(MissingWeightsError, match=r"models\.clip.*hf download"):
        resolve_model("openai/clip-vit-large-patch14", "models.clip", "a CLIP folder")


@pytest.mark.parametrize("offline", ["1", None])
def test_missing_sd_fails_fast_offline_or_not(tmp_path, offline):
    env = {k: v for k, v in os.environ.items() if not k.startswith("HF_")}
    env["HF_HOME"] = str(tmp_path / "hf-home")
    if offline:
        env["HF_HUB_OFFLINE"] = offline
    code = "from segmentdreamer.prior import DiffusionPrior; DiffusionPrior.from_pretrained('stabilityai/stable-diffusion-2-1-base')"
    result = processes.run([sys.executable, "-c", code], 300, env=env)  # a download attempt would hang offline
    assert result.returncode != 0
    assert "MissingWeightsError" in result.stderr and "models.sd" in result.stderr
