"""What hostile users and clusters hand over (the third robustness round): each refused by name, nothing lost.

Numbered as in the issue: (2) a hand-edited run config, (3) a prior that returns NaN, (4) repeated seeds,
(5) a second workflow on a results folder in use, (6) damaged .ply files in every verb, (7) damaged checkpoints,
out-of-range numbers, bad known-answer specs, a slot folder that is a file, a mesh grid larger than memory,
(8) prompts with NEL, the demo's needs, a dry run on a read-only folder, absurd iteration counts. Item (1), the
multi-run jobs, is tests/test_workflow.py (it runs Snakemake).
"""

import dataclasses
import json
import logging
import os
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
import yaml

from segmentdreamer.cli import main
from segmentdreamer.config import ConfigError, DensifyConfig, TrainConfig, from_dict, load_config
from segmentdreamer.errors import PlyError
from segmentdreamer.losses import LOSSES
from segmentdreamer.plan.claim import hold_results_folder
from segmentdreamer.plan.experiment import load_experiment
from segmentdreamer.plan.layout import RUN_FILES
from segmentdreamer.plan.stamp import check_planned, planned_text
from segmentdreamer.preflight import check_key, needed_keys, writes_results
from segmentdreamer.prompts import PromptListError, read_prompt_list
from segmentdreamer.scene.gaussians import from_points, load_ply, save_ply, sphere_points
from segmentdreamer.training.divergence import TrainingDiverged
from segmentdreamer.training.trainer import CHECKPOINT, Trainer

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture
def config(tiny_models) -> TrainConfig:
    cfg = TrainConfig(prompt="a corgi", iterations=4, views=1, resolution=32, sphere_points=300, checkpoint_every=2,
                      log_every=2, device="cpu", densify=DensifyConfig(start=100))
    cfg.models.sd = str(tiny_models / "sd")
    return cfg


@pytest.fixture(scope="module")
def good_ply(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("ply") / "gaussians.ply"
    save_ply(from_points(sphere_points(200, generator=torch.Generator().manual_seed(0))), path)
    return path


# -- (2) a run config edited by hand is refused, naming the file ---------------------------------------------------
def test_a_sealed_run_config_reads_back_and_any_edit_is_refused(tmp_path):
    settings = {"prompt": "a café ☕", "method": "sds", "iterations": 6, "loss": {"guidance_scale": 7.5}}
    path = tmp_path / "config.yaml"
    path.write_text(planned_text(settings), encoding="utf-8")
    check_planned(path)
    assert yaml.safe_load(path.read_text(encoding="utf-8")) == settings
    path.write_text(path.read_text(encoding="utf-8").replace("iterations: 6", "iterations: 60"), encoding="utf-8")
    with pytest.raises(ConfigError, match=rf"{path}: edited after the workflow planned it"):
        check_planned(path)
    path.write_text("prompt: a corgi\n", encoding="utf-8")
    with pytest.raises(ConfigError, match=rf"{path}: not written by the workflow"):
        check_planned(path)


def test_train_planned_refuses_an_edited_run_config_and_writes_nothing(config, tmp_path, caplog):
    path = tmp_path / "config.yaml"
    path.write_text(planned_text(dataclasses.asdict(config) | {"loss": {}}).replace("views: 1", "views: 2"), encoding="utf-8")
    with caplog.at_level(logging.ERROR):
        assert main(["train", "--config", str(path), "--out", str(tmp_path / "run"), "--planned"]) == 2
    assert f"{path}: edited after the workflow planned it" in caplog.text
    assert not (tmp_path / "run").exists()


# -- (3) a prior that returns NaN never yields a finished run ---------------------------------------------------------
class NaNPrior:
    """The tiny prior, except that every noise prediction is NaN (what a broken or overflowing prior returns)."""

    def __init__(self, inner):
        self.inner = inner

    def predict_noise(self, x, t, embedding):
        return torch.full_like(self.inner.predict_noise(x, t, embedding), float("nan"))

    def __getattr__(self, name):
        return getattr(self.inner, name)


@pytest.mark.parametrize("method", sorted(LOSSES))
def test_a_prior_returning_nan_fails_the_run_instead_of_training_on_zeros(config, tiny_prior, tmp_path, method):
    config = dataclasses.replace(config, method=method, loss=None)
    with pytest.raises(TrainingDiverged, match="non-finite loss at iteration 0"):
        Trainer(config, tmp_path / "stop", prior=NaNPrior(tiny_prior)).run()
    assert not (tmp_path / "stop" / RUN_FILES["finished"]).exists()
    skip = dataclasses.replace(config, divergence=dataclasses.replace(config.divergence, on_nan="skip"))
    with pytest.raises(TrainingDiverged, match=r"4 of 4 iterations had a non-finite loss and were skipped"):
        Trainer(skip, tmp_path / "skip", prior=NaNPrior(tiny_prior)).run()
    assert not (tmp_path / "skip" / RUN_FILES["finished"]).exists()


def test_the_hidden_nan_leaves_the_official_gradient_unchanged(tiny_prior):
    """finite_gradient: nan_to_num'd gradient as the official code has it, plus a NaN only in the loss value."""
    from segmentdreamer.losses.common import finite_gradient, inject_gradient

    raw = torch.tensor([[1.0, float("nan")], [3.0, -2.0]], dtype=torch.float64)
    grad, hidden = finite_gradient(raw)
    assert torch.equal(grad, torch.nan_to_num(raw)) and torch.isnan(hidden)
    z0 = torch.zeros(2, 2, dtype=torch.float64, requires_grad=True)
    (inject_gradient(z0, grad) + hidden).backward()
    assert torch.equal(z0.grad, grad)
    assert torch.isnan(finite_gradient(torch.tensor([float("inf")]))[1])
    assert float(finite_gradient(torch.ones(3))[1]) == 0.0


# -- (4) repeated seeds ------------------------------------------------------------------------------------------
def test_repeated_seeds_are_refused_naming_the_key():
    config = yaml.safe_load((ROOT / "workflow" / "smoke.yaml").read_text(encoding="utf-8"))
    config["seeds"] = [0, 1, 0]
    with pytest.raises(ConfigError, match=r"seeds: 0 appears more than once"):
        load_experiment(config, ROOT)
    schema = yaml.safe_load((ROOT / "workflow" / "schemas" / "config.schema.yaml").read_text(encoding="utf-8"))
    assert schema["properties"]["seeds"]["uniqueItems"] is True  # snakemake's validate() says it first, naming seeds


# -- (5) one running workflow per results folder ------------------------------------------------------------------
def test_a_second_workflow_on_a_results_folder_in_use_stops_naming_the_first(tmp_path):
    import subprocess

    results = tmp_path / "results"
    holder = subprocess.Popen([sys.executable, "-c", "import sys, time; from segmentdreamer.plan.claim import "
                               "hold_results_folder; hold_results_folder(sys.argv[1]); print('held', flush=True); "
                               "time.sleep(60)", str(results)], stdout=subprocess.PIPE, text=True, cwd=tmp_path)
    try:
        assert holder.stdout.readline().strip() == "held"
        with pytest.raises(ConfigError, match=rf"{results} is in use by a running workflow \(snakemake pid {holder.pid} "):
            hold_results_folder(results)
    finally:
        holder.kill()
        holder.wait()
    hold_results_folder(results)  # the lock died with its process (kill -9 included)


def test_dry_runs_and_reports_write_nothing_into_the_results_folder():
    assert writes_results(["--cores", "1"]) and writes_results(["table1", "--cores", "2"])
    assert not writes_results(["-n"]) and not writes_results(["--dry-run", "table1"])
    assert not writes_results(["--report", "r.html"]) and not writes_results(["--unlock"])


# -- (6) damaged .ply files, in the loader and every verb that reads one -------------------------------------------
def damaged_plys(good: Path, folder: Path) -> dict[str, tuple[Path, str]]:
    from plyfile import PlyData, PlyElement

    data = PlyData.read(str(good))["vertex"].data
    nan = data.copy()
    nan["x"][3] = np.nan
    inf = data.copy()
    inf["opacity"][0] = np.inf
    files = {"nan": (nan, "non-finite values .* in x"), "inf": (inf, "non-finite values .* in opacity"),
             "empty": (data[:0], r"holds no Gaussian \(0 vertices\)")}
    paths = {}
    for name, (array, message) in files.items():
        path = folder / f"{name}.ply"
        PlyData([PlyElement.describe(array, "vertex")]).write(str(path))
        paths[name] = (path, message)
    (folder / "truncated.ply").write_bytes(good.read_bytes()[: good.stat().st_size // 2])
    (folder / "text.ply").write_bytes(b"\xff\xfe not a ply at all")
    (folder / "absent.ply").unlink(missing_ok=True)
    paths |= {"truncated": (folder / "truncated.ply", "cannot read it as a .ply"),
              "text": (folder / "text.ply", "cannot read it as a .ply"),
              "absent": (folder / "absent.ply", "cannot read it as a .ply")}
    return paths


def test_load_ply_names_the_file_and_what_is_wrong(good_ply, tmp_path):
    assert load_ply(good_ply)["means"].shape == (200, 3)
    for path, message in damaged_plys(good_ply, tmp_path).values():
        with pytest.raises(PlyError, match=rf"{path}: {message}"):
            load_ply(path)


@pytest.mark.parametrize("verb", ["render", "export-splat", "export-mesh", "export-gpteval3d", "known-answer", "view"])
def test_every_verb_reading_a_ply_refuses_a_damaged_one_with_exit_code_2(verb, good_ply, tmp_path, caplog):
    run = tmp_path / "config.yaml"
    run.write_text("prompt: totem\nmodels: {sd: 'target-scene:totem'}\n", encoding="utf-8")
    out = tmp_path / "out"
    arguments = {"render": ["--out", str(out), "--device", "cpu"], "export-splat": ["--out", str(out) + ".splat"],
                 "export-mesh": ["--out", str(out) + ".glb"], "export-gpteval3d": ["--out", str(out), "--device", "cpu"],
                 "known-answer": ["--config", str(run), "--out", str(out) + ".json", "--views", "2"],
                 "view": ["--timeout", "1"]}[verb]
    for name in ("nan", "empty", "truncated"):
        path, message = damaged_plys(good_ply, tmp_path)[name]
        caplog.clear()
        command = [verb, str(path), *arguments] if verb == "view" else [verb, "--ply", str(path), *arguments]
        with caplog.at_level(logging.ERROR):
            assert main(command) == 2, (verb, name)
        assert str(path) in caplog.text and "Traceback" not in caplog.text, caplog.text
        assert not any(out.parent.glob("out*")), (verb, name)  # nothing written


# -- (7) damaged checkpoints, numbers out of range, known-answer specs, slot folders, mesh memory ----------------------
@pytest.mark.parametrize("damage", ["empty", "truncated", "not a checkpoint"])
def test_an_unreadable_checkpoint_is_set_aside_and_the_run_starts_over(config, tiny_prior, tmp_path, damage, caplog):
    Trainer(config, tmp_path, prior=tiny_prior).run(stop_after=2)
    path = tmp_path / CHECKPOINT
    content = path.read_bytes()
    if damage == "not a checkpoint":
        torch.save({"step": 2}, path)  # readable, but not what the trainer wrote
    else:
        path.write_bytes(b"" if damage == "empty" else content[: len(content) // 3])
    with caplog.at_level(logging.WARNING):
        trainer = Trainer(config, tmp_path, prior=tiny_prior)
        trainer.run(resume=True)
    assert "cannot be resumed" in caplog.text and str(path) in caplog.text
    assert (tmp_path / (CHECKPOINT + ".unreadable")).is_file()
    steps = [json.loads(line)["step"] for line in (tmp_path / RUN_FILES["train_log"]).read_text().splitlines()]
    assert steps[-4:] == [0, 1, 2, 3] and (tmp_path / RUN_FILES["finished"]).is_file()


@pytest.mark.parametrize(("command", "message"), [
    (["render", "--ply", "x.ply", "--out", "o", "--views", "0"], "--views: 0 is below its minimum 1"),
    (["render", "--ply", "x.ply", "--out", "o", "--resolution", "0"], "--resolution: 0 is below its minimum 8"),
    (["render", "--ply", "x.ply", "--out", "o", "--elevation", "nan"], "--elevation: 'nan' is not a finite number"),
    (["view", "x.ply", "--port", "70000"], "--port: 70000 is above its maximum 65535"),
    (["known-answer", "--config", "c", "--ply", "x.ply", "--out", "o", "--views", "0"], "--views: 0 is below its minimum 1"),
    (["export-mesh", "--ply", "x.ply", "--out", "o.glb", "--resolution", "2048"], "--resolution: 2048 is above its maximum 1024"),
    (["analytic-theorem1", "--out", "o", "--samples", "0"], "--samples: 0 is below its minimum 1"),
    (["analytic-theorem1", "--out", "o", "--timesteps", "-3"], "--timesteps: -3 is below its minimum 1"),
    (["analytic-losses", "--out", "o", "--seeds", "0"], "--seeds: 0 is below its minimum 1"),
    (["analytic-losses", "--out", "o", "--iterations", "-1"], "--iterations: -1 is below its minimum 1"),
    (["analytic-losses", "--out", "o", "--scene-iterations", "x"], "--scene-iterations: 'x' is not an integer"),
    (["init", "--prompts", "p", "--prompt-id", "a", "--out", "o", "--copies", "0"], "--copies: 0 is below its minimum 1"),
    (["ref-images", "--prompts", "p", "--count", "0", "--out", "o"], "--count: 0 is below its minimum 1"),
    (["fid", "--reference", "r", "--generated", "g", "--out", "o", "--batch", "0"], "--batch: 0 is below its minimum 1"),
])
def test_numeric_arguments_out_of_range_stop_before_any_work(command, message, capsys):
    with pytest.raises(SystemExit) as stopped:
        main(command)
    assert stopped.value.code == 2 and message in capsys.readouterr().err


@pytest.mark.parametrize(("spec", "message"), [
    ("target-scene:", "expected target-scene:<scene>"),
    ("target-scene:totem;foo", "option 'foo' is not unconditional_std=<sigma>"),
    ("target-scene:totem;unconditional_std=abc", "unconditional_std='abc' is not a number"),
    ("target-scene:totem;unconditional_std=nan", "must be a finite number > 0, got nan"),
    ("target-scene:totem;unconditional_std=-1", "must be a finite number > 0, got -1"),
    ("target-scene:totem/", "expected target-scene:<scene>"),
    ("target-scene:tote", "unknown scene 'tote' (known: totem, crate)"),
])
def test_known_answer_specs_are_checked_by_the_preflight_that_dry_runs_use(spec, message):
    from segmentdreamer.prior import load_prior

    assert any(message in line for line in check_key("sd", spec)), check_key("sd", spec)
    with pytest.raises(ValueError, match=message.replace("(", r"\(").replace(")", r"\)")):
        load_prior(spec)
    assert check_key("sd", "target-scene:totem/crate;unconditional_std=0.5") == []


def test_a_slot_folder_that_is_a_file_is_named(tmp_path):
    from segmentdreamer.gpu_slots import try_claim

    (tmp_path / "slots").write_text("not a folder")
    with pytest.raises(ConfigError, match=rf"{tmp_path / 'slots'} must be a writable folder"):
        try_claim(["GPU-0"], 1, tmp_path / "slots")


def test_a_mesh_grid_larger_than_memory_is_refused_before_allocating(monkeypatch):
    from segmentdreamer.export import mesh

    monkeypatch.setattr(os, "sysconf", lambda name: {"SC_AVPHYS_PAGES": 1000, "SC_PAGE_SIZE": 4096}[name])
    with pytest.raises(ValueError, match=r"mesh resolution 1024: its grids need about 24.0 GiB .* 0.0 GiB are available"):
        mesh.check_grid_memory(1024)
    mesh.check_grid_memory(16)  # 96 kB fits in 4 MB


def test_workflow_numbers_have_maxima():
    schema = yaml.safe_load((ROOT / "workflow" / "schemas" / "config.schema.yaml").read_text(encoding="utf-8"))
    assert schema["properties"]["jobs_per_gpu"]["maximum"] == 64 and schema["properties"]["assets_per_job"]["maximum"] == 256
    with pytest.raises(ConfigError, match=r"iterations: .*10000000"):
        from_dict(TrainConfig, {"prompt": "x", "iterations": 10**20})


# -- (8) NEL in a prompt, the demo's needs ------------------------------------------------------------------------
def test_a_prompt_with_nel_reaches_the_run_record_unchanged(tmp_path):
    from segmentdreamer.config import load_config

    settings = {"prompt": "a fox\x85in a hat\u2028, café", "seed": 0}
    path = tmp_path / "config.yaml"
    path.write_text(planned_text(settings), encoding="utf-8")
    check_planned(path)
    assert load_config(path).prompt == settings["prompt"]


def test_a_known_answer_file_target_asks_for_no_scoring_weights():
    config = yaml.safe_load((ROOT / "workflow" / "demo.yaml").read_text(encoding="utf-8"))
    target = "results/demo/runs/demo/sctd/totem/seed0/known_answer.json"
    assert needed_keys(config, [target]) == ["sd"]
    assert "clip" in needed_keys({**config, "models": {"sd": "models/sd"}}, [target])  # a text prior: everything


def test_a_dry_run_writes_nothing_so_a_read_only_results_folder_plans(tmp_path):
    """The results-folder claim and lock are written only by a run that runs jobs (tests run as root in CI, where a
    read-only mode would not stop a write: the folder's absence after the dry run is the check)."""
    import subprocess

    snakemake = Path(sys.executable).parent / "snakemake"
    if not snakemake.exists():
        pytest.skip("snakemake is not installed beside this Python")
    results = tmp_path / "results"
    plan = subprocess.run([str(snakemake), "-n", "--configfile", "workflow/smoke.yaml", "--config",
                           f'pathvars={{"results": "{results}"}}'], cwd=ROOT, capture_output=True, text=True, timeout=600)
    assert plan.returncode == 0 and "Job stats" in plan.stdout, plan.stderr[-3000:]
    assert not results.exists()


def test_a_results_folder_that_cannot_be_locked_runs_with_a_warning(tmp_path, monkeypatch, caplog):
    """Some network filesystems refuse advisory locks (ENOLCK): the workflow still runs, and says it is unguarded."""
    import errno
    import fcntl

    from segmentdreamer.plan import claim

    def refuse(handle, operation):
        raise OSError(errno.ENOLCK, "No locks available")

    monkeypatch.setattr(fcntl, "flock", refuse)
    with caplog.at_level(logging.WARNING):
        claim.hold_results_folder(tmp_path / "nfs-results")
    assert "cannot be locked" in caplog.text and tmp_path / "nfs-results" not in claim._held


# -- bad run settings and prompt files (the first robustness round) ------------------------------------------------
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
