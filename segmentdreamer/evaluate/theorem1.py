"""Theorem 1, measured: the distillation error of a consistency target against the exact ODE solution.

Theorem 1 of the paper bounds SCTD's distillation error by O(dt) (s_{m+1} - s_m), against CDS's O(dt) T and
GCS's O(dt) (T - e): a consistency function distilled with an ODE solver of step dt inherits the solver's
error accumulated over the stretch it maps across (a perfectly trained f equals the chained solver steps).
Under the analytic prior (prior/analytic.py) both sides are computable: the chained DDIM steps of size dt
(what a perfect consistency function distilled with that solver returns) and the exact solution
(``solve_ode``, 4000 second-order steps). So this module measures

    error(t -> target) = mean over x_t of || DDIM_dt(x_t: t -> target) - ODE(x_t: t -> target) || / sqrt(D)

with x_t = a_t z + s_t eps, z from the mixture, t uniform in [20, 980), and target = the start s_m of the
segment holding t (SCTD, uniform segmentation into Ns, and the official code's ``mono`` segmentation,
``losses/segments.py``), 0 (CDS: to the data end) or e = 20 (GCS: to its small end time). Per (Ns, dt): the
mean error; the table and the log-log plot of error against the mean segment length (960 / Ns) with the
fitted slope (uniform rows) beside the bound's slope 1.
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pandas as pd
import torch

from ..losses.segments import MAX_EDGE, MIN_EDGE, segment_edges, segment_start
from ..prior.analytic import GaussianMixture, ddim_step, solve_ode
from ..prior.schedule import NoiseSchedule

DEFAULT_MIXTURE = GaussianMixture.of([[1.2, -0.4, 0.6, 0.0], [-0.8, 0.9, -0.3, 0.5], [0.2, 0.3, -1.0, -0.7]],
                                     [0.25, 0.4, 0.15], [0.3, 0.5, 0.2])
"""Three well-separated modes in 4 dimensions (the latent of one 1 x 1 SD pixel), unequal widths and weights."""
GCS_END = MIN_EDGE
"""GCS's end time e (its targets map to e = the lowest trained timestep)."""
UNIFORM, MONO = "SCTD (segment start)", "SCTD mono (segment start)"
"""The two segmentations' row labels (``target`` column)."""


def chained_ddim(mixture: GaussianMixture, x: torch.Tensor, schedule: NoiseSchedule, t: int, target: int, dt: int) -> torch.Tensor:
    """DDIM steps of dt timesteps (the last one shorter) from t down to target, with the exact eps*."""
    abar, state, current = schedule.alphas_cumprod, x, t
    while current > target:
        nxt = max(target, current - dt)
        state = ddim_step(mixture, state, float(abar[current].sqrt()), float(abar[nxt].sqrt()))
        current = nxt
    return state


def targets_of(t: int, num_segments, mono_segments=()) -> dict[tuple[str, int], int]:
    """(kind, Ns) -> the timestep a consistency target at t maps to, for SCTD per Ns (uniform; mono with the
    default t_tau = 150), CDS and GCS."""
    targets = {(UNIFORM, ns): segment_start(segment_edges("uniform", ns), t) for ns in num_segments}
    targets.update({(MONO, ns): segment_start(segment_edges("mono", ns), t) for ns in mono_segments})
    targets[("CDS (to 0)", 1)] = 0
    targets[(f"GCS (to e = {GCS_END})", 1)] = GCS_END
    return targets


def measure(mixture: GaussianMixture = DEFAULT_MIXTURE, num_segments=(1, 2, 4, 5, 8, 10, 20), solver_steps=(10, 20, 40),
            timesteps: int = 24, samples: int = 128, seed: int = 0, mono_segments=(2, 4, 5, 8)) -> pd.DataFrame:
    """One row per (target kind, Ns, dt): the mean over ``timesteps`` t's (evenly spread in (20, 980)) of the
    per-dimension RMS error of the chained DDIM jump against the exact solution, on the same x_t per t."""
    schedule = NoiseSchedule.scaled_linear()
    abar = schedule.alphas_cumprod
    generator = torch.Generator().manual_seed(seed)
    errors: dict[tuple[str, int, int], list[float]] = {}
    jumps: dict[tuple[str, int], list[int]] = {}
    for t in np.linspace(MIN_EDGE + 1, MAX_EDGE - 1, timesteps).round().astype(int).tolist():
        a = float(abar[t].sqrt())
        z = mixture.sample(samples, generator)
        x = a * z + math.sqrt(1 - a * a) * torch.randn(z.shape, generator=generator, dtype=z.dtype)
        exact: dict[int, torch.Tensor] = {}
        for (kind, ns), target in targets_of(t, num_segments, mono_segments).items():
            jumps.setdefault((kind, ns), []).append(t - target)
            if target not in exact:
                exact[target] = solve_ode(mixture, x, a, float(abar[target].sqrt()), steps=max(200, 2 * (t - target)))
            for dt in solver_steps:
                approx = chained_ddim(mixture, x, schedule, t, target, dt)
                error = float((approx - exact[target]).norm(dim=1).mean()) / math.sqrt(mixture.dim)
                errors.setdefault((kind, ns, dt), []).append(error)
    return pd.DataFrame([{"target": kind, "num_segments": ns,
                          "segment_length": (MAX_EDGE - MIN_EDGE) / ns if kind.startswith("SCTD") else
                          float(1000 - (0 if kind.startswith("CDS") else GCS_END)),
                          "mean_jump": float(np.mean(jumps[(kind, ns)])), "dt": dt, "error": float(np.mean(values))}
                         for (kind, ns, dt), values in errors.items()])


def fitted_slopes(table: pd.DataFrame, against: str = "segment_length") -> dict[int, float]:
    """Per dt: the least-squares slope of log(error) on log(``against``) over SCTD's rows.

    ``segment_length`` is the theorem's variable; ``mean_jump`` (the mean of t - s_m over the sampled t's) is
    what a finite sample of t's actually spans, the sharper check when few t's are drawn.
    """
    sctd = table[table["target"] == UNIFORM]
    return {int(dt): float(np.polyfit(np.log(group[against]), np.log(group["error"]), 1)[0])
            for dt, group in sctd.groupby("dt")}


def error_of(table: pd.DataFrame, target: str, dt: int, num_segments: int = 1) -> float:
    """The mean error of one row: ``target`` a row label (UNIFORM, MONO) or the prefix "CDS" / "GCS"."""
    rows = table[(table["target"] == target) | (table["target"].str.startswith(target) & ~table["target"].str.startswith("SCTD"))]
    rows = rows[(rows["dt"] == dt) & (rows["num_segments"] == num_segments)]
    if len(rows) != 1:
        raise KeyError(f"theorem1: no single row for {target!r}, dt {dt}, Ns {num_segments}")
    return float(rows["error"].iloc[0])


def summary_lines(table: pd.DataFrame, slopes: dict[int, float]) -> list[str]:
    """The Markdown table: per dt the fitted slope and the errors at a middle Ns (uniform and mono), CDS, GCS."""
    uniform = sorted(table.loc[table["target"] == UNIFORM, "num_segments"].unique())
    mono = set(table.loc[table["target"] == MONO, "num_segments"])
    both = [ns for ns in uniform if ns in mono]
    middle = int(both[len(both) // 2] if both else uniform[len(uniform) // 2])
    with_mono = middle in mono
    header = f"| dt | fitted slope of log error vs log segment length (bound: 1) | SCTD Ns={middle} |"
    header += f" SCTD mono Ns={middle} |" * with_mono + " CDS | GCS |"
    lines = [header, "|---|---|---|" + "---|" * with_mono + "---|---|"]
    for dt, slope in slopes.items():
        cells = [f"{error_of(table, UNIFORM, dt, middle):.3g}"] + [f"{error_of(table, MONO, dt, middle):.3g}"] * with_mono
        cells += [f"{error_of(table, kind, dt):.3g}" for kind in ("CDS", "GCS")]
        lines.append(f"| {dt} | {slope:.2f} | " + " | ".join(cells) + " |")
    return lines


def write_theorem1(prefix: str | Path, **settings) -> list[Path]:
    """PREFIX.csv (every row), PREFIX.md (slopes and the error at each Ns) and PREFIX.png (the log-log plot)."""
    import matplotlib.pyplot as plt

    from ..atomic import write_text
    from ..report.figures import save_png  # importing it sets the Agg backend

    table = measure(**settings)
    slopes = fitted_slopes(table)
    prefix = Path(prefix)
    paths = [prefix.with_name(prefix.name + suffix) for suffix in (".csv", ".md", ".png")]
    write_text(table.to_csv(index=False, float_format="%.6g"), paths[0])
    lines = summary_lines(table, slopes)
    write_text("\n".join(lines) + "\n", paths[1])
    figure, axis = plt.subplots(figsize=(6.5, 4.2), dpi=120)
    for (dt, group), colour in zip(table.groupby("dt"), ("tab:blue", "tab:orange", "tab:green", "tab:red")):
        sctd, mono = group[group["target"] == UNIFORM], group[group["target"] == MONO]
        axis.loglog(sctd["segment_length"], sctd["error"], "o-", color=colour, label=f"SCTD, dt = {dt} (slope {slopes[int(dt)]:.2f})")
        first = dt == table["dt"].min()
        if len(mono):
            axis.loglog(mono["segment_length"], mono["error"], "^", color=colour, label="SCTD, mono segmentation" if first else None)
        others = group[~group["target"].str.startswith("SCTD")]
        axis.loglog(others["segment_length"], others["error"], "s", color=colour, markerfacecolor="none",
                    label="CDS (to 0), GCS (to e)" if first else None)
        x = sctd["segment_length"].to_numpy()
        axis.loglog(x, sctd["error"].iloc[0] * x / x[0], ":", color=colour, linewidth=1,
                    label="the bound's slope 1" if first else None)
    axis.set(xlabel="mean segment length (timesteps)", ylabel="distillation error (RMS per dim)",
             title="Theorem 1: distillation error vs segment length")
    axis.grid(alpha=0.3, which="both")
    axis.legend(fontsize=7)
    figure.tight_layout()
    save_png(figure, paths[2])
    return paths
