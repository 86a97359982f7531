"""View-dependent prompts, CFG and Perp-Neg (docs/method.md, "Notation")."""

import math

import pytest
import torch

from segmentdreamer.prior.conditioning import interpolation_weight, perp_neg_weights, view_conditioning, wrap_azimuth
from segmentdreamer.prior.guidance import classifier_free_guidance, perp_neg_guidance, perpendicular_component
from tests.reference import toy_embeddings


@pytest.mark.parametrize(
    "azimuth,q,frontal",
    [(0, 1.0, True), (45, 0.5, True), (-45, 0.5, True), (-90, 0.0, True), (90, 1.0, False), (135, 0.5, False), (180, 0.0, False), (-135, 0.5, False), (360, 1.0, True)],
)
def test_interpolation_weight(azimuth, q, frontal):
    assert interpolation_weight(azimuth) == (pytest.approx(q), frontal)


def test_wrap_azimuth():
    assert wrap_azimuth(190) == -170 and wrap_azimuth(-180) == -180 and wrap_azimuth(180) == -180


def test_view_text_is_interpolated_between_the_two_nearest_views():
    emb = toy_embeddings()
    cond = view_conditioning(emb, torch.tensor([30.0, 120.0]))
    q1, q2 = 1 - 30 / 90, 1 - 30 / 90
    torch.testing.assert_close(cond.text[0], q1 * emb.front + (1 - q1) * emb.side)
    torch.testing.assert_close(cond.text[1], q2 * emb.side + (1 - q2) * emb.back)
    assert cond.negative.shape == cond.empty.shape == cond.text.shape
    assert not cond.uses_perp_neg


def test_perp_neg_weights_official_constants():
    assert perp_neg_weights(0.9, True) == [1.0, 0.0, pytest.approx(-2 * math.exp(-10 * 0.1))]
    assert perp_neg_weights(0.1, True) == [1.0, pytest.approx(-2 * math.exp(-0.2)), 0.0]
    assert perp_neg_weights(0.5, False) == [1.0, pytest.approx(-math.exp(-5)), -2.0]
    assert perp_neg_weights(0.9, False) == [1.0, 0.0, -2.0]


def test_perp_neg_prompts_order():
    emb = toy_embeddings()
    cond = view_conditioning(emb, torch.tensor([10.0, 170.0]), perp_neg=True)
    assert cond.perp_neg_texts.shape[:2] == (2, 3)
    torch.testing.assert_close(cond.perp_neg_texts[0, 1], emb.front)
    torch.testing.assert_close(cond.perp_neg_texts[0, 2], emb.side)
    torch.testing.assert_close(cond.perp_neg_texts[1, 1], emb.side)
    torch.testing.assert_close(cond.perp_neg_texts[1, 2], emb.front)
    torch.testing.assert_close(cond.perp_neg_texts[:, 0], cond.text)


def test_perpendicular_component_is_orthogonal_and_complete():
    gen = torch.Generator().manual_seed(0)
    v, u = torch.randn(3, 4, 5, 5, generator=gen, dtype=torch.float64), torch.randn(3, 4, 5, 5, generator=gen, dtype=torch.float64)
    perp = perpendicular_component(v, u)
    assert torch.allclose((perp * u).sum((1, 2, 3)), torch.zeros(3, dtype=torch.float64), atol=1e-10)
    parallel = v - perp
    cosine = (parallel * u).sum((1, 2, 3)) / (parallel.flatten(1).norm(dim=1) * u.flatten(1).norm(dim=1))
    torch.testing.assert_close(cosine.abs(), torch.ones(3, dtype=torch.float64))


def test_cfg_is_one_batched_call(toy, toy_cond):
    x = torch.randn(3, 4, 4, 4, dtype=torch.float64)
    out = classifier_free_guidance(toy.predict_noise, x, 500, toy_cond, 7.5)
    assert [c[0] for c in toy.calls] == [6]
    neg, text = toy.eps(x, [500] * 3, toy_cond.negative), toy.eps(x, [500] * 3, toy_cond.text)
    torch.testing.assert_close(out.guided, neg + 7.5 * (text - neg))
    torch.testing.assert_close(out.text, text)


def test_perp_neg_guidance_formula_in_one_call(toy, toy_cond_perp_neg):
    cond = toy_cond_perp_neg
    x = torch.randn(3, 4, 4, 4, dtype=torch.float64)
    out = perp_neg_guidance(toy.predict_noise, x, 400, cond, 7.5)
    assert [c[0] for c in toy.calls] == [12]  # (1 + K) B with K = 3
    neg = toy.eps(x, [400] * 3, cond.negative)
    for i in range(3):
        d = [toy.eps(x[i : i + 1], [400], cond.perp_neg_texts[i : i + 1, k]) - neg[i : i + 1] for k in range(3)]
        combined = d[0].clone()
        for k in (1, 2):
            coef = (d[k] * d[0]).sum() / (d[0] * d[0]).sum()
            combined += float(cond.perp_neg_weights[i, k]) * (d[k] - coef * d[0])
        torch.testing.assert_close(out.guided[i : i + 1], neg[i : i + 1] + 7.5 * combined)
