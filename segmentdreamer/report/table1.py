"""Table 1 from evaluation results: aggregate per-run JSON files into one row per method, with a caption.

The input is a manifest (JSON) the workflow writes, one entry per method:

    {"prompt_set": "dreamfusion40",
     "methods": {"sctd": {"clip": ["<run>/clip.json", ...], "ir": [...], "timing": ["<run>/timing.json", ...],
                          "fid": "<method>/fid.json"}, ...}}

CLIP-L and IR: the mean over runs of each run's mean over views; Time: the mean of ``timing.json``
minutes; FID: the method's value. Missing entries stay empty (a dash in the table), never zero.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from ..atomic import write_text
from ..plan.layout import TABLE1_FILES
from .figures import per_prompt_plot
from .table import Table

OTHER_PIPELINES = {"sds": "DreamFusion", "cds": "Consistent3D"}
"""Methods whose paper rows came from their own pipelines; ours all run the same 3DGS recipe (docs/method.md, "Losses")."""


def _load(path: str | Path) -> dict:
    return json.loads(Path(path).read_text(encoding="utf-8"))


def _mean_of(paths: list[str], key: str) -> tuple[float | None, int]:
    values = [_load(p)[key] for p in paths]
    return (float(np.mean(values)) if values else None), len(values)


def aggregate(manifest: dict) -> tuple[list[dict], dict]:
    """(rows for :class:`Table`, facts for the caption)."""
    rows, facts = [], {"runs": {}, "views": set(), "fid": {}, "names": {}}
    for method, entry in manifest["methods"].items():
        clip, runs = _mean_of(entry.get("clip", []), "mean")
        ir, _ = _mean_of(entry.get("ir", []), "mean")
        time, _ = _mean_of(entry.get("timing", []), "minutes")
        fid = _load(entry["fid"]) if entry.get("fid") else None
        facts["runs"][method] = runs
        facts["views"].update(len(_load(p)["scores"]) for p in entry.get("clip", []))
        if fid:
            facts["fid"][method] = fid
        facts["names"][method] = entry.get("display_name", method)
        rows.append({"method": method, "name": facts["names"][method], "clip": clip, "ir": ir, "time": time, "fid": fid["value"] if fid else None})
    return rows, facts


def caption(prompt_set: str, facts: dict) -> str:
    """Image counts, implementation names, and which rows differ from the paper's pipelines."""
    parts = [f"Table 1 on {prompt_set}: mean over prompts of the mean over views."]
    views = sorted(facts["views"])
    if views:
        parts.append(f"Views per asset: {', '.join(map(str, views))}.")
    parts.append("Runs per method: " + ", ".join(f"{facts['names'].get(m, m)} {n}" for m, n in facts["runs"].items()) + ".")
    implementations = {f["implementation"] for f in facts["fid"].values()}
    for method, fid in facts["fid"].items():
        parts.append(f"FID of {method}: {fid['generated_images']} renders vs {fid['reference_images']} reference images.")
    if implementations:
        parts.append("FID implementation: " + "; ".join(sorted(implementations)) + ".")
    parts.append("CLIP-L: openai/clip-vit-large-patch14, 100 x cosine. Time: minutes per asset from the trainer's timer.")
    others = [f"{facts['names'][m]} ({p} in the paper)" for m, p in OTHER_PIPELINES.items() if m in facts["runs"]]
    if others:
        parts.append("Here every method runs our one 3DGS pipeline; the paper's rows for " + ", ".join(others)
                     + " came from their own pipelines, and CDS uses our negative prompt as its unconditional branch with g = 30.")
    return " ".join(parts)


def write_table1(manifest_path: str | Path, out_prefix: str | Path) -> list[Path]:
    """Write ``<out_prefix>.csv``, ``.md`` and ``.tex``; returns their paths."""
    manifest = _load(manifest_path)
    rows, facts = aggregate(manifest)
    table = Table(rows, caption=caption(manifest.get("prompt_set", "?"), facts))
    out_prefix = Path(out_prefix)
    out_prefix.parent.mkdir(parents=True, exist_ok=True)
    paths = []
    for role, text in (("csv", table.to_csv()), ("md", table.to_markdown()), ("tex", table.to_latex())):
        path = Path(f"{out_prefix}{TABLE1_FILES[role]}")
        write_text(text, path)
        paths.append(path)
    plot_stem = Path(f"{out_prefix}{TABLE1_FILES['plot']}").with_suffix("")
    paths += per_prompt_plot(per_prompt_scores(manifest), "CLIP-L", plot_stem,
                             f"CLIP-L per prompt ({manifest.get('prompt_set', '?')})")
    return paths


def per_prompt_scores(manifest: dict) -> dict[str, dict[str, float]]:
    """CLIP-L per method and prompt id (mean over each run's views; seeds of one prompt averaged)."""
    scores: dict[str, dict[str, float]] = {}
    for method, entry in manifest["methods"].items():
        by_prompt: dict[str, list[float]] = {}
        for path in entry.get("clip", []):
            record = _load(path)
            by_prompt.setdefault(record.get("prompt_id", Path(path).parent.parent.name), []).append(record["mean"])
        scores[entry.get("display_name", method)] = {p: float(np.mean(v)) for p, v in by_prompt.items()}
    return scores
