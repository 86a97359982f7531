"""The trainer on CPU with the tiny models (64x64, 2 views, 30 iterations): every loss, resume, failures."""

import dataclasses
import json

import pytest
import torch

from segmentdreamer.config import ConfigError, DensifyConfig, OptimConfig, TrainConfig, dump_config, load_config
from segmentdreamer.losses import LOSSES, LossOut, SCTDSettings
from segmentdreamer.scene.gaussians import load_ply
from segmentdreamer.training.trainer import CHECKPOINT, Trainer, TrainingDiverged


@pytest.fixture
def config(tiny_models) -> TrainConfig:
    cfg = TrainConfig(prompt='a "corgi" / wearing a hat; ünïcode', iterations=30, views=2, resolution=64, sphere_points=1500,
                      checkpoint_every=10, log_every=5, device="cpu")
    cfg.models.sd = str(tiny_models / "sd")
    # the recipe's schedule compressed into 30 iterations, with a threshold the tiny models' gradients reach
    cfg.densify = DensifyConfig(start=10, stop=25, every=5, grad_threshold=1e-6, reset_every=12, reset_until=25, prune_scale_after=15)
    return cfg


def read_log(out):
    return [json.loads(line) for line in (out / "train_log.jsonl").read_text().splitlines()]


@pytest.mark.parametrize("method", sorted(LOSSES))
def test_every_loss_trains(config, tiny_prior, tmp_path, method):
    config = dataclasses.replace(config, method=method, loss=None)
    trainer = Trainer(config, tmp_path, prior=tiny_prior)
    ply = trainer.run()
    log = read_log(tmp_path)
    assert [r["step"] for r in log] == list(range(30))
    assert all(torch.isfinite(torch.tensor([r["loss"], r["regularizer"]])).all() for r in log)
    counts = {r["num_gaussians"] for r in log}
    assert len(counts) > 1, "densification never changed the Gaussian count"
    assert any("cloned" in r for r in log) and any("opacity_reset" in r for r in log)
    loaded = load_ply(ply)
    for key, value in trainer.params.items():
        assert torch.equal(loaded[key].data, value.detach().cpu()), key
    assert load_config(tmp_path / "resolved_config.yaml") == config
    timing = json.loads((tmp_path / "timing.json").read_text())
    assert timing["iterations"] == 30 and timing["minutes"] > 0


def test_resume_is_bitwise_identical(config, tiny_prior, tmp_path):
    config.method = "sctd"
    whole = Trainer(config, tmp_path / "whole", prior=tiny_prior)
    whole.run()
    Trainer(config, tmp_path / "split", prior=tiny_prior).run(stop_after=19)
    assert torch.load(tmp_path / "split" / CHECKPOINT, weights_only=False)["step"] == 20
    resumed = Trainer(config, tmp_path / "split", prior=tiny_prior)
    resumed.run(resume=True)
    for key, value in whole.params.items():
        assert torch.equal(value, resumed.params[key]), key
    assert [r["loss"] for r in read_log(tmp_path / "whole")] == [r["loss"] for r in read_log(tmp_path / "split")]


def test_a_checkpoint_made_with_other_settings_is_not_resumed(config, tiny_prior, tmp_path):
    config.iterations = 12
    Trainer(config, tmp_path, prior=tiny_prior).run(stop_after=9)
    changed = dataclasses.replace(config, loss=SCTDSettings(guidance_scale=20.0))
    trainer = Trainer(changed, tmp_path, prior=tiny_prior)
    assert trainer.resume() is False and trainer.start_step == 0
    assert Trainer(config, tmp_path, prior=tiny_prior).resume() is True


def test_a_kill_while_writing_a_checkpoint_keeps_the_previous_one(config, tiny_prior, tmp_path, monkeypatch):
    trainer = Trainer(config, tmp_path, prior=tiny_prior)
    trainer.run(stop_after=9)

    def killed(obj, path, *args, **kwargs):
        with open(path, "wb") as handle:
            handle.write(b"half a checkpoint")
        raise KeyboardInterrupt("killed mid-write")

    monkeypatch.setattr(torch, "save", killed)
    with pytest.raises(KeyboardInterrupt):
        trainer.checkpoint(20)
    monkeypatch.undo()
    state = torch.load(tmp_path / CHECKPOINT, weights_only=False)
    assert state["step"] == 10
    again = Trainer(config, tmp_path, prior=tiny_prior)
    assert again.resume() and again.start_step == 10


def test_non_finite_loss_stops_with_a_clear_error(config, tiny_prior, tmp_path):
    trainer = Trainer(config, tmp_path, prior=tiny_prior)

    def broken(prior, batch):
        return LossOut(loss=(batch.latents * float("nan")).sum(), grad=None)

    trainer.loss = broken
    with pytest.raises(TrainingDiverged, match="iteration 0"):
        trainer.run()


@pytest.mark.parametrize(
    "change,message",
    [
        ({"method": "dreamfusion", "loss": None}, "method: unknown method"),
        ({"loss": {"segmentaton": "mono"}}, "loss.segmentaton"),
        ({"init": "/nonexistent/init.ply"}, "init:"),
        ({"device": "cuda:0"} if not torch.cuda.is_available() else {"device": "gpu"}, "device"),
        ({"prior_dtype": "fp8"}, "prior_dtype: 'fp8' is not one of"),
        ({"densify": DensifyConfig(stats="every_view")}, "densify.stats"),
        ({"resolution": 60}, "resolution: must be a multiple of 8"),
        ({"prompt": "  "}, "prompt: empty"),
        ({"method": "cds", "loss": None, "perp_neg": True}, r"perp_neg: Consistent3D \(CDS\) has no Perp-Neg"),
        ({"method": "sds"}, "loss: holds the settings of 'sctd' but method is 'sds'"),
        ({"method": "sds", "loss": None, "optim": dataclasses.replace(OptimConfig(), means_lr=(0.0, 0.0))}, r"optim.means_lr\[0\]: must be > 0"),
    ],
)
def test_bad_settings_fail_naming_the_key(config, tiny_prior, tmp_path, change, message):
    with pytest.raises(ConfigError, match=message):
        Trainer(dataclasses.replace(config, **change), tmp_path, prior=tiny_prior)


def test_yaml_errors_name_the_key(tmp_path):
    (tmp_path / "a.yaml").write_text("densify:\n  grad_treshold: 1e-4\n")
    with pytest.raises(ConfigError, match=r"densify\.grad_treshold: unknown key"):
        load_config(tmp_path / "a.yaml")
    (tmp_path / "b.yaml").write_text("iterations: many\n")
    with pytest.raises(ConfigError, match="iterations: expected an integer, got 'many'"):
        load_config(tmp_path / "b.yaml")
    (tmp_path / "c.yaml").write_text("cameras: {radius_range: [1, 2, 3]}\n")
    with pytest.raises(ConfigError, match=r"cameras\.radius_range"):
        load_config(tmp_path / "c.yaml")
    (tmp_path / "d.yaml").write_text("densify: {grad_threshold: 1e-4}\nprompt: 'x: \"y\"'\n")
    loaded = load_config(tmp_path / "d.yaml")
    assert loaded.densify.grad_threshold == 1e-4 and loaded.prompt == 'x: "y"'


def test_cli_train_and_render(config, tmp_path):
    from segmentdreamer.cli import main

    config.iterations = 3
    dump_config(config, tmp_path / "run.yaml")
    assert main(["train", "--config", str(tmp_path / "run.yaml"), "--out", str(tmp_path / "run"), "--set", "method=ism"]) == 0
    assert load_config(tmp_path / "run" / "resolved_config.yaml").method == "ism"
    assert main(["render", "--ply", str(tmp_path / "run" / "gaussians.ply"), "--out", str(tmp_path / "views"),
                 "--views", "4", "--resolution", "32", "--device", "cpu"]) == 0
    import imageio.v3 as iio

    frames = sorted((tmp_path / "views").glob("view_*.png"))
    assert len(frames) == 4 and (tmp_path / "views" / "turntable.mp4").stat().st_size > 0
    assert (iio.imread(frames[0])[0, 0] == 255).all()  # white background in the corner
    assert main(["train", "--config", str(tmp_path / "run.yaml"), "--out", str(tmp_path / "x"), "--set", "nope=1"]) == 2
