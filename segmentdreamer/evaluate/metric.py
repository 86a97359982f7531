"""The metric contract and registry: what a per-run score declares so that the workflow, the preflight and Table 1
need no line of their own for it.

A metric scores one finished run (its evaluation ring's views, its Gaussians, its prompt) and writes one JSON
record per run, ``<run>/<name>.json`` with at least ``{"prompt_id", "prompt", "mean"}``. Table 1 shows, in the
metric's column, the mean over a method's runs of each record's ``mean`` (mean +- std over seeds with several
seeds). Everything else follows from the declaration:

==================  =====================================================================================
declared            read by
==================  =====================================================================================
``name``            the run file's role, ``segmentdreamer evaluate --metric NAME``, the Table 1 column key,
                    the one rule ``evaluate_run`` (its ``{metric}`` wildcard), the SLURM profile's entry
``title``, ...      Table 1's header, its best / second marks (``higher_is_better``) and digits
``models``          the preflight (every key checked before any job), the rule's ``--model KEY=PATH``
                    (``optional_models``: passed where configured; the preflight knows when they are needed)
``switch``          ``eval.<switch>: false`` leaves the metric out (and its models unchecked)
``needs_truth``     scored against the prompt's ground truth: only where ``eval.truth`` says the prompts
                    have one (a world with known truth, e.g. the miniworld's captions)
``scorer``          ``function(models, device) -> RunScorer``, or ``"module:function"`` naming it, imported only
                    by the job that scores (this module, read by the planner, imports no torch)
==================  =====================================================================================

A metric of your own is one file with one registration line, named under ``plugins:`` like a loss::

    register_metric(Metric("brightness", "Brightness", higher_is_better=True, digits=3, scorer=brightness_scorer))
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from dataclasses import asdict, dataclass, fields
from pathlib import Path
from typing import Any, Protocol

from ..typed import ConfigError, from_dict
from .settings import EvaluationSettings


@dataclass(frozen=True)
class RunToScore:
    """What a scorer sees of one finished run."""

    prompt_id: str
    prompt: str
    views: Path
    """The ring's ``view_*.png`` folder (complete: its marker is written)."""
    ply: Path | None
    """The run's ``gaussians.ply`` (for metrics of the 3D scene itself)."""
    other_prompts: tuple[str, ...] = ()
    """The prompt list's other prompts (retrieval metrics rank the run's prompt among them)."""


class RunScorer(Protocol):
    def __call__(self, run: RunToScore) -> dict[str, Any]:
        """The run's record: ``mean`` (its Table 1 value) and whatever else the metric keeps (per-view scores, ...)."""


@dataclass(frozen=True)
class Field:
    """A further Table 1 column from the same record: the mean over runs of ``record[key]`` (None values skipped)."""

    key: str
    title: str
    higher_is_better: bool
    digits: int
    best: float | None = None
    """Rank by distance to this value instead of by direction (a ratio whose ideal is 1)."""


@dataclass(frozen=True)
class Metric:
    """A Table 1 column of per-run scores (see the module docstring for who reads each field)."""

    name: str
    title: str
    higher_is_better: bool
    digits: int
    scorer: str | Callable[[dict[str, str], Any], RunScorer]
    """``"module:function"`` (imported by the scoring job only) or the function itself (a plugin's own)."""
    models: tuple[str, ...] = ()
    optional_models: tuple[str, ...] = ()
    """Keys passed when the config has them (e.g. a tokenizer that may also live inside another key's folder)."""
    switch: str | None = None
    needs_truth: bool = False
    fields: tuple[Field, ...] = ()
    """More columns from the record (``mean`` is the first column's value, ``fields`` the others')."""
    check_prompt: str | Callable[[str], None] | None = None
    """``function(prompt)`` (or ``"module:function"``) raising ValueError for a prompt the metric cannot score (a
    needs-truth metric's prompts must describe a known scene): the planner calls it for every scored prompt."""
    description: str = ""

    def __post_init__(self) -> None:
        for key in (self.name, *(field.key for field in self.fields)):
            if not key.isidentifier() or key in RESERVED:
                raise ValueError(f"metric {self.name!r}: column key {key!r} must be a Python identifier, not one of "
                                 f"{sorted(RESERVED)}")
        switches = [item.name for item in fields(EvaluationSettings) if item.type in ("bool", bool)]
        if self.switch is not None and self.switch not in switches:
            raise ValueError(f"metric {self.name!r}: switch must be one of eval's booleans {switches}, got {self.switch!r}")
        if not callable(self.scorer) and ":" not in self.scorer:
            raise ValueError(f"metric {self.name!r}: scorer must be 'module:function' or a function, got {self.scorer!r}")

    def enabled(self, evaluation: EvaluationSettings) -> bool:
        """Whether a workflow config's ``eval`` block asks for this metric."""
        if self.switch is not None and not getattr(evaluation, self.switch):
            return False
        return not self.needs_truth or evaluation.truth

    def columns(self) -> list[dict]:
        """Its Table 1 columns as the manifest lists them: {key, title, higher_is_better, digits, best, metric, field}."""
        first = {"key": self.name, "title": self.title, "higher_is_better": self.higher_is_better, "digits": self.digits,
                 "best": None, "field": "mean"}
        return [{**column, "metric": self.name} for column in
                [first, *({**asdict(field), "field": field.key} for field in self.fields)]]

    def prompt_problem(self, prompt: str) -> str | None:
        """Why this metric cannot score ``prompt`` (None: it can)."""
        if self.check_prompt is None:
            return None
        check = _resolve(self.check_prompt)
        try:
            check(prompt)
        except ValueError as error:
            return str(error)
        return None

    def load_scorer(self, models: dict[str, str], device) -> RunScorer:
        """The scorer, its models loaded (``models``: ``models.*`` key -> folder or file, every declared key)."""
        missing = [key for key in self.models if key not in models]
        if missing:
            raise ConfigError(f"metric {self.name}: models.{missing[0]} is not given (it needs {', '.join(self.models)})")
        return _resolve(self.scorer)({key: models[key] for key in (*self.models, *self.optional_models) if key in models}, device)


def _resolve(target: str | Callable) -> Callable:
    """A function, or the one ``"module:function"`` names (imported now)."""
    if callable(target):
        return target
    module, _, function = target.partition(":")
    return getattr(importlib.import_module(module), function)


RESERVED = frozenset({"time", "fid", "runs", "method", "name", "r_precision"})
"""Table 1 keys that are not per-run metrics (the trainer's timer, FID over a method's renders, row labels)."""

METRICS: dict[str, Metric] = {}
"""Name -> metric, in registration order (Table 1's column order: built-in ones first)."""


def register_metric(metric: Metric) -> Metric:
    """Register a metric under its name; registering a name again with a different declaration is an error."""
    known = METRICS.get(metric.name)
    if known is not None and known != metric:
        raise ValueError(f"metric {metric.name!r} is already registered as {known}")
    METRICS[metric.name] = metric
    return metric


def metric(name: str) -> Metric:
    if name not in METRICS:
        raise ConfigError(f"unknown metric {name!r} (known: {', '.join(METRICS)}; a plugin under plugins: registers more)")
    return METRICS[name]


def enabled_metrics(evaluation: EvaluationSettings | dict | None) -> list[Metric]:
    """The metrics a config's ``eval`` block (typed, or as the config holds it) asks for, in column order."""
    if not isinstance(evaluation, EvaluationSettings):
        evaluation = from_dict(EvaluationSettings, evaluation or {}, "eval.")
    return [m for m in METRICS.values() if m.enabled(evaluation)]


register_metric(Metric("clip", "CLIP-L", True, 2, "segmentdreamer.evaluate.clip_score:clip_run_scorer", models=("clip",),
                       description="100 x cosine of CLIP ViT-L/14 image and prompt features, mean over the ring's views; "
                                   "the record also has R-precision among the prompt list's prompts"))
register_metric(Metric("ir", "IR", True, 3, "segmentdreamer.evaluate.image_reward:image_reward_run_scorer",
                       models=("image_reward",), optional_models=("image_reward_tokenizer",), switch="image_reward",
                       description="ImageReward v1.0, mean over the ring's views"))
register_metric(Metric(
    "truth_psnr", "PSNR vs truth", True, 2, "segmentdreamer.miniworld.truth_metrics:truth_scorer", needs_truth=True,
    fields=(Field("truth_ssim", "SSIM vs truth", True, 3), Field("truth_iou", "IoU vs truth", True, 3),
            Field("surface_distance", "Surface dist.", False, 3), Field("saturation_ratio", "Saturation / truth", False, 2, best=1.0),
            Field("multi_face", "Multi-face", False, 3)),
    check_prompt="segmentdreamer.miniworld.world:parse_caption",
    description="3D truth (eval.truth, the miniworld): the run's Gaussians against the scene its caption describes, on the "
                "ring (segmentdreamer/miniworld/truth_metrics.py)"))
