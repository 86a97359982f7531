"""Extending the package from outside, as a researcher does: a loss, a kind of prior and a metric, each one file and one
registration line under `plugins:`, trained, planned and scored like the built-in ones."""

import dataclasses
import re
import subprocess
from pathlib import Path
from typing import ClassVar

import pytest
import torch
import yaml

from segmentdreamer.config import ConfigError, TrainConfig, load_config
from segmentdreamer.losses import LOSSES, LossInput, loss_class, settings_class

ROOT = Path(__file__).resolve().parents[1]
PLUGIN = "tests/plugins/scaled_sds.py"
PRIOR_PLUGIN = "tests/plugins/mirrored_scene.py"
METRIC_PLUGIN = "tests/plugins/brightness.py"


def test_a_loss_from_outside_trains_and_matches_its_definition(tiny_models, tiny_prior, tmp_path, monkeypatch):
    monkeypatch.chdir(ROOT)  # plugin paths are relative to where the workflow runs
    config = TrainConfig(prompt="a corgi", method="scaled_sds", plugins=(PLUGIN,), loss={"scale": 3.0}, iterations=3, views=2,
                         resolution=64, sphere_points=500, checkpoint_every=3, log_every=1, device="cpu")
    config.models.sd = str(tiny_models / "sd")
    from segmentdreamer.training.trainer import Trainer

    Trainer(config, tmp_path / "run", prior=tiny_prior).run()
    assert (tmp_path / "run" / "gaussians.ply").is_file()
    assert load_config(tmp_path / "run" / "resolved_config.yaml").loss.scale == 3.0
    # its gradient is 3 x SDS's on the same draws
    z0 = torch.randn(2, 4, 8, 8, dtype=torch.float64)
    from segmentdreamer.prior.conditioning import view_conditioning
    from tests.reference import ToyPrior, toy_embeddings

    cond = view_conditioning(toy_embeddings(), torch.tensor([0.0, 90.0]))
    batch = LossInput(latents=z0, cond=cond, step=5, total_steps=10)
    scaled = loss_class("scaled_sds")(scale=3.0, seed=4)(ToyPrior(), batch).grad
    plain = loss_class("sds")(seed=4)(ToyPrior(), batch).grad
    torch.testing.assert_close(scaled, 3.0 * plain, rtol=0, atol=0)
    assert settings_class("scaled_sds").display_name == "SDS x scale"
    with pytest.raises(ConfigError, match=r"loss.scale: must be > 0, got -1.0"):
        TrainConfig(prompt="a corgi", method="scaled_sds", plugins=(PLUGIN,), loss={"scale": -1})


def test_a_prior_kind_from_outside_trains_through_the_contract(tmp_path, monkeypatch):
    """One file, one registration line (tests/plugins/mirrored_scene.py): `models.sd: mirrored-scene:totem` trains
    on that prior, which reports its learning curve through the contract's progress hook."""
    from segmentdreamer.prior import load_prior
    from segmentdreamer.prior.base import PRIOR_KINDS, prior_kind
    from segmentdreamer.training.trainer import Trainer

    monkeypatch.chdir(ROOT)
    config = TrainConfig(prompt="a totem", method="sds", plugins=(PRIOR_PLUGIN,), iterations=2, views=1, resolution=32,
                         sphere_points=300, checkpoint_every=2, log_every=1, device="cpu", init="sphere")
    config.models.sd = "mirrored-scene:totem"
    trainer = Trainer(config, tmp_path / "run")
    assert type(trainer.prior).__name__ == "MirroredScenePrior"
    trainer.run()
    assert (tmp_path / "run" / "gaussians.ply").is_file()
    assert (tmp_path / "run" / "progress.jsonl").read_text().count("psnr") >= 1  # its hook, called by the trainer
    mirrored, plain = load_prior("mirrored-scene:totem"), load_prior("target-scene:totem")
    assert torch.equal(mirrored.ground_truth["means"][:, 0], -plain.ground_truth["means"][:, 0])
    assert prior_kind("models/sd21-base") is PRIOR_KINDS[""]  # any other value: a Stable Diffusion folder
    with pytest.raises(ValueError, match="already registered"):
        from segmentdreamer.prior import register_prior

        register_prior("mirrored-scene:", print)


@pytest.mark.slow
def test_a_prior_kind_and_a_metric_from_outside_run_through_the_smoke_workflow(tmp_path):
    """The smoke config with both plugins (one file, one registration line each): the workflow trains a run with
    the mirrored-scene prior (no weights, none checked) and scores it with the brightness metric."""
    from tests.test_workflow import snakemake

    results = tmp_path / "results"
    run = results / "runs" / "smoke" / "sds" / "corgi_quotes" / "seed0"
    made = snakemake(str(run / "brightness.json"), "--configfile", "workflow/smoke.yaml", "--cores", "2", "--config",
                     f'plugins=["{PRIOR_PLUGIN}", "{METRIC_PLUGIN}"]', 'models={"sd": "mirrored-scene:totem"}',
                     'init={"method": "sphere"}', 'train={"iterations": 4, "views": 1, "resolution": 32}',
                     f'pathvars={{"results": "{results}"}}', timeout=900)
    assert made.returncode == 0, made.stdout[-3000:] + made.stderr[-3000:]
    resolved = yaml.safe_load((run / "resolved_config.yaml").read_text(encoding="utf-8"))
    assert resolved["models"]["sd"] == "mirrored-scene:totem"
    assert (run / "progress.jsonl").read_text(encoding="utf-8").count("psnr") >= 1  # the prior's own hook ran
    record = yaml.safe_load((run / "brightness.json").read_text(encoding="utf-8"))
    assert record["metric"] == "brightness" and 0.0 < record["mean"] < 1.0 and len(record["scores"]) == 6


def test_the_trainer_calls_the_prior_contract_only():
    """No hasattr / getattr probing of the prior: every member the trainer uses is declared in prior/base.py."""
    for path in ("segmentdreamer/training/trainer.py", "segmentdreamer/training/multi_asset.py"):
        source = (ROOT / path).read_text(encoding="utf-8")
        assert not re.search(r"(hasattr|getattr)\((self\.)?prior", source), path
        assert "__getattr__" not in source, path


def test_a_loss_from_outside_is_planned_by_the_workflow():
    from tests.test_workflow import job_counts, snakemake

    def plan(*table1: str) -> subprocess.CompletedProcess:
        variants = ", ".join(f'"{v}"' for v in table1)
        return snakemake("-n", "--configfile", "workflow/smoke.yaml", "--config", f'plugins=["{PLUGIN}"]',
                         'variants={"mine": {"method": "scaled_sds", "loss": {"scale": 2.0}}}',
                         f'table1={{"variants": [{variants}]}}', 'pathvars={"results": "results/dryrun-plugin"}')

    with_plugin, without = plan("sctd", "mine"), plan("sctd")
    assert with_plugin.returncode == 0, with_plugin.stdout + with_plugin.stderr
    from segmentdreamer.prompts import read_prompt_list

    prompts = len(read_prompt_list(ROOT / "workflow" / "smoke" / "prompts.tsv"))
    assert job_counts(with_plugin.stdout)["train"] == job_counts(without.stdout)["train"] + prompts
    assert "runs/smoke/mine/" in with_plugin.stdout


def test_readme_adding_a_loss_is_the_plugin_of_the_test():
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    section = readme.split("## Adding a loss", 1)[1].split("\n## ", 1)[0]
    code = re.search(r"```python\n(.*?)```", section, re.S).group(1)
    plugin = (ROOT / PLUGIN).read_text(encoding="utf-8")
    assert code.strip() in plugin, "README's plugin code differs from tests/plugins/scaled_sds.py"
    assert f'plugins=["{PLUGIN}"]' in section or f"plugins: [{PLUGIN}]" in section


@dataclasses.dataclass
class TraitNamedSettings(settings_class("sds")):
    """A plugin's settings that name their loss by the documented ``loss`` trait (an import path)."""

    method: ClassVar[str] = "trait_named_sds"
    loss: ClassVar[str] = "tests.test_plugins:TraitNamedLoss"


def _trait_named_loss() -> type:
    from segmentdreamer.losses.sds import SDSLoss

    return dataclasses.dataclass(type("TraitNamedLoss", (TraitNamedSettings, SDSLoss), {"Settings": TraitNamedSettings,
                                                                                          "__module__": __name__}))


def test_a_loss_whose_settings_name_it_by_the_loss_trait_registers(monkeypatch):
    """Registering the loss class of settings that already name it (the trait as documented) is no error; naming
    another class is, and the message says which trait names what."""
    from segmentdreamer.losses import register_loss

    monkeypatch.setitem(globals(), "TraitNamedLoss", _trait_named_loss())
    monkeypatch.delitem(LOSSES, "trait_named_sds", raising=False)
    try:
        register_loss(TraitNamedLoss)  # noqa: F821 - set above
        assert loss_class("trait_named_sds") is TraitNamedLoss  # noqa: F821
        from segmentdreamer.losses.sds import SDSLoss

        other = dataclasses.dataclass(type("Other", (TraitNamedSettings, SDSLoss), {"Settings": TraitNamedSettings}))
        with pytest.raises(ValueError, match="`loss` trait names tests.test_plugins:TraitNamedLoss"):
            register_loss(other)
    finally:
        LOSSES.pop("trait_named_sds", None)
