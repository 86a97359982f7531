"""The experiment plan: ``config.yaml`` -> the runs the workflow trains, each with its resolved run config.

A run is (prompt set, prompt id, variant, seed). A *variant* is a named set of overrides of
:class:`~segmentdreamer.config.TrainConfig` (Table 1's methods, ablation grid points, the gallery's
Perp-Neg setting). A run's config is ``train`` (shared) <- its variant <- per-prompt overrides, plus the
prompt text, seed, init and models. Everything is validated here, when the workflow parses its config,
so a typo fails before any job runs and names the key (or the prompt file's line).

The Snakefile calls :func:`load_experiment`. Ablation grids import the trainer (torch) to recognise a grid
point that trains exactly what its base variant does; that point reuses the base's runs.
"""

from __future__ import annotations

import copy
import dataclasses
import itertools
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .config import ConfigError
from .prompts import PromptEntry, read_prompt_list

SAFE_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.=-]{0,150}$")
MODEL_KEYS = ("sd", "clip", "image_reward", "image_reward_tokenizer", "pointe", "pointe_clip", "inception")
TINY_MODEL_FOLDERS = {"sd": "sd", "clip": "clip", "image_reward": "image_reward", "pointe": "pointe",
                      "pointe_clip": "pointe/clip.pt", "image_reward_tokenizer": "image_reward"}


@dataclass(frozen=True)
class Run:
    """One training job and everything downstream of it (renders, scores)."""

    prompt_set: str
    prompt_id: str
    variant: str
    seed: int

    @property
    def path(self) -> str:
        """Folder of the run below the results root."""
        return f"runs/{self.prompt_set}/{self.variant}/{self.prompt_id}/seed{self.seed}"


@dataclass(frozen=True)
class Ablation:
    """A figure comparing variants on one prompt set; ``params`` holds each variant's grid values."""

    name: str
    title: str
    prompt_set: str
    variants: list[str]
    labels: dict[str, str]
    params: dict[str, dict[str, Any]] = field(default_factory=dict)
    plot: dict[str, Any] | None = None
    columns: int = 0
    """Variants per grid row: a grid puts its first axis on rows; a variant list is one row."""
    prompt_ids: list[str] | None = None
    """The prompts of ``prompt_set`` it runs on (None: all)."""


def deep_merge(base: dict, override: dict) -> dict:
    """``base`` updated recursively by ``override`` (new dicts; lists and scalars replaced)."""
    merged = copy.deepcopy(base)
    for key, value in override.items():
        if isinstance(value, dict) and isinstance(merged.get(key), dict):
            merged[key] = deep_merge(merged[key], value)
        else:
            merged[key] = copy.deepcopy(value)
    return merged


def set_dotted(data: dict, dotted: str, value: Any) -> dict:
    """A copy of ``data`` with ``a.b.c`` set to ``value``."""
    *parents, leaf = dotted.split(".")
    patch: dict = {leaf: value}
    for part in reversed(parents):
        patch = {part: patch}
    return deep_merge(data, patch)


def grid_variant_name(ablation: str, point: dict[str, Any]) -> str:
    """Deterministic variant name of a grid point, e.g. ``segments__segmentation=mono__num_segments=5``."""
    def text(value):
        return str(value).lower() if isinstance(value, bool) else str(value)

    return "__".join([ablation] + [f"{key.split('.')[-1]}={text(value)}" for key, value in point.items()])


class Experiment:
    """The validated plan of a workflow config (a dict, as Snakemake hands it over)."""

    def __init__(self, config: dict, root: str | Path = "."):
        self.config, self.root = config, Path(root)
        self.results = Path((config.get("pathvars") or {}).get("results", "results"))
        self.prompt_files: dict[str, Path] = {}
        self.prompts: dict[str, dict[str, PromptEntry]] = {}
        self.variants: dict[str, dict] = {}
        self.ablations: dict[str, Ablation] = {}
        self._read_prompt_sets()
        self._read_variants()
        self._read_ablations()
        self._check_references()

    # -- reading -------------------------------------------------------------------------------
    def _add_prompt_set(self, name: str, path: str, key: str) -> None:
        if not SAFE_NAME.match(name):
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
            if not SAFE_NAME.match(name):
                raise ConfigError(f"variants.{name}: names must be letters, digits, '_', '-', '.'")
            self.variants[name] = overrides or {}

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
                variants, labels, params = self._expand_grid(name, spec, key)
                columns = len(variants) // len(next(iter(spec["grid"].values())))
            else:
                variants = list(spec.get("variants", []))
                labels = {v: spec.get("labels", {}).get(v, v) for v in variants}
                params, columns = {}, len(variants)
            if not variants:
                raise ConfigError(f"{key}: needs `variants` or a non-empty `grid`")
            self.ablations[name] = Ablation(name, spec.get("title", name), block["prompt_set"], variants, labels, params,
                                            spec.get("plot"), columns, prompt_ids)

    def _expand_grid(self, name: str, spec: dict, key: str):
        base = spec.get("base")
        if base not in self.variants:
            raise ConfigError(f"{key}.base: unknown variant {base!r} (known: {', '.join(self.variants)})")
        grid = spec["grid"]
        if not isinstance(grid, dict) or not grid or not all(isinstance(v, list) and v for v in grid.values()):
            raise ConfigError(f"{key}.grid: expected a mapping of dotted keys to non-empty lists")
        variants, labels, params = [], {}, {}
        base_settings = self._effective_settings(self.variants[base])
        for values in itertools.product(*grid.values()):
            point = dict(zip(grid, values))
            variant = grid_variant_name(name, point)
            overrides = self.variants[base]
            for dotted, value in point.items():
                overrides = set_dotted(overrides, dotted, value)
            if base_settings is not None and self._effective_settings(overrides) == base_settings:
                variant = base  # the point trains exactly what its base does: reuse the base's runs
            else:
                self.variants[variant] = overrides
            variants.append(variant)
            labels[variant] = "\n".join(f"{k.split('.')[-1]}={v}" for k, v in point.items())
            params[variant] = point
        return variants, labels, params

    def _effective_settings(self, overrides: dict) -> dict | None:
        """What a variant trains with: its TrainConfig, the loss with every hyperparameter spelled out.

        None when the settings do not build (check_run_configs then reports the error with its run).
        """
        from .config import TrainConfig, from_dict, to_dict
        from .train import build_loss

        try:
            config = from_dict(TrainConfig, deep_merge(self.config.get("train", {}), overrides))
            settings = to_dict(config)
            settings["loss"] = dataclasses.asdict(build_loss(config))
        except (ConfigError, TypeError, ValueError):
            return None
        return settings

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

    # -- per-run settings ----------------------------------------------------------------------
    def model(self, key: str) -> str:
        """A model key's value; with ``tiny_models: true``, the folder the workflow's tiny-model rule writes."""
        if self.config.get("tiny_models"):
            return str(self.results / "tiny_models" / TINY_MODEL_FOLDERS[key]) if key in TINY_MODEL_FOLDERS else ""
        return str(self.config.get("models", {}).get(key, ""))

    def init_path(self, prompt_set: str, prompt_id: str) -> str:
        return str(self.results / "init" / prompt_set / f"{prompt_id}.ply")

    def run_config(self, run: Run) -> dict:
        """The run's TrainConfig as a plain dict: train <- variant <- prompt overrides <- run facts."""
        entry = self.prompts[run.prompt_set][run.prompt_id]
        data = deep_merge(self.config.get("train", {}), self.variants[run.variant])
        data = deep_merge(data, (self.config.get("prompt_overrides") or {}).get(run.prompt_set, {}).get(run.prompt_id, {}))
        init = self.init_path(run.prompt_set, run.prompt_id) if self.config.get("init", {}).get("method") == "pointe" else "sphere"
        return deep_merge(data, {"prompt": entry.prompt, "seed": run.seed, "init": init, "models": {"sd": self.model("sd")},
                                 "device": self.config.get("device", "auto"), "text_cache": str(self.results / "cache" / "text")})

    # -- manifests for the report rules ---------------------------------------------------------
    def run_file(self, run: Run, name: str) -> str:
        return str(self.results / run.path / name)

    def metric_files(self, runs: list[Run]) -> dict[str, list[str]]:
        """Per-run result files: CLIP-L, ImageReward (if evaluated) and the trainer's timing."""
        files = {"clip": [self.run_file(r, "clip.json") for r in runs], "timing": [self.run_file(r, "timing.json") for r in runs]}
        if self.config.get("eval", {}).get("image_reward", True):
            files["ir"] = [self.run_file(r, "ir.json") for r in runs]
        return files

    def table1_manifest(self, prompt_set: str) -> dict:
        """What ``segmentdreamer table`` aggregates: per method, every run's files and the method's FID."""
        methods = {}
        for variant in self.table1_variants:
            files = self.metric_files(self.runs(prompt_set, variant))
            methods[variant] = {**files, "fid": str(self.results / "fid" / prompt_set / f"{variant}.json")}
        return {"prompt_set": prompt_set, "methods": methods}

    def figure_manifest(self, name: str) -> dict:
        """What ``segmentdreamer figure`` draws for an ablation: one labelled panel per run."""
        ablation = self.ablations[name]
        runs = self.ablation_runs(name)  # variant-major: a variant's prompts (and seeds) sit side by side
        per_variant = len(runs) // len(ablation.variants)
        panels = [self._panel(run, ablation.labels[run.variant] + (f" ({run.prompt_id})" if per_variant > 1 else ""),
                              ablation.params.get(run.variant, {})) for run in runs]
        return {"title": ablation.title, "columns": ablation.columns * per_variant, "panels": panels, "plot": ablation.plot,
                **self._figure_style()}

    def gallery_manifest(self) -> dict:
        runs = self.gallery_runs()
        return {"title": "Gallery (Fig. 1)", "columns": min(len(runs), 5), "plot": None, **self._figure_style(),
                "panels": [self._panel(run, run.prompt_id, {}) for run in runs]}

    def _panel(self, run: Run, label: str, params: dict) -> dict:
        """A figure panel: the run's renders and its CLIP-L (ImageReward stays a Table 1 column)."""
        return {"label": label, "views": self.run_file(run, "views"), "clip": self.run_file(run, "clip.json"), "params": params}

    def _figure_style(self) -> dict:
        figures = self.config.get("figures", {})
        return {"view": f"view_{figures.get('view', 0):03d}.png", "panel_inches": figures.get("panel_inches", 2.5)}

    def check_run_configs(self) -> None:
        """Build every run's TrainConfig and loss now (strict keys, ranges), naming the variant on error."""
        from .config import TrainConfig, from_dict
        from .train import build_loss, validate

        for run in self.all_runs():
            try:
                config = from_dict(TrainConfig, self.run_config(run))
                validate(config)
                build_loss(config)
            except (ConfigError, TypeError, ValueError) as error:
                raise ConfigError(f"run {run.path} (train <- variants.{run.variant} <- prompt_overrides): {error}") from error


def load_experiment(config: dict, root: str | Path = ".", check_runs: bool = True) -> Experiment:
    """Parse and validate a workflow config; raises :class:`ConfigError` or ``PromptListError``."""
    experiment = Experiment(config, root)
    if check_runs:
        experiment.check_run_configs()
    return experiment


def write_json(data: dict, path: str | Path) -> None:
    """A manifest as indented UTF-8 JSON, written atomically."""
    import json

    from .atomic import atomic_target

    with atomic_target(path) as tmp:
        Path(tmp).write_text(json.dumps(data, indent=2, ensure_ascii=False), encoding="utf-8")


def write_run_config(settings: dict, path: str | Path, log_path: str | Path | None = None) -> None:
    """Write one run's resolved TrainConfig as YAML (atomically; unicode prompts kept as text)."""
    import yaml

    from .atomic import atomic_target

    with atomic_target(path) as tmp:
        Path(tmp).write_text(yaml.safe_dump(settings, sort_keys=False, allow_unicode=True), encoding="utf-8")
    if log_path is not None:
        Path(log_path).parent.mkdir(parents=True, exist_ok=True)
        Path(log_path).write_text(f"wrote {path}\n", encoding="utf-8")
