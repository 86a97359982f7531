"""What users and clusters do: diverged runs, retries, bad settings, damaged weights, shared or full disks.

Numbered as in the robustness issue: (1) a diverged run never becomes a result, (2) gsplat builds once,
(3) the default profile loads, (4) bad settings fail naming the key, (5) damaged weights are named,
(6) files: emptied render folders, a full disk, two writers of one folder.
"""

import dataclasses
import json
import math
import re
import shutil

import numpy as np
import pytest
import torch
import yaml

from segmentdreamer.config import ConfigError, DensifyConfig, TrainConfig, from_dict, load_config
from segmentdreamer.divergence import DIVERGED, TrainingDiverged
from segmentdreamer.losses import LossInput, LossOut, loss_class
from segmentdreamer.plan.layout import RUN_FILES
from segmentdreamer.prompts import PromptListError, read_prompt_list
from segmentdreamer.train import CHECKPOINT, Trainer


@pytest.fixture
def config(tiny_models) -> TrainConfig:
    cfg = TrainConfig(prompt="a corgi", iterations=6, views=2, resolution=32, sphere_points=400, checkpoint_every=2, log_every=10,
                      device="cpu", densify=DensifyConfig(start=100))
    cfg.models.sd = str(tiny_models / "sd")
    return cfg


# -- (1) a diverged run never becomes a result ---------------------------------------------------------------------
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


# -- (2) gsplat compiles once, torch.compile's cache is shared; (3) the default profile loads -------------------------------------------------------
def test_every_gpu_job_uses_the_one_extension_folder_and_the_default_profile_loads():
    from tests.test_workflow import snakemake

    result = snakemake("-n", "--configfile", "workflow/smoke.yaml", "--config", 'pathvars={"results": "results/dryrun-robust"}')
    assert result.returncode == 0, result.stdout + result.stderr  # no --cores: the default profile gives them
    assert "profiles/default" in result.stdout + result.stderr
    folders = re.findall(r"TORCH_EXTENSIONS_DIR=(\S+) segmentdreamer (train|render|build-extensions)", result.stdout)
    jobs = {job for _, job in folders}
    assert jobs == {"train", "render", "build-extensions"}
    assert {folder for folder, _ in folders} == {"results/dryrun-robust/torch_extensions"}
    # torch.compile's cache lives under <results> too, so later jobs (and other nodes) reuse the first one's graphs
    compiling = re.findall(r"TORCHINDUCTOR_CACHE_DIR=(\S+) TORCH_EXTENSIONS_DIR=\S+ segmentdreamer (train|render)", result.stdout)
    assert {job for _, job in compiling} == {"train", "render"}
    assert {folder for folder, _ in compiling} == {"results/dryrun-robust/cache/inductor"}


# -- (4) bad settings ---------------------------------------------------------------------------------------------
BAD_SETTINGS = [
    ({"loss": {"guidance_scale": -7.5}}, r"loss.guidance_scale: must be >= 0"),
    ({"loss": {"guidance_scale": "high"}}, r"loss.guidance_scale: expected a number, got 'high'"),
    ({"loss": {"t_tau": 1500}}, r"loss.t_tau: must be <= 999"),
    ({"loss": {"t_tau": -1}}, r"loss.t_tau: must be >= 0"),
    ({"loss": {"num_segments": 2.5}}, r"loss.num_segments: expected an integer, got 2.5"),
    ({"loss": {"segmentation": "mono", "num_segments": 1}}, r"loss.num_segments: 'mono' segmentation needs num_segments >= 2"),
    ({"method": "sds", "loss": {"t_max": 5000}}, r"loss.t_max: must be <= 999"),
    ({"method": "sds", "loss": {"t_min": 500, "t_max": 100}}, r"loss.t_min: must not exceed t_max"),
    ({"method": "cds", "loss": {"t_gap_min": 300, "t_gap_max": 100}}, r"loss.t_gap_min: must be below t_gap_max"),
    ({"augment": {"disparity_prob": 2}}, r"augment.disparity_prob: must be <= 1"),
    ({"optim": {"means_lr": [0, 0]}}, r"optim.means_lr\[0\]: must be > 0"),
    ({"optim": {"scale_lr": [-1e-3, 1e-3]}}, r"optim.scale_lr\[0\]: must be > 0"),
    ({"optim": {"opacity_lr": float("nan")}}, r"optim.opacity_lr: expected a finite number"),
    ({"optim": {"rotation_lr": [float("inf"), 1e-4]}}, r"optim.rotation_lr\[0\]: expected a finite number"),
    ({"cameras": {"radius_range": [5.5, 5.2]}}, r"cameras.radius_range: the first value must not exceed the second"),
    ({"cameras": {"fov_range": [0.3, 4.0]}}, r"cameras.fov_range\[1\]: must be < 3.14"),
    ({"densify": {"stats": "every_view"}}, r"densify.stats: 'every_view' is not one of last_view, all_views"),
    ({"densify": {"start": 3000, "stop": 100}}, r"densify.start: must not exceed densify.stop"),
    ({"seed": -1}, r"seed: must be >= 0"),
    ({"seed": 10**20}, r"seed: must be <= 4.29"),
    ({"views": 0}, r"views: must be >= 1"),
    ({"prior_dtype": "fp8"}, r"prior_dtype: 'fp8' is not one of auto, fp16, bf16, fp32"),
    ({"device": "gpu0"}, r"device: 'gpu0' is not one of auto, cpu, cuda, cuda:N"),
    ({"divergence": {"on_nan": "ignore"}}, r"divergence.on_nan: 'ignore' is not one of stop, skip"),
    ({"method": "cds", "perp_neg": True}, r"perp_neg: Consistent3D \(CDS\) has no Perp-Neg form"),
    ({"perp_neg": "yes"}, r"perp_neg: expected a boolean, got 'yes'"),
    ({"iterations": True}, r"iterations: expected an integer, got True"),
]


@pytest.mark.parametrize(("settings", "message"), BAD_SETTINGS)
def test_bad_settings_fail_naming_the_key(tmp_path, settings, message):
    with pytest.raises(ConfigError, match=message):
        from_dict(TrainConfig, {"prompt": "a corgi", **settings})
    (tmp_path / "run.yaml").write_text(yaml.safe_dump({"prompt": "a corgi", **settings}), encoding="utf-8")
    with pytest.raises(ConfigError, match=rf"run.yaml: {message}"):
        load_config(tmp_path / "run.yaml")


BAD_PROMPT_FILES = [
    ("prompt_id\tprompt\tinit_prompt\tseed\na\ta cat\ta cat.\t-3\n", r"p.tsv:2: seed must be an integer in \[0, 4294967295\]"),
    ("prompt_id\tprompt\tinit_prompt\tseed\na\ta cat\ta cat.\t12345678901234567890\n", r"p.tsv:2: seed must be an integer"),
    ("prompt_id\tprompt\tinit_prompt\n", r"p.tsv:1: only a header, no prompts"),
    ("prompt_id\tprompt\tinit_prompt\na\ta cat\n", r"p.tsv:2: expected 3 tab-separated columns, got 2"),
    ("prompt_id\tprompt\tinit_prompt\na\t   \ta cat.\n", r"p.tsv:2: prompt and init_prompt must not be empty"),
]


@pytest.mark.parametrize(("text", "message"), BAD_PROMPT_FILES)
def test_bad_prompt_files_name_the_line(tmp_path, text, message):
    (tmp_path / "p.tsv").write_text(text, encoding="utf-8")
    with pytest.raises(PromptListError, match=message):
        read_prompt_list(tmp_path / "p.tsv")


def test_prompts_are_verbatim_spaces_and_unicode_line_separators_included(tmp_path):
    prompt = "  a corgi\u2028on a\x85 sofa, \u00e9t\u00e9  "
    (tmp_path / "p.tsv").write_text(f"prompt_id\tprompt\tinit_prompt\r\na\t{prompt}\ta dog.\r\n", encoding="utf-8")
    entry = read_prompt_list(tmp_path / "p.tsv")["a"]
    assert entry.prompt == prompt and entry.init_prompt == "a dog."


# -- (5) damaged weights ------------------------------------------------------------------------------------------
@pytest.mark.parametrize("component", ["unet", "text_encoder"])
@pytest.mark.parametrize("damage", ["empty", "truncated", "garbage"])
def test_damaged_safetensors_are_named_with_the_key(tiny_models, tmp_path, component, damage):
    from segmentdreamer.models import CorruptWeightsError
    from segmentdreamer.prior import DiffusionPrior

    sd = tmp_path / "sd"
    shutil.copytree(tiny_models / "sd", sd)
    weights = sorted((sd / component).glob("*.safetensors"))[0]
    data = weights.read_bytes()
    weights.write_bytes({"empty": b"", "truncated": data[: len(data) // 2], "garbage": b"<html>404 Not Found</html>" * 50}[damage])
    words = {"empty": "is empty", "truncated": "is truncated", "garbage": "is not a safetensors file"}[damage]
    with pytest.raises(CorruptWeightsError, match=rf"models.sd: {re.escape(str(weights))} {words}"):
        DiffusionPrior.from_pretrained(sd, dtype=torch.float32)


def test_a_truncated_pointe_checkpoint_is_named_with_the_key(tiny_models, tmp_path):
    from segmentdreamer.init import PointE
    from segmentdreamer.models import CorruptWeightsError

    folder = tmp_path / "pointe"
    shutil.copytree(tiny_models / "pointe", folder)
    base = folder / "base_40m_textvec.pt"
    base.write_bytes(base.read_bytes()[:100])
    with pytest.raises(CorruptWeightsError, match=rf"models.pointe: {re.escape(str(base))} cannot be read"):
        PointE.from_folder(folder, tiny_models / "pointe" / "clip.pt")


# -- (6) files ------------------------------------------------------------------------------------------------------
def test_a_full_disk_is_reported_as_such(config, tiny_prior, tmp_path, monkeypatch):
    trainer = Trainer(config, tmp_path, prior=tiny_prior)
    trainer.run(stop_after=1)

    def disk_full(obj, path, *args, **kwargs):
        raise RuntimeError("[enforce fail at inline_container.cc:672] . unexpected pos 64 vs 0")

    monkeypatch.setattr(torch, "save", disk_full)
    with pytest.raises(OSError, match=r"cannot write the checkpoint .*last.pt: \d+ MB free on the disk holding"):
        trainer.checkpoint(4)
    monkeypatch.undo()
    assert torch.load(tmp_path / CHECKPOINT, weights_only=False)["step"] == 2  # the previous one is intact


def test_two_writers_of_one_run_folder_are_refused(config, tiny_prior, tmp_path):
    from segmentdreamer.atomic import exclusive_lock

    with exclusive_lock(tmp_path / ".lock"):
        with pytest.raises(RuntimeError, match="is being trained by pid"):
            Trainer(config, tmp_path, prior=tiny_prior).run()


def test_two_checkouts_do_not_share_a_results_folder(tmp_path):
    from segmentdreamer.plan.claim import claim_results_folder

    first, second = tmp_path / "checkout-a", tmp_path / "checkout-b"
    first.mkdir(), second.mkdir()
    claim_results_folder(tmp_path / "results", first)
    claim_results_folder(tmp_path / "results", first)  # the owner may come back
    with pytest.raises(ConfigError, match=r"pathvars.results: .* belongs to the workflow in .*checkout-a"):
        claim_results_folder(tmp_path / "results", second)
    shutil.rmtree(first)  # a checkout that is gone for good hands the folder over
    claim_results_folder(tmp_path / "results", second)


def test_resolved_outputs_are_written_atomically_and_finished_last(config, tiny_prior, tmp_path):
    Trainer(config, tmp_path, prior=tiny_prior).run()
    names = {p.name for p in tmp_path.iterdir()}
    assert {"gaussians.ply", "timing.json", "finished.json"} <= names and not any(".tmp" in n for n in names)
    finished = tmp_path / RUN_FILES["finished"]
    assert finished.stat().st_mtime_ns >= (tmp_path / RUN_FILES["ply"]).stat().st_mtime_ns
    assert json.loads(finished.read_text())["finite"] is True
    assert np.isfinite(json.loads((tmp_path / RUN_FILES["timing"]).read_text())["minutes"])
