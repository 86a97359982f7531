"""Point-E: official key layout, strict reload, Karras/Heun sampler, tiny end-to-end sampling, init .ply."""

import math
import os
from pathlib import Path

import pytest
import torch

from segmentdreamer.init.diffusion import PointDiffusion, cosine_betas, linear_betas, scale_points, unscale_points
from segmentdreamer.init.karras import guided, heun_sample, karras_sigmas
from segmentdreamer.init.pointe import PointE, PointESampling, checkpoint_paths
from segmentdreamer.init.to_gaussians import pointe_frame, points_to_gaussians
from segmentdreamer.init.transformer import (
    PointTransformerConfig,
    TextPointTransformer,
    UpsamplePointTransformer,
    timestep_embedding,
)
from segmentdreamer.models import MissingWeightsError

# Names and shapes of the official checkpoints (base_40m_textvec.pt, upsample_40m.pt), as data.
BLOCK = {"attn.c_qkv.weight": [1536, 512], "attn.c_qkv.bias": [1536], "attn.c_proj.weight": [512, 512], "attn.c_proj.bias": [512],
         "ln_1.weight": [512], "ln_1.bias": [512], "mlp.c_fc.weight": [2048, 512], "mlp.c_fc.bias": [2048],
         "mlp.c_proj.weight": [512, 2048], "mlp.c_proj.bias": [512], "ln_2.weight": [512], "ln_2.bias": [512]}
COMMON = {"time_embed.c_fc.weight": [2048, 512], "time_embed.c_fc.bias": [2048], "time_embed.c_proj.weight": [512, 2048],
          "time_embed.c_proj.bias": [512], "ln_pre.weight": [512], "ln_pre.bias": [512], "ln_post.weight": [512], "ln_post.bias": [512],
          "input_proj.weight": [512, 6], "input_proj.bias": [512], "output_proj.weight": [12, 512], "output_proj.bias": [12],
          **{f"backbone.resblocks.{i}.{k}": v for i in range(12) for k, v in BLOCK.items()}}
BASE_KEYS = {**COMMON, "clip_embed.weight": [512, 768], "clip_embed.bias": [512]}
UPSAMPLE_KEYS = {**COMMON, "clip_embed.0.weight": [1024], "clip_embed.0.bias": [1024], "clip_embed.1.weight": [512, 1024],
                 "clip_embed.1.bias": [512], "cond_point_proj.weight": [512, 6], "cond_point_proj.bias": [512],
                 "channel_scales": [6], "channel_biases": [6]}


@pytest.mark.parametrize("cls,expected", [(TextPointTransformer, BASE_KEYS), (UpsamplePointTransformer, UPSAMPLE_KEYS)])
def test_official_key_layout(cls, expected):
    model = cls()
    shapes = {k: list(v.shape) for k, v in model.state_dict().items()}
    assert shapes == expected
    if cls is TextPointTransformer:
        assert 39e6 < sum(p.numel() for p in model.parameters()) < 42e6
    else:
        torch.testing.assert_close(model.channel_scales, torch.tensor([2, 2, 2, 2 / 255, 2 / 255, 2 / 255]))


def test_state_dict_round_trip_is_bit_exact(tmp_path):
    config = PointTransformerConfig(width=64, layers=2, heads=2, clip_dim=32)
    model = TextPointTransformer(config).eval()
    for p in model.parameters():
        p.data.normal_(std=0.05)
    torch.save(model.state_dict(), tmp_path / "m.pt")
    again = TextPointTransformer(config).eval()
    again.load_state_dict(torch.load(tmp_path / "m.pt", weights_only=True), strict=True)
    x, t, emb = torch.randn(2, 6, 1024), torch.tensor([3, 900]), torch.nn.functional.normalize(torch.randn(2, 32), dim=-1)
    with torch.no_grad():
        assert torch.equal(model(x, t, emb), again(x, t, emb))


def test_attention_equals_the_original_scaled_product():
    model = TextPointTransformer(PointTransformerConfig(width=16, layers=1, heads=2, clip_dim=4)).eval()
    attn, x = model.backbone.resblocks[0].attn, torch.randn(2, 5, 16)
    qkv = attn.c_qkv(x).view(2, 5, 2, -1)
    q, k, v = qkv.split(8, dim=-1)
    weights = torch.softmax(torch.einsum("bthc,bshc->bhts", q * 8**-0.25, k * 8**-0.25), dim=-1)
    expected = attn.c_proj(torch.einsum("bhts,bshc->bthc", weights, v).reshape(2, 5, 16))
    torch.testing.assert_close(attn(x), expected, rtol=1e-5, atol=1e-6)


def test_timestep_embedding_is_cos_then_sin():
    emb = timestep_embedding(torch.tensor([0.0, 10.0]), 8)
    torch.testing.assert_close(emb[0], torch.tensor([1.0, 1, 1, 1, 0, 0, 0, 0]))
    freqs = torch.exp(-math.log(10000) * torch.arange(4) / 4)
    torch.testing.assert_close(emb[1], torch.cat([torch.cos(10 * freqs), torch.sin(10 * freqs)]))


def test_schedules():
    cos = cosine_betas()
    assert len(cos) == 1024 and cos.max() <= 0.999 and cos[-1] == pytest.approx(0.999)
    lin = linear_betas()
    assert lin[0] == pytest.approx(1e-4 * 1000 / 1024) and lin[-1] == pytest.approx(0.02 * 1000 / 1024)
    diffusion = PointDiffusion.cosine()
    table = diffusion.alphas_cumprod
    for t in (5, 300, 1000):
        sigma = math.sqrt(1 / table[t] - 1)
        assert diffusion.sigma_to_t(sigma * 1.0001) == t  # a fractional index just above t floors to t
        assert diffusion.sigma_to_t(sigma * 0.9999) == t - 1  # just below t floors to t - 1
    assert diffusion.sigma_to_t(1e-9) == 0 and diffusion.sigma_to_t(1e9) == 1023


def test_scaling_round_trip():
    points = torch.tensor([[[0.3], [-0.2], [0.1], [0.0], [127.5], [255.0]]])
    torch.testing.assert_close(scale_points(points)[0, :, 0], torch.tensor([0.6, -0.4, 0.2, -1.0, 0.0, 1.0]), rtol=0, atol=1e-6)
    torch.testing.assert_close(unscale_points(scale_points(points)), points)


def test_karras_sigmas_formula():
    sigmas = karras_sigmas(64, 1e-3, 120.0, 7.0)
    assert sigmas.shape == (65,) and sigmas[-1] == 0
    for i in (0, 17, 63):
        expected = (120 ** (1 / 7) + i / 63 * (1e-3 ** (1 / 7) - 120 ** (1 / 7))) ** 7
        assert sigmas[i].item() == pytest.approx(expected, rel=1e-12)


@pytest.mark.parametrize("churn", [0.0, 3.0])
def test_heun_with_an_exact_denoiser_reproduces_gaussian_data(churn):
    mean, std = 0.3, 0.5

    def exact_x0(x, sigma):  # E[x0 | x] for x0 ~ N(mean, std^2), x = x0 + sigma n
        s2 = sigma[:, None, None] ** 2
        return mean + std**2 / (std**2 + s2) * (x - mean)

    out = heun_sample(exact_x0, (8, 3, 4000), steps=64, sigma_min=1e-3, sigma_max=120.0, rho=7.0, s_churn=churn, generator=torch.Generator().manual_seed(0), progress=False)
    assert out.mean().item() == pytest.approx(mean, abs=0.01)
    assert out.std().item() == pytest.approx(std, rel=0.02)


def test_guidance_acts_on_x0():
    def both(x, sigma):
        cond = torch.full_like(x[: len(x) // 2], 2.0)
        return torch.cat([cond, torch.full_like(cond, 1.0)])

    x = torch.zeros(3, 6, 5)
    torch.testing.assert_close(guided(both, 3.0)(x, torch.ones(3)), torch.full_like(x, 1.0 + 3.0 * (2.0 - 1.0)))


def test_missing_checkpoints_fail_fast_naming_the_key(tmp_path):
    with pytest.raises(MissingWeightsError, match=r"models\.pointe.*base_40m_textvec\.pt.*openaipublic.*upsample_40m\.pt"):
        checkpoint_paths(tmp_path)


def test_tiny_pointe_samples_4096_points(tiny_models):
    folder = tiny_models / "pointe"
    model = PointE.from_folder(folder, folder / "clip.pt")
    model.sampling = PointESampling(steps=16)
    xyz, rgb = model.sample("a corgi", seed=0, progress=False)
    assert xyz.shape == (4096, 3) and rgb.shape == (4096, 3)
    assert xyz.abs().max() <= 0.5 + 1e-6 and rgb.min() >= 0 and rgb.max() <= 1
    assert torch.equal(rgb * 255, (rgb * 255).round())
    again, _ = model.sample("a corgi", seed=0, progress=False)
    assert torch.equal(xyz, again)


def test_points_to_gaussians_transform():
    xyz = torch.rand(4096, 3, generator=torch.Generator().manual_seed(0)) - 0.5
    moved = pointe_frame(xyz)
    torch.testing.assert_close(moved[:, 0], xyz[:, 0])
    torch.testing.assert_close(moved[:, 1], -xyz[:, 1])
    torch.testing.assert_close(moved[:, 2], xyz[:, 2] + 0.15)
    params = points_to_gaussians(moved, seed=1)
    means = params["means"].detach()
    assert means.shape == (81920, 3)
    offsets = means.reshape(20, 4096, 3) - moved[None]
    assert torch.allclose(offsets, offsets[:, :1].expand_as(offsets), atol=1e-6)  # one offset set for every point
    assert offsets[:, 0].norm(dim=-1).max() <= 0.05 + 1e-6
    torch.testing.assert_close(torch.sigmoid(params["opacities"].detach()), torch.full((81920,), 0.1))
    torch.testing.assert_close(params["quats"].detach(), torch.tensor([[1.0, 0, 0, 0]]).expand(81920, 4))
    from segmentdreamer.scene.gaussians import nearest_neighbour_scale

    expected = torch.from_numpy(nearest_neighbour_scale(means.double().numpy())).float()
    torch.testing.assert_close(params["scales"].detach()[:, 0].exp(), expected, rtol=1e-5, atol=1e-7)


def test_cli_init_sphere_and_pointe_with_cache(tiny_models, tmp_path):
    from segmentdreamer.cli import main
    from segmentdreamer.scene.gaussians import load_ply

    prompts = tmp_path / "p.tsv"
    prompts.write_text("prompt_id\tprompt\tinit_prompt\tseed\ncorgi\tA DSLR photo of a \"corgi\"; rm -rf /\ta dog.\t3\n")
    assert main(["init", "--prompts", str(prompts), "--prompt-id", "corgi", "--out", str(tmp_path / "s.ply"), "--method", "sphere"]) == 0
    assert load_ply(tmp_path / "s.ply")["means"].shape == (100_000, 3)
    assert main(["init", "--prompts", str(prompts), "--prompt-id", "nope", "--out", str(tmp_path / "x.ply"), "--method", "sphere"]) == 2
    assert main(["init", "--prompts", str(prompts), "--prompt-id", "corgi", "--out", str(tmp_path / "x.ply"),
                 "--pointe", str(tmp_path / "missing")]) == 2
    cache = tmp_path / "cache"
    cache.mkdir()
    # a cached cloud for ("a dog.", seed 3) is used as is: no sampling happens
    from segmentdreamer.init.cache import cached_cloud

    cached_cloud(cache, "a dog.", 3, lambda: (torch.zeros(4096, 3), torch.zeros(4096, 3)))
    folder = tiny_models / "pointe"
    assert main(["init", "--prompts", str(prompts), "--prompt-id", "corgi", "--out", str(tmp_path / "p.ply"), "--pointe", str(folder),
                 "--pointe-clip", str(folder / "clip.pt"), "--cache", str(cache), "--device", "cpu"]) == 0
    means = load_ply(tmp_path / "p.ply")["means"]
    assert means.shape == (81920, 3) and means[:, 2].mean().item() == pytest.approx(0.15, abs=0.03)


WEIGHTS = Path(os.environ.get("SEGMENTDREAMER_POINTE", "models/pointe"))
CLIP = Path(os.environ.get("SEGMENTDREAMER_POINTE_CLIP", "models/clip-vit-l-14/open_clip_pytorch_model.bin"))


@pytest.mark.weights
@pytest.mark.skipif(not ((WEIGHTS / "base_40m_textvec.pt").is_file() and CLIP.is_file()),
                    reason=f"official Point-E checkpoints not found (SEGMENTDREAMER_POINTE={WEIGHTS}, SEGMENTDREAMER_POINTE_CLIP={CLIP})")
def test_official_weights_sample_a_corgi():
    model = PointE.from_folder(WEIGHTS, CLIP, device="cuda" if torch.cuda.is_available() else "cpu")
    xyz, rgb = model.sample("a corgi", seed=0)
    extent = xyz.max(0).values - xyz.min(0).values
    assert xyz.shape == (4096, 3) and (extent > 0.3).all() and (extent < 1.2).all()
    assert rgb.std() > 0.02


def test_cache_key_includes_the_sampler_steps(tmp_path):
    from segmentdreamer.init.cache import cached_cloud

    draws = []

    def sample():
        draws.append(1)
        return torch.full((4096, 3), float(len(draws))), torch.zeros(4096, 3)

    official = cached_cloud(tmp_path, "a dog.", 0, sample)[0]
    assert torch.equal(cached_cloud(tmp_path, "a dog.", 0, sample, steps=64)[0], official) and len(draws) == 1
    assert cached_cloud(tmp_path, "a dog.", 0, sample, steps=4)[0][0, 0] == 2.0 and len(draws) == 2
