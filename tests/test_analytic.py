"""The analytic prior (prior/analytic.py): closed-form eps* against Monte Carlo, DDIM sampling against the
mixture's moments, the exact ODE solver against itself, and SDS's fixed point where the algebra puts it."""

from __future__ import annotations

import math

import pytest
import torch

from segmentdreamer.losses import LossInput, loss_class
from segmentdreamer.prior.analytic import AnalyticPrior, GaussianMixture, ddim_step, solve_ode
from segmentdreamer.prior.conditioning import view_conditioning

TWO_MODES = GaussianMixture.of([[1.5, -0.5], [-1.0, 1.0]], [0.3, 0.6], [0.35, 0.65])


def levels(t: int, like: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    schedule = AnalyticPrior(TWO_MODES, shape=(2, 1, 1)).schedule
    return schedule.alpha(torch.full((like.shape[0],), t), like), schedule.sigma(torch.full((like.shape[0],), t), like)


@pytest.mark.parametrize("t", [50, 400, 900])
def test_closed_form_noise_is_the_posterior_mean_of_the_noise(t):
    """eps*(x) = E[eps | x_t = x], estimated by self-normalised importance sampling over prior draws z_i:
    weights N(x; a z_i, s^2 I), eps_i = (x - a z_i) / s."""
    generator = torch.Generator().manual_seed(0)
    x = torch.tensor([[0.8, 0.1], [-0.6, 0.9], [0.0, 0.0]], dtype=torch.float64)
    a, s = levels(t, x)
    exact = TWO_MODES.noise(x, a, s)
    z = TWO_MODES.sample(400_000, generator)  # [M, 2]
    for i in range(x.shape[0]):
        log_w = -((x[i] - a[i] * z) ** 2).sum(1) / (2 * s[i] ** 2)
        w = torch.softmax(log_w, dim=0)
        estimate = (w[:, None] * (x[i] - a[i] * z) / s[i]).sum(0)
        effective = 1.0 / (w**2).sum()
        assert effective > 1000, (t, i, float(effective))  # enough samples carry the estimate
        torch.testing.assert_close(estimate, exact[i], atol=4.0 / math.sqrt(float(effective)) + 1e-3, rtol=0)


def test_ddim_sampling_with_the_exact_noise_reproduces_the_mixture_moments():
    """Deterministic DDIM (250 steps, the SD schedule's levels) from N(0, I) lands on the mixture: mean, covariance
    and the weight of each mode within Monte-Carlo error (20,000 samples)."""
    prior = AnalyticPrior(TWO_MODES, shape=(2, 1, 1))
    abar = prior.schedule.alphas_cumprod
    steps = torch.linspace(999, 0, 251).round().long().tolist()
    x = torch.randn((20_000, 2), generator=torch.Generator().manual_seed(1), dtype=torch.float64)
    for t, t_next in zip(steps[:-1], steps[1:]):
        x = ddim_step(TWO_MODES, x, float(abar[t].sqrt()), float(abar[t_next].sqrt()))
    a0 = float(abar[0].sqrt())
    z = TWO_MODES.posterior_mean(x, torch.full((x.shape[0], 1), a0, dtype=x.dtype),
                                 torch.full((x.shape[0], 1), math.sqrt(1 - a0 * a0), dtype=x.dtype))
    torch.testing.assert_close(z.mean(0), TWO_MODES.mean(), atol=0.03, rtol=0)
    torch.testing.assert_close(torch.cov(z.T), TWO_MODES.covariance(), atol=0.05, rtol=0)
    first_mode = ((z - TWO_MODES.means[0]).norm(dim=1) < (z - TWO_MODES.means[1]).norm(dim=1)).double().mean()
    assert abs(float(first_mode) - 0.35) < 0.02


def test_the_ode_solver_converges_and_ddim_is_first_order_against_it():
    """solve_ode with 4000 and 8000 steps agree to 1e-7 (second order: 4000 steps err ~3e-8); chained DDIM steps of size dt over a fixed interval
    err proportionally to dt (a first-order method), as Theorem 1's analysis assumes."""
    x = TWO_MODES.sample(64, torch.Generator().manual_seed(2)) * 0.7 + 0.3 * torch.randn(
        (64, 2), generator=torch.Generator().manual_seed(3), dtype=torch.float64)
    a_from, a_to = 0.3, 0.9
    reference = solve_ode(TWO_MODES, x, a_from, a_to, steps=8000)
    torch.testing.assert_close(solve_ode(TWO_MODES, x, a_from, a_to, steps=4000), reference, atol=1e-7, rtol=0)
    errors = []
    for n in (8, 16, 32, 64):
        lam = torch.linspace(math.log(a_from / math.sqrt(1 - a_from**2)), math.log(a_to / math.sqrt(1 - a_to**2)), n + 1)
        alphas = (1.0 / (1.0 + torch.exp(-2.0 * lam))).sqrt().tolist()
        state = x.clone()
        for a, a_next in zip(alphas[:-1], alphas[1:]):
            state = ddim_step(TWO_MODES, state, a, a_next)
        errors.append(float((state - reference).norm(dim=1).mean()))
    ratios = [errors[i] / errors[i + 1] for i in range(3)]
    assert all(1.7 < r < 2.3 for r in ratios), (errors, ratios)  # halving dt halves the error


@pytest.mark.slow
def test_sds_fixed_point_is_the_cfg_extrapolation(tmp_path):
    """One Gaussian per condition, equal widths: E[SDS residual] = c(t) [(z0 - mu_neg) - g (mu_text - mu_neg)] for
    every t, so SDS's fixed point is mu_neg + g (mu_text - mu_neg), not the text mode: CFG's extrapolation (the
    analogue of over-saturation), in closed form. Distil one latent and land there."""
    text, negative = GaussianMixture.of([[1.0, 0.5, -0.5, 0.0]], [0.4]), GaussianMixture.of([[0.5, 0.5, 0.0, 0.5]], [0.4])
    prior = AnalyticPrior(text, negative, shape=(4, 1, 1))
    g = 3.0
    expected = negative.means[0] + g * (text.means[0] - negative.means[0])
    cond = view_conditioning(prior.prompt_embeddings(), torch.zeros(8))
    loss = loss_class("sds")(seed=0, guidance_scale=g, noise_seed=0)
    z0 = torch.zeros((8, 4, 1, 1), dtype=torch.float64, requires_grad=True)
    optimizer = torch.optim.Adam([z0], lr=0.02)
    trail = []
    for step in range(3000):
        optimizer.zero_grad()
        loss(prior, LossInput(latents=z0, cond=cond, step=step, total_steps=3000)).loss.backward()
        optimizer.step()
        if step >= 2000:
            trail.append(z0.detach().reshape(8, 4).mean(0).clone())
    final = torch.stack(trail).mean(0)
    torch.testing.assert_close(final, expected, atol=0.08, rtol=0)
    assert (final - text.means[0]).norm() > 1.0  # far from the text mode itself
