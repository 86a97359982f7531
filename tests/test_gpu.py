"""GPU checks of the prior and losses (run on the H100: `pytest -m gpu`; skipped without CUDA)."""

import pytest
import torch

from segmentdreamer.losses import LOSSES, LossInput
from segmentdreamer.prior import DiffusionPrior, view_conditioning
from tests.reference import ToyPrior, toy_embeddings

pytestmark = pytest.mark.gpu


@pytest.mark.parametrize("name", sorted(LOSSES))
def test_losses_in_fp16_on_cuda(tiny_models, name):
    prior = DiffusionPrior.from_pretrained(tiny_models / "sd", device="cuda")
    assert prior.dtype == torch.float16
    cond = view_conditioning(prior.prompt_embeddings("a corgi"), torch.tensor([0.0, 90.0, 180.0, -90.0]))
    loss = LOSSES[name](seed=0)
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
        out = LOSSES[name](seed=2)(toy, LossInput(latents=z0, cond=cond, step=10, total_steps=100, images=images))
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
    from segmentdreamer.train import Trainer

    config = TrainConfig(prompt="a corgi", method="sctd", iterations=12, views=2, resolution=64, sphere_points=3000,
                         checkpoint_every=6, log_every=3, device="cuda")
    config.models.sd = str(tiny_models / "sd")
    trainer = Trainer(config, tmp_path)
    trainer.run()
    assert trainer.params["means"].is_cuda and (tmp_path / "gaussians.ply").exists()
    import json

    lines = [json.loads(line) for line in (tmp_path / "train_log.jsonl").read_text().splitlines()]
    assert len(lines) == 12 and all(line["gpu_memory_gb"] > 0 for line in lines)
