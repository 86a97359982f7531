"""Table 1 from evaluation results: aggregate per-run JSON files into one row per method, with a caption.

The input is a manifest (JSON) the workflow writes, one entry per method:

    {"prompt_set": "dreamfusion40",
     "methods": {"sctd": {"clip": ["<run>/clip.json", ...], "ir": [...], "timing": ["<run>/timing.json", ...],
                          "fid": "<method>/fid.json"}, ...},
     "metric_columns": [{"key": "clip", "title": "CLIP-L", "higher_is_better": true, "digits": 2}, ...]}

Each metric column (the registered metrics the config enables, segmentdreamer/evaluate/metric.py; CLIP-L and IR
built in): the mean over runs of each run's record ``mean``; Time: the mean of ``timing.json``
minutes; FID: the method's value; with ``"r_precision": true`` in an entry (config ``eval.r_precision``) also
CLIP R-precision, the mean over runs of each run's fraction of views retrieving their own prompt. Missing entries stay empty (a dash in the table), never zero.

With several seeds (config ``seeds: [0, 1, 2]``) each method entry also has ``"seeds": {"0": {"clip": [...],
"ir": [...], "timing": [...], "fid": "<method>/seed0.json"}, ...}``: every column is then computed per seed as
above and reported as the mean +- the sample standard deviation (ddof 1) over seeds, the per-seed values in
the CSV; the FID of all seeds' renders pooled stays in the CSV as ``fid_all_seeds``.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from ..atomic import write_text
from ..evaluate.metric import METRICS
from ..plan.layout import TABLE1_FILES
from .figures import per_prompt_plot
from .table import FID, OPTIONAL_COLUMNS, TIME, Column, Table

TIMER_AND_FID = (TIME, FID)
"""Table 1's columns that are not per-run metrics: the trainer's timer, FID over a method's renders."""

OTHER_PIPELINES = {"sds": "DreamFusion", "cds": "Consistent3D"}
"""Methods whose paper rows came from their own pipelines; ours all run the same 3DGS recipe (docs/method.md, "Losses")."""


def _load(path: str | Path) -> dict:
    return json.loads(Path(path).read_text(encoding="utf-8"))


def _mean_of(paths: list[str], key: str) -> tuple[float | None, int]:
    values = [_load(p)[key] for p in paths]
    return (float(np.mean(values)) if values else None), len(values)


def metric_columns(manifest: dict) -> list[dict]:
    """The manifest's metric columns, {key, title, higher_is_better, digits, best, metric, field} each (a manifest
    without them: the paper's CLIP-L and IR, then every other registered metric it has files of)."""
    listed = manifest.get("metric_columns")
    if listed is None:
        present = {key for entry in manifest["methods"].values() for key in entry}
        listed = [column for m in METRICS.values() if m.name in ("clip", "ir") or m.name in present for column in m.columns()]
    return listed


def _mean_field(paths: list[str], field: str) -> float | None:
    """The mean over runs of ``record[field]``, runs without a value (None) left out; None when no run has one."""
    values = [value for value in (_load(p).get(field) for p in paths) if value is not None]
    return float(np.mean(values)) if values else None


def method_values(entry: dict, columns: list[dict] | None = None) -> dict:
    """One method's (or one seed's) column values from the files its manifest entry names."""
    columns = metric_columns({"methods": {"": entry}}) if columns is None else columns
    metrics = {c["key"]: _mean_field(entry.get(c["metric"], []), c["field"]) for c in columns}
    runs = max((len(entry.get(c["metric"], [])) for c in columns), default=0)
    fid = _load(entry["fid"]) if entry.get("fid") else None
    r_precision = _mean_of(entry.get("clip", []), "r_precision")[0] if entry.get("r_precision") else None
    timings = [_load(p) for p in entry.get("timing", [])]
    return {**metrics,
            "time": float(np.mean([t["minutes"] for t in timings])) if timings else None,
            "assets_in_process": max((t.get("assets_in_process", 1) for t in timings), default=1),
            "fid": fid["value"] if fid else None, "r_precision": r_precision, "runs": runs, "fid_record": fid}


def seed_spread(per_seed: dict[str, dict], keys: tuple[str, ...]) -> dict:
    """Per column key: the mean and sample std over seeds (None where any seed lacks the value) and the per-seed values."""
    out: dict = {"per_seed": {seed: {key: values[key] for key in keys} for seed, values in per_seed.items()}}
    for key in keys:
        values = [v[key] for v in per_seed.values()]
        present = all(v is not None for v in values) and len(values) > 1
        out[key] = float(np.mean(values)) if present else None
        out[f"{key}_std"] = float(np.std(values, ddof=1)) if present else None
    return out


def aggregate(manifest: dict) -> tuple[list[dict], dict]:
    """(rows for :class:`Table`, facts for the caption)."""
    rows, facts = [], {"runs": {}, "views": set(), "fid": {}, "names": {}, "seeds": [], "clip_model": manifest.get("clip_model")}
    columns = metric_columns(manifest)
    keys = tuple(c["key"] for c in columns) + tuple(column.key for column in TIMER_AND_FID + OPTIONAL_COLUMNS)
    for method, entry in manifest["methods"].items():
        pooled = method_values(entry, columns)
        facts["runs"][method] = pooled["runs"]
        facts["views"].update(len(_load(p)["scores"]) for p in entry.get("clip", []))
        facts["assets_in_process"] = max(facts.get("assets_in_process", 1), pooled["assets_in_process"])
        if pooled["fid_record"]:
            facts["fid"][method] = pooled["fid_record"]
        facts["names"][method] = entry.get("display_name", method)
        facts["r_precision"] = facts.get("r_precision") or bool(entry.get("r_precision"))
        row = {"method": method, "name": facts["names"][method], **{key: pooled[key] for key in keys}}
        if entry.get("seeds"):
            facts["seeds"] = list(entry["seeds"])
            row.update(seed_spread({seed: method_values({**part, "r_precision": entry.get("r_precision")}, columns)
                                    for seed, part in entry["seeds"].items()}, keys))
            row["fid_all_seeds"] = pooled["fid"]
        rows.append(row)
    return rows, facts


def caption(prompt_set: str, facts: dict) -> str:
    """Image counts, implementation names, and which rows differ from the paper's pipelines."""
    parts = [f"Table 1 on {prompt_set}: mean over prompts of the mean over views."]
    if facts["seeds"]:
        parts.append(f"Each value: mean +- sample standard deviation over seeds {', '.join(facts['seeds'])} "
                     "(every column, FID included, computed per seed; the per-seed values are in the CSV).")
    views = sorted(facts["views"])
    if views:
        parts.append(f"Views per asset: {', '.join(map(str, views))}.")
    parts.append("Runs per method: " + ", ".join(f"{facts['names'].get(m, m)} {n}" for m, n in facts["runs"].items()) + ".")
    implementations = {f["implementation"] for f in facts["fid"].values()}
    for method, fid in facts["fid"].items():
        parts.append(f"FID of {method}: {fid['generated_images']} renders vs {fid['reference_images']} reference images.")
    if implementations:
        parts.append("FID implementation: " + "; ".join(sorted(implementations)) + ".")
    parts.append(f"CLIP-L: {facts.get('clip_model') or 'models.clip'}, 100 x cosine. Time: minutes per asset from the "
                 "trainer's timer.")
    if facts.get("assets_in_process", 1) > 1:
        parts.append(f"Some runs trained up to {facts['assets_in_process']} per process (assets_per_job): their Time is the "
                     "shared process's wall clock, not their share of the GPU (timing.json: gpu_minutes_share).")
    if facts.get("r_precision"):
        parts.append("CLIP R-precision: the fraction of views whose own prompt CLIP-L ranks first among the prompt set's prompts.")
    others = [f"{facts['names'][m]} ({p} in the paper)" for m, p in OTHER_PIPELINES.items() if m in facts["runs"]]
    if others:
        parts.append("Here every method runs our one 3DGS pipeline; the paper's rows for " + ", ".join(others)
                     + " came from their own pipelines, and CDS uses our negative prompt as its unconditional branch with g = 30.")
    return " ".join(parts)


def overview_page(manifest: dict, table: Table, plot: Path) -> str:
    """One self-contained page for the report: Table 1, the per-prompt plot, and every run's turntable playing,
    a row per (prompt, seed) and a column per method."""
    import html

    from .html_page import data_uri, page

    methods = manifest["methods"]
    runs = {method: {(t["prompt_id"], t["seed"]): t["video"] for t in entry.get("turntables", [])} for method, entry in methods.items()}
    keys = list(dict.fromkeys(key for videos in runs.values() for key in videos))
    head = "<tr><th>prompt, seed</th>" + "".join(f"<th>{html.escape(e.get('display_name', m))}</th>" for m, e in methods.items()) + "</tr>"
    rows = []
    for prompt_id, seed in keys:
        cells = []
        for method in methods:
            video = runs[method].get((prompt_id, seed))
            cells.append(f"<td><video src='{data_uri(video, 'video/mp4')}' autoplay loop muted playsinline width='160'></video></td>"
                         if video and Path(video).is_file() else "<td>–</td>")
        rows.append(f"<tr><td>{html.escape(prompt_id)}, seed {seed}</td>{''.join(cells)}</tr>")
    title = f"Table 1: {manifest.get('prompt_set', '?')}"
    return page(title, f"<h2>{html.escape(title)}</h2>{table.to_html()}<h3>CLIP-L per prompt</h3>"
                f"<img id='per-prompt' src='{data_uri(plot, 'image/png')}' alt='CLIP-L per prompt'>"
                f"<h3>Turntables</h3><table id='turntables'>{head}{''.join(rows)}</table>",
                style="#turntables td{padding:2px;text-align:center} .caption{max-width:60em;font-size:13px}")


def write_table1(manifest_path: str | Path, out_prefix: str | Path) -> list[Path]:
    """Write ``<out_prefix>.csv``, ``.md``, ``.tex``, the per-prompt plot and the overview ``.html``; returns their paths."""
    manifest = _load(manifest_path)
    rows, facts = aggregate(manifest)
    table = Table(rows, caption=caption(manifest.get("prompt_set", "?"), facts), seeds=facts["seeds"],
                  base_columns=tuple(map(Column.listed, metric_columns(manifest))) + TIMER_AND_FID)
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
    overview = Path(f"{out_prefix}{TABLE1_FILES['html']}")
    write_text(overview_page(manifest, table, Path(f"{out_prefix}{TABLE1_FILES['plot']}")), overview)
    return paths + [overview]


def per_prompt_scores(manifest: dict) -> dict[str, dict[str, list[float]]]:
    """CLIP-L per method and prompt id: the runs' means over views, one per seed of the prompt."""
    scores: dict[str, dict[str, list[float]]] = {}
    for method, entry in manifest["methods"].items():
        by_prompt: dict[str, list[float]] = {}
        for path in entry.get("clip", []):
            record = _load(path)
            by_prompt.setdefault(record.get("prompt_id", Path(path).parent.parent.name), []).append(float(record["mean"]))
        scores[entry.get("display_name", method)] = by_prompt
    return scores
