"""What the table and figure jobs aggregate: JSON manifests listing each run's result files.

The report jobs (``segmentdreamer table`` / ``figure``) read only their manifest and the files it names,
so they need no knowledge of the plan; the workflow writes one manifest per table and figure.
"""

from __future__ import annotations

from ..evaluate.metric import enabled_metrics
from ..losses.registry import settings_class
from .experiment import Experiment
from .runs import Run


def metric_files(experiment: Experiment, runs: list[Run]) -> dict[str, list[str]]:
    """Per-run result files: each enabled metric's records (by metric name) and the trainer's timing."""
    layout = experiment.layout
    files = {m.name: [layout.metric_file(m.name, r) for r in runs] for m in enabled_metrics(experiment.evaluation)}
    return {**files, "timing": [layout.run_file("timing", r) for r in runs]}


def metric_columns(experiment: Experiment) -> list[dict]:
    """Table 1's per-run metric columns, in order: each enabled metric's (key, title, direction, digits, and which
    record field of which metric's files they average; evaluate/metric.py ``Metric.columns``)."""
    return [column for m in enabled_metrics(experiment.evaluation) for column in m.columns()]


def table1_inputs(manifest: dict) -> list[str]:
    """Every file a Table 1 manifest names (each method's and each seed's records, timings, FID, turntables)."""
    keys = list(dict.fromkeys(column["metric"] for column in manifest["metric_columns"])) + ["timing"]
    files = []
    for entry in manifest["methods"].values():
        for part in [entry, *entry.get("seeds", {}).values()]:
            files += [f for key in keys for f in part.get(key, [])] + [part["fid"]]
        files += [turntable["video"] for turntable in entry.get("turntables", [])]
    return files


def table1_manifest(experiment: Experiment, prompt_set: str) -> dict:
    """What ``segmentdreamer table`` aggregates: per method, every run's files, the method's FID and its name;
    with 2+ config seeds also ``seeds``: per seed the same files of that seed's runs and its own FID."""
    methods = {}
    for variant in experiment.table1_variants:
        method = experiment.variants[variant].get("method", "sctd")
        runs = experiment.runs(prompt_set, variant)
        methods[variant] = {**metric_files(experiment, runs), "fid": experiment.layout.fid(prompt_set, variant),
                            "method": method, "display_name": settings_class(method).display_name or method,
                            "r_precision": experiment.evaluation.r_precision,
                            "turntables": [{"prompt_id": r.prompt_id, "seed": r.seed, "video": experiment.layout.run_file("turntable", r)}
                                           for r in runs]}
        if experiment.reports_seed_spread:
            methods[variant]["seeds"] = {
                str(seed): {**metric_files(experiment, [r for r in runs if r.seed == seed]),
                            "fid": experiment.layout.fid_seed(prompt_set, variant, seed)}
                for seed in experiment.seed_list}
    clip = "tiny random-weight CLIP (tiny_models: true)" if experiment.config.get("tiny_models") else experiment.model("clip")
    return {"prompt_set": prompt_set, "methods": methods, "clip_model": clip, "metric_columns": metric_columns(experiment)}


def known_answer_manifest(experiment: Experiment, prompt_set: str) -> dict:
    """What the known-answer table aggregates: every Table 1 run's scores and progress log, with its method's name."""
    runs = []
    for variant in experiment.table1_variants:
        method = experiment.variants[variant].get("method", "sctd")
        name = settings_class(method).display_name or method
        label = name if variant == method else f"{name}: {variant}"  # two variants of one method stay apart
        runs += [{"variant": variant, "method": method, "label": label, "prompt_id": run.prompt_id, "seed": run.seed,
                  "scores": experiment.layout.run_file("known_answer", run), "progress": experiment.layout.run_file("progress", run),
                  "comparison": experiment.layout.run_file("comparison", run)}
                 for run in experiment.runs(prompt_set, variant)]
    return {"prompt_set": prompt_set, "runs": runs}


def figure_manifest(experiment: Experiment, name: str) -> dict:
    """What ``segmentdreamer figure`` draws for an ablation: one labelled panel per run."""
    ablation = experiment.ablations[name]
    runs = experiment.ablation_runs(name)  # variant-major: a variant's prompts (and seeds) sit side by side
    per_variant = len(runs) // len(ablation.variants)
    panels = [_panel(experiment, run, ablation.labels[run.variant] + (f" ({run.prompt_id})" if per_variant > 1 else ""),
                     ablation.params.get(run.variant, {})) for run in runs]
    return {"title": ablation.title, "columns": ablation.columns * per_variant, "panels": panels, "plot": ablation.plot,
            **_figure_style(experiment)}


def gallery_manifest(experiment: Experiment) -> dict:
    runs = experiment.gallery_runs()
    return {"title": "Gallery (Fig. 1)", "columns": min(len(runs), 5), "plot": None, **_figure_style(experiment),
            "panels": [_panel(experiment, run, run.prompt_id, {}) for run in runs]}


def panel_inputs(manifest: dict) -> list[str]:
    """The files a figure job reads: every panel's render folder and CLIP score."""
    return [panel[key] for panel in manifest["panels"] for key in ("views", "clip")]


def _panel(experiment: Experiment, run: Run, label: str, params: dict) -> dict:
    """A figure panel: the run's renders and its CLIP-L (ImageReward stays a Table 1 column)."""
    layout = experiment.layout
    return {"label": label, "views": layout.run_file("views", run), "clip": layout.metric_file("clip", run), "params": params}


def _figure_style(experiment: Experiment) -> dict:
    from .layout import VIEW_FILE

    figures = experiment.config.get("figures", {})
    return {"view": VIEW_FILE.format(index=figures.get("view", 0)), "panel_inches": figures.get("panel_inches", 2.5)}
