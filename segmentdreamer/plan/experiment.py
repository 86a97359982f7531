"""A validated workflow config: prompt sets, variants, ablations, the runs they imply and each run's config.

A run is (prompt set, prompt id, variant, seed). A run's config is ``train`` (shared) <- its variant <-
per-prompt overrides, plus the prompt text, seed, init and models. Everything is validated here, when the
workflow parses its config, so a typo fails before any job runs and names the key (or the prompt file's
line). Variants and grids are :mod:`.variants`; paths are :mod:`.layout`; what the table and figure jobs
read is :mod:`.manifests`. Nothing here imports torch.
"""

from __future__ import annotations

import re
from pathlib import Path

from ..config import ConfigError, TrainConfig, from_dict, prior_settings
from ..evaluate.metric import enabled_metrics, metric
from ..evaluate.settings import EvaluationSettings
from ..init.settings import InitSettings
from ..losses.registry import load_plugins, settings_class
from ..prior.base import prior_kind
from ..prompts import ID_PATTERN, PromptEntry, read_prompt_list
from .batches import TrainBatch, train_batches
from .layout import TINY_MODEL_FILES, VARIANT_PATTERN, Layout
from .runs import Run
from .variants import Ablation, deep_merge, expand_grid

SAFE_SET_NAME = re.compile(rf"^(?={ID_PATTERN}$).{{1,150}}$")
SAFE_VARIANT_NAME = re.compile(rf"^(?={VARIANT_PATTERN}$).{{1,150}}$")


class Experiment:
    """The validated plan of a workflow config (a dict, as Snakemake hands it over)."""

    def __init__(self, config: dict, root: str | Path = "."):
        self.config, self.root = config, Path(root)
        self.results = Path((config.get("pathvars") or {}).get("results", "results"))
        self.layout = Layout(str(self.results))
        self.plugins = list(config.get("plugins") or [])
        load_plugins(self.plugins)
        self.evaluation = from_dict(EvaluationSettings, config.get("eval") or {}, "eval.")
        """The ``eval`` block, typed (its defaults: segmentdreamer/evaluate/settings.py)."""
        self.init = from_dict(InitSettings, config.get("init") or {}, "init.")
        """The ``init`` block, typed (segmentdreamer/init/settings.py)."""
        self.shared = {**(config.get("train") or {}), **({"plugins": self.plugins} if self.plugins else {})}
        """The ``train`` block every run config starts from (with the workflow's plugins)."""
        self.prompt_files: dict[str, Path] = {}
        self.prompts: dict[str, dict[str, PromptEntry]] = {}
        self.variants: dict[str, dict] = {}
        self.ablations: dict[str, Ablation] = {}
        self._train_configs: dict[tuple, TrainConfig] = {}
        self._check_seeds()
        self._read_prompt_sets()
        self._read_variants()
        self._read_ablations()
        self._check_references()
        self._check_scored_prompts()

    # -- reading -------------------------------------------------------------------------------
    def _check_seeds(self) -> None:
        seeds = list(self.config.get("seeds") or [])
        repeated = sorted({seed for seed in seeds if seeds.count(seed) > 1}, key=seeds.index)
        if repeated:
            raise ConfigError(f"seeds: {repeated[0]!r} appears more than once in {seeds}: a run per seed, each seed once")

    def _add_prompt_set(self, name: str, path: str, key: str) -> None:
        if not SAFE_SET_NAME.match(name):
            raise ConfigError(f"{key}: prompt set name {name!r} must be letters, digits, '_', '-', '.'")
        if name in self.prompt_files and self.prompt_files[name] != Path(path):
            raise ConfigError(f"{key}: prompt set {name!r} is defined twice with different files")
        file = self.root / path
        if not file.is_file():
            raise ConfigError(f"{key}: prompt file {path!r} does not exist")
        self.prompt_files[name] = Path(path)
        self.prompts[name] = read_prompt_list(file)

    def _read_prompt_sets(self) -> None:
        for name, path in self.config.get("prompt_sets", {}).items():
            self._add_prompt_set(name, path, f"prompt_sets.{name}")
        for section in ("ablations", "gallery"):
            block = self.config.get(section) or {}
            if block.get("prompts"):
                self._add_prompt_set(block["prompt_set"], block["prompts"], f"{section}.prompts")
            elif block and block.get("prompt_set") not in self.prompts:
                raise ConfigError(f"{section}.prompt_set: {block.get('prompt_set')!r} is not in prompt_sets; "
                                  f"name one of them or give {section}.prompts (a prompt file)")

    def _read_variants(self) -> None:
        for name, overrides in self.config.get("variants", {}).items():
            if not SAFE_VARIANT_NAME.match(name):
                raise ConfigError(f"variants.{name}: names must be letters, digits, '_', '-', '.'")
            overrides = overrides or {}
            settings_class(overrides.get("method", "sctd"), f"variants.{name}.method")
            self.variants[name] = overrides

    def _read_ablations(self) -> None:
        block = self.config.get("ablations") or {}
        prompt_ids = block.get("prompt_ids")
        for index, prompt_id in enumerate(prompt_ids or []):
            if prompt_id not in self.prompts[block["prompt_set"]]:
                raise ConfigError(f"ablations.prompt_ids[{index}]: no prompt {prompt_id!r} in "
                                  f"{self.prompt_files[block['prompt_set']]}")
        for name, spec in (block.get("figures") or {}).items():
            key = f"ablations.figures.{name}"
            if "grid" in spec:
                variants, labels, params = expand_grid(name, spec, self.variants, self.shared, key)
                columns = len(variants) // len(next(iter(spec["grid"].values())))
            else:
                variants = list(spec.get("variants", []))
                labels = {v: spec.get("labels", {}).get(v, v) for v in variants}
                params, columns = {}, len(variants)
            if not variants:
                raise ConfigError(f"{key}: needs `variants` or a non-empty `grid`")
            self.ablations[name] = Ablation(name, spec.get("title", name), block["prompt_set"], variants, labels, params,
                                            spec.get("plot"), columns, prompt_ids)

    def _check_references(self) -> None:
        for index, name in enumerate(self.config.get("table1", {}).get("variants", [])):
            if name not in self.variants:
                raise ConfigError(f"table1.variants[{index}]: unknown variant {name!r} (known: {', '.join(self.variants)})")
        for ablation in self.ablations.values():
            for name in ablation.variants:
                if name not in self.variants:
                    raise ConfigError(f"ablations.figures.{ablation.name}.variants: unknown variant {name!r}")
        gallery = self.config.get("gallery") or {}
        if gallery and gallery.get("variant") not in self.variants:
            raise ConfigError(f"gallery.variant: unknown variant {gallery.get('variant')!r}")
        for prompt_set, entries in (self.config.get("prompt_overrides") or {}).items():
            if prompt_set not in self.prompts:
                raise ConfigError(f"prompt_overrides.{prompt_set}: unknown prompt set")
            for prompt_id in entries:
                if prompt_id not in self.prompts[prompt_set]:
                    raise ConfigError(f"prompt_overrides.{prompt_set}.{prompt_id}: no such prompt_id in {self.prompt_files[prompt_set]}")

    def _check_scored_prompts(self) -> None:
        """Every Table 1 prompt is one each enabled metric can score (a needs-truth metric: a caption of a world with
        known truth), or the error names the prompt list's file and line."""
        for chosen in enabled_metrics(self.evaluation):
            for prompt_set in self.table1_sets:
                for entry in self.prompts[prompt_set].values():
                    problem = chosen.prompt_problem(entry.prompt)
                    if problem:
                        path = self.prompt_files[prompt_set]
                        raise ConfigError(f"{path}:{_line_of(path, entry.prompt_id)}: prompt {entry.prompt_id!r} cannot be "
                                          f"scored by the {chosen.name} metric (eval.truth: true): {problem}")

    # -- the plan ------------------------------------------------------------------------------
    @property
    def table1_sets(self) -> list[str]:
        return list(self.config.get("prompt_sets", {}))

    @property
    def table1_variants(self) -> list[str]:
        return list(self.config.get("table1", {}).get("variants", []))

    def seeds(self, entry: PromptEntry) -> list[int]:
        """The seeds of a prompt: config ``seeds`` if given, else the prompt list's seed column."""
        return list(self.config.get("seeds") or [entry.seed])

    @property
    def seed_list(self) -> list[int]:
        """Config ``seeds`` (every prompt runs each); empty when the prompt lists' seed column decides."""
        return list(self.config.get("seeds") or [])

    @property
    def reports_seed_spread(self) -> bool:
        """Table 1 gives mean +- std over seeds (and per-seed FIDs) when config ``seeds`` has 2 or more."""
        return len(self.seed_list) > 1

    def runs(self, prompt_set: str, variant: str) -> list[Run]:
        return [Run(prompt_set, entry.prompt_id, variant, seed)
                for entry in self.prompts[prompt_set].values() for seed in self.seeds(entry)]

    def table1_runs(self, prompt_set: str) -> list[Run]:
        return [run for variant in self.table1_variants for run in self.runs(prompt_set, variant)]

    def ablation_runs(self, name: str) -> list[Run]:
        ablation = self.ablations[name]
        return [run for variant in ablation.variants for run in self.runs(ablation.prompt_set, variant)
                if ablation.prompt_ids is None or run.prompt_id in ablation.prompt_ids]

    def gallery_runs(self) -> list[Run]:
        gallery = self.config.get("gallery") or {}
        return self.runs(gallery["prompt_set"], gallery["variant"]) if gallery else []

    def all_runs(self) -> list[Run]:
        runs = [r for s in self.table1_sets for r in self.table1_runs(s)]
        runs += [r for name in self.ablations for r in self.ablation_runs(name)] + self.gallery_runs()
        return list(dict.fromkeys(runs))

    @property
    def assets_per_job(self) -> int:
        return int(self.config.get("assets_per_job") or 1)

    def train_batches(self) -> list[TrainBatch]:
        """The training jobs of several runs (config ``assets_per_job`` > 1; :mod:`.batches`). Runs on the
        known-answer prior always train alone (it records each asset's cameras)."""
        from ..models import is_target_scene

        if self.assets_per_job == 1 or is_target_scene(self.model("sd")):
            return []
        return train_batches(self.all_runs(), self.assets_per_job, shared=self._prior_settings)

    def _prior_settings(self, run: Run) -> tuple:
        return prior_settings(self._train_config(run))

    # -- per-run settings ----------------------------------------------------------------------
    def model(self, key: str) -> str:
        """A model key's value; with ``tiny_models: true``, the folder the workflow's tiny-model rule writes (except a
        ``models.sd`` that names a plugin's kind of prior: that prior is what the config asks to train with)."""
        configured = str(self.config.get("models", {}).get(key, ""))
        if key == "sd" and prior_kind(configured).prefix:
            return configured
        if self.config.get("tiny_models"):
            return self.layout.tiny_model(key) if key in TINY_MODEL_FILES else ""
        return configured

    def metric_arguments(self, name: str) -> list[str]:
        """``segmentdreamer evaluate``'s model and plugin options for metric ``name`` (unquoted arguments)."""
        chosen = metric(name)
        keys = [*chosen.models, *(key for key in chosen.optional_models if self.model(key))]
        return [f"--model={key}={self.model(key)}" for key in keys] + [f"--plugin={plugin}" for plugin in self.plugins]

    def run_config(self, run: Run) -> dict:
        """The run's TrainConfig as a plain dict: train <- variant <- prompt overrides <- run facts."""
        entry = self.prompts[run.prompt_set][run.prompt_id]
        data = deep_merge(self.shared, self.variants[run.variant])
        data = deep_merge(data, (self.config.get("prompt_overrides") or {}).get(run.prompt_set, {}).get(run.prompt_id, {}))
        init = self.layout.init(run.prompt_set, run.prompt_id) if self.init.method == "pointe" else "sphere"
        return deep_merge(data, {"prompt": entry.prompt, "seed": run.seed, "init": init, "models": {"sd": self.model("sd")},
                                 "device": self.config.get("device", "auto"), "text_cache": self.layout.cache("text")})

    def check_run_configs(self) -> None:
        """Build every run's TrainConfig now (strict keys, types, ranges, the loss settings), naming the variant.

        Runs of one variant differ only in prompt, seed and init, so the first run of each (variant,
        prompt override) stands for the rest: hundreds of runs are checked in milliseconds.
        """
        for run in self.all_runs():
            try:
                self._train_config(run)
            except ConfigError as error:
                raise ConfigError(f"run {self.layout.run_dir(run)} (train <- variants.{run.variant} <- prompt_overrides): "
                                  f"{error}") from None

    def _train_config(self, run: Run) -> TrainConfig:
        """The run's TrainConfig built by the strict loader, once per (variant, prompt override): the
        representative of every run that differs from it only in prompt, seed and init."""
        overrides = (self.config.get("prompt_overrides") or {}).get(run.prompt_set, {}).get(run.prompt_id)
        signature = (run.variant, repr(overrides))
        if signature not in self._train_configs:
            self._train_configs[signature] = from_dict(TrainConfig, self.run_config(run))
        return self._train_configs[signature]


def _line_of(path: Path, prompt_id: str) -> int:
    """The 1-based line of ``prompt_id``'s entry in a prompt list."""
    lines = Path(path).read_text(encoding="utf-8").splitlines()
    return next((number for number, line in enumerate(lines, start=1) if line.split("\t", 1)[0] == prompt_id), 0)


def load_experiment(config: dict, root: str | Path = ".", check_runs: bool = True) -> Experiment:
    """Parse and validate a workflow config; raises :class:`ConfigError` or ``PromptListError``."""
    experiment = Experiment(config, root)
    if check_runs:
        experiment.check_run_configs()
    return experiment
