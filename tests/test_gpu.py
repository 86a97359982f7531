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
