# Helpers shared by every rule: the validated experiment plan, paths, input functions.

import dataclasses

import pandas as pd
from snakemake.exceptions import WorkflowError

from segmentdreamer.config import ConfigError
from segmentdreamer.experiment import Run, load_experiment
from segmentdreamer.prompts import PromptListError

try:
    EXP = load_experiment(config)
except (ConfigError, PromptListError) as error:
    raise WorkflowError(f"invalid configuration: {error}") from None

for _name, _entries in EXP.prompts.items():
    validate(
        pd.DataFrame([dataclasses.asdict(e) for e in _entries.values()]),
        "../schemas/prompts.schema.yaml",
    )

R = str(EXP.results)
RUN = R + "/runs/{prompt_set}/{variant}/{prompt_id}/seed{seed}"
LOGS = R + "/logs"
BENCH = R + "/benchmarks"
GPU_MARKER = f"{R}/torch_extensions/built.txt"


wildcard_constraints:
    prompt_set=r"[A-Za-z0-9][A-Za-z0-9_.-]*",
    prompt_id=r"[A-Za-z0-9][A-Za-z0-9_.-]*",
    variant=r"[A-Za-z0-9][A-Za-z0-9_.=-]*",
    seed=r"\d+",


def run_of(wildcards):
    return Run(wildcards.prompt_set, wildcards.prompt_id, wildcards.variant, int(wildcards.seed))


def run_dir(run):
    return f"{R}/{run.path}"


def prompt_file(wildcards):
    return str(EXP.prompt_files[wildcards.prompt_set])


def model(key):
    return EXP.model(key)


def model_inputs():
    """The tiny models' folder when the workflow builds them, else nothing (real weights are params)."""
    return [f"{R}/tiny_models/done.txt"] if config["tiny_models"] else []


def gpu_inputs():
    return model_inputs() + [GPU_MARKER]


def run_files(runs, name):
    return [f"{run_dir(run)}/{name}" for run in runs]


def table1_outputs(prompt_sets):
    return [f"{R}/table1/{s}.{ext}" for s in prompt_sets for ext in ("csv", "md", "tex")]


def ablation_outputs(names):
    return [f"{R}/figures/{name}.png" for name in names] + [
        f"{R}/figures/{name}_metrics.csv" for name in names
    ]


def gallery_outputs():
    if not config.get("gallery"):
        return []
    runs = EXP.gallery_runs()
    return [f"{R}/figures/gallery.png"] + run_files(runs, "turntable.mp4")
