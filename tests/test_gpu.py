"""GPU checks of the prior and losses (run on the H100: `pytest -m gpu`; skipped without CUDA)."""

import pytest
import torch

from segmentdreamer.losses import LOSSES, LossInput, loss_class
from segmentdreamer.prior import DiffusionPrior, view_conditioning
from tests.reference import ToyPrior, toy_embeddings

pytestmark = pytest.mark.gpu


@pytest.mark.parametrize("name", sorted(LOSSES))
def test_losses_in_fp16_on_cuda(tiny_models, name):
    prior = DiffusionPrior.from_pretrained(tiny_models / "sd", device="cuda")
    assert prior.dtype == torch.float16
    cond = view_conditioning(prior.prompt_embeddings("a corgi"), torch.tensor([0.0, 90.0, 180.0, -90.0]))
    loss = loss_class(name)(seed=0)
    for step in range(3):
        images = torch.rand((4, 3, 64, 64), device="cuda", requires_grad=True)
        z0 = prior.encode(images, torch.Generator("cuda").manual_seed(step))
        assert z0.dtype == torch.float16
        out = loss(prior, LossInput(latents=z0, cond=cond, step=step, total_steps=30, images=images))
        out.loss.backward()
        assert torch.isfinite(out.loss) and torch.isfinite(images.grad).all()


@pytest.mark.parametrize("name", sorted(LOSSES))
def test_cuda_and_cpu_draw_the_same_randomness(name):
    """Random draws happen on CPU generators, so a float64 toy run agrees across devices."""
    grads = []
    for device in ("cpu", "cuda"):
        toy = ToyPrior()
        toy.mix, toy.colour = toy.mix.to(device), toy.colour.to(device)
        emb = toy_embeddings()
        cond = view_conditioning(type(emb)(**{k: v.to(device) for k, v in vars(emb).items()}), torch.tensor([0.0, 45.0, 200.0]))
        z0 = torch.randn((3, 4, 6, 6), generator=torch.Generator().manual_seed(0), dtype=torch.float64).to(device).requires_grad_()
        images = torch.rand((3, 3, 48, 48), generator=torch.Generator().manual_seed(1), dtype=torch.float64).to(device)
        out = loss_class(name)(seed=2)(toy, LossInput(latents=z0, cond=cond, step=10, total_steps=100, images=images))
        out.loss.backward()
        grads.append(z0.grad.cpu())
    torch.testing.assert_close(grads[0], grads[1], rtol=1e-9, atol=1e-12)


def test_torch_renderer_matches_gsplat():
    """The CPU path and gsplat agree on a random scene (mean absolute difference < 1e-3)."""
    import sys
    from pathlib import Path

    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))
    from render_parity import compare

    table = compare(count=5000, size=64)
    for name in ("rgb", "alpha", "disparity"):
        assert table[name]["mean_abs_diff"] < 1e-3, (name, table[name])
    for name in ("grad_means", "grad_colors", "grad_opacities", "grad_scales"):
        assert table[name]["relative_l2"] < 5e-2, (name, table[name])


def test_trainer_on_cuda_with_gsplat(tiny_models, tmp_path):
    from segmentdreamer.config import TrainConfig
    from segmentdreamer.training.trainer import Trainer

    config = TrainConfig(prompt="a corgi", method="sctd", iterations=12, views=2, resolution=64, sphere_points=3000,
                         checkpoint_every=6, log_every=3, device="cuda")
    config.models.sd = str(tiny_models / "sd")
    trainer = Trainer(config, tmp_path)
    trainer.run()
    assert trainer.params["means"].is_cuda and (tmp_path / "gaussians.ply").exists()
    import json

    lines = [json.loads(line) for line in (tmp_path / "train_log.jsonl").read_text().splitlines()]
    assert len(lines) == 12 and all(line["gpu_memory_gb"] > 0 for line in lines)


def test_build_extensions_reports_a_ready_gsplat():
    from segmentdreamer.scene.render import build_cuda_extensions

    assert "gsplat CUDA extension ready" in build_cuda_extensions()


def test_fid_and_image_reward_on_cuda_equal_cpu(tiny_models, tmp_path):
    import imageio.v3 as iio
    import numpy as np

    from segmentdreamer.evaluate.fid import compute_fid
    from segmentdreamer.evaluate.image_reward import ImageRewardScorer

    rng = np.random.default_rng(0)
    for side in ("real", "fake"):
        (tmp_path / side).mkdir()
        for k in range(6):
            iio.imwrite(tmp_path / side / f"view_{k:03d}.png", rng.integers(0, 255, (32, 32, 3), dtype=np.uint8))
    real, fake = sorted((tmp_path / "real").glob("*.png")), sorted((tmp_path / "fake").glob("*.png"))
    cpu = compute_fid(real, fake, extractor="tiny")["value"]
    cuda = compute_fid(real, fake, extractor="tiny", device="cuda")["value"]
    assert abs(cpu - cuda) < 1e-3 * max(1.0, abs(cpu))
    images = np.stack([iio.imread(p) for p in fake])
    on_cpu = ImageRewardScorer.from_pretrained(tiny_models / "image_reward").score(images, "a corgi")
    on_cuda = ImageRewardScorer.from_pretrained(tiny_models / "image_reward", device="cuda").score(images, "a corgi")
    torch.testing.assert_close(on_cuda, on_cpu, rtol=1e-3, atol=1e-3)


@pytest.fixture(scope="module", params=["default", "reduce-overhead"])
def eager_and_compiled(tiny_models, request):
    eager = DiffusionPrior.from_pretrained(tiny_models / "sd", device="cuda")
    compiled = DiffusionPrior.from_pretrained(tiny_models / "sd", device="cuda")
    compiled.compile(unet_mode=request.param)
    return eager, compiled


@pytest.mark.parametrize("name", sorted(LOSSES))
def test_compiled_unet_gives_the_eager_gradient(eager_and_compiled, name):
    """The fast paths (torch.compile'd channels-last UNet, with and without CUDA graphs; compiled VAE decoder for
    GCS's pixel term) hand z0 the eager path's gradient (fp16 tolerance)."""
    grads = []
    for prior in eager_and_compiled:
        cond = view_conditioning(prior.prompt_embeddings("a corgi"), torch.tensor([0.0, 90.0, 180.0, -90.0]))
        z0 = torch.randn((4, 4, 8, 8), generator=torch.Generator().manual_seed(0)).to("cuda", torch.float16).requires_grad_()
        images = torch.rand((4, 3, 64, 64), generator=torch.Generator().manual_seed(1)).cuda()
        out = loss_class(name)(seed=3)(prior, LossInput(latents=z0, cond=cond, step=2000, total_steps=5000, images=images))
        out.loss.backward()
        grads.append(z0.grad.float())
    # fp16 kernels differ between the paths (conv algorithms, fusion) by ~1e-3 of eps, which a loss multiplies by
    # its guidance scale (SDS: 100); so compare the gradient as a whole: relative L2 error and direction.
    error = (grads[0] - grads[1]).norm() / grads[0].norm()
    cosine = torch.nn.functional.cosine_similarity(grads[0].flatten(), grads[1].flatten(), dim=0)
    print(f"{name}: relative L2 {error:.2e}, cosine {cosine:.6f}")
    assert error < 5e-2 and cosine > 0.998, (name, float(error), float(cosine))


@pytest.mark.parametrize("mode", ["default", "reduce-overhead"])
def test_dynamic_batch_unet_compiles_once_for_every_batch_size_and_predicts_the_eager_noise(tiny_models, mode):
    """The multi-asset job's UNet (``compile(dynamic_batch=True)``): batch sizes that are sums of several assets'
    calls (4, 12, 20, 28, 8, 36) run one graph (a recompile would raise) and each row is the eager prediction."""
    eager = DiffusionPrior.from_pretrained(tiny_models / "sd", device="cuda")
    compiled = DiffusionPrior.from_pretrained(tiny_models / "sd", device="cuda")
    compiled.compile_unet(mode, dynamic_batch=True)
    embedding = compiled.embed("a corgi")
    generator = torch.Generator().manual_seed(0)
    for index, size in enumerate((4, 12, 20, 28, 8, 36)):
        x = torch.randn((size, 4, 8, 8), generator=generator).to("cuda", torch.float16)
        t = torch.randint(1, 1000, (size,), generator=generator).cuda()
        with torch.no_grad(), torch._dynamo.config.patch(error_on_recompile=index > 0):
            fast = compiled.predict_noise(x, t, embedding.expand(size, -1, -1)).float()
            expected = eager.predict_noise(x, t, embedding.expand(size, -1, -1)).float()
        assert fast.shape == (size, 4, 8, 8)
        assert (fast - expected).norm() / expected.norm() < 5e-3, (size, float((fast - expected).norm() / expected.norm()))


def test_explicit_vae_attention_in_fp16_gives_the_sdpa_encoder_gradient(tiny_models):
    """On CUDA in fp16 the prior's explicit VAE attention hands the images SDPA's gradient (and the same latents)."""
    from diffusers.models.attention_processor import AttnProcessor2_0

    prior = DiffusionPrior.from_pretrained(tiny_models / "sd", device="cuda")
    explicit = encoded_with_gradient(prior)
    prior.vae.set_attn_processor(AttnProcessor2_0())
    for ours, sdpa in zip(explicit, encoded_with_gradient(prior)):
        assert (ours - sdpa).norm() / sdpa.norm() < 5e-3


def encoded_with_gradient(prior) -> tuple[torch.Tensor, torch.Tensor]:
    """(z0, d(z0 . w)/d images) of fixed random images [4, 3, 64, 64] through ``prior.encode`` (fixed posterior noise)."""
    images = torch.rand((4, 3, 64, 64), generator=torch.Generator().manual_seed(0)).cuda().requires_grad_()
    weights = torch.randn((4, 4, 8, 8), generator=torch.Generator().manual_seed(1)).cuda()
    z0 = prior.encode(images, torch.Generator("cuda").manual_seed(2))
    (z0.float() * weights).sum().backward()
    return z0.float(), images.grad


def test_compiled_encoder_gives_the_eager_latents_and_image_gradient(tiny_models):
    """compile_prior's encoder (torch.compile, NCHW, backward through AOTAutograd) encodes as eager does and hands
    the renders the eager gradient, up to fp16 kernel differences."""
    eager = DiffusionPrior.from_pretrained(tiny_models / "sd", device="cuda")
    compiled = DiffusionPrior.from_pretrained(tiny_models / "sd", device="cuda")
    compiled.compile_encoder()
    for reference, fast in zip(encoded_with_gradient(eager), encoded_with_gradient(compiled)):
        assert (reference - fast).norm() / reference.norm() < 5e-3


def test_compiled_decoder_decodes_what_eager_decodes(tiny_models):
    eager = DiffusionPrior.from_pretrained(tiny_models / "sd", device="cuda")
    compiled = DiffusionPrior.from_pretrained(tiny_models / "sd", device="cuda")
    compiled.compile_decoder()
    latents = torch.randn((8, 4, 8, 8), generator=torch.Generator().manual_seed(0)).cuda()
    expected, actual = eager.decode(latents).float(), compiled.decode(latents).float()
    assert actual.shape == (8, 3, 64, 64)
    assert (actual - expected).abs().max() < 1e-2, float((actual - expected).abs().max())


def test_compiled_reference_images_equal_eager_ones(tiny_models, tmp_path):
    """``ref-images --compile`` draws the eager images (same seeds) up to fp16 kernel differences."""
    import numpy as np
    from PIL import Image

    from segmentdreamer.evaluate.reference_images import generate_reference_images, reference_name

    prompts = ['a "corgi" / café', "a cat"]
    for name, compiled in (("eager", False), ("compiled", True)):
        written = generate_reference_images(tiny_models / "sd", prompts, 3, tmp_path / name, batch=2, steps=4, resolution=64,
                                            device="cuda", compile_unet=compiled)
        assert written == 3
    for k in range(3):
        eager, compiled = (np.asarray(Image.open(tmp_path / n / reference_name(k)), dtype=np.float64) for n in ("eager", "compiled"))
        assert eager.shape == compiled.shape == (64, 64, 3)
        assert np.abs(eager - compiled).mean() < 2.0, k  # grey levels out of 255
