"""The miniworld's model builders on tiny settings (CPU): formats, resume, gates' arithmetic, the world's fit to Point-E."""

from __future__ import annotations

import dataclasses
import json
import shutil

import pytest
import torch
import yaml

from segmentdreamer.init.pointe import PointE, load_clip_text_encoder
from segmentdreamer.miniworld.build import STAGES, run_stage, text_features
from segmentdreamer.miniworld.dataset import degrade, render_set
from segmentdreamer.miniworld.formats import open_clip_architecture, open_clip_state
from segmentdreamer.miniworld.gates import chamfer, retrieval, without_sizes
from segmentdreamer.miniworld.loop import learning_rate, limit_training_time, optimise, read_curve, read_steps
from segmentdreamer.miniworld.report import GateError
from segmentdreamer.miniworld.scenes import caption_scene, object_parts, scene_points
from segmentdreamer.miniworld.settings import MiniworldSettings, TrainingSettings, load_settings
from segmentdreamer.miniworld.train_clip import build_clip, clip_processor, normalise_pixels
from segmentdreamer.miniworld.train_pointe import to_pointe_frame
from segmentdreamer.miniworld.world import MODEL_MARKER, WORLD_VERSION, held_out_captions, training_captions
from segmentdreamer.typed import ConfigError, from_dict

from .test_workflow import snakemake

TINY = {
    "training_captions": 6, "held_out_captions": 3,
    "data": {"resolution": 32, "draws": 1, "views": 2, "point_draws": 1},
    "clip": {"text_width": 16, "text_layers": 1, "vision_width": 16, "vision_layers": 1, "patch": 8, "head_width": 8,
             "projection": 8, "training": {"steps": 3, "batch": 4, "checkpoint_every": 2}},
    "vae": {"channels": [8, 16], "layers_per_block": 1, "training": {"steps": 3, "batch": 2, "checkpoint_every": 2}},
    "unet": {"channels": [16, 32], "head_width": 8, "training": {"steps": 3, "batch": 2, "checkpoint_every": 2}},
    "pointe": {"width": 16, "layers": 1, "heads": 2, "grid_dim": 8, "base": {"steps": 3, "batch": 2},
               "upsampler": {"steps": 2, "batch": 1}},
    "gates": {"captions": 2, "sd_steps": 2, "pointe_steps": 2},
}


def tiny_settings() -> MiniworldSettings:
    return from_dict(MiniworldSettings, TINY, "miniworld.")


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    """``snakemake miniworld_models`` on tiny settings (CPU, gates set to pass): (settings, weights, work folder)."""
    root = tmp_path_factory.mktemp("miniworld")
    config = {"pathvars": {"results": str(root / "results"), "logs": "<results>/logs", "benchmarks": "<results>/benchmarks"}, "prompt_sets": {"smoke": "workflow/smoke/prompts.tsv"},
              "models": {}, "device": "cpu", "variants": {"sds": {"method": "sds"}}, "table1": {"variants": ["sds"]},
              "miniworld_weights": str(root / "weights"),
              "miniworld": {**TINY, "gates": {**TINY["gates"], "vae_psnr": 1.0, "r_precision": 0.0, "chamfer": 10.0}}}
    (root / "config.yaml").write_text(yaml.safe_dump(config))
    run = snakemake("miniworld_models", "--configfile", str(root / "config.yaml"), "--cores", "2", "--notemp")
    assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-3000:]
    assert (root / "results" / "logs" / "miniworld" / "unet.log").is_file()
    settings = from_dict(MiniworldSettings, config["miniworld"], "miniworld.")
    return settings, root / "weights", root / "results" / "miniworld" / "work"


def test_the_workflow_config_loads_and_bad_keys_are_named():
    settings = load_settings("workflow/miniworld.yaml")
    assert settings.data.resolution == 128 and settings.unet.training.steps > 0
    with pytest.raises(ConfigError, match=r"miniworld\.unet\.training\.stepz: unknown key"):
        from_dict(MiniworldSettings, {"unet": {"training": {"stepz": 3}}}, "miniworld.")
    with pytest.raises(ConfigError, match=r"miniworld\.data\.resolution: must be a multiple"):
        from_dict(MiniworldSettings, {"data": {"resolution": 130}}, "miniworld.")


def test_every_scene_fits_the_box_point_e_clips_its_samples_to():
    """Point-E's sampler clips x0 to |coordinate| <= 0.5 in its frame: a scene outside it could never be sampled."""
    for caption in training_captions() + held_out_captions():
        for seed in (0, 1):
            means = to_pointe_frame(caption_scene(caption, seed)["means"].detach())
            assert means.abs().max() < 0.5, caption


def test_a_point_cloud_fills_the_same_parts_as_the_gaussian_scene():
    caption = "a big red box with a blue nose next to a small green ball"
    xyz, rgb = scene_points(caption, 3, 4096)
    assert xyz.shape == rgb.shape == (4096, 3)
    for part in object_parts(caption, 3):
        near = (xyz - torch.tensor(part.centre)).abs().max(dim=1).values <= part.half + 1e-6
        assert near.sum() > (40 if part.is_nose else 400)  # every part is filled (a nose has a fifth of the weight)
        assert torch.allclose(rgb[near].mean(0), torch.tensor(part.colour), atol=0.25)
    assert chamfer(xyz, caption_scene(caption, 3)["means"].detach()) < 0.03


def test_the_open_clip_conversion_computes_the_same_features(tmp_path):
    torch.manual_seed(0)
    settings = tiny_settings()
    clip = build_clip(settings.clip, 32).eval()
    (tmp_path / "clip.json").write_text(json.dumps(open_clip_architecture(clip)))
    torch.save(open_clip_state(clip), tmp_path / "clip.pt")
    converted, tokenizer = load_clip_text_encoder(tmp_path / "clip.pt")
    captions = ["a red box with a green nose, front view", "a big blue ball next to a small cyan cone"]
    with torch.no_grad():
        ours = text_features(clip, captions)
        theirs = torch.nn.functional.normalize(converted.encode_text(tokenizer(captions)), dim=-1)
        assert torch.allclose(ours, theirs, atol=1e-5)
        pixels = normalise_pixels(torch.rand(2, 3, 32, 32))
        image = clip.get_image_features(pixel_values=pixels)
        image = image if isinstance(image, torch.Tensor) else image.pooler_output
        assert torch.allclose(image, converted.encode_image(pixels), atol=1e-5)
    assert clip_processor(32).tokenizer.pad_token == "<|endoftext|>"


def test_a_killed_trainer_resumes_to_the_same_weights(tmp_path):
    class Killed(Exception):
        pass

    def run(work, kill_at=None):
        torch.manual_seed(0)
        model = torch.nn.Linear(3, 1)
        target = torch.tensor([[1.0, -2.0, 0.5]])

        def loss_at(step, generator):
            if step == kill_at:
                raise Killed
            x = torch.randn(8, 3, generator=generator)
            return (model(x) - x @ target.T).pow(2).mean()

        settings = TrainingSettings(steps=25, batch=8, lr=0.05, warmup=2, checkpoint_every=6)
        return optimise("toy", model, loss_at, settings, tmp_path / work, seed=7, ema_decay=0.9, progress=False)

    straight = run("straight")
    with pytest.raises(Killed):
        run("killed", kill_at=15)  # dies after the checkpoint of step 12, with steps 12-14 done and lost
    resumed = run("killed")
    for a, b in zip(straight.state_dict().values(), resumed.state_dict().values()):
        assert torch.equal(a, b)  # the EMA weights too: same batches, same optimiser state
    assert torch.load(tmp_path / "killed" / "toy.ckpt", weights_only=True)["step"] == 25
    assert [r["step"] for r in read_curve(tmp_path / "killed", "toy")] == [0, 10, 20]  # no step twice
    limit_training_time(0.0)  # a trainer past its time returns what it has and says how far it got
    try:
        run("limited")
    finally:
        limit_training_time(None)
    assert read_steps(tmp_path / "limited", "toy") == {"steps_done": 0, "steps": 25}
    assert torch.equal(run("limited").weight, straight.weight)  # resumed without a limit: the full run


def test_learning_rate_warms_up_then_decays_to_a_tenth():
    settings = TrainingSettings(steps=100, lr=1.0, warmup=10)
    assert learning_rate(0, settings) == pytest.approx(0.1)
    assert learning_rate(10, settings) == pytest.approx(1.0)
    assert learning_rate(100, settings) == pytest.approx(0.1)


def test_degradations_blur_wash_out_and_saturate():
    grey = torch.full((1, 3, 8, 8), 0.3)
    assert torch.allclose(degrade(grey, 0), grey, atol=1e-6)  # a blur keeps a flat image
    assert torch.allclose(degrade(grey, 1), torch.full_like(grey, 0.5 + 0.4 * (0.3 - 0.5)))
    assert torch.allclose(degrade(grey, 2), grey)  # no colour to saturate
    red = torch.tensor([0.6, 0.3, 0.3])[None, :, None, None].expand(1, 3, 2, 2)
    assert torch.allclose(degrade(red, 2)[0, :, 0, 0], torch.tensor([0.9, 0.15, 0.15]))


def test_the_rendered_set_marks_degraded_examples_in_their_prompts():
    data = render_set(["a red box", "a blue ball"], draws=1, views=6, resolution=24, seed=0, degrade_prob=0.5, progress=False)
    assert data.images.shape == (12, 3, 24, 24) and data.images.dtype == torch.uint8
    assert data.caption_index.tolist() == [0] * 6 + [1] * 6
    degraded = [p for p in data.prompts if p.endswith(("blurry", "dull", "oversaturation"))]
    assert 0 < len(degraded) < 12
    assert all(p.startswith(("a red box, ", "a blue ball, ")) for p in data.prompts)


def test_retrieval_is_size_blind_only_for_size_twins():
    captions = ["a small red box", "a big red box", "a blue ball"]
    assert without_sizes("a small red box next to a big blue ball") == "a red box next to a blue ball"
    similarity = torch.tensor([[0.5, 0.9, 0.1],   # a small red box that looks big: a strict miss, a size-blind hit
                               [0.2, 0.8, 0.1],
                               [0.1, 0.9, 0.3]])  # a blue ball closer to a red box: a miss either way
    strict, blind = retrieval(similarity, captions)
    assert strict.tolist() == [False, True, False]
    assert blind.tolist() == [True, True, False]


@pytest.mark.slow
def test_the_built_models_load_through_the_pipeline_loaders(built):
    from segmentdreamer.evaluate.clip_score import ClipScorer
    from segmentdreamer.prior import DiffusionPrior

    settings, out, work = built
    prior = DiffusionPrior.from_pretrained(out / "sd")
    latents = prior.encode(torch.rand(1, 3, 32, 32))
    assert latents.shape == (1, 4, 16, 16)  # the tiny VAE downsamples 2x (two levels): read from it, not SD's 8x
    assert prior.decode(latents).shape == (1, 3, 32, 32)
    assert prior.prompt_embeddings("a red box").front.shape == (77, settings.clip.text_width)
    scorer = ClipScorer.from_pretrained(out / "clip")
    assert scorer.score(torch.rand(2, 3, 32, 32), "a red box").shape == (2,)
    pointe = PointE.from_folder(out / "pointe", out / "pointe" / "clip.pt")
    assert pointe.base.config.width == 16 and pointe.embed_text(["a red box"]).shape == (1, settings.clip.projection)


@pytest.mark.slow
def test_the_build_records_every_stage_and_fails_on_a_gate_not_met(built, tmp_path):
    settings, out, work = built
    gates = json.loads((out / "gates.json").read_text())
    assert all(gates["passed"].values())  # the tiny build's gates are set to pass
    assert gates["pointe_chamfer"]["held_in_truth_to_truth"] < gates["pointe_chamfer"]["held_in"]  # untrained
    manifest = json.loads((out / "MANIFEST.json").read_text())
    assert manifest["world_version"] == WORLD_VERSION and set(manifest["seconds_per_stage"]) == set(STAGES) - {"gates"}
    assert manifest["settings"]["data"]["resolution"] == 32 and manifest["gates"] == gates
    for name in ("loss_curves", "sd_samples", "pointe_samples"):
        assert (out / "figures" / f"{name}.png").stat().st_size > 1000
    for name in ("clip", "vae", "unet", "pointe_base", "pointe_upsample"):
        assert read_curve(work, name)[0]["step"] == 0
    for folder in ("sd", "clip", "pointe"):
        assert json.loads((out / folder / MODEL_MARKER).read_text()) == {"world_version": WORLD_VERSION}
    strict = dataclasses.replace(settings, gates=dataclasses.replace(settings.gates, vae_psnr=30.0))
    shutil.copytree(out, tmp_path / "weights")
    with pytest.raises(GateError, match=r"vae_psnr: [0-9.]+ dB < 30"):
        run_stage("gates", strict, tmp_path / "weights", work, torch.device("cpu"), progress=False)
    assert json.loads((tmp_path / "weights" / "gates.json").read_text())["passed"]["vae_psnr"] is False


@pytest.mark.slow
def test_the_pipeline_preflight_takes_the_mini_sd_and_still_refuses_other_models(built, tmp_path):
    from segmentdreamer import preflight

    _, out, _ = built
    assert preflight.check_key("sd", str(out / "sd")) == []
    shutil.copytree(out / "sd", tmp_path / "sd")
    (tmp_path / "sd" / MODEL_MARKER).unlink()
    assert "is not Stable Diffusion 2.1-base" in " ".join(preflight.check_key("sd", str(tmp_path / "sd")))
