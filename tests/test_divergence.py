"""A diverged run never becomes a result: non-finite losses, parameters and checkpoints stop it, keep its last finite
state and are never resumed; a blank or non-finite asset is never rendered or scored."""

import dataclasses
import json
import math

import pytest
import torch

from segmentdreamer.config import TrainConfig
from segmentdreamer.losses import LossInput, LossOut, loss_class
from segmentdreamer.plan.layout import RUN_FILES
from segmentdreamer.training.divergence import DIVERGED, TrainingDiverged
from segmentdreamer.training.trainer import CHECKPOINT, Trainer


@pytest.fixture
def config(tiny_train_config) -> TrainConfig:
    return tiny_train_config


@pytest.mark.parametrize(("optim", "tensor"), [({"means_lr": (1e30, 1e30)}, "means"), ({"scale_lr": (1e30, 1e30)}, "is not finite")])
def test_a_diverging_run_fails_keeps_its_last_finite_state_and_a_retry_does_not_resume_it(config, tiny_prior, tmp_path, optim, tensor):
    config = dataclasses.replace(config, optim=dataclasses.replace(config.optim, **optim))
    with pytest.raises(TrainingDiverged, match=rf"after iteration \d+: .*{tensor}") as caught:
        Trainer(config, tmp_path, prior=tiny_prior).run()
    assert not (tmp_path / RUN_FILES["ply"]).exists() and not (tmp_path / RUN_FILES["finished"]).exists()
    if (tmp_path / CHECKPOINT).exists():  # whatever checkpoint is on disk holds finite parameters
        state = torch.load(tmp_path / CHECKPOINT, weights_only=False)
        assert all(torch.isfinite(v).all() and v.abs().max() < 1e3 for k, v in state["params"].items() if k == "means")
        assert str(state["step"]) in str(caught.value)
    marker = json.loads((tmp_path / DIVERGED).read_text())
    assert marker["message"] == str(caught.value)
    with pytest.raises(TrainingDiverged, match="already diverged with these settings"):  # the retry fails at once
        Trainer(config, tmp_path, prior=tiny_prior).run(resume=True)
    fixed = dataclasses.replace(config, optim=type(config.optim)())  # new settings: the marker is forgotten
    Trainer(fixed, tmp_path, prior=tiny_prior).run(resume=True)
    assert (tmp_path / RUN_FILES["finished"]).is_file() and not (tmp_path / DIVERGED).exists()


class NaNAtStep3:
    """The run's loss, except that iteration 3 returns NaN (state_dict etc. pass through)."""

    def __init__(self, loss):
        self.inner = loss

    def __call__(self, prior, batch):
        out = self.inner(prior, batch)
        return LossOut(loss=out.loss * float("nan"), grad=None) if batch.step == 3 else out

    def __getattr__(self, name):
        return getattr(self.inner, name)


def test_a_non_finite_loss_stops_or_is_skipped(config, tiny_prior, tmp_path):
    stopping = Trainer(config, tmp_path / "stop", prior=tiny_prior)
    stopping.loss = NaNAtStep3(stopping.loss)
    with pytest.raises(TrainingDiverged, match="non-finite loss at iteration 3"):
        stopping.run()
    skip = dataclasses.replace(config, divergence=dataclasses.replace(config.divergence, on_nan="skip", max_skipped_fraction=0.2))
    skipping = Trainer(skip, tmp_path / "skip", prior=tiny_prior)
    skipping.loss = NaNAtStep3(skipping.loss)
    skipping.run()
    log = [json.loads(line) for line in (tmp_path / "skip" / RUN_FILES["train_log"]).read_text().splitlines()]
    assert [r.get("skipped", 0) for r in log] == [0, 0, 0, 1, 0, 0]
    assert json.loads((tmp_path / "skip" / RUN_FILES["finished"]).read_text())["skipped_iterations"] == 1
    assert all(torch.isfinite(p).all() for p in skipping.params.values())


def test_gcs_does_not_hide_a_non_finite_loss(tiny_prior):
    from segmentdreamer.prior.conditioning import view_conditioning

    cond = view_conditioning(tiny_prior.prompt_embeddings("a corgi"), torch.tensor([0.0]))
    z0 = torch.full((1, 4, 4, 4), float("nan"), requires_grad=True)
    images = torch.rand(1, 3, 32, 32, requires_grad=True)
    out = loss_class("gcs")(seed=0)(tiny_prior, LossInput(latents=z0, cond=cond, step=2000, total_steps=5000, images=images))
    assert not math.isfinite(float(out.loss))


def test_the_log_is_flushed_before_every_checkpoint(config, tiny_prior, tmp_path):
    Trainer(config, tmp_path, prior=tiny_prior).run(stop_after=3)  # log_every 10, checkpoint_every 2
    steps = [json.loads(line)["step"] for line in (tmp_path / RUN_FILES["train_log"]).read_text().splitlines()]
    assert steps == [0, 1, 2, 3] and torch.load(tmp_path / CHECKPOINT, weights_only=False)["step"] == 4


def test_a_checkpoint_with_a_diverged_state_is_not_resumed(config, tiny_prior, tmp_path):
    Trainer(config, tmp_path, prior=tiny_prior).run(stop_after=1)
    state = torch.load(tmp_path / CHECKPOINT, weights_only=False)
    state["params"]["means"][0, 0] = float("nan")
    torch.save(state, tmp_path / CHECKPOINT)
    with pytest.raises(TrainingDiverged, match=r"holds a diverged state \(means is not finite"):
        Trainer(config, tmp_path, prior=tiny_prior).run(resume=True)


def test_a_blank_or_non_finite_asset_is_never_rendered_or_scored(tmp_path):
    from segmentdreamer.errors import PlyError
    from segmentdreamer.scene.gaussians import from_points, save_ply
    from segmentdreamer.scene.render_folder import view_paths
    from segmentdreamer.scene.turntable import BlankRenderError, render_ring

    params = from_points(torch.zeros(50, 3))
    save_ply(params, tmp_path / "ok.ply")
    paths = render_ring(tmp_path / "ok.ply", tmp_path / "views", views=3, resolution=32, video=None)
    assert view_paths(tmp_path / "views") == paths
    far = from_points(torch.full((50, 3), 200.0))  # behind the ring's cameras: nothing visible
    save_ply(far, tmp_path / "far.ply")
    with pytest.raises(BlankRenderError, match="every view of the ring is blank"):
        render_ring(tmp_path / "far.ply", tmp_path / "far_views", views=3, resolution=32, video=None)
    with pytest.raises(FileNotFoundError, match="complete.json"):
        view_paths(tmp_path / "far_views")
    params["means"].data[0, 0] = float("nan")
    save_ply(params, tmp_path / "nan.ply")
    with pytest.raises(PlyError, match=r"non-finite values \(NaN or inf\) in x"):
        render_ring(tmp_path / "nan.ply", tmp_path / "nan_views", views=3, resolution=32, video=None)
    (tmp_path / "views" / "view_001.png").unlink()  # an emptied folder does not count as rendered
    with pytest.raises(FileNotFoundError, match="2 view_\\*.png but the render wrote 3"):
        view_paths(tmp_path / "views")
