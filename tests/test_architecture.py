"""The contracts between the parts: a loss added from outside the package, typed loss settings, one run
layout, no torch where planning does not need it, no citation of files outside the repository."""

import dataclasses
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
import torch
import yaml

from segmentdreamer.config import ConfigError, TrainConfig, dump_config, load_config
from segmentdreamer.losses import LOSSES, LossInput, loss_class, settings_class
from segmentdreamer.plan import layout
from tests import processes

ROOT = Path(__file__).resolve().parents[1]
PLUGIN = "tests/plugins/scaled_sds.py"
PRIOR_PLUGIN = "tests/plugins/mirrored_scene.py"
METRIC_PLUGIN = "tests/plugins/brightness.py"


# -- acceptance 1: a loss from outside the package ---------------------------------------------------------
def test_a_loss_from_outside_trains_and_matches_its_definition(tiny_models, tiny_prior, tmp_path, monkeypatch):
    monkeypatch.chdir(ROOT)  # plugin paths are relative to where the workflow runs
    config = TrainConfig(prompt="a corgi", method="scaled_sds", plugins=(PLUGIN,), loss={"scale": 3.0}, iterations=3, views=2,
                         resolution=64, sphere_points=500, checkpoint_every=3, log_every=1, device="cpu")
    config.models.sd = str(tiny_models / "sd")
    from segmentdreamer.train import Trainer

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
    from segmentdreamer.train import Trainer

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
    for path in ("segmentdreamer/train.py", "segmentdreamer/multi_asset.py"):
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


# -- acceptance 2: typed loss settings from a file and from --set --------------------------------------------
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
    from segmentdreamer.train import uses_beg

    assert TrainConfig(prompt="x", perp_neg=True).loss.noise_offset == 0.05  # SCTD's declared Perp-Neg offset
    assert TrainConfig(prompt="x", perp_neg=True, loss={"noise_offset": 0.2}).loss.noise_offset == 0.2  # explicit wins
    assert TrainConfig(prompt="x").loss.noise_offset == 0.1
    assert uses_beg(TrainConfig(prompt="x", method="gcs")) and not uses_beg(TrainConfig(prompt="x", method="sctd"))
    assert not uses_beg(TrainConfig(prompt="x", method="gcs", beg=False))
    dump_config(TrainConfig(prompt="x", perp_neg=True), tmp_path / "r.yaml")
    assert load_config(tmp_path / "r.yaml") == TrainConfig(prompt="x", perp_neg=True)  # the dump is the run


def test_the_trainer_names_no_method():
    source = (ROOT / "segmentdreamer" / "train.py").read_text(encoding="utf-8")
    for method in LOSSES:
        assert not re.search(rf"""["']{method}["']""", source), f"train.py tests for the method name {method!r}"


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


# -- acceptance 3 and 4: citations and path patterns -----------------------------------------------------------
def test_no_comment_cites_a_file_outside_the_repository():
    offenders = []
    files = [ROOT / name for name in ("Snakefile", "config.yaml", "README.md", "pyproject.toml")]
    for folder in ("segmentdreamer", "workflow", "tests", "benchmarks", "prompts", "profiles", "docs"):
        files += [p for p in (ROOT / folder).rglob("*") if p.suffix in {".py", ".smk", ".yaml", ".rst", ".md", ".tsv"}]
    for path in files:
        if path.name != Path(__file__).name:
            for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
                if re.search(r"\bSPEC\b|\.\./shared|SPEC\.md", line):
                    offenders.append(f"{path.relative_to(ROOT)}:{number}: {line.strip()}")
    assert not offenders, "\n".join(offenders)
    cited = set()
    for path in (ROOT / "segmentdreamer").rglob("*.py"):
        cited |= set(re.findall(r"docs/([\w./-]+\.md)", path.read_text(encoding="utf-8")))
    assert cited and all((ROOT / "docs" / name).is_file() for name in cited), cited


def _smk_string_literals() -> list[tuple[str, str]]:
    files = [ROOT / "Snakefile", *sorted((ROOT / "workflow" / "rules").glob("*.smk"))]
    found = []
    for path in files:
        for literal in re.findall(r'"((?:[^"\\]|\\.)*)"', path.read_text(encoding="utf-8")):
            found.append((path.name, literal))
    return found


def test_no_rule_spells_a_path_the_layout_owns():
    """Rules take every path from segmentdreamer/plan/layout.py; only includes, schemas, captions and the conda
    environment (files of the workflow itself, not of its results) are spelled in .smk files."""
    owned = [*layout.RUN_FILES.values(), *layout.TABLE1_FILES.values(), *layout.FIGURE_FILES.values(), "<results>", "<run>",
             "<logs>", "<benchmarks>", "runs/", "seed{", "{prompt_set}", "{variant}", "{prompt_id}", "cache", "tiny_models",
             "torch_extensions", "init/", "reference/", "fid/", "table1/", "figures/", ".ply", ".json", ".tsv", ".log", ".png"]
    workflow_files = re.compile(r"^(workflow/|\.\./)|^config\.yaml$")
    path_like = re.compile(r"^\S*(/|<\w+>|\.\w{2,4}$)\S*$")  # no spaces (not prose), a folder, a path variable or a suffix
    offenders = [(name, literal) for name, literal in _smk_string_literals()
                 if path_like.match(literal) and not workflow_files.search(literal) and any(piece in literal for piece in owned)]
    assert not offenders, offenders


def test_layout_patterns_and_concrete_paths_agree():
    from segmentdreamer.plan.runs import Run

    run = Run("smoke", "corgi", "sctd", 0)
    concrete = layout.Layout("results").run_file("ply", run)
    pattern = layout.RULES.run_file("ply")
    assert concrete == "results/runs/smoke/sctd/corgi/seed0/gaussians.ply"
    assert pattern == "<results>/runs/{prompt_set}/{variant}/{prompt_id}/seed{seed}/gaussians.ply"
    assert pattern.replace("<results>", "results").format(prompt_set="smoke", variant="sctd", prompt_id="corgi", seed=0) == concrete


# -- planning without torch -------------------------------------------------------------------------------------
def test_config_and_planner_import_no_torch():
    code = ("import sys, yaml; import segmentdreamer.config; from segmentdreamer.plan.experiment import load_experiment; "
            "from segmentdreamer.plan.manifests import table1_manifest; "
            "e = load_experiment(yaml.safe_load(open('config.yaml'))); table1_manifest(e, 'dreamfusion40'); "
            "print('torch' in sys.modules)")
    result = processes.run([sys.executable, "-c", code], 120, cwd=ROOT,
                            env={**os.environ, "PYTHONPATH": str(ROOT)})
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "False"


def test_ruff_is_clean():
    ruff = Path(sys.executable).parent / "ruff"
    if not ruff.exists():
        pytest.fail("ruff is not installed beside this Python (it is in the dev extra: pip install -e '.[dev]')")
    result = subprocess.run([str(ruff), "check", "segmentdreamer", "tests", "benchmarks"], cwd=ROOT, capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr


def test_schema_lists_no_methods():
    schema = yaml.safe_load((ROOT / "workflow" / "schemas" / "config.schema.yaml").read_text(encoding="utf-8"))
    method = schema["properties"]["variants"]["additionalProperties"]["properties"]["method"]
    assert "enum" not in method  # the registry is the one list of methods


def package_imports() -> dict[str, set[str]]:
    """Every module of the package -> the package modules it imports, function-local imports included (the AST of
    each file, so an import hidden inside a function counts as much as one at the top)."""
    import ast

    package = ROOT / "segmentdreamer"
    modules = {}
    for path in package.rglob("*.py"):
        parts = list(path.relative_to(ROOT).with_suffix("").parts)
        name = ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
        here = name if path.name == "__init__.py" else name.rsplit(".", 1)[0]
        found = set()
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.ImportFrom):
                base = ".".join(here.split(".")[: len(here.split(".")) - node.level + 1]) if node.level else ""
                target = ".".join(p for p in (base, node.module or "") if p)
                candidates = [target] + [f"{target}.{alias.name}" for alias in node.names]
            elif isinstance(node, ast.Import):
                candidates = [alias.name for alias in node.names]
            else:
                continue
            found |= {c for c in candidates if c.startswith("segmentdreamer") and c != name}
        modules[name] = found
    return {name: {d for d in deps if d in modules} for name, deps in modules.items()}


def test_no_import_cycle_between_modules_function_local_imports_included():
    graph = package_imports()
    state: dict[str, int] = {}  # 1: on the current path, 2: done

    def visit(module: str, path: list[str]) -> None:
        state[module] = 1
        for dependency in sorted(graph[module]):
            if state.get(dependency) == 1:
                cycle = path[path.index(dependency):] + [dependency] if dependency in path else [module, dependency]
                pytest.fail("import cycle: " + " -> ".join(cycle))
            if dependency not in state:
                visit(dependency, path + [dependency])
        state[module] = 2

    for module in sorted(graph):
        if module not in state:
            visit(module, [module])


FOUNDATIONS = ("segmentdreamer.typed", "segmentdreamer.atomic", "segmentdreamer.errors", "segmentdreamer.prompts",
               "segmentdreamer.scene", "segmentdreamer.prior", "segmentdreamer.losses")
"""Folders and modules below the pipeline's steps: the trainer, evaluation, planning and reports build on them."""
ABOVE = ("segmentdreamer.evaluate", "segmentdreamer.report", "segmentdreamer.export", "segmentdreamer.train",
         "segmentdreamer.multi_asset", "segmentdreamer.cli", "segmentdreamer.preflight", "segmentdreamer.doctor",
         "segmentdreamer.viewer", "segmentdreamer.plan.experiment", "segmentdreamer.plan.manifests")


def test_no_foundation_imports_a_step_above_it():
    """e.g. the renderer never imports an evaluation module, the prompt reader never imports the planner (the plan's
    path patterns, plan/layout.py, are facts every layer may read)."""
    upward = [f"{module} -> {dependency}" for module, deps in package_imports().items()
              if module.startswith(FOUNDATIONS) for dependency in deps if dependency.startswith(ABOVE)]
    assert not upward, upward
