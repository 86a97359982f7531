"""Figures: labelled grids of renders (the ablations of paper Fig. 5-7) and metric plots, as PNG and PDF.

Pure functions from files to files: the workflow decides which renders go where.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import matplotlib
import numpy as np

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402


@dataclass(frozen=True)
class Panel:
    """One cell of a grid: an image file and its label (e.g. "mono, Ns=5, t_tau=150")."""

    image: str | Path
    label: str


def _save(figure, out: str | Path) -> list[Path]:
    """Write ``out`` with suffix .png and .pdf; returns both paths."""
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    paths = [out.with_suffix(".png"), out.with_suffix(".pdf")]
    for path in paths:
        figure.savefig(path, dpi=100, bbox_inches="tight")
    plt.close(figure)
    return paths


def save_png(figure, path: str | Path) -> Path:
    """Write ``figure`` to ``path`` as PNG atomically (a killed job leaves no half image) and close it."""
    from ..atomic import atomic_target

    with atomic_target(path) as tmp:
        figure.savefig(tmp, format="png")
    plt.close(figure)
    return Path(path)


def render_grid(panels: Sequence[Panel], columns: int, out: str | Path, title: str = "", panel_inches: float = 2.5) -> list[Path]:
    """A grid of labelled renders; a missing image is drawn as an empty, labelled panel ("missing")."""
    return _save(grid_figure(panels, columns, title, panel_inches), out)


def grid_figure(panels: Sequence[Panel], columns: int, title: str = "", panel_inches: float = 2.5):
    """The figure of :func:`render_grid`, laid out by matplotlib's constrained layout so that the title, the
    panel labels (several lines each, for grid points) and the images never overprint one another."""
    import imageio.v3 as iio

    if not panels:
        raise ValueError("render_grid needs at least one panel")
    rows = -(-len(panels) // columns)
    figure, axes = plt.subplots(rows, columns, figsize=(columns * panel_inches, rows * panel_inches + (0.4 if title else 0)),
                                squeeze=False, layout="constrained")
    for index, ax in enumerate(axes.flat):
        ax.set_xticks([])
        ax.set_yticks([])
        if index >= len(panels):
            ax.axis("off")
            continue
        panel = panels[index]
        if Path(panel.image).is_file():
            ax.imshow(iio.imread(panel.image))
            ax.set_title(panel.label, fontsize=8)
        else:
            ax.set_title(f"{panel.label} (missing)", fontsize=8, color="red")
    if title:
        figure.suptitle(title)
    return figure


def metric_plot(x: Sequence[float], series: dict[str, Sequence[float]], xlabel: str, ylabel: str, out: str | Path,
                title: str = "") -> list[Path]:
    """Lines of ``series`` (name -> values over ``x``), e.g. CLIP-L vs Ns per segmentation."""
    figure, ax = plt.subplots(figsize=(4.5, 3.2))
    for name, values in series.items():
        ax.plot(list(x), list(values), marker="o", label=name)
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    if title:
        ax.set_title(title)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    return _save(figure, out)


def per_prompt_plot(scores: dict[str, dict[str, float | Sequence[float]]], ylabel: str, out: str | Path, title: str = "") -> list[Path]:
    """Grouped bars: prompt id on x, one bar per method (scores[method][prompt_id]).

    A value may be a list (one per seed): the bar is their mean, with the sample standard deviation as an
    error bar and each seed's value as a dot."""
    methods = list(scores)
    prompts = sorted({p for values in scores.values() for p in values})
    width = 0.8 / max(len(methods), 1)
    figure, ax = plt.subplots(figsize=(max(4.0, 0.35 * len(prompts) * len(methods)), 3.2))
    for i, method in enumerate(methods):
        xs = [j + i * width for j in range(len(prompts))]
        values = [np.atleast_1d(np.asarray(scores[method].get(p, np.nan), dtype=float)) for p in prompts]
        spread = [v.std(ddof=1) if len(v) > 1 else np.nan for v in values]
        ax.bar(xs, [v.mean() for v in values], width=width, label=method,
                      yerr=None if np.isnan(spread).all() else spread, capsize=2, error_kw={"linewidth": 0.8})
        for x, v in zip(xs, values):
            if len(v) > 1:
                ax.plot([x] * len(v), v, ".", color="black", markersize=2.5, alpha=0.7)
    ax.set_xticks([j + 0.4 - width / 2 for j in range(len(prompts))], prompts, rotation=60, ha="right", fontsize=7)
    ax.set_ylabel(ylabel)
    if title:
        ax.set_title(title + (" (bars: mean over seeds, whiskers: std, dots: seeds)" if any(
            len(np.atleast_1d(v)) > 1 for values in scores.values() for v in values.values()) else ""))
    ax.legend(fontsize=7)
    return _save(figure, out)
