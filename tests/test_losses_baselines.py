"""SDS, ISM, CDS and GCS against re-derivations of docs/method.md, "Losses" with the toy predictor (acceptance 3, 4)."""

import math

import pytest
import torch

from segmentdreamer.losses import CDSLoss, GCSLoss, ISMLoss, LossInput, SDSLoss
from tests.reference import ToyPrior, a, cfg, ddim, empty_eps, sig

SHAPE = (3, 4, 6, 6)


def leaf(seed, shape=SHAPE):
    return torch.randn(shape, generator=torch.Generator().manual_seed(seed), dtype=torch.float64).requires_grad_()


def replay(generator: torch.Generator) -> torch.Generator:
    """A generator in the same state, to redraw what the loss is about to draw."""
    copy = torch.Generator()
    copy.set_state(generator.get_state())
    return copy


def offset_noise(gen, run_gen, offset=0.1):
    return torch.randn(SHAPE, generator=gen) + offset * torch.randn((1, 4, 1, 1), generator=run_gen)


# ---------------------------------------------------------------- SDS
@pytest.mark.parametrize("step", [0, 2500])
def test_sds_gradient(toy, toy_cond, step):
    loss = SDSLoss()
    gen = replay(loss.run_generator)
    t = torch.randint(20, 981, (3,), generator=gen).tolist()
    noise = torch.randn(SHAPE, generator=gen, dtype=torch.float32).double()
    z0 = leaf(1)
    out = loss(toy, LossInput(latents=z0, cond=toy_cond, step=step, total_steps=5000))
    out.loss.backward()
    assert out.logs["t"] == t
    at = torch.tensor([a(v) for v in t], dtype=torch.float64).reshape(-1, 1, 1, 1)
    st = torch.tensor([sig(v) for v in t], dtype=torch.float64).reshape(-1, 1, 1, 1)
    z_t = at * z0.detach() + st * noise
    expected = st**2 * (cfg(toy, z_t, t, toy_cond, 100.0) - noise) / 3
    torch.testing.assert_close(z0.grad, expected, rtol=1e-6, atol=1e-9)
    assert [c[0] for c in toy.calls] == [6]


# ---------------------------------------------------------------- ISM
def ism_expected(toy, cond, z0, noise, t, s, g=7.5):
    x = a(1) * z0 + sig(1) * noise
    current = 1
    for _ in range(5):
        if current >= s:
            break
        nxt = min(current + 200, s)
        x = ddim(x, current, nxt, empty_eps(toy, x, current, cond))
        current = nxt
    target = empty_eps(toy, x, s, cond)
    x_t = ddim(x, s, t, target)
    return 0.1 * sig(t) / a(t) * (cfg(toy, x_t, t, cond, g) - target)


@pytest.mark.parametrize("step", [0, 800, 1500, 4000])
def test_ism_gradient(toy, toy_cond, step):
    loss = ISMLoss()
    for _ in range(3):
        gen = replay(loss.run_generator)
        r = 1 - min(step / 1500, 1)
        index = int(torch.randint(20, 500 + math.floor(480 * r), (1,), generator=gen))
        noise = offset_noise(gen, gen).double()
        z0 = leaf(step)
        toy.calls.clear()
        out = loss(toy, LossInput(latents=z0, cond=toy_cond, step=step, total_steps=5000))
        out.loss.backward()
        delta = int(80 + 20 * r)
        t, s = index + 1, max(index - delta, 0) + 1
        assert (out.logs["t"], out.logs["s"]) == (t, s)
        torch.testing.assert_close(z0.grad, ism_expected(toy, toy_cond, z0.detach(), noise, t, s), rtol=1e-6, atol=1e-9)
        inversion_calls = math.ceil((s - 1) / 200)
        assert [c[0] for c in toy.calls] == [3] * (inversion_calls + 1) + [6]


def test_ism_inversion_timesteps():
    loss = ISMLoss()
    assert loss.inversion_timesteps(1) == [1]
    assert loss.inversion_timesteps(150) == [1, 150]
    assert loss.inversion_timesteps(900) == [1, 201, 401, 601, 801, 900]


# ---------------------------------------------------------------- CDS
def consistent3d_cfg(toy, x_ve, t, cond, g):
    ts = t if isinstance(t, list) else [t] * x_ve.shape[0]
    at = torch.tensor([a(v) for v in ts], dtype=torch.float64).reshape(-1, 1, 1, 1)
    text, neg = toy.eps(at * x_ve, ts, cond.text), toy.eps(at * x_ve, ts, cond.negative)
    return text + g * (text - neg)


@pytest.mark.parametrize("step,bias_scale", [(0, 1.0), (1000, 1.0), (2999, 40.0), (4500, 40.0)])
def test_cds_gradient_and_clamp(toy_cond, step, bias_scale):
    toy = ToyPrior(bias_scale=bias_scale)
    loss = CDSLoss()
    fixed = torch.randn(SHAPE[1:], generator=replay(loss.noise_generator)).double()
    gen = replay(loss.run_generator)
    z0 = leaf(3)
    out = loss(toy, LossInput(latents=z0, cond=toy_cond, step=step, total_steps=5000))
    out.loss.backward()
    p = min(step / 3000, 1.0)
    t_next = min(max(round(700 - 600 * math.sqrt(p)), 100), 880)
    t = (t_next + torch.randint(100, 300, (3,), generator=gen)).clamp(100, 980).tolist()
    assert (out.logs["t_next"], out.logs["t"]) == (t_next, t)
    sigma = lambda v: torch.tensor([sig(x) / a(x) for x in v], dtype=torch.float64).reshape(-1, 1, 1, 1)  # noqa: E731
    z_t = z0.detach() + sigma(t) * fixed
    eps_t = consistent3d_cfg(toy, z_t, t, toy_cond, 30.0)
    z_next = z_t + (sigma([t_next] * 3) - sigma(t)) * eps_t
    eps_next = consistent3d_cfg(toy, z_next, t_next, toy_cond, 30.0)
    bound = 2 + 6 * p
    torch.testing.assert_close(z0.grad, (eps_t - eps_next).clamp(-bound, bound) / 3, rtol=1e-6, atol=1e-9)
    if bias_scale > 1:  # the large bias makes the clamp bite
        assert torch.isclose(z0.grad.abs() * 3, torch.tensor(bound, dtype=torch.float64)).any()
    assert [c[0] for c in toy.calls] == [6, 6]


def test_cds_fixed_noise_is_one_draw_repeated_over_the_batch(toy, toy_cond):
    loss = CDSLoss()
    loss(toy, LossInput(latents=leaf(0), cond=toy_cond, step=0, total_steps=100))
    first = loss.fixed_noise.clone()
    loss(toy, LossInput(latents=leaf(1), cond=toy_cond, step=1, total_steps=100))
    assert first.shape == SHAPE[1:] and torch.equal(first, loss.fixed_noise)


def test_cds_rejects_perp_neg(toy, toy_cond_perp_neg):
    with pytest.raises(ValueError, match="Perp-Neg"):
        CDSLoss()(toy, LossInput(latents=leaf(0), cond=toy_cond_perp_neg, step=0, total_steps=100))


# ---------------------------------------------------------------- GCS
def gcs_timesteps(gen, step):
    r = 1 - min(step / 1500, 1)
    delta = int(80 + math.ceil(20 * r))
    t = int(torch.randint(20 + math.floor(480 * r), 500 + math.floor(480 * r), (1,), generator=gen))
    t = max(t, delta + 1)
    s = max(t - delta, 1)
    e = int(torch.randint(max(t - 2 * delta, 0), max(t - delta - 10, 1), (1,), generator=gen))
    return t + 1, s + 1, max(e, 1) + 1


@pytest.mark.parametrize("perp_neg", [False, True])
@pytest.mark.parametrize("step", [0, 2000])
def test_gcs_gradient_is_autograd_of_its_formula(toy, toy_cond, toy_cond_perp_neg, perp_neg, step):
    cond = toy_cond_perp_neg if perp_neg else toy_cond
    loss = GCSLoss()
    noise_gen = replay(loss.noise_generator)
    # with Perp-Neg the fixed noise is the noise generator's first draw, then come the timesteps
    run_gen = replay(loss.run_generator)
    noise = offset_noise(noise_gen if perp_neg else run_gen, run_gen).double()
    t, s, e = gcs_timesteps(noise_gen, step)
    z0, images = leaf(4), torch.rand((3, 3, 48, 48), dtype=torch.float64).requires_grad_()
    out = loss(toy, LossInput(latents=z0, cond=cond, step=step, total_steps=5000, images=images))
    out.loss.backward()
    assert (out.logs["t"], out.logs["s"], out.logs["e"]) == (t, s, e)

    from segmentdreamer.prior.guidance import guided_noise  # the guided eps itself is tested in test_conditioning

    def guided(x, at):
        return guided_noise(toy.eps_batched, x, at, cond, 7.5).guided

    toy.eps_batched = lambda x, ts, emb: toy.eps(x, ts, emb)
    z0_ref, img_ref = z0.detach().clone().requires_grad_(), images.detach().clone().requires_grad_()
    z_e = a(e) * z0_ref + sig(e) * noise
    eps_e = empty_eps(toy, z_e.detach(), e, cond)
    z_s = ddim(z_e, e, s, eps_e)
    z_t = ddim(z_s, s, t, empty_eps(toy, z_s.detach(), s, cond))
    e_t = guided(z_t.detach(), t)
    z_hat_s = ddim(z_t.detach(), t, s, e_t)
    cc_target = ddim(z_hat_s, s, e, empty_eps(toy, z_hat_s, s, cond))
    cc_pred = ddim(z_t, t, e, empty_eps(toy, z_t.detach(), t, cond))
    x_e = ddim(z_t.detach(), t, e, e_t)
    x0_perp = (x_e - sig(e) * guided(x_e, e)) / a(e)
    x0_null = (z_e - sig(e) * eps_e) / a(e)
    l_cc = (cc_pred - cc_target).pow(2).sum() / 3
    l_cg = (x0_perp - x0_null).pow(2).sum() / 3
    target = (img_ref + toy.decode(x0_perp) - toy.decode(x0_null.detach())).detach()
    l_cp = (img_ref - target).pow(2).sum() / 3
    expected = 0.1 * (l_cc + 0.5 * l_cg + 0.5 * l_cp)
    expected.backward()
    torch.testing.assert_close(out.loss, expected.detach(), rtol=1e-6, atol=1e-9)
    torch.testing.assert_close(z0.grad, z0_ref.grad, rtol=1e-6, atol=1e-9)
    torch.testing.assert_close(images.grad, img_ref.grad, rtol=1e-6, atol=1e-9)
    guided_batch = 12 if perp_neg else 6
    assert [c[0] for c in toy.calls] == [3, 3, guided_batch, 3, guided_batch, 3]
    assert toy.decode_calls == 3  # the loss's one batched decode, plus the two of this test


def test_gcs_needs_images(toy, toy_cond):
    with pytest.raises(ValueError, match="images"):
        GCSLoss()(toy, LossInput(latents=leaf(0), cond=toy_cond, step=0, total_steps=10))
