"""The results layout: where every file of the workflow lives. The one place for each path pattern.

Both the Snakemake rules and the Python planner read this module; no rule spells a path itself. A
:class:`Layout` is rooted at a results folder (``results``) for concrete paths, or at Snakemake's path
variables (``<results>``, ``<logs>``, ``<benchmarks>``) for rule patterns, where the run's wildcards
(``{prompt_set}``, ``{variant}``, ``{prompt_id}``, ``{seed}``) stay in place::

    <results>/
      runs/<prompt set>/<variant>/<prompt id>/seed<seed>/   one run: RUN_FILES below, logs/<job>.log
      init/<prompt set>/<prompt id>.ply                       Point-E initialisation (cached clouds: cache/pointe)
      reference/<prompt set>.json  reference/<prompt set>/    FID reference images and their summary
      fid/<prompt set>/<variant>.json                         FID of one method on one prompt set (all seeds)
      fid/<prompt set>/<variant>/seed<seed>.json              the same per seed (config seeds with 2+ entries)
      table1/<prompt set>.{csv,md,tex,html,manifest.json}, _per_prompt.png
      figures/<name>.{png,pdf,manifest.json}, _metrics.csv    ablation figures and the gallery
      gpteval3d/<prompt set>/prompts.json, methods/<variant>/<prompt index>/<seed>/   GPTEval3D's layout
      cache/{text,pointe,fid,inductor}/  tiny_models/  torch_extensions/  logs/  benchmarks/
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

VARIANT_PATTERN = r"[A-Za-z0-9][A-Za-z0-9_.=-]*"
"""Variant names (grid points add ``=``, e.g. ``segments__num_segments=5``)."""

RUN_DIR = "runs/{prompt_set}/{variant}/{prompt_id}/seed{seed}"
"""A run's folder below the results root."""

RUN_FILES = {
    "config": "config.yaml",  # the resolved run config the workflow writes (the train job's input)
    "ply": "gaussians.ply",
    "timing": "timing.json",
    "train_log": "train_log.jsonl",
    "progress": "progress.jsonl",  # the prior's progress(params) per checkpoint, if it reports any (known answer)
    "resolved_config": "resolved_config.yaml",  # what the trainer actually ran with
    "checkpoint": "checkpoints/last.pt",
    "finished": "finished.json",  # written last by a training run whose parameters passed the finite checks
    "views": "views",
    "turntable": "turntable.mp4",
    "known_answer": "known_answer.json",  # PSNR / SSIM / IoU vs the ground truth (known-answer prior only)
    "comparison": "ground_truth_vs_learned.gif",  # the two turntables side by side (known-answer prior only)
    "mesh": "mesh.glb",  # coloured triangle mesh (export_mesh rule, `snakemake meshes`)
    "splat": "gaussians.splat",  # the web splat viewers' format (same rule)
}
"""Files inside a run folder, by role."""

METRIC_FILE = "{metric}.json"
"""A run's record of one registered metric (``clip.json``, ``ir.json``, a plugin's; segmentdreamer/evaluate/metric.py)."""

VIEW_FILE = "view_{index:03d}.png"
"""One render of the evaluation ring inside ``views/``."""
VIEWS_COMPLETE = "complete.json"
"""Written last into ``views/`` by a render that finished: scorers read no folder without it."""

INIT = "init/{prompt_set}/{prompt_id}.ply"
REFERENCE = "reference/{prompt_set}"
FID = "fid/{prompt_set}/{variant}.json"
FID_SEED = "fid/{prompt_set}/{variant}/seed{seed}.json"
TABLE1 = "table1/{prompt_set}"
GPTEVAL3D_PROMPTS = "gpteval3d/{prompt_set}/prompts.json"
GPTEVAL3D_RUN = "gpteval3d/{prompt_set}/methods/{variant}/{prompt_index}/{seed}"
"""GPTEval3D's layout of a prompt set (export/gpteval3d.py): the prompt list, and one asset's rgb/normal views."""
TABLE1_FILES = {"csv": ".csv", "md": ".md", "tex": ".tex", "plot": "_per_prompt.png", "html": ".html", "manifest": ".manifest.json"}
"""Table 1 of a prompt set: ``TABLE1`` + each suffix (the plot also gets a .pdf beside its .png)."""
KNOWN_ANSWER = "known_answer/{prompt_set}"
KNOWN_ANSWER_FILES = {"csv": ".csv", "md": ".md", "plot": "_curve.png", "html": ".html", "manifest": ".manifest.json"}
"""The known-answer table of a prompt set (the demo): ``KNOWN_ANSWER`` + each suffix."""
ANALYTIC = "analytic/{name}"
ANALYTIC_FILES = {"csv": ".csv", "md": ".md", "png": ".png"}
"""An experiment on the analytic prior (``analytic_theorem1``): ``ANALYTIC`` + each suffix."""
FIGURE = "figures/{name}"
FIGURE_FILES = {"png": ".png", "pdf": ".pdf", "csv": "_metrics.csv", "md": "_metrics.md", "plot": "_plot.png",
                "manifest": ".manifest.json"}
"""An ablation figure or the gallery: ``FIGURE`` + each suffix."""
TARGET_FILES = {"table1": ("csv", "md", "tex"), "figure": ("png", "csv"), "known_answer": ("csv", "md", "plot", "html")}
"""The files a target rule asks for (the rest come along with them)."""
CACHES = {"text": "cache/text", "pointe": "cache/pointe", "fid": "cache/fid", "inductor": "cache/inductor"}
TINY_MODELS = "tiny_models"
TINY_MODEL_FILES = {"sd": "sd", "clip": "clip", "image_reward": "image_reward", "image_reward_tokenizer": "image_reward",
                    "pointe": "pointe", "pointe_clip": "pointe/clip.pt", "marker": "done.txt"}
"""Where ``segmentdreamer make-tiny-models`` puts each model key's stand-in, below ``tiny_models/``."""
MINIWORLD_FILES = {"sd": "sd", "clip": "clip", "pointe": "pointe", "pointe_clip": "pointe/clip.pt", "gates": "gates.json",
                   "manifest": "MANIFEST.json", "loss_curves": "figures/loss_curves.png",
                   "sd_samples": "figures/sd_samples.png", "pointe_samples": "figures/pointe_samples.png"}
"""The miniworld models' folder (config ``miniworld_weights``, shipped in the repository) by role."""


def miniworld_file(weights: str | Path, role: str) -> str:
    """A file (or model folder) of the miniworld models' folder ``weights`` by its role in :data:`MINIWORLD_FILES`."""
    return str(Path(weights, MINIWORLD_FILES[role]))


MINIWORLD_WORK = "miniworld/work"
"""The miniworld build's renders, checkpoints and loss curves (the models themselves go to ``miniworld_weights``)."""
MINIWORLD_WORK_FILES = {"renders": "renders.npz", "vae": "vae", "times": "times.json"}
EXTENSIONS_MARKER = "torch_extensions/built.txt"
"""Written once gsplat's CUDA extension is built; the extension lives in the marker's folder."""

JOBS = {
    "tiny_models": "setup/tiny_models",
    "miniworld": "miniworld/{stage}",
    "build_extensions": "setup/build_extensions",
    "init": "init/{prompt_set}/{prompt_id}",
    "train_batch": "train/{name}",  # a job training several runs (plan/batches.py: <set>/<variant>/<first id>_seed<s>+<n-1>)
    "reference": "reference/{prompt_set}",
    "fid": "fid/{prompt_set}/{variant}",
    "fid_seed": "fid/{prompt_set}/{variant}/seed{seed}",
    "table1_manifest": "table1/{prompt_set}.manifest",
    "table1": "table1/{prompt_set}",
    "figure_manifest": "figures/{name}.manifest",
    "gallery_manifest": "figures/gallery.manifest",
    "figure": "figures/{name}",
    "known_answer_manifest": "known_answer/{prompt_set}.manifest",
    "known_answer": "known_answer/{prompt_set}",
    "analytic": "analytic/{name}",
    "gpteval3d_prompts": "gpteval3d/{prompt_set}/prompts",
    "gpteval3d_views": "gpteval3d/{prompt_set}/{variant}/{prompt_index}/seed{seed}",
}
"""Log and benchmark names of the jobs outside run folders, below ``<logs>`` and ``<benchmarks>``."""

RUN_WILDCARDS = {"prompt_set": "{prompt_set}", "variant": "{variant}", "prompt_id": "{prompt_id}", "seed": "{seed}"}


def _fill(pattern: str, values: dict[str, Any] | None) -> str:
    """``pattern`` with ``values`` filled in; missing keys keep their ``{wildcard}``."""
    return pattern.format(**{**RUN_WILDCARDS, "name": "{name}", "prompt_index": "{prompt_index}", **(values or {})})


@dataclass(frozen=True)
class Layout:
    """Paths below ``results`` (and the logs / benchmarks roots), concrete or as rule patterns.

    Each method takes the values to fill in; what is not given stays a Snakemake wildcard.
    """

    results: str = "results"
    logs: str | None = None
    """Job logs outside run folders; default ``<results>/logs``."""
    benchmarks: str | None = None

    def _join(self, *parts: str) -> str:
        return str(Path(self.results, *parts)) if not self.results.startswith("<") else "/".join((self.results, *parts))

    # -- one run ----------------------------------------------------------------------------------
    def run_dir(self, run: Any = None) -> str:
        """The run's folder; ``run`` is a :class:`~.runs.Run` (or None for the rule pattern)."""
        return self._join(_fill(RUN_DIR, _run_values(run)))

    def run_file(self, role: str, run: Any = None) -> str:
        """A file of a run by its role in :data:`RUN_FILES` (``"ply"``, ``"clip"``, ...)."""
        return f"{self.run_dir(run)}/{RUN_FILES[role]}"

    def metric_file(self, metric: str | None = None, run: Any = None) -> str:
        """A run's record of a metric (:data:`METRIC_FILE`); without ``metric`` the ``{metric}`` wildcard stays."""
        return f"{self.run_dir(run)}/{METRIC_FILE.format(metric=metric or '{metric}')}"

    def run_log(self, job: str, run: Any = None) -> str:
        return f"{self.run_dir(run)}/logs/{job}.log"

    def run_benchmark(self, job: str, run: Any = None) -> str:
        return f"{self.run_dir(run)}/logs/{job}.benchmark.tsv"

    # -- per prompt set / method ------------------------------------------------------------------
    def init(self, prompt_set: str | None = None, prompt_id: str | None = None) -> str:
        return self._join(_fill(INIT, _given(prompt_set=prompt_set, prompt_id=prompt_id)))

    def reference_images(self, prompt_set: str | None = None) -> str:
        """The reference image folder (not a declared output, so a killed job resumes it)."""
        return self._join(_fill(REFERENCE, _given(prompt_set=prompt_set)))

    def reference_summary(self, prompt_set: str | None = None) -> str:
        return self.reference_images(prompt_set) + ".json"

    def fid(self, prompt_set: str | None = None, variant: str | None = None) -> str:
        return self._join(_fill(FID, _given(prompt_set=prompt_set, variant=variant)))

    def fid_seed(self, prompt_set: str | None = None, variant: str | None = None, seed: int | None = None) -> str:
        return self._join(_fill(FID_SEED, _given(prompt_set=prompt_set, variant=variant, seed=seed)))

    def gpteval3d_prompts(self, prompt_set: str | None = None) -> str:
        return self._join(_fill(GPTEVAL3D_PROMPTS, _given(prompt_set=prompt_set)))

    def gpteval3d_run(self, prompt_set: str | None = None, variant: str | None = None, prompt_index: int | None = None,
                      seed: int | None = None) -> str:
        return self._join(_fill(GPTEVAL3D_RUN, _given(prompt_set=prompt_set, variant=variant, prompt_index=prompt_index, seed=seed)))

    def table1(self, role: str, prompt_set: str | None = None) -> str:
        """A Table 1 file by its role in :data:`TABLE1_FILES`; ``role="prefix"`` gives the name without suffix."""
        prefix = self._join(_fill(TABLE1, _given(prompt_set=prompt_set)))
        return prefix if role == "prefix" else prefix + TABLE1_FILES[role]

    def known_answer(self, role: str, prompt_set: str | None = None) -> str:
        """A known-answer table file by its role in :data:`KNOWN_ANSWER_FILES` (``"prefix"``: no suffix)."""
        prefix = self._join(_fill(KNOWN_ANSWER, _given(prompt_set=prompt_set)))
        return prefix if role == "prefix" else prefix + KNOWN_ANSWER_FILES[role]

    def analytic(self, role: str, name: str | None = None) -> str:
        """An analytic-prior experiment's file by its role in :data:`ANALYTIC_FILES` (``"prefix"``: no suffix)."""
        prefix = self._join(_fill(ANALYTIC, _given(name=name)))
        return prefix if role == "prefix" else prefix + ANALYTIC_FILES[role]

    def figure(self, role: str, name: str | None = None) -> str:
        """A figure file by its role in :data:`FIGURE_FILES`; ``role="prefix"`` gives the name without suffix."""
        prefix = self._join(_fill(FIGURE, _given(name=name)))
        return prefix if role == "prefix" else prefix + FIGURE_FILES[role]

    # -- shared folders ---------------------------------------------------------------------------
    def cache(self, kind: str) -> str:
        return self._join(CACHES[kind])

    def tiny_model(self, key: str) -> str:
        return self._join(TINY_MODELS, TINY_MODEL_FILES[key])

    def miniworld_work(self, role: str = "") -> str:
        """The miniworld build's work folder, or a file in it by its role in :data:`MINIWORLD_WORK_FILES`."""
        return self._join(MINIWORLD_WORK, MINIWORLD_WORK_FILES[role]) if role else self._join(MINIWORLD_WORK)

    def extensions_marker(self) -> str:
        return self._join(EXTENSIONS_MARKER)

    def job_log(self, job: str, **values: str) -> str:
        """The log of a job outside run folders (:data:`JOBS`), e.g. ``<logs>/init/gallery/hulk.log``."""
        return f"{self.logs or self._join('logs')}/{_fill(JOBS[job], values)}.log"

    def job_benchmark(self, job: str, **values: str) -> str:
        return f"{self.benchmarks or self._join('benchmarks')}/{_fill(JOBS[job], values)}.tsv"


def _given(**values: str | None) -> dict[str, str]:
    return {key: value for key, value in values.items() if value is not None}


def _run_values(run: Any) -> dict[str, Any] | None:
    if run is None:
        return None
    return {"prompt_set": run.prompt_set, "variant": run.variant, "prompt_id": run.prompt_id, "seed": run.seed}


RULES = Layout("<results>", logs="<logs>", benchmarks="<benchmarks>")
"""The layout as Snakemake rule patterns (path variables + wildcards)."""
