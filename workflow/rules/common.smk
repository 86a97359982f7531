# Helpers shared by every rule: the validated experiment plan, the results layout, input functions.
# Every path comes from segmentdreamer/plan/layout.py: `L` gives rule patterns (Snakemake's path
# variables <results>, <logs>, <benchmarks> from config `pathvars`, plus the run wildcards), and
# `EXP.layout` the same paths made concrete. No rule spells a path itself.

import dataclasses
import os
import shlex
import sys

import pandas as pd
from snakemake.exceptions import WorkflowError

from segmentdreamer import preflight
from segmentdreamer.config import ConfigError
from segmentdreamer.evaluate.metric import enabled_metrics
from segmentdreamer.gpu_slots import JOBS_PER_GPU_ENV
from segmentdreamer.models import is_target_scene
from segmentdreamer.plan.claim import claim_results_folder, hold_results_folder
from segmentdreamer.plan.experiment import load_experiment
from segmentdreamer.plan.layout import TARGET_FILES, VARIANT_PATTERN, miniworld_file
from segmentdreamer.plan.layout import RULES as L
from segmentdreamer.plan.manifests import (
    figure_manifest,
    gallery_manifest,
    known_answer_manifest,
    panel_inputs,
    table1_inputs,
    table1_manifest,
)
from segmentdreamer.plan.runs import Run
from segmentdreamer.plan.stamp import planned_text
from segmentdreamer.prompts import ID_PATTERN, PromptListError

try:
    EXP = load_experiment(config)
    if workflow.is_main_process:  # not in the job steps of a cluster run
        _writes = preflight.writes_results(sys.argv[1:])
        claim_results_folder(EXP.results, workflow.basedir, write=_writes)
        if _writes:
            hold_results_folder(EXP.results)
except (ConfigError, PromptListError) as error:
    raise WorkflowError(f"invalid configuration: {error}") from None

# The typed blocks, their defaults filled in from the library's settings (their one home), as rules and the
# report's templates read them.
config["eval"] = dataclasses.asdict(EXP.evaluation)
config["init"] = dataclasses.asdict(EXP.init)

# Every model key the requested targets need, checked now: all problems in one message, before any job.
if (
    workflow.is_main_process
    and config["check_models"]
    and preflight.runs_jobs(sys.argv[1:])
):
    _model_problems = preflight.problems(
        config, preflight.requested_targets(sys.argv[1:])
    )
    if _model_problems:
        raise WorkflowError(preflight.report(_model_problems))

for _entries in EXP.prompts.values():
    validate(
        pd.DataFrame([dataclasses.asdict(e) for e in _entries.values()]),
        "../schemas/prompts.schema.yaml",
    )


# With the known-answer prior (models.sd: target-scene:<scene>, workflow/demo.yaml) the default target is
# the demo: there is no text to score with CLIP, ImageReward or FID.
KNOWN_ANSWER = is_target_scene(config["models"].get("sd", ""))

# Jobs that use a GPU ask for one (`resources: gpu=GPU_PER_JOB`); with `device: cpu` (smoke runs) they
# need none, so `--cores N` runs N of them at once despite the default profile's `--resources gpu=1`.
GPU_PER_JOB = 0 if config["device"] == "cpu" else 1


wildcard_constraints:
    metric="|".join(m.name for m in enabled_metrics(EXP.evaluation)),
    prompt_set=ID_PATTERN,
    prompt_id=ID_PATTERN,
    variant=VARIANT_PATTERN,
    seed=r"\d+",
    prompt_index=r"\d+",


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
    return [EXP.layout.tiny_model("marker")] if config["tiny_models"] else []


def gpu_inputs():
    """Models plus gsplat's compiled extension, built once before parallel GPU jobs."""
    return model_inputs() + [EXP.layout.extensions_marker()]


# TORCH_EXTENSIONS_DIR of every GPU job: config torch_extensions_dir, else the build marker's folder
# (one folder for the whole workflow, so gsplat compiles once, in build_extensions).
EXTENSIONS_DIR = config.get("torch_extensions_dir") or os.path.dirname(
    EXP.layout.extensions_marker()
)


# The environment every GPU job starts with (`{params.gpu_env}` in its shell line): torch.compile's cache
# under <results> (the prior's compiled graphs and kernels: the first job compiles them, every later job on
# any node that sees <results> loads them instead of compiling again, minutes per job; /tmp, torch's default,
# is per node and often per SLURM job), gsplat's one build folder and, when jobs use GPUs, jobs_per_gpu for
# the job's GPU placement (segmentdreamer/gpu_slots.py: each job claims a free slot, filling every GPU of the
# host once before any GPU takes a second job).
GPU_ENV = (
    f"TORCHINDUCTOR_CACHE_DIR={shlex.quote(EXP.layout.cache('inductor'))} TORCH_EXTENSIONS_DIR={shlex.quote(EXTENSIONS_DIR)}"
    + (f" {JOBS_PER_GPU_ENV}={int(config['jobs_per_gpu'])}" if GPU_PER_JOB else "")
)


def run_files(runs, role):
    return [EXP.layout.run_file(role, run) for run in runs]


def prompt_index(prompt_set, prompt_id):
    """A prompt's position in its list: its id in GPTEval3D's prompts.json."""
    return list(EXP.prompts[prompt_set]).index(prompt_id)


def gpteval3d_folder(run):
    index = prompt_index(run.prompt_set, run.prompt_id)
    return EXP.layout.gpteval3d_run(run.prompt_set, run.variant, index, run.seed)


def gpteval3d_run_file(role):
    """A file of the run a GPTEval3D folder shows (its prompt index maps back to the prompt id)."""

    def run_file(wildcards):
        ids = list(EXP.prompts[wildcards.prompt_set])
        run = Run(
            wildcards.prompt_set,
            ids[int(wildcards.prompt_index)],
            wildcards.variant,
            int(wildcards.seed),
        )
        return EXP.layout.run_file(role, run)

    return run_file


def init_input(wildcards):
    if EXP.init.method != "pointe":
        return []
    return EXP.layout.init(wildcards.prompt_set, wildcards.prompt_id)


def method_views(wildcards):
    return run_files(EXP.runs(wildcards.prompt_set, wildcards.variant), "views")


def seed_views(wildcards):
    runs = EXP.runs(wildcards.prompt_set, wildcards.variant)
    return run_files([r for r in runs if r.seed == int(wildcards.seed)], "views")


def table1_manifest_inputs(wildcards):
    return table1_inputs(table1_manifest(EXP, wildcards.prompt_set))


# A run config's text is made in params when the job is planned and a shell line writes it: a `run:` job would
# re-parse the whole workflow in a new process, tens of seconds for each of hundreds of runs. Only for small texts:
# a shell command is one argument of at most 128 KiB on Linux (a Table 1 manifest with 3 seeds is ~370 KB, so the
# few manifest jobs stay `run:` jobs).
WRITE_TEXT_SHELL = (
    "printf '%s' {params.text:q} > {output:q} && echo wrote {output:q} > {log:q}"
)


def folder_of(name):
    """A params function: the folder holding output ``name`` (derived, so it follows <results>)."""
    return lambda wildcards, output: os.path.dirname(output[name])


def prefix_of(name):
    """A params function: output ``name`` without its extension (e.g. results/table1/smoke)."""
    return lambda wildcards, output: os.path.splitext(output[name])[0]


def table1_outputs(prompt_sets):
    return [
        EXP.layout.table1(role, s)
        for s in prompt_sets
        for role in TARGET_FILES["table1"]
    ]


def known_answer_outputs(prompt_sets):
    return [
        EXP.layout.known_answer(role, s)
        for s in prompt_sets
        for role in TARGET_FILES["known_answer"]
    ]


def ablation_outputs(names):
    return [
        EXP.layout.figure(role, name)
        for name in names
        for role in TARGET_FILES["figure"]
    ]


def gallery_outputs():
    if not config.get("gallery"):
        return []
    return [EXP.layout.figure("png", "gallery")] + run_files(
        EXP.gallery_runs(), "turntable"
    )


# -- jobs of several runs (assets_per_job > 1; train.smk) ------------------------------------------------------
def batch_resources(size):
    """The `train` rule's resources from the profile (set-resources: train, e.g. profiles/slurm) for a job of
    ``size`` runs: its runtime x size (each run takes 0.55x-1x as long as alone, BENCHMARKS.md), the rest as is.
    """
    train = {
        name: resource.raw
        for name, resource in workflow.resource_settings.overwrite_resources.get(
            "train", {}
        ).items()
    }
    if isinstance(train.get("runtime"), (int, float)):
        train["runtime"] = train["runtime"] * size
    return {"gpu": GPU_PER_JOB, **train}


# The shell line of every multi-run job. It is one constant: Snakemake evaluates a rule's shell expression when
# the job runs, after the loop in train.smk has ended, so nothing in it may depend on the loop's batch. What
# differs between jobs (how many runs, their files) comes from params.members and params.header.
TRAIN_BATCH_SHELL = (
    "for f in {log:q}; do date '+==== train attempt, %F %T ====' >> \"$f\";"
    ' echo {params.header:q} {log.job:q} >> "$f"; done;'
    " OMP_NUM_THREADS={threads} {params.gpu_env} segmentdreamer train {params.members}"
    " --resume --planned >> {log.job:q} 2>&1"
)


def train_batch_members(batch):
    """A params function: ``--config C --out FOLDER --log LOG`` for each run of ``batch``, shell-quoted.

    ``batch`` is bound when the rule is defined (a closure, not the loop variable); config and folder come from
    the job's own named inputs and outputs ``config_<i>`` / ``ply_<i>``, so each job names exactly its own runs.
    """
    logs = [EXP.layout.run_log("train", run) for run in batch.runs]

    def members(wildcards, input, output):
        return " ".join(
            f"--config {shlex.quote(input[f'config_{i}'])}"
            f" --out {shlex.quote(os.path.dirname(output[f'ply_{i}']))}"
            f" --log {shlex.quote(log)}"
            for i, log in enumerate(logs)
        )

    return members


def train_batch_header(size):
    """The line each run's log gets at the start of a multi-run job (followed by the job log's path)."""
    return f"one job trains {size} runs; its log:"


def member_files(batch, role, name):
    """``{name}_<i>: <file of role>`` for each run of a multi-run job (its rule's named inputs / outputs)."""
    return {f"{name}_{i}": L.run_file(role, run) for i, run in enumerate(batch.runs)}


def member_inits(batch):
    """``init_<i>``: each run's Point-E initialisation (none with the sphere init)."""
    if EXP.init.method != "pointe":
        return {}
    return {
        f"init_{i}": L.init(run.prompt_set, run.prompt_id)
        for i, run in enumerate(batch.runs)
    }


# The miniworld build (miniworld.smk): where the models go, the config file holding their settings, each stage's command.
MINIWORLD_OUT = config["miniworld_weights"]
MINIWORLD_CONFIG = (
    workflow.overwrite_configfiles[0]
    if workflow.overwrite_configfiles
    else "config.yaml"
)


def miniworld_shell(stage):
    """The command line of one stage (the config file Snakemake read holds the `miniworld:` block)."""
    return (
        "OMP_NUM_THREADS={threads} segmentdreamer miniworld "
        + stage
        + " --config {params.config:q} --out {params.out:q} --work {params.work:q} --device {params.device}"
        " --no-progress > {log:q} 2>&1"
    )


MINIWORLD_PARAMS = dict(
    config=lambda wildcards: MINIWORLD_CONFIG,
    out=lambda wildcards: MINIWORLD_OUT,
    work=lambda wildcards: EXP.layout.miniworld_work(),
    device=config["device"],
)
