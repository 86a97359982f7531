"""The known-answer table and learning curves (the demo, workflow/demo.yaml): one row per method.

Input: a manifest ``{"prompt_set": str, "runs": [{"method", "label", "prompt_id", "seed", "scores", "progress"}]}``
with each run's ``known_answer.json``, ``progress.jsonl`` and side-by-side turntable paths. Output:
``PREFIX.csv`` (every run), ``PREFIX.md`` (mean per method: PSNR, SSIM, IoU, and the start's PSNR),
``PREFIX_curve.png`` (ring PSNR against iteration per method, from the trainer's progress log, the start
dashed) and ``PREFIX.html``, one self-contained page with all three (the table, the curves, each method's
ground truth | learned turntable), which the Snakemake report shows as the demo's overview.
"""

from __future__ import annotations

import html
import json
from pathlib import Path

import pandas as pd

from ..atomic import write_text
from .html_page import data_uri, page

METRICS = ("psnr", "ssim", "iou")


def load_rows(manifest: dict) -> pd.DataFrame:
    rows = []
    for run in manifest["runs"]:
        scores = json.loads(Path(run["scores"]).read_text(encoding="utf-8"))
        rows.append({"method": run["label"], "variant": run["variant"], "prompt_id": run["prompt_id"], "seed": run["seed"],
                     **{key: scores[key] for key in METRICS}, "start_psnr": scores["start"]["psnr"], "views": scores["views"]})
    return pd.DataFrame(rows)


def load_curves(manifest: dict) -> dict[str, pd.DataFrame]:
    """label -> DataFrame(iteration, psnr, ssim, iou) averaged over the label's runs."""
    curves: dict[str, list[pd.DataFrame]] = {}
    for run in manifest["runs"]:
        path = Path(run["progress"])
        if path.is_file():
            frame = pd.read_json(path, lines=True)
            curves.setdefault(run["label"], []).append(frame)
    return {label: pd.concat(frames).groupby("iteration", as_index=False).mean(numeric_only=True) for label, frames in curves.items()}


HEADER = ("method", "PSNR (dB)", "SSIM", "IoU", "start PSNR (dB)", "runs")


def summary_rows(table: pd.DataFrame) -> list[tuple[str, ...]]:
    """Per method (in manifest order): mean PSNR, SSIM, IoU and start PSNR, formatted, and the run count; with
    several runs (seeds) each score is ``mean +- sample standard deviation`` over them."""
    grouped = table.groupby("method", sort=False)
    summary = grouped.agg(psnr=("psnr", "mean"), ssim=("ssim", "mean"), iou=("iou", "mean"), start_psnr=("start_psnr", "mean"),
                          runs=("psnr", "size"))
    spread = grouped[["psnr", "ssim", "iou"]].std(ddof=1)

    def cell(method, key: str, digits: int) -> str:
        mean, runs = summary.at[method, key], int(summary.at[method, "runs"])
        return f"{mean:.{digits}f}" + (f" +- {spread.at[method, key]:.{digits}f}" if runs > 1 else "")

    return [(str(method), cell(method, "psnr", 2), cell(method, "ssim", 3), cell(method, "iou", 3),
             f"{row.start_psnr:.2f}", str(int(row.runs))) for method, row in summary.iterrows()]


def markdown(table: pd.DataFrame) -> str:
    lines = ["| " + " | ".join(HEADER) + " |", "|" + "---|" * len(HEADER)]
    lines += ["| " + " | ".join(row) + " |" for row in summary_rows(table)]
    return "\n".join(lines) + "\n"


def first_run_per_method(manifest: dict) -> list[dict]:
    """One run per method label (the first prompt and seed): the page's size stays bounded by the method count."""
    seen: dict[str, dict] = {}
    for run in manifest["runs"]:
        seen.setdefault(run["label"], run)
    return list(seen.values())


def overview_html(manifest: dict, table: pd.DataFrame, curve: Path) -> str:
    """One self-contained page: the table, the learning curves and each method's side-by-side turntable."""
    head = "".join(f"<th>{html.escape(h)}</th>" for h in HEADER)
    body = "".join("<tr>" + "".join(f"<td>{html.escape(cell)}</td>" for cell in row) + "</tr>" for row in summary_rows(table))
    turntables = "".join(
        f'<figure><img src="{data_uri(run["comparison"], "image/gif")}" alt="{html.escape(run["label"])}">'
        f"<figcaption>{html.escape(run['label'])} ({html.escape(run['prompt_id'])}, seed {run['seed']})</figcaption></figure>"
        for run in first_run_per_method(manifest) if Path(run["comparison"]).is_file())
    title = f"Known-answer distillation: {manifest['prompt_set']}"
    return page(title, f"<h2>{html.escape(title)}</h2>"
                "<p>Every method trained from a grey sphere under the exact denoiser of a ground-truth scene; PSNR / SSIM / "
                f"silhouette IoU over the evaluation ring against that scene.</p><table id='known-answer'><tr>{head}</tr>{body}"
                f"</table><h3>Learning curves</h3><img id='curve' src='{data_uri(curve, 'image/png')}' alt='PSNR vs iteration'>"
                f"<h3>Turntables: ground truth | learned</h3><div id='turntables'>{turntables}</div>",
                style="figure img{width:256px;image-rendering:pixelated}")


def write_curve_plot(curves: dict[str, pd.DataFrame], start_psnr: float, path: Path) -> None:
    import matplotlib.pyplot as plt

    from .figures import save_png  # importing it sets the Agg backend

    figure, axis = plt.subplots(figsize=(8.0, 3.6), dpi=120)
    for label, frame in curves.items():
        axis.plot(frame["iteration"], frame["psnr"], marker="o", markersize=3, label=label)
    axis.axhline(start_psnr, color="grey", linestyle="--", linewidth=1, label="start (sphere)")
    axis.set(xlabel="iteration", ylabel="ring PSNR vs ground truth (dB)", title="Known-answer learning curves")
    axis.grid(alpha=0.3)
    axis.legend(fontsize=7, loc="center left", bbox_to_anchor=(1.02, 0.5))
    figure.tight_layout()
    save_png(figure, path)


def write_known_answer_table(manifest_path: str | Path, prefix: str | Path) -> list[Path]:
    """Write PREFIX.csv, PREFIX.md, PREFIX_curve.png and PREFIX.html from the manifest (the module docstring)."""
    manifest = json.loads(Path(manifest_path).read_text(encoding="utf-8"))
    table = load_rows(manifest)
    prefix = Path(prefix)
    prefix.parent.mkdir(parents=True, exist_ok=True)
    paths = [prefix.with_name(prefix.name + suffix) for suffix in (".csv", ".md", "_curve.png", ".html")]
    write_text(table.to_csv(index=False, float_format="%.4f"), paths[0])
    write_text(markdown(table), paths[1])
    write_curve_plot(load_curves(manifest), float(table["start_psnr"].mean()), paths[2])
    write_text(overview_html(manifest, table, paths[2]), paths[3])
    return paths
