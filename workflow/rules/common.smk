# Helpers shared by every rule: the validated experiment plan, path variables, input functions.
# Paths in rules use Snakemake's path variables: <results>, <logs>, <benchmarks> (config `pathvars`)
# and <run>, one run's folder.

import dataclasses
import os

import pandas as pd
from snakemake.exceptions import WorkflowError

from segmentdreamer.config import ConfigError
from segmentdreamer.experiment import Run, load_experiment
from segmentdreamer.prompts import PromptListError

try:
    EXP = load_experiment(config)
except (ConfigError, PromptListError) as error:
    raise WorkflowError(f"invalid configuration: {error}") from None

for _entries in EXP.prompts.values():
    validate(
        pd.DataFrame([dataclasses.asdict(e) for e in _entries.values()]),
        "../schemas/prompts.schema.yaml",
    )


# Jobs that use a GPU ask for one (`resources: gpu=GPU_PER_JOB`); with `device: cpu` (smoke runs) they
# need none, so `--cores N` runs N of them at once despite the default profile's `--resources gpu=1`.
GPU_PER_JOB = 0 if config["device"] == "cpu" else 1


pathvars:
    run="<results>/runs/{prompt_set}/{variant}/{prompt_id}/seed{seed}",


wildcard_constraints:
    prompt_set=r"[A-Za-z0-9][A-Za-z0-9_.-]*",
    prompt_id=r"[A-Za-z0-9][A-Za-z0-9_.-]*",
    variant=r"[A-Za-z0-9][A-Za-z0-9_.=-]*",
    seed=r"\d+",


def run_of(wildcards):
    return Run(
        wildcards.prompt_set,
        wildcards.prompt_id,
        wildcards.variant,
        int(wildcards.seed),
    )


def prompt_file(wildcards):
    return str(EXP.prompt_files[wildcards.prompt_set])


def model(key):
    return EXP.model(key)


def model_inputs():
    """The tiny models' marker when the workflow builds them, else nothing (real weights are params)."""
    return [f"{EXP.results}/tiny_models/done.txt"] if config["tiny_models"] else []


def gpu_inputs():
    """Models plus gsplat's compiled extension, built once before parallel GPU jobs."""
    return model_inputs() + [f"{EXP.results}/torch_extensions/built.txt"]


def extensions_dir(wildcards, input=None, output=None):
    """TORCH_EXTENSIONS_DIR for gsplat: config torch_extensions_dir, else beside the build marker."""
    marker = output[0] if output else input.setup[-1]
    return config.get("torch_extensions_dir") or os.path.dirname(marker)


def run_files(runs, name):
    return [EXP.run_file(run, name) for run in runs]


def init_input(wildcards):
    if config["init"]["method"] != "pointe":
        return []
    return EXP.init_path(wildcards.prompt_set, wildcards.prompt_id)


def method_views(wildcards):
    return run_files(EXP.runs(wildcards.prompt_set, wildcards.variant), "views")


def table1_inputs(wildcards):
    methods = EXP.table1_manifest(wildcards.prompt_set)["methods"].values()
    return [
        f
        for entry in methods
        for key, value in entry.items()
        for f in ([value] if key == "fid" else value)
    ]


def manifest_inputs(manifest):
    return [panel[key] for panel in manifest["panels"] for key in ("views", "clip")]


def folder_of(name):
    """A params function: the folder holding output ``name`` (derived, so it follows <results>)."""
    return lambda wildcards, output: os.path.dirname(output[name])


def prefix_of(name):
    """A params function: output ``name`` without its extension (e.g. results/table1/smoke)."""
    return lambda wildcards, output: os.path.splitext(output[name])[0]


def table1_outputs(prompt_sets):
    return [
        f"{EXP.results}/table1/{s}.{ext}"
        for s in prompt_sets
        for ext in ("csv", "md", "tex")
    ]


def ablation_outputs(names):
    return [
        f"{EXP.results}/figures/{name}{suffix}"
        for name in names
        for suffix in (".png", "_metrics.csv")
    ]


def gallery_outputs():
    if not config.get("gallery"):
        return []
    return [f"{EXP.results}/figures/gallery.png"] + run_files(
        EXP.gallery_runs(), "turntable.mp4"
    )
