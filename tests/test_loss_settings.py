"""Typed loss settings: from a file, from --set and from the workflow, checked before any job; a method's traits
(Perp-Neg overrides, BEG default) come from its class, and the trainer names no method."""

import dataclasses
import re
from pathlib import Path

import pytest
import yaml

from segmentdreamer.config import ConfigError, TrainConfig, dump_config, load_config
from segmentdreamer.losses import LOSSES, loss_class

ROOT = Path(__file__).resolve().parents[1]


BAD_LOSS_SETTINGS = [
    ("approx", '"false"', r"loss.approx: expected a boolean, got 'false'"),
    ("num_segments", "5.0", r"loss.num_segments: expected an integer, got 5.0"),
    ("num_segments", "0", r"loss.num_segments: must be >= 1, got 0"),
    ("segmentation", "unifrom", r"loss.segmentation: 'unifrom' is not one of uniform, uniform_paper, mono, mono_paper"),
    ("t_tau", "1200", r"loss.t_tau: must be <= 999, got 1200"),
]


@pytest.mark.parametrize(("key", "value", "message"), BAD_LOSS_SETTINGS)
def test_bad_loss_settings_fail_from_a_file_and_from_set(tmp_path, key, value, message):
    (tmp_path / "run.yaml").write_text(f"prompt: a corgi\nmethod: sctd\nloss:\n  {key}: {value}\n", encoding="utf-8")
    with pytest.raises(ConfigError, match=message):
        load_config(tmp_path / "run.yaml")
    (tmp_path / "plain.yaml").write_text("prompt: a corgi\n", encoding="utf-8")
    with pytest.raises(ConfigError, match=message):
        load_config(tmp_path / "plain.yaml", overrides=[f"loss.{key}={value}"])


@pytest.mark.parametrize(("key", "value", "message"), BAD_LOSS_SETTINGS)
def test_bad_loss_settings_fail_before_any_job(tmp_path, key, value, message):
    """Through a config file (Snakemake's --config hands values inside mappings over as strings)."""
    from tests.test_workflow import snakemake

    config = yaml.safe_load((ROOT / "workflow" / "smoke.yaml").read_text(encoding="utf-8"))
    config["variants"]["sctd"] = {"method": "sctd", "loss": {key: yaml.safe_load(value)}}
    (tmp_path / "bad.yaml").write_text(yaml.safe_dump(config), encoding="utf-8")
    result = snakemake("-n", "--configfile", str(tmp_path / "bad.yaml"))
    assert result.returncode != 0 and "Job stats" not in result.stdout
    assert re.search(message, result.stdout + result.stderr), result.stdout + result.stderr


def test_set_switches_method_with_its_own_defaults(tmp_path):
    (tmp_path / "run.yaml").write_text("prompt: a corgi\nmethod: sctd\nloss: {guidance_scale: 7.5}\n", encoding="utf-8")
    config = load_config(tmp_path / "run.yaml", overrides=["method=gcs", "loss.guidance_scale=5"])
    assert type(config.loss).__name__ == "GCSSettings" and config.loss.guidance_scale == 5.0 and config.loss.weight_cp == 0.5


def test_perp_neg_overrides_and_beg_defaults_come_from_the_loss_class(tmp_path):
    from segmentdreamer.training.trainer import uses_beg

    assert TrainConfig(prompt="x", perp_neg=True).loss.noise_offset == 0.05  # SCTD's declared Perp-Neg offset
    assert TrainConfig(prompt="x", perp_neg=True, loss={"noise_offset": 0.2}).loss.noise_offset == 0.2  # explicit wins
    assert TrainConfig(prompt="x").loss.noise_offset == 0.1
    assert uses_beg(TrainConfig(prompt="x", method="gcs")) and not uses_beg(TrainConfig(prompt="x", method="sctd"))
    assert not uses_beg(TrainConfig(prompt="x", method="gcs", beg=False))
    dump_config(TrainConfig(prompt="x", perp_neg=True), tmp_path / "r.yaml")
    assert load_config(tmp_path / "r.yaml") == TrainConfig(prompt="x", perp_neg=True)  # the dump is the run


def test_the_trainer_names_no_method():
    for path in sorted((ROOT / "segmentdreamer" / "training").glob("*.py")):
        source = path.read_text(encoding="utf-8")
        for method in LOSSES:
            assert not re.search(rf"""["']{method}["']""", source), f"{path.name} tests for the method name {method!r}"


def test_every_loss_declares_the_contract():
    for method, settings in LOSSES.items():
        cls = loss_class(method)
        assert issubclass(cls, settings) and cls.Settings is settings and settings.method == method
        assert settings.display_name and settings.unet_calls
        loss = cls(seed=3)
        assert {"seed"} | {f.name for f in dataclasses.fields(settings)} == {f.name for f in dataclasses.fields(cls)}
        state = loss.state_dict()
        loss.load_state_dict(state)
        for key in settings.perp_neg_overrides:
            assert key in {f.name for f in dataclasses.fields(settings)}
