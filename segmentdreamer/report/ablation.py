"""An ablation (or gallery) figure from a manifest the workflow writes: a labelled render grid, the
figure's metric table, and an optional metric-vs-parameter plot (paper Figs. 5-7; docs/method.md, "Evaluation").

Manifest (JSON)::

    {"title": "...", "columns": 6, "panel_inches": 2.5, "view": "view_000.png",
     "panels": [{"label": "segmentation=mono, num_segments=5", "views": "<run>/views",
                 "clip": "<run>/clip.json", "ir": "<run>/ir.json" (optional),
                 "params": {"loss.num_segments": 5, ...}}, ...],
     "plot": {"x": "loss.num_segments", "series": ["loss.segmentation"]} or null}

Outputs beside ``out_prefix``: ``.png``/``.pdf`` (grid), ``_metrics.csv``/``_metrics.md``, and with a
plot ``_plot.png``/``_plot.pdf`` (without a plot spec: CLIP-L per panel as bars).
"""

from __future__ import annotations

import csv
import json
from collections import defaultdict
from pathlib import Path

from ..evaluate.metric import METRICS
from ..plan.layout import FIGURE_FILES, VIEW_FILE
from .figures import Panel, metric_plot, per_prompt_plot, render_grid

CLIP = METRICS["clip"].title
"""The metric the figures plot (their panels carry CLIP-L records; Table 1 has the rest)."""


def _mean_score(path: str | None) -> float | None:
    return json.loads(Path(path).read_text(encoding="utf-8"))["mean"] if path else None


def metric_rows(panels: list[dict]) -> list[dict]:
    """One row per panel: its label, parameters and the mean score of each metric present."""
    rows = []
    for panel in panels:
        row = {"label": panel["label"].replace("\n", ", "), **{k.split(".")[-1]: v for k, v in panel.get("params", {}).items()}}
        for name, metric in METRICS.items():  # any registered metric's record the panel names
            if panel.get(name):
                row[metric.title] = _mean_score(panel[name])
        rows.append(row)
    return rows


def _write_tables(rows: list[dict], out_prefix: Path) -> list[Path]:
    columns = list(dict.fromkeys(column for row in rows for column in row))
    csv_path, md_path = Path(f"{out_prefix}{FIGURE_FILES['csv']}"), Path(f"{out_prefix}{FIGURE_FILES['md']}")
    with open(csv_path, "w", newline="", encoding="utf-8") as handle:
        writer = csv.DictWriter(handle, fieldnames=columns)
        writer.writeheader()
        writer.writerows(rows)

    def cell(value):
        return "-" if value is None else f"{value:.3f}" if isinstance(value, float) else str(value)

    lines = ["| " + " | ".join(columns) + " |", "|" + "---|" * len(columns)]
    lines += ["| " + " | ".join(cell(row.get(column)) for column in columns) + " |" for row in rows]
    md_path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return [csv_path, md_path]


def _plot_stem(out_prefix: Path) -> Path:
    return Path(f"{out_prefix}{FIGURE_FILES['plot']}").with_suffix("")


def _plot(panels: list[dict], plot: dict, rows: list[dict], out_prefix: Path) -> list[Path]:
    """CLIP-L against ``plot["x"]``, one line per combination of the ``plot["series"]`` parameters."""
    series = plot.get("series", [])
    series_keys = series if isinstance(series, list) else [series]
    points: dict[str, dict] = defaultdict(dict)
    for panel, row in zip(panels, rows):
        params = panel["params"]
        name = ", ".join(f"{key.split('.')[-1]}={params[key]}" for key in series_keys) or "CLIP-L"  # one line per series
        points[name][params[plot["x"]]] = row.get(CLIP, float("nan"))
    xs = sorted({x for values in points.values() for x in values})
    series = {name: [values.get(x, float("nan")) for x in xs] for name, values in points.items()}
    return metric_plot(xs, series, plot["x"].split(".")[-1], CLIP, _plot_stem(out_prefix))


def write_ablation_figure(manifest_path: str | Path, out_prefix: str | Path) -> list[Path]:
    """Write the grid, its metric table and (if asked) the plot; returns every path written."""
    manifest = json.loads(Path(manifest_path).read_text(encoding="utf-8"))
    out_prefix = Path(out_prefix)
    panels = manifest["panels"]
    view = manifest.get("view", VIEW_FILE.format(index=0))
    grid = [Panel(Path(p["views"]) / view, p["label"]) for p in panels]
    paths = render_grid(grid, manifest.get("columns") or len(grid), out_prefix, manifest.get("title", ""),
                        manifest.get("panel_inches", 2.5))
    rows = metric_rows(panels)
    paths += _write_tables(rows, out_prefix)
    if manifest.get("plot"):
        paths += _plot(panels, manifest["plot"], rows, out_prefix)
    else:
        scores = {CLIP: {row["label"]: row.get(CLIP, float("nan")) for row in rows}}
        paths += per_prompt_plot(scores, CLIP, _plot_stem(out_prefix), manifest.get("title", ""))
    return paths
