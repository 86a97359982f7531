"""The baselines beyond Table 1 (CSD) against hand derivations of docs/method.md, "Losses", with the toy predictor."""

import pytest
import torch

from segmentdreamer.losses import CSDLoss, LossInput
from tests.reference import a, sig
from tests.test_losses_baselines import SHAPE, leaf, replay


@pytest.mark.parametrize("negative_scale", [0.0, 20.0])
def test_csd_gradient_is_the_classifier_score_alone(toy, toy_cond, negative_scale):
    """dL/dz0 = (1 - abar_t) [g (eps(text) - eps(empty)) - g_neg (eps(neg) - eps(empty))] / B, in one UNet call of
    2B (3B with the negative term); no generative term (eps(text) - noise) as SDS has."""
    loss = CSDLoss(guidance_scale=40.0, negative_scale=negative_scale, seed=3)
    gen = replay(loss.run_generator)
    t = torch.randint(20, 981, (3,), generator=gen).tolist()
    noise = torch.randn(SHAPE, generator=gen, dtype=torch.float32).double()
    z0 = leaf(2)
    out = loss(toy, LossInput(latents=z0, cond=toy_cond, step=0, total_steps=100))
    out.loss.backward()
    assert out.logs["t"] == t
    at = torch.tensor([a(v) for v in t], dtype=torch.float64).reshape(-1, 1, 1, 1)
    st = torch.tensor([sig(v) for v in t], dtype=torch.float64).reshape(-1, 1, 1, 1)
    z_t = at * z0.detach() + st * noise
    text, empty, negative = (toy.eps(z_t, t, emb) for emb in (toy_cond.text, toy_cond.empty, toy_cond.negative))
    expected = st**2 * (40.0 * (text - empty) - negative_scale * (negative - empty)) / 3
    torch.testing.assert_close(z0.grad, expected, rtol=1e-6, atol=1e-9)
    assert [c[0] for c in toy.calls] == [9 if negative_scale else 6]


def test_csd_without_guidance_pulls_nowhere(toy, toy_cond):
    """Mutation: with both weights 0 the gradient is exactly zero (it has no term outside the classifier score)."""
    z0 = leaf(4)
    out = CSDLoss(guidance_scale=0.0, seed=1)(toy, LossInput(latents=z0, cond=toy_cond, step=0, total_steps=10))
    out.loss.backward()
    assert torch.count_nonzero(z0.grad) == 0


def test_csd_rejects_perp_neg(toy, toy_cond_perp_neg):
    with pytest.raises(ValueError, match="no Perp-Neg form"):
        CSDLoss()(toy, LossInput(latents=leaf(0), cond=toy_cond_perp_neg, step=0, total_steps=10))
