"""SCTD against a re-derivation of docs/method.md, "Losses" with the toy predictor (acceptance 3, 4)."""

import pytest
import torch

from segmentdreamer.losses import LossInput, SCTDLoss
from tests.reference import a, cfg, ddim, empty_eps, sig

SHAPE = (3, 4, 6, 6)


def z0_leaf(seed=0):
    return torch.randn(SHAPE, generator=torch.Generator().manual_seed(seed), dtype=torch.float64).requires_grad_()


def run(loss, toy, cond, step=2000, seed=0):
    z0 = z0_leaf(seed)
    out = loss(toy, LossInput(latents=z0, cond=cond, step=step, total_steps=5000))
    out.loss.backward()
    return z0, out


def cross_weight(loss) -> float:
    """The cross-consistency weight, stated from its sources: the official code multiplies its guided B's term by
    g + 1; the paper's Eq. 9-10 by (w + 1) with its Eq. 7 CFG scale w = g - 1 (our CFG is eps_neg + g (eps_text -
    eps_neg), the paper's eps(y) + w (eps(y) - eps(∅))), which is used wherever a switch selects the paper."""
    official_path = loss.weighting == "code" and loss.guided_cross_term
    return loss.guidance_scale + 1.0 if official_path else (loss.guidance_scale - 1.0) + 1.0


def expected_terms(toy, loss, z0, cond, t, s, s_m):
    """A, B, C, z_sm and z~_t of docs/method.md, "SCTD" steps 3-6, written out."""
    z0 = z0.detach()
    z_sm = a(s_m) * z0 + sig(s_m) * loss.fixed_noise
    two_step = t >= loss.t_tau if loss.inversion_threshold == "ge" else t > loss.t_tau
    if two_step:
        z_s = ddim(z_sm, s_m, s, empty_eps(toy, z_sm, s_m, cond))
        z_t = ddim(z_s, s, t, empty_eps(toy, z_s, s, cond))
    else:
        z_t = ddim(z_sm, s_m, t, empty_eps(toy, z_sm, s_m, cond))
    e_t = cfg(toy, z_t, t, cond, loss.guidance_scale)
    z_hat_s = ddim(z_t, t, s, e_t)
    A = ddim(z_hat_s, s, s_m, empty_eps(toy, z_hat_s, s, cond))
    cross_eps = e_t if loss.guided_cross_term else toy.eps(z_t, [t] * z_t.shape[0], cond.text)
    B = ddim(z_t, t, s_m, cross_eps)
    return A, B, z_sm, z_t


@pytest.mark.parametrize(
    "options",
    [
        {},
        {"segmentation": "mono"},
        {"segmentation": "mono_paper", "num_segments": 5},
        {"num_segments": 2},
        {"t_schedule": "shift_upper"},
        {"guided_cross_term": False},
        {"inversion_threshold": "gt", "t_tau": 600},
        {"t_tau": 999},
        {"guidance_scale": 3.0, "grad_scale": 0.5},
    ],
)
def test_code_weighting_with_approx(toy, toy_cond, options):
    loss = SCTDLoss(**options)
    for step in (0, 900, 3000):
        z0, out = run(loss, toy, toy_cond, step=step)
        t, s, s_m = out.logs["t"], out.logs["s"], out.logs["s_m"]
        A, B, C, _ = expected_terms(toy, loss, z0, toy_cond, t, s, s_m)
        k = cross_weight(loss)
        grad = loss.grad_scale * sig(t) / a(t) * ((A - C) + k * (C - B))
        torch.testing.assert_close(out.grad, grad, rtol=1e-6, atol=1e-9)
        torch.testing.assert_close(z0.grad, grad, rtol=1e-6, atol=1e-9)


def test_code_weighting_without_approx_uses_the_unet_jacobian(toy, toy_cond):
    """C = G(z~_t(z0), t, ∅): dC/dz0 = a_t [(a_sm/a_t) I - K c(t) M] with K = a_sm s_t/a_t - s_sm."""
    loss = SCTDLoss(approx=False)
    z0, out = run(loss, toy, toy_cond)
    t, s, s_m = out.logs["t"], out.logs["s"], out.logs["s_m"]
    A, B, _, z_t = expected_terms(toy, loss, z0, toy_cond, t, s, s_m)
    C = ddim(z_t, t, s_m, empty_eps(toy, z_t, t, toy_cond))
    grad_c = loss.grad_scale * sig(t) / a(t) * ((A - C) + cross_weight(loss) * (C - B))
    K = a(s_m) * sig(t) / a(t) - sig(s_m)
    c_t = float(toy.scale(t))
    jt_grad = a(t) * ((a(s_m) / a(t)) * grad_c - K * c_t * torch.einsum("ji,njhw->nihw", toy.mix, grad_c))
    torch.testing.assert_close(z0.grad, jt_grad / a(s_m), rtol=1e-6, atol=1e-9)
    assert out.grad is None


@pytest.mark.parametrize("approx", [True, False])
def test_paper_weighting_is_eq10_as_a_loss(toy, toy_cond, approx):
    loss = SCTDLoss(weighting="paper", approx=approx)
    z0, out = run(loss, toy, toy_cond)
    t, s, s_m = out.logs["t"], out.logs["s"], out.logs["s_m"]
    A, B, z_sm, z_t = expected_terms(toy, loss, z0, toy_cond, t, s, s_m)
    w = loss.guidance_scale - 1.0  # the paper's CFG scale (Eq. 7) of our g (test_cfg_scales_of_ours_and_the_paper)
    b_t = 1.0 / (a(s_m) * sig(t) / a(t) - sig(s_m)) ** 2
    z0_ref = z0.detach().clone().requires_grad_()
    if approx:
        C = a(s_m) * z0_ref + sig(s_m) * loss.fixed_noise
    else:
        z_t_ref = z_t + a(t) * (z0_ref - z0_ref.detach())
        C = ddim(z_t_ref, t, s_m, empty_eps(toy, z_t_ref, t, toy_cond))
    expected = b_t * ((A - C).pow(2).sum() + (w + 1) ** 2 * (C - B).pow(2).sum())  # Eq. 10
    expected.backward()
    torch.testing.assert_close(out.loss.double(), expected.detach(), rtol=1e-6, atol=1e-9)
    torch.testing.assert_close(z0.grad, z0_ref.grad, rtol=1e-6, atol=1e-9)
    if approx:  # closed form: b(t) a_sm (2 (C - A) + 2 (w+1)^2 (C - B))
        closed = b_t * a(s_m) * (2 * (z_sm - A) + 2 * (w + 1) ** 2 * (z_sm - B))
        torch.testing.assert_close(z0.grad, closed, rtol=1e-6, atol=1e-9)


def test_unet_calls_per_iteration(toy, toy_cond):
    two = SCTDLoss(t_tau=0)
    run(two, toy, toy_cond)
    assert [c[0] for c in toy.calls] == [3, 3, 6, 3]  # inversion x2, one CFG call of 2B, A
    toy.calls.clear()
    one = SCTDLoss(t_tau=999)
    run(one, toy, toy_cond)
    assert [c[0] for c in toy.calls] == [3, 6, 3]
    toy.calls.clear()
    run(SCTDLoss(t_tau=0, approx=False), toy, toy_cond)
    assert len(toy.calls) == 5


def test_perp_neg_uses_one_call_of_four_batches(toy, toy_cond_perp_neg):
    loss = SCTDLoss(t_tau=0)
    z0, out = run(loss, toy, toy_cond_perp_neg)
    assert [c[0] for c in toy.calls] == [3, 3, 12, 3]
    assert torch.isfinite(z0.grad).all()


def test_fixed_noise_is_drawn_once_and_kept(toy, toy_cond):
    loss = SCTDLoss()
    run(loss, toy, toy_cond, step=0)
    first = loss.fixed_noise.clone()
    run(loss, toy, toy_cond, step=1, seed=5)
    assert torch.equal(loss.fixed_noise, first)
    # eps* = randn from the noise_seed generator + 0.1 randn(1, C, 1, 1) from the run generator
    expected = torch.randn(SHAPE, generator=torch.Generator().manual_seed(0)) + 0.1 * torch.randn(
        (1, 4, 1, 1), generator=torch.Generator().manual_seed(0)
    )
    torch.testing.assert_close(first, expected)


def test_state_dict_round_trip_reproduces_the_next_iteration(toy, toy_cond):
    loss = SCTDLoss(seed=3)
    run(loss, toy, toy_cond, step=0)
    state = {k: (v.clone() if torch.is_tensor(v) else v) for k, v in loss.state_dict().items()}
    _, ahead = run(loss, toy, toy_cond, step=1)
    resumed = SCTDLoss(seed=3)
    resumed.load_state_dict(state)
    _, again = run(resumed, toy, toy_cond, step=1)
    assert (ahead.logs["t"], ahead.logs["s"]) == (again.logs["t"], again.logs["s"])
    torch.testing.assert_close(ahead.grad, again.grad)


def test_invalid_switch_is_rejected():
    with pytest.raises(ValueError, match="weighting"):
        SCTDLoss(weighting="both")


@pytest.mark.parametrize(("threshold", "at_t_tau"), [("ge", 4), ("gt", 3)])
def test_t_exactly_at_t_tau_is_where_ge_and_gt_differ(toy, toy_cond, monkeypatch, threshold, at_t_tau):
    """The boundary itself: with t == t_tau, ``ge`` (official code) inverts in two steps (4 UNet calls), ``gt``
    (paper Eq. 11) in one (3 calls); one timestep either side both switches agree."""
    t_tau = 300
    for t, calls in ((t_tau - 1, 3), (t_tau, at_t_tau), (t_tau + 1, 4)):
        loss = SCTDLoss(t_tau=t_tau, inversion_threshold=threshold)
        monkeypatch.setattr(loss, "sample_timesteps", lambda step, t=t: (t, t - 100, t - 180))
        toy.calls.clear()
        run(loss, toy, toy_cond)
        assert len(toy.calls) == calls, (threshold, t, toy.calls)


def test_cfg_scales_of_ours_and_the_paper(toy, toy_cond):
    """Our guided prediction at g equals the paper's Eq. 7, eps(y) + w (eps(y) - eps(∅)), at w = g - 1."""
    from segmentdreamer.prior.guidance import guided_noise

    z = torch.randn(3, 4, 8, 8, dtype=torch.float64, generator=torch.Generator().manual_seed(3))
    t, g = 600, 7.5
    guided = guided_noise(toy.predict_noise, z, t, toy_cond, g).guided
    eps_y, eps_null = toy.eps(z, [t] * 3, toy_cond.text), toy.eps(z, [t] * 3, toy_cond.negative)
    w = g - 1.0
    torch.testing.assert_close(guided, eps_y + w * (eps_y - eps_null), rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize(("options", "weight"), [({}, 8.5), ({"guided_cross_term": False}, 7.5),
                                                 ({"weighting": "paper"}, 7.5),
                                                 ({"weighting": "paper", "guided_cross_term": False}, 7.5)])
def test_the_cross_weight_of_every_switch_by_hand(options, weight):
    """g = 7.5: the official path 8.5; the paper's (w + 1) = 7.5 wherever its equations are selected (56.25 squared)."""
    assert SCTDLoss(**options).cross_weight == weight
