"""The trainer's wiring, each piece against an independent statement of what it must do (fast, CPU, tiny models).

Each test here fails for a single-point mutation that once survived every fast test (the fidelity audit):
negative and empty prompts swapped, view prompts of the opposite azimuth, the regularizers maximised, the
gradient-clip ramp removed, the flip along rows or hidden from the prior, the learning-rate schedule reversed.
"""

import dataclasses
import math

import pytest
import torch

from segmentdreamer.config import AugmentConfig, DensifyConfig, RegularizerConfig, TrainConfig
from segmentdreamer.losses import LossOut
from segmentdreamer.prior import DEFAULT_NEGATIVE_PROMPT
from segmentdreamer.prior.conditioning import PromptEmbeddings, view_conditioning
from segmentdreamer.scene.gaussians import activate
from segmentdreamer.training.trainer import Trainer, total_variation

FRONT, SIDE, BACK, NEGATIVE, EMPTY = 1.0, 2.0, 3.0, 4.0, 5.0


def constant_embeddings(tokens: int = 3, width: int = 8) -> PromptEmbeddings:
    """Each prompt's embedding a constant of its own, so a field's value says which prompt landed there."""
    def fill(value):
        return torch.full((tokens, width), value, dtype=torch.float64)

    return PromptEmbeddings(front=fill(FRONT), side=fill(SIDE), back=fill(BACK), negative=fill(NEGATIVE), empty=fill(EMPTY))


def expected_text(azimuth_deg: float) -> float:
    """The view text of a camera at this azimuth (0 = front, on +y), written out independently of the code:
    front -> side over the first quarter turn either way, side -> back over the second."""
    a = (azimuth_deg + 180.0) % 360.0 - 180.0
    if abs(a) <= 90.0:
        q = 1.0 - abs(a) / 90.0
        return q * FRONT + (1.0 - q) * SIDE
    q = 1.0 - (abs(a) - 90.0) / 90.0
    return q * SIDE + (1.0 - q) * BACK


@pytest.fixture
def config(tiny_models) -> TrainConfig:
    cfg = TrainConfig(prompt="a corgi", iterations=50, views=4, resolution=32, sphere_points=300, device="cpu",
                      densify=DensifyConfig(start=1000), augment=AugmentConfig(scale_noise=0.0, random_background_prob=0.0,
                                                                                 disparity_prob=0.0))
    cfg.models.sd = str(tiny_models / "sd")
    return cfg


class NullLoss:
    """No distillation gradient: only the regularizers act (state_dict etc. pass to the real loss)."""

    def __init__(self, inner):
        self.inner, self.inputs = inner, []

    def __call__(self, prior, batch):
        self.inputs.append(batch)
        return LossOut(loss=0.0 * batch.latents.sum(), grad=None, logs={})

    def __getattr__(self, name):
        return getattr(self.inner, name)


class RecordingPrior:
    """The tiny prior, recording what the trainer encodes and what it tells the prior it rendered."""

    def __init__(self, inner):
        self.inner, self.encoded, self.observed = inner, [], []

    def encode(self, images, generator=None):
        self.encoded.append(images.detach().clone())
        return self.inner.encode(images, generator)

    def observe_views(self, views):
        self.observed.append(views)
        self.inner.observe_views(views) if hasattr(self.inner, "observe_views") else None

    def __getattr__(self, name):
        return getattr(self.inner, name)


# -- which prompt lands where ---------------------------------------------------------------------------------------
def test_negative_and_empty_prompts_land_in_their_own_fields(tiny_prior):
    cond = view_conditioning(constant_embeddings(), torch.tensor([0.0, 120.0, -60.0]), perp_neg=True)
    assert torch.all(cond.negative == NEGATIVE) and torch.all(cond.empty == EMPTY)  # CFG's branch; the ODE's condition
    embeddings = tiny_prior.prompt_embeddings("a corgi")
    assert torch.equal(embeddings.negative, tiny_prior.embed(DEFAULT_NEGATIVE_PROMPT))
    assert torch.equal(embeddings.empty, tiny_prior.embed(""))
    for view, suffix in (("front", ", front view"), ("side", ", side view"), ("back", ", back view")):
        assert torch.equal(getattr(embeddings, view), tiny_prior.embed("a corgi" + suffix)), view
    assert not torch.equal(embeddings.negative, embeddings.empty)


@pytest.mark.parametrize(("azimuth", "value"), [(0.0, FRONT), (45.0, 1.5), (-45.0, 1.5), (90.0, SIDE), (-90.0, SIDE),
                                                (135.0, 2.5), (180.0, BACK), (-180.0, BACK), (-135.0, 2.5)])
def test_view_text_of_known_azimuths(azimuth, value):
    cond = view_conditioning(constant_embeddings(), torch.tensor([azimuth]))
    assert torch.allclose(cond.text, torch.full_like(cond.text, value)), (azimuth, cond.text[0, 0, 0])


def test_the_trainer_hands_each_view_the_text_of_where_its_camera_stands(config, tiny_prior, tmp_path):
    """The azimuth is read back from each camera's pose (its eye = -R^T t; 0 deg on +y, the object's front), not
    from the sampler's own azimuth field: a prompt for the opposite side (front and back swapped) fails here. The
    tolerance, 0.02 of a prompt (~2 deg), allows the sampler's jitter of the look-at target."""
    trainer = Trainer(config, tmp_path, prior=tiny_prior)
    trainer.embeddings = constant_embeddings()
    trainer.loss = NullLoss(trainer.loss)
    seen = []
    sample = trainer.sampler.sample
    trainer.sampler.sample = lambda n: seen.append(sample(n)) or seen[-1]
    for step in range(6):
        trainer.step(step)
    azimuths_seen = []
    for cameras, batch in zip(seen, trainer.loss.inputs):
        rotation, translation = cameras.viewmats[:, :3, :3], cameras.viewmats[:, :3, 3]
        eye = -(rotation.transpose(1, 2) @ translation[..., None])[..., 0]
        azimuths = torch.rad2deg(torch.atan2(eye[:, 0], eye[:, 1])).tolist()
        for view, azimuth in enumerate(azimuths):
            assert math.isclose(float(batch.cond.text[view, 0, 0]), expected_text(azimuth), abs_tol=0.02), (azimuth, view)
            assert float(batch.cond.negative[view, 0, 0]) == NEGATIVE and float(batch.cond.empty[view, 0, 0]) == EMPTY
        azimuths_seen += azimuths
    assert len(azimuths_seen) == 6 * config.views
    assert min(map(abs, azimuths_seen)) < 60 and max(map(abs, azimuths_seen)) > 120  # fronts and backs were both seen


# -- the regularizers are minimised --------------------------------------------------------------------------------
def test_the_scale_regularizer_shrinks_the_gaussians(config, tiny_prior, tmp_path):
    config = dataclasses.replace(config, regularize=RegularizerConfig(tv_rgb=0.0, tv_disparity=0.0, scale=1.0))
    trainer = Trainer(config, tmp_path, prior=tiny_prior)
    trainer.loss = NullLoss(trainer.loss)
    before = activate(trainer.params)["scales"].detach().clone()
    for step in range(3):
        trainer.step(step)
    after = activate(trainer.params)["scales"].detach()
    assert after.mean() < before.mean() and (after <= before + 1e-9).float().mean() > 0.99


def test_the_tv_regularizer_smooths_the_renders(config, tiny_prior, tmp_path):
    config = dataclasses.replace(config, regularize=RegularizerConfig(tv_rgb=1.0, tv_disparity=0.0, scale=0.0))
    trainer = Trainer(config, tmp_path, prior=tiny_prior)
    trainer.loss = NullLoss(trainer.loss)
    cameras = trainer.sampler.sample(config.views)

    def tv():
        with torch.no_grad():
            renders, _, _ = trainer._render_views(cameras)
            return float(total_variation(torch.cat([r.rgb for r in renders])))

    start = tv()
    trainer.sampler.sample = lambda n: cameras  # every step on the same views
    for step in range(3):
        trainer.step(step)
    assert tv() < start


# -- the gradient clip ramps up ------------------------------------------------------------------------------------
@pytest.mark.parametrize(("step", "limit"), [(0, 2.0), (500, 5.0), (1000, 8.0), (4000, 8.0)])
def test_each_gradient_is_clipped_to_the_ramped_limit(config, tiny_prior, tmp_path, step, limit):
    """clip_start + clip_growth * min(1, step / clip_ramp): 2 -> 8 over the first 1000 iterations (defaults)."""
    trainer = Trainer(config, tmp_path, prior=tiny_prior)
    for param in trainer.params.values():
        param.grad = torch.full_like(param, 100.0)
    small = trainer.params["opacities"]
    small.grad = torch.full_like(small, 1e-3)  # below every limit: left alone
    trainer._clip_gradients(step)
    for name, param in trainer.params.items():
        if name != "opacities" and param.numel():
            assert math.isclose(float(param.grad.norm()), limit, rel_tol=1e-4), (name, float(param.grad.norm()))
    assert torch.all(small.grad == 1e-3)


# -- the flip ----------------------------------------------------------------------------------------------------
def test_a_flipped_batch_is_mirrored_left_right_and_the_prior_is_told(config, tiny_prior, tmp_path):
    prior = RecordingPrior(tiny_prior)
    trainer = Trainer(config, tmp_path, prior=prior)
    trainer.loss = NullLoss(trainer.loss)
    renders = []
    render_views = trainer._render_views
    trainer._render_views = lambda cameras: renders.append(render_views(cameras)) or renders[-1]
    for step in range(8):
        trainer.step(step)
    flips = [views.flip for views in prior.observed]
    assert any(flips) and not all(flips)  # both happen within 8 iterations at p = 0.5 (seeded)
    for (views, _, _), encoded, flipped in zip(renders, prior.encoded, flips):
        rgb = torch.cat([r.rgb for r in views]).detach()
        assert torch.equal(encoded, rgb.flip(-1) if flipped else rgb)  # columns (width): a mirror, not upside down


# -- the learning-rate schedule ---------------------------------------------------------------------------------------
@pytest.mark.parametrize("name", ["means", "sh0", "scales", "quats"])
def test_learning_rates_decay_log_linearly_from_first_to_last(config, tiny_prior, tmp_path, name):
    trainer = Trainer(config, tmp_path, prior=tiny_prior)
    o = config.optim
    first, last = {"means": o.means_lr, "sh0": o.colour_lr, "scales": o.scale_lr, "quats": o.rotation_lr}[name]
    rates = [trainer._lr(name, step) for step in range(0, config.iterations + 1, 10)]
    assert math.isclose(rates[0], first) and math.isclose(rates[-1], last)
    assert math.isclose(trainer._lr(name, config.iterations // 2), math.sqrt(first * last))  # geometric midpoint
    assert all(a >= b for a, b in zip(rates, rates[1:]))
    assert math.isclose(trainer._lr("shN", 0), o.colour_lr[0] / o.colour_rest_divisor)
