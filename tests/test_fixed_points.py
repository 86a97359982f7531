"""Each loss's fixed point on a single Gaussian, where the algebra puts it (the analytic prior, prior/analytic.py).

With every condition the same Gaussian N(mu, sigma^2 I), the exact noise prediction is linear,
eps*(x, t) = s_t (x - a_t mu) / (a_t^2 sigma^2 + s_t^2), every CFG / unconditional combination equals it, and
a DDIM step Phi(x, p -> q, eps*(x, p)) maps the centred state y = x - a_p mu to a multiple of itself. So each
loss's update on z0 is affine: grad = K (z0 - mu) + (a term linear in the noise), with a scalar K per iteration.

* Fresh zero-mean noise per iteration (SDS, ISM, GCS): the noise term averages out, the fixed point is mu.
* One fixed noise eps* for the whole run (SCTD, CDS): every target of the iteration is the trajectory through
  the noised start z_sm = a_m z0 + s_m eps* (SCTD; level s_m, the segment start) or z_t = z0 + (s_t/a_t) eps*
  (CDS, variance-exploding form, per-view t); all of them coincide, and the update vanishes exactly, when
  that start is the mode's own point a mu. So the fixed point is shifted along the fixed noise:
  z0* = mu - (s/a) eps*, with s/a at s_m (SCTD) or at each view's t (CDS). This is the shift the known-answer
  demo measures (docs/method.md, "Known-answer distillation").
* With two conditions of equal width, CFG is again one Gaussian, at the extrapolated mean: CDS's
  eps(text) + g (eps(text) - eps(neg)) is the Gaussian at (1 + g) mu_text - g mu_neg (SDS's form, the
  negative + g (text - negative), is tested in test_analytic.py).
"""

from __future__ import annotations

import math

import pytest
import torch

from segmentdreamer.losses import LossInput, loss_class
from segmentdreamer.prior.analytic import AnalyticPrior, GaussianMixture
from segmentdreamer.prior.conditioning import view_conditioning

MU = torch.tensor([0.6, -0.3, 0.2, 0.4], dtype=torch.float64)
ONE = GaussianMixture.of([MU.tolist()], [0.5])
DELTA = torch.tensor([0.3, 0.2, -0.1, 0.25], dtype=torch.float64).reshape(1, 4, 1, 1)


def gradient(loss, prior: AnalyticPrior, z0: torch.Tensor, step: int) -> tuple[torch.Tensor, dict]:
    """The loss's gradient on z0 [B, 4, 1, 1] (the render is the latent: images = latents = z0) and its logs."""
    x = z0.clone().requires_grad_()
    cond = view_conditioning(prior.prompt_embeddings(), torch.zeros(x.shape[0]))
    out = loss(prior, LossInput(latents=x, cond=cond, step=step, total_steps=5000, images=x))
    out.loss.backward()
    return x.grad.detach(), out.logs


def shifted_fixed_point(loss, prior: AnalyticPrior, mode: torch.Tensor, views: int, step: int) -> tuple[torch.Tensor, dict]:
    """z0* = mode - (s/a) eps* for this iteration of a fixed-noise loss; the loss's random state is left as it was.

    One throw-away call learns the iteration's levels (SCTD: s_m; CDS: t per view) and draws eps*."""
    state = loss.state_dict()
    at_mode = mode.reshape(1, 4, 1, 1).expand(views, 4, 1, 1).clone()
    _, logs = gradient(loss, prior, at_mode, step)
    level = torch.as_tensor(logs["s_m"] if "s_m" in logs else logs["t"]).reshape(-1, 1, 1, 1)
    ve_sigma = prior.schedule.sigma(level, at_mode) / prior.schedule.alpha(level, at_mode)
    eps_star = loss.fixed_noise.to(torch.float64).expand(views, 4, 1, 1)
    loss.load_state_dict(state)
    return at_mode - ve_sigma * eps_star, logs


@pytest.mark.parametrize("options", [
    {"method": "sctd"},
    {"method": "sctd", "approx": False},
    {"method": "sctd", "weighting": "paper"},
    {"method": "sctd", "noise_offset": 0.0, "num_segments": 2},
    {"method": "cds"},
], ids=["sctd", "sctd-exact-C", "sctd-paper-weighting", "sctd-no-offset-Ns2", "cds"])
def test_fixed_noise_losses_vanish_exactly_at_the_mode_shifted_along_the_fixed_noise(options):
    """grad(z0*) = 0 to rounding at z0* = mu - (s/a) eps*, not at mu; a step from z0* + delta moves back (attracting)."""
    options = dict(options)
    prior = AnalyticPrior(ONE, ONE, shape=(4, 1, 1))
    loss = loss_class(options.pop("method"))(seed=3, **options)
    for step in (0, 800, 2000, 4200):
        star, logs = shifted_fixed_point(loss, prior, MU, 4, step)
        state = loss.state_dict()
        at_mode, _ = gradient(loss, prior, MU.reshape(1, 4, 1, 1).expand(4, 4, 1, 1), step)
        loss.load_state_dict(state)
        at_star, _ = gradient(loss, prior, star, step)
        loss.load_state_dict(state)
        perturbed, _ = gradient(loss, prior, star + DELTA, step)
        assert at_mode.norm() > 1e-5, (step, logs)  # the unshifted mode is not the fixed point
        assert at_star.norm() < 1e-10 * float(at_mode.norm()), (step, logs, float(at_star.norm()))
        # descent (z0 -= lr grad) from z0* + delta points back at z0*
        assert float((perturbed * DELTA).sum()) / float(perturbed.norm() * DELTA.expand_as(perturbed).norm()) > 0.98, step


def test_cds_fixed_point_is_consistent3d_cfg_extrapolation_shifted_along_the_fixed_noise():
    """Text N(mu_t, s^2 I), negative N(mu_n, s^2 I): CDS's guided noise is exactly the Gaussian at (1 + g) mu_t - g mu_n."""
    text, negative = GaussianMixture.of([MU.tolist()], [0.5]), GaussianMixture.of([[0.1, 0.2, 0.3, -0.2]], [0.5])
    prior = AnalyticPrior(text, negative, shape=(4, 1, 1))
    loss = loss_class("cds")(seed=1, guidance_scale=3.0)
    extrapolated = 4.0 * text.means[0] - 3.0 * negative.means[0]
    for step in (0, 1500, 4000):
        star, _ = shifted_fixed_point(loss, prior, extrapolated, 4, step)
        state = loss.state_dict()
        at_text_mode, _ = shifted_fixed_point(loss, prior, text.means[0], 4, step)
        loss.load_state_dict(state)
        wrong, _ = gradient(loss, prior, at_text_mode, step)
        loss.load_state_dict(state)
        right, _ = gradient(loss, prior, star, step)
        assert right.norm() < 1e-12 * float(wrong.norm()) and wrong.norm() > 1e-3, step


@pytest.mark.parametrize("method", ["sds", "ism", "gcs"])
def test_fresh_noise_losses_average_to_zero_at_the_mode_and_pull_towards_it(method):
    """E[grad | z0 = mu] = 0 (Monte Carlo: 100 iterations x 256 views, within 5 standard errors), and the mean
    gradient at mu + delta points along delta (cosine > 0.999): the mode is the attracting fixed point."""
    prior = AnalyticPrior(ONE, ONE, shape=(4, 1, 1))
    loss = loss_class(method)(seed=0)
    at_mode = MU.reshape(1, 4, 1, 1).expand(256, 4, 1, 1).clone()
    means, perturbed = [], []
    for step in range(0, 5000, 50):
        state = loss.state_dict()
        grad, _ = gradient(loss, prior, at_mode, step)
        loss.load_state_dict(state)
        shifted, _ = gradient(loss, prior, at_mode + DELTA, step)
        means.append(grad.mean(0).flatten())
        perturbed.append(shifted.mean(0).flatten())
    means, pull = torch.stack(means), torch.stack(perturbed).mean(0)
    mean, standard_error = means.mean(0), means.std(0) / math.sqrt(means.shape[0])
    assert (mean.abs() < 5 * standard_error + 1e-15).all(), (mean, standard_error)
    assert mean.norm() < 0.05 * pull.norm()
    assert float(pull @ DELTA.flatten()) / float(pull.norm() * DELTA.norm()) > 0.999


def test_ism_pull_towards_the_mode_is_the_hand_derived_interval_gain():
    """ISM's gain K in grad(mu + delta) - grad(mu) = K delta, per iteration, by hand. On the centred state
    y_p = x - a_p mu: eps*(x, p) = s_p y_p / v_p (v_p = a_p^2 sigma^2 + s_p^2) and a DDIM step p -> q moves
    y_q = c(p, q) y_p, c(p, q) = (a_q a_p sigma^2 + s_q s_p) / v_p. x_1 carries a_1 delta; the inversion
    1 -> ... -> s multiplies it by the c's; the residual eps*(x_t, t) - eps*(x_s, s) = y_s (s_t c(s, t) / v_t
    - s_s / v_s); the update is 0.1 (s_t / a_t) times that."""
    prior = AnalyticPrior(ONE, ONE, shape=(4, 1, 1))
    abar, variance = prior.schedule.alphas_cumprod, float(ONE.stds[0]) ** 2
    a = {p: math.sqrt(float(abar[p])) for p in range(1000)}
    s = {p: math.sqrt(1.0 - float(abar[p])) for p in range(1000)}

    def v(p):
        return a[p] ** 2 * variance + s[p] ** 2

    def c(p, q):
        return (a[q] * a[p] * variance + s[q] * s[p]) / v(p)

    loss = loss_class("ism")(seed=2)
    at_mode = MU.reshape(1, 4, 1, 1).expand(4, 4, 1, 1).clone()
    for step in (0, 700, 1600, 3900):
        state = loss.state_dict()
        base, logs = gradient(loss, prior, at_mode, step)
        loss.load_state_dict(state)
        moved, _ = gradient(loss, prior, at_mode + DELTA, step)
        t, s_end = logs["t"], logs["s"]
        chain = loss.inversion_timesteps(s_end)
        gain = a[1] * math.prod(c(p, q) for p, q in zip(chain[:-1], chain[1:]))
        gain *= s[t] * c(s_end, t) / v(t) - s[s_end] / v(s_end)
        gain *= 0.1 * s[t] / a[t]
        torch.testing.assert_close(moved - base, gain * DELTA.expand(4, 4, 1, 1), rtol=1e-9, atol=1e-15)
