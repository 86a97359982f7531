"""Acceptance 1: the solver's identities in float64 (paper Eq. 5, 7, 8, 9, 20; Supp. C, D)."""

import pytest
import torch
from diffusers import DDIMScheduler

from segmentdreamer.losses.solver import consistency_fn, invert, phi, predict_x0
from segmentdreamer.prior.schedule import NoiseSchedule
from tests.reference import ABAR, a, ddim, sig

SCHEDULE = NoiseSchedule.scaled_linear()
SHAPE = (3, 4, 6, 6)


def randn(seed: int, shape=SHAPE) -> torch.Tensor:
    return torch.randn(shape, generator=torch.Generator().manual_seed(seed), dtype=torch.float64)


def test_schedule_matches_diffusers_sd21_base_scheduler():
    scheduler = DDIMScheduler(beta_start=0.00085, beta_end=0.012, beta_schedule="scaled_linear", steps_offset=1)
    from_diffusers = NoiseSchedule.from_scheduler(scheduler).alphas_cumprod
    torch.testing.assert_close(from_diffusers, SCHEDULE.alphas_cumprod, rtol=1e-6, atol=0)
    x = randn(0)
    for t in (1, 20, 500, 999):
        assert SCHEDULE.alpha(t, x).item() == pytest.approx(a(t), abs=1e-12)
        assert SCHEDULE.sigma(t, x).item() == pytest.approx(sig(t), abs=1e-12)
        assert SCHEDULE.log_snr(t, x).item() == pytest.approx(torch.log(ABAR[t].sqrt() / (1 - ABAR[t]).sqrt()).item(), abs=1e-10)


def test_schedule_rejects_out_of_range_timesteps():
    with pytest.raises(IndexError):
        SCHEDULE.alpha(1000, randn(0))
    with pytest.raises(IndexError):
        SCHEDULE.alpha(torch.tensor([5, 1000]), randn(0))


@pytest.mark.parametrize("t,u", [(800, 212), (212, 800), (999, 1), (21, 20)])
def test_phi_equals_closed_form_consistency_function(t, u):
    x, eps = randn(1), randn(2)
    torch.testing.assert_close(phi(x, t, u, eps, SCHEDULE), consistency_fn(x, t, u, eps, SCHEDULE), rtol=1e-10, atol=1e-10)
    torch.testing.assert_close(phi(x, t, u, eps, SCHEDULE), ddim(x, t, u, eps), rtol=1e-12, atol=1e-12)


def test_phi_with_per_sample_timesteps():
    x, eps = randn(3), randn(4)
    t, u = torch.tensor([900, 500, 100]), torch.tensor([100, 600, 99])
    expected = torch.stack([phi(x[i : i + 1], int(t[i]), int(u[i]), eps[i : i + 1], SCHEDULE)[0] for i in range(3)])
    torch.testing.assert_close(phi(x, t, u, eps, SCHEDULE), expected)
    torch.testing.assert_close(consistency_fn(x, t, u, eps, SCHEDULE), expected, rtol=1e-10, atol=1e-10)


@pytest.mark.parametrize("t,u", [(700, 300), (50, 950)])
def test_phi_round_trip_with_the_same_eps_is_identity(t, u):
    x, eps = randn(5), randn(6)
    torch.testing.assert_close(phi(phi(x, t, u, eps, SCHEDULE), u, t, eps, SCHEDULE), x, rtol=1e-10, atol=1e-10)


def test_predict_x0_recovers_clean_latent_with_true_noise():
    z0, eps = randn(7), randn(8)
    z_t = a(600) * z0 + sig(600) * eps
    torch.testing.assert_close(predict_x0(z_t, 600, eps, SCHEDULE), z0, rtol=1e-10, atol=1e-10)


def test_eq20_generative_prior_term_equals_z_sm():
    """(a_sm/a_t) z_t - a_sm (e^{-lambda_t} - e^{-lambda_sm}) eps = a_sm z0 + s_sm eps = z_sm."""
    z0, eps = randn(9), randn(10)
    t, s_m = 730, 404
    z_t = a(t) * z0 + sig(t) * eps
    lhs = consistency_fn(z_t, t, s_m, eps, SCHEDULE)
    torch.testing.assert_close(lhs, a(s_m) * z0 + sig(s_m) * eps, rtol=1e-10, atol=1e-10)


def _residual_terms(seed: int):
    """Random z0, eps, noise predictions and the consistency-function values of Eq. 8 / 9."""
    z0, eps = randn(seed), randn(seed + 1)
    e_text, e_null, e_hat_s_text, e_hat_s_null = (randn(seed + k) for k in (2, 3, 4, 5))
    t, s, s_m, g = 650, 500, 404, 7.5
    z_t = a(t) * z0 + sig(t) * eps
    z_sm = a(s_m) * z0 + sig(s_m) * eps
    z_hat_s = phi(z_t, t, s, e_text, SCHEDULE)

    def G(x, at, e):
        return consistency_fn(x, at, s_m, e, SCHEDULE)

    K = a(s_m) * (sig(t) / a(t) - sig(s_m) / a(s_m))  # a_sm * integral of e^{-lambda} from lambda_t to lambda_sm
    sds_residual = e_text + g * (e_text - e_null) - eps  # Eq. 7
    eq8 = (G(z_hat_s, s, e_hat_s_text) - G(z_t, t, e_text)) + g * (G(z_t, t, e_null) - G(z_t, t, e_text)) + (z_sm - G(z_hat_s, s, e_hat_s_text))
    eq9 = (G(z_hat_s, s, e_hat_s_null) - G(z_t, t, e_null)) + (g + 1) * (G(z_t, t, e_null) - G(z_t, t, e_text)) + (z_sm - G(z_hat_s, s, e_hat_s_null))
    return K, sds_residual, eq8, eq9


def test_eq8_bracket_equals_the_sds_residual_supp_c():
    K, sds_residual, eq8, _ = _residual_terms(20)
    # b(t) ||bracket||^2 = omega(t) ||residual||^2 with b(t) = omega(t) / K^2, i.e. bracket = K * residual
    torch.testing.assert_close(eq8, K * sds_residual, rtol=1e-9, atol=1e-9)


def test_eq9_equals_eq8_supp_d():
    _, _, eq8, eq9 = _residual_terms(30)
    torch.testing.assert_close(eq9, eq8, rtol=1e-9, atol=1e-9)


def test_invert_chains_phi_and_skips_repeated_timesteps():
    x = randn(40)
    calls = []

    def noise_at(z, t):
        calls.append(t)
        return 0.1 * z + t / 1000.0

    out, last = invert(x, [1, 201, 201, 350], noise_at, SCHEDULE)
    expected = x
    for start, end in ((1, 201), (201, 350)):
        expected = ddim(expected, start, end, 0.1 * expected + start / 1000.0)
    torch.testing.assert_close(out, expected)
    assert calls == [1, 201]
    with pytest.raises(ValueError):
        invert(x, [5, 5], noise_at, SCHEDULE)
