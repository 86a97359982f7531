"""Known-answer distillation: under the exact denoiser of a ground-truth scene, training recovers the scene.

The whole chain runs (cameras, per-view backgrounds, flip, disparity latents, the encoder, the loss, Adam,
densification, checkpoints, the evaluation ring); only the prior is replaced (prior/target_scene.py).
"""

import dataclasses
import math
from pathlib import Path

import pytest
import torch
import yaml

from segmentdreamer.config import TrainConfig
from segmentdreamer.losses import LossInput, loss_class
from segmentdreamer.prior.conditioning import view_conditioning
from segmentdreamer.prior.target_scene import LinearLatentMap, TargetScenePrior
from segmentdreamer.scene.compare import compare
from segmentdreamer.scene.known_scenes import build_scene
from segmentdreamer.training.trainer import Trainer
from segmentdreamer.typed import from_dict

# The demo (workflow/demo.yaml, tests/test_demo.py) trains every method this way through the workflow and asserts
# the measured PSNRs. Mutations run once on SDS (not committed) land below its floor: a sign flip of the residual
# 9.8 dB, views handed to the prior out of step with the renders 13.7, the encoder's gradient dropped 12.8,
# Gaussians mis-indexed after densification 30.5 (measured 38.7, floor 36.2).
DEMO = yaml.safe_load((Path(__file__).resolve().parents[1] / "workflow" / "demo.yaml").read_text(encoding="utf-8"))


def known_answer_config(method: str, iterations: int = 200) -> TrainConfig:
    """The demo's recipe (workflow/demo.yaml's train block and prior) for one method."""
    settings = {**DEMO["train"], "prompt": "a totem", "method": method, "iterations": iterations, "device": "cpu",
                "init": "sphere", "models": {"sd": DEMO["models"]["sd"]}}
    return from_dict(TrainConfig, settings)


def _gradient(method: str, prior: TargetScenePrior, z0: torch.Tensor) -> torch.Tensor:
    cond = view_conditioning(prior.prompt_embeddings("x"), torch.tensor([0.0, 120.0]))
    z0 = z0.clone().requires_grad_(True)
    loss_class(method)(seed=1)(prior, LossInput(latents=z0, cond=cond, step=2000, total_steps=5000)).loss.backward()
    return z0.grad


@pytest.mark.parametrize("method", ["sds", "ism", "sctd"])
def test_away_from_the_ground_truth_the_gradient_points_back(method):
    prior = TargetScenePrior([build_scene("totem", points_per_part=50)], unconditional_std=1.0)
    z_star = torch.randn(2, 4, 16, 16, generator=torch.Generator().manual_seed(0))
    prior.targets = [z_star]
    offset = 0.5 * torch.ones_like(z_star)
    grad = _gradient(method, prior, z_star + offset)
    cosine = float((grad * offset).sum() / (grad.norm() * offset.norm()))
    assert cosine > 0.3, (method, cosine)  # descent moves z0 back toward z*
    if method == "sds":  # CFG's branches both mean the point mass: SDS rests exactly on z*
        assert _gradient(method, prior, z_star).abs().max() < 1e-4


@pytest.mark.parametrize("method", ["cds", "sctd"])
def test_under_a_bare_point_mass_consistency_losses_see_nothing(method):
    """The probability-flow ODE of a point mass is consistent from any start: CDS (whose branches are both the
    point mass) and SCTD with a point-mass unconditional model get a zero gradient for every z0. This is why the
    known-answer prior's unconditional model is a Gaussian (prior/target_scene.py)."""
    prior = TargetScenePrior([build_scene("totem", points_per_part=50)], unconditional_std=0.0)
    z_star = torch.randn(2, 4, 16, 16, generator=torch.Generator().manual_seed(0))
    prior.targets = [z_star]
    assert _gradient(method, prior, z_star + 0.5).abs().max() < 1e-4


def test_cfg_fixed_point_is_the_extrapolation_beyond_the_prompt():
    """Two scenes: prompt -> z_txt, negative -> z_neg. SDS with scale g rests at z_neg + g (z_txt - z_neg)."""
    prior = TargetScenePrior([build_scene("totem", points_per_part=20), build_scene("crate", points_per_part=20)])
    z_txt, z_neg = torch.randn(1, 4, 8, 8), torch.randn(1, 4, 8, 8)
    prior.targets = [z_txt, z_neg]
    cond = view_conditioning(prior.prompt_embeddings("x"), torch.tensor([0.0]))
    g = 7.5
    for z0, resting in ((z_neg + g * (z_txt - z_neg), True), (z_txt, False)):
        z0 = z0.clone().requires_grad_(True)
        loss_class("sds")(guidance_scale=g, seed=0)(prior, LossInput(latents=z0, cond=cond, step=0, total_steps=10)).loss.backward()
        assert bool(z0.grad.abs().max() < 1e-4) is resting
    # the empty prompt is the two objects' mixture: its denoiser lies between them
    x, t = 0.5 * (z_txt + z_neg), torch.tensor([500])
    eps = prior.predict_noise(x, t, torch.full((1, 1, 1), 0.5))
    a, s = prior.schedule.alpha(t, x), prior.schedule.sigma(t, x)
    mean = (x - s * eps) / a
    assert (mean - z_txt).norm() < (z_neg - z_txt).norm() and (mean - z_neg).norm() < (z_neg - z_txt).norm()


def test_the_linear_latent_map_loses_nothing():
    latent_map = LinearLatentMap(torch.device("cpu"))
    images = torch.rand(2, 3, 8, 8)
    torch.testing.assert_close(latent_map.decode(latent_map.encode(images)), images, rtol=0, atol=1e-5)


def test_known_answer_psnr_and_ssim_equal_torchmetrics():
    """The scores' PSNR and SSIM are torchmetrics' per view, on a learned-like scene against the truth and on an
    identical pair."""
    from torchmetrics.functional.image import peak_signal_noise_ratio, structural_similarity_index_measure

    from segmentdreamer.scene.compare import psnr_per_view, ring_renders, ssim_per_view

    truth, _ = ring_renders(build_scene("totem"), views=4, resolution=32)
    shifted = build_scene("totem", points_per_part=120)
    shifted["means"].data += 0.03
    learned, _ = ring_renders(shifted, views=4, resolution=32)
    ssim = ssim_per_view(learned.double(), truth.double())
    assert 0.3 < float(ssim.min()) and float(ssim.max()) < 0.99  # neither equal nor unrelated: the test can tell
    torch.testing.assert_close(ssim, structural_similarity_index_measure(learned.double(), truth.double(), data_range=1.0,
                                                                         reduction="none"), rtol=0, atol=1e-10)
    torch.testing.assert_close(ssim_per_view(learned, truth).double(), structural_similarity_index_measure(  # as scored
        learned, truth, data_range=1.0, reduction="none").double(), rtol=0, atol=1e-5)
    torch.testing.assert_close(psnr_per_view(learned, truth), peak_signal_noise_ratio(
        learned.double(), truth.double(), data_range=1.0, reduction="none", dim=(1, 2, 3)), rtol=0, atol=1e-5)  # agrees to ~1e-6 dB
    torch.testing.assert_close(ssim_per_view(truth, truth), torch.ones(4))


def test_the_learning_curve_renders_the_ground_truth_once_and_scores_as_compare_does():
    prior = TargetScenePrior([build_scene("totem")])
    learned = build_scene("totem", points_per_part=80)
    first = prior.progress(learned, views=6, resolution=32)
    assert list(prior._truth_rings) == [(6, 32)]
    assert prior.progress(learned, views=6, resolution=32) == first
    expected = compare(learned, prior.ground_truth, views=6, resolution=32)
    assert first == {key: expected[key] for key in ("psnr", "ssim", "iou")}


def test_the_ground_truth_is_asymmetric():
    """Front, back, left, right, top and bottom of the totem look different (no orientation error can hide)."""
    from segmentdreamer.scene.compare import ring_renders

    rgb, _ = ring_renders(build_scene("totem"), views=4, resolution=32)  # azimuths 0, 90, 180, 270
    for i in range(4):
        for j in range(i + 1, 4):
            assert (rgb[i] - rgb[j]).abs().mean() > 0.01, (i, j)
    assert (rgb[1] - rgb[3].flip(-1)).abs().mean() > 0.01  # the right is not the mirrored left


def test_a_resumed_known_answer_run_ends_where_an_uninterrupted_one_does(tmp_path):
    """Kill and resume mid-run (the checkpoint path a killed job takes): the same Gaussians, so the same PSNR."""
    config = dataclasses.replace(known_answer_config("sds", iterations=40), checkpoint_every=10)
    whole = Trainer(config, tmp_path / "whole")
    whole.run()
    Trainer(config, tmp_path / "split").run(stop_after=24)  # stops after iteration 24 (its last checkpoint: 25)
    resumed = Trainer(config, tmp_path / "split")
    resumed.run(resume=True)
    assert resumed.start_step == 25
    for name, value in whole.params.items():
        assert torch.equal(value, resumed.params[name]), name
    truth = build_scene("totem")
    assert compare(whole.params, truth, views=8)["psnr"] == compare(resumed.params, truth, views=8)["psnr"]


def _implied_x0(prior, x, t, embedding):
    """What the prior's noise prediction says the clean latent is: (x - s_t eps) / a_t."""
    a, s = prior.schedule.alpha(t, x), prior.schedule.sigma(t, x)
    return (x - s * prior.predict_noise(x, t, embedding)) / a


@pytest.mark.parametrize("perp_neg", [False, True])
def test_the_prior_renders_the_ground_truth_from_the_view_its_text_names(perp_neg):
    """Texts made for each camera's azimuth give the targets the trainer's own views made; texts for the opposite
    azimuth (front and back swapped) give the ground truth seen from there, which differs: the wiring shows."""
    from segmentdreamer.config import CameraConfig
    from segmentdreamer.prior.views import ObservedViews
    from segmentdreamer.scene.cameras import TrainingCameraSampler, turned_about_z

    prior = TargetScenePrior.from_spec("target-scene:totem")
    cameras = TrainingCameraSampler(CameraConfig(), 32, 32, seed=3).sample(4)
    views = ObservedViews(cameras, torch.zeros(4, 3), False, False, 32)
    prior.observe_views(views)
    embeddings = prior.prompt_embeddings("a totem")
    x, t = torch.randn(4, 4, 32, 32, generator=torch.Generator().manual_seed(0)), torch.tensor(500)
    right = view_conditioning(embeddings, cameras.azimuths, perp_neg=perp_neg)
    torch.testing.assert_close(_implied_x0(prior, x, t, right.text), prior.targets[0], rtol=1e-4, atol=1e-4)
    opposite = view_conditioning(embeddings, cameras.azimuths + 180.0, perp_neg=perp_neg)
    wrong = _implied_x0(prior, x, t, opposite.text)
    for view in range(4):
        assert (wrong[view] - prior.targets[0][view]).abs().max() > 0.5, view
        # a text names |azimuth| only (left and right sides read the same): the view it names is on the camera's side
        own = (float(cameras.azimuths[view]) + 180.0) % 360.0 - 180.0
        named = round(abs((own + 360.0) % 360.0 - 180.0))  # |wrap(own + 180)|, to the degree (as the prior caches it)
        turned = turned_about_z(cameras[view : view + 1], torch.tensor([math.copysign(named, own) - own]))
        seen = prior.latent_map.encode(prior.render_like(prior.scenes[0], ObservedViews(turned, torch.zeros(1, 3), False, False, 32)))
        torch.testing.assert_close(wrong[view], seen[0], rtol=1e-3, atol=1e-3)
    if perp_neg:  # Perp-Neg's pure front and side prompts each name their own view
        front = _implied_x0(prior, x, t, right.perp_neg_texts[:, 1])
        assert not torch.allclose(front, prior.targets[0], atol=1e-3)
    negative = _implied_x0(prior, x, t, right.negative)  # names no view: the views the trainer rendered
    torch.testing.assert_close(negative, prior.targets[0], rtol=1e-4, atol=1e-4)


def test_the_known_answer_table_gives_mean_and_spread_over_seeds():
    import pandas as pd

    from segmentdreamer.report.known_answer import markdown

    table = pd.DataFrame({"method": ["SCTD"] * 4 + ["SDS"], "psnr": [18.3, 25.2, 24.0, 26.1, 38.7],
                          "ssim": [0.8, 0.9, 0.9, 0.9, 0.99], "iou": [0.91, 0.95, 0.96, 0.98, 0.99], "start_psnr": [13.1] * 5})
    text = markdown(table)
    # SCTD: mean 23.40, sample std sqrt(sum (x - 23.4)^2 / 3) = sqrt((26.01 + 3.24 + 0.36 + 7.29) / 3) = 3.507
    assert "| SCTD | 23.40 +- 3.51 | 0.875 +- 0.050 | 0.950 +- 0.029 | 13.10 | 4 |" in text, text
    assert "| SDS | 38.70 | 0.990 | 0.990 | 13.10 | 1 |" in text
